/*  test_router_route - routing a referral through the real referral-router (and notification):
    intake.referral_requested and intake.consent_changed sent on the router's bus as intake
    would; the directory loaded with the real command from a small test directory. Checked:
    each level's data scope on the wire (the feed item, the bus envelope) and in the stored
    package, criteria filtering and nothing-fits -> draft, the Z-code mapping and unmapped
    codes reported, consent present / missing / withdrawn / expired / overridden, joint
    treatment with and without a complexity factor. */
#include "fs_test.h"


static fs_test_suite_t *s_suite;
static char s_out [8192], s_err [8192];

static const char *s_services_csv =
    FS_TEST_ROUTER_SERVICES_HEADER
    "CSS01,social_services_centre,CSS One,neighbourhood,01,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 01,capacity,internal,notification,true\n"
    "CSS02,social_services_centre,CSS Two,neighbourhood,02,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 02,capacity,internal,notification,true\n"
    "OH-01,housing_office,Housing One,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,capacity,feed,housing-feed,true\n"
    "OH-FULL,housing_office,Housing Full,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,no_capacity,feed,housing-feed,true\n"
    "EMP,employment,Jobs,city,,16,64,lives_in_city,employment,,"
    "People aged 16 to 64 living in the city,capacity,feed,jobs-feed,true\n"
    "UCER,housing_office,Exclusion unit,city,,,,lives_in_city,housing homelessness,"
    "eviction_in_process,Households facing eviction,capacity,feed,housing-consortium,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n"
    "01,One,01,N one\n01,One,02,N two\n02,Two,03,N three\n";

//  `finestra-referral-router ARGS...` on the suite's stores (set by s_setup); stdout and
//  stderr land in s_out and s_err
static fs_test_command_t s_router = {
    FS_TEST_COMMAND_CAPTURE ("referral-router", s_out, s_err)
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

static void
s_setup (void)
{
    s_suite = fs_test_router_suite (&s_router, "router_route", NULL,
                                    "referral-router notification", s_services_csv,
                                    s_territory_csv);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (router_route, .init = s_setup, .fini = s_teardown, .timeout = 120);

// ---- sending as intake ------------------------------------------------------------------

//  intake.referral_requested and intake.consent_changed as tests/support/fs_test_router.c
//  sends them
typedef fs_test_router_req_t s_req_t;
#define s_request(...) fs_test_router_request (s_suite, __VA_ARGS__)
#define s_consent(...) fs_test_router_consent (s_suite, __VA_ARGS__)

// ---- reading what happened ----------------------------------------------------------------

//  First column of the first row as text ("" for none or NULL), malloc'd
static char *
s_text (const char *sql, const char *param)
{
    const char *values [1] = { param };
    return fs_test_pg_text (s_suite->pg_url, sql, param ? 1 : 0, values);
}

#define s_expect(sql, param, expected) do { \
    char *got_ = s_text ((sql), (param)); \
    cr_expect_str_eq (got_, (expected), "%s [%s]: got \"%s\"", (sql), (param), got_); \
    free (got_); } while (0)

//  The referral of event_ref: "status|reason_code|level|target"
static char *
s_referral (const char *event_ref)
{
    return s_text ("SELECT concat_ws ('|', status, coalesce (reason_code, '-'), level,"
                   " coalesce (target, '-')) FROM referral_router.referrals"
                   " WHERE event_ref = $1", event_ref);
}

#define s_expect_referral(ref, expected) do { \
    char *got_ = s_referral (ref); \
    cr_assert_str_eq (got_, (expected), "%s: got %s", (ref), got_); \
    free (got_); } while (0)

//  Decodes the first bytea of sql (binary) as type into out; false when no row
static bool
s_decode (const char *sql, const char *param, const fs_type_t *type, void *out)
{
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK);
    const char *values [1] = { param };
    PGresult *result = PQexecParams (conn, sql, 1, NULL, values, NULL, NULL, 1);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    bool found = PQntuples (result) > 0;
    if (found) {
        fs_proto_error_t err;
        cr_assert_eq (fs_proto_decode (type, PQgetvalue (result, 0, 0),
                                       (size_t) PQgetlength (result, 0, 0), out, &err), 0,
                      "%s", err.message);
    }
    PQclear (result);
    PQfinish (conn);
    return found;
}

//  The package as stored and as appended to the feed must be the same bytes
static bool
s_package (const char *event_ref, fs_referral_package_t *package)
{
    s_expect ("SELECT count(*) FROM referral_router.referral_packages p"
              " JOIN referral_router.referrals r ON r.id = p.referral_id"
              " WHERE r.event_ref = $1 AND p.delivery = 'feed' AND NOT EXISTS (SELECT 1"
              " FROM referral_router.feed_items f WHERE f.referral_id = r.id"
              " AND f.feed = p.destination AND f.payload = p.payload"
              " AND f.item_type = 'referral.requested')", event_ref, "0");
    return s_decode ("SELECT p.payload FROM referral_router.referral_packages p"
                     " JOIN referral_router.referrals r ON r.id = p.referral_id"
                     " WHERE r.event_ref = $1", event_ref, &fs_referral_package_type, package);
}

static char *
s_person (void)
{
    char *id = (char *) zmalloc (FS_UUID_LEN + 1);
    fs_uuid (id);
    return id;
}

// ---- the tests ------------------------------------------------------------------------

Test (router_route, complementation_sends_the_minimum_data_set_the_consent_allows)
{
    char *person = s_person ();
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    //  Housing may have identity and contact, not the health data
    s_consent (consent, person, "granted", "housing social_services", "identity contact",
               NULL);
    s_request ("ev-comp-1", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    s_expect_referral ("ev-comp-1", "requested|-|complementation|OH-01");
    //  Every candidate recorded with why: the specific service with capacity chosen
    s_expect ("SELECT string_agg (service_code || ':' || outcome, ' ' ORDER BY rank)"
              " FROM referral_router.routing_decisions d JOIN referral_router.referrals r"
              " ON r.id = d.referral_id WHERE r.event_ref = $1", "ev-comp-1",
              "OH-01:chosen CSS01:fits_not_chosen UCER:unknown OH-FULL:no_capacity");
    fs_referral_package_t package = { 0 };
    cr_assert (s_package ("ev-comp-1", &package));
    cr_assert_str_eq (package.level, "complementation");
    cr_assert_str_eq (package.target, "OH-01");
    cr_assert_str_eq (package.referent, "CSS01");
    cr_assert_str_eq (package.legal_basis, "consent");
    cr_assert (strstr (package.reason, "housing"), "%s", package.reason);
    cr_assert (FS_PRESENT (&package, fs_referral_package_F_subject));
    cr_assert_str_eq (package.subject.given_name, "Laia");
    cr_assert_str_eq (package.subject.doc_number, "12345678Z");
    cr_assert_str_eq (package.subject.phone, "+34600000000");
    cr_assert_str_eq (package.subject.address.street, "Carrer Nou");
    cr_assert_eq (package.data_categories.n, 2);
    //  Not allowed: the health data; never sent: the residency (a routing fact)
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_icd10_codes));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_note));
    cr_assert_not (FS_PRESENT (&package.subject, fs_referral_subject_F_residency));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_complexity_factors));
    fs_proto_clear (&fs_referral_package_type, &package);
    s_expect ("SELECT array_to_string (data_categories, ' ') || '|' || legal_basis"
              " FROM referral_router.referrals WHERE event_ref = $1", "ev-comp-1",
              "identity contact|consent");

    //  Inside the suite (a need only the centre takes): the bus carries the package, and the
    //  centre's professionals get a pending notification
    s_request ("ev-comp-2", person, &(s_req_t) { .level = "complementation",
               .needs = { "family_support" }, .minors = -1 });
    s_expect_referral ("ev-comp-2", "requested|-|complementation|CSS01");
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    PGresult *result = PQexec (conn, "SELECT o.envelope FROM referral_router.outbox o"
        " JOIN referral_router.referrals r ON r.correlation_id = o.correlation_id"
        " WHERE r.event_ref = 'ev-comp-2' AND o.consumer = 'notification' ORDER BY o.seq");
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    bool seen = false;
    for (int row = 0; row < PQntuples (result); row++) {
        fs_envelope_t env;
        fs_proto_error_t err;
        char *bytes = PQgetvalue (result, row, 0);
        size_t len = 0;
        unsigned char *raw = PQunescapeBytea ((unsigned char *) bytes, &len);
        cr_assert_eq (fs_envelope_decode (raw, len, 1 << 20, &env, &err), 0, "%s",
                      err.message);
        PQfreemem (raw);
        if (streq (env.hdr.type, "referral.requested")) {
            const fs_referral_package_t *sent = env.payload;
            cr_assert_str_eq (sent->target, "CSS01");
            cr_assert_str_eq (sent->subject.family_name, "Puig Serra");
            cr_assert_not (FS_PRESENT (sent, fs_referral_package_F_note));
            seen = true;
        }
        fs_envelope_clear (&env);
    }
    PQclear (result);
    PQfinish (conn);
    cr_assert (seen, "no referral.requested for notification on the bus");
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
               " notification.notifications WHERE recipient = 'service:CSS01'"
               " AND topic = 'referral.requested' AND status = 'pending'", 1, 15000));
    free (person);
}

Test (router_route, orientation_transfers_no_personal_data_and_tells_the_person)
{
    char *person = s_person ();
    s_request ("ev-orient", person, &(s_req_t) { .level = "orientation",
               .codes = { "Z59.1" }, .minors = -1 });
    //  No consent needed: nothing personal leaves; recorded completed at once
    s_expect_referral ("ev-orient", "completed|orientation_given|orientation|OH-01");
    fs_referral_package_t package = { 0 };
    cr_assert (s_package ("ev-orient", &package));
    cr_assert_str_eq (package.level, "orientation");
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_subject));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_icd10_codes));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_note));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_data_categories));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_legal_basis));
    fs_proto_clear (&fs_referral_package_type, &package);
    //  The person is told where to go and why
    char recipient [64];
    snprintf (recipient, sizeof recipient, "person:%s", person);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
               " notification.notifications WHERE recipient LIKE 'person:%'"
               " AND topic = 'referral.orientation_given' AND status = 'pending'", 1, 15000));
    s_expect ("SELECT recipient FROM notification.notifications"
              " WHERE topic = 'referral.orientation_given'", NULL, recipient);
    free (person);
}

Test (router_route, criteria_filter_and_nothing_fitting_stays_a_draft)
{
    char *person = s_person ();
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    s_consent (consent, person, "granted", "employment social_services",
               "identity contact social_health", NULL);
    //  Seventy years old: not sent to the 16-64 service; the centre takes every need
    s_request ("ev-old", person, &(s_req_t) { .level = "complementation",
               .needs = { "employment" }, .birth = "1950-01-01", .minors = -1 });
    s_expect_referral ("ev-old", "requested|-|complementation|CSS01");
    s_expect ("SELECT outcome || ':' || criterion FROM referral_router.routing_decisions d"
              " JOIN referral_router.referrals r ON r.id = d.referral_id"
              " WHERE r.event_ref = $1 AND d.service_code = 'EMP'", "ev-old", "no_fit:age_max");
    //  Forty: the specific service fits and is chosen
    s_request ("ev-young", person, &(s_req_t) { .level = "complementation",
               .needs = { "employment" }, .minors = -1 });
    s_expect_referral ("ev-young", "requested|-|complementation|EMP");
    //  Outside every territory and the age range: nothing fits -> draft, sent nowhere,
    //  the sender told (centres of other neighbourhoods are not candidates at all)
    s_request ("ev-none", person, &(s_req_t) { .level = "complementation",
               .needs = { "employment" }, .birth = "1950-01-01", .hood = "03", .minors = -1 });
    s_expect_referral ("ev-none", "draft|no_fitting_service|complementation|-");
    s_expect ("SELECT count(*) FROM referral_router.referral_packages p"
              " JOIN referral_router.referrals r ON r.id = p.referral_id WHERE r.event_ref = $1",
              "ev-none", "0");
    s_expect ("SELECT count(*) FROM referral_router.outbox o JOIN referral_router.referrals r"
              " ON r.correlation_id = o.correlation_id WHERE r.event_ref = $1"
              " AND o.type = 'referral.status_changed' AND o.consumer = 'notification'",
              "ev-none", "1");
    s_expect ("SELECT string_agg (service_code || ':' || outcome, ' ' ORDER BY rank)"
              " FROM referral_router.routing_decisions d JOIN referral_router.referrals r"
              " ON r.id = d.referral_id WHERE r.event_ref = $1", "ev-none",
              "EMP:no_fit");
    //  Z-codes: Z56.0 -> employment and income; Z57.0 known and unmapped, X99 not a Z55-Z65
    //  code: both reported (row and counter), not guessed
    s_request ("ev-codes", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z56.0", "Z57.0", "X99" }, .minors = -1 });
    s_expect ("SELECT array_to_string (needs, ' ') || '|' || array_to_string (unmapped_codes,"
              " ' ') FROM referral_router.referrals WHERE event_ref = $1", "ev-codes",
              "employment income|Z57.0 X99");
    s_expect ("SELECT string_agg (code || ':' || result, ' ' ORDER BY code)"
              " FROM referral_router.unmapped_codes u JOIN referral_router.referrals r"
              " ON r.id = u.referral_id WHERE r.event_ref = $1", "ev-codes",
              "X99:out_of_range Z57.0:unmapped");
    int index = 0;
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, "referral-router"))
            index = i;
    int status = 0;
    char *body = NULL;
    cr_assert_eq (fs_test_http_get (s_suite->http_ports [index], "/metrics", &status, &body), 0);
    cr_assert (strstr (body, "finestra_router_unmapped_codes_total{service=\"referral-router\"}"
                             " 2"), "%s", body);
    free (body);
    //  An eviction with minors: no level suggested -> complementation; the unit for
    //  households facing eviction fits (its condition holds) and is ranked first
    fs_uuid (consent);
    s_consent (consent, person, "granted", "housing", "identity contact", NULL);
    s_request ("ev-evict", person, &(s_req_t) { .event_type = "housing.eviction_scheduled",
               .needs = { "housing" }, .minors = 2 });
    s_expect_referral ("ev-evict", "requested|-|complementation|UCER");
    s_expect ("SELECT level_requested || '|' || array_to_string (needs, ' ') FROM"
              " referral_router.referrals WHERE event_ref = $1", "ev-evict",
              "complementation|housing");
    s_expect ("SELECT string_agg (service_code || ':' || outcome, ' ' ORDER BY rank)"
              " FROM referral_router.routing_decisions d JOIN referral_router.referrals r"
              " ON r.id = d.referral_id WHERE r.event_ref = $1", "ev-evict",
              "UCER:chosen OH-01:fits_not_chosen CSS01:fits_not_chosen OH-FULL:no_capacity");
    //  Only unmapped codes: no need known, nothing fits
    s_request ("ev-unmapped", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z57.0" }, .minors = -1 });
    s_expect_referral ("ev-unmapped", "draft|no_fitting_service|complementation|-");
    free (person);
}

Test (router_route, consent_missing_granted_expired_withdrawn_and_overridden)
{
    //  Missing: held, nothing leaves; a grant later releases it at once. The sender (an
    //  external system reading its feed) is told each change on its feed
    cr_assert_eq (s_run ("sender-feed", "primary-care", "pc-feed", NULL), 0, "%s", s_err);
    char *person = s_person ();
    s_request ("ev-held", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    s_expect_referral ("ev-held", "on-hold|consent_missing|complementation|OH-01");
    fs_referral_status_changed_t told = { 0 };
    cr_assert (s_decode ("SELECT f.payload FROM referral_router.feed_items f"
                         " JOIN referral_router.referrals r ON r.id = f.referral_id"
                         " WHERE r.event_ref = $1 AND f.feed = 'pc-feed'"
                         " AND f.item_type = 'referral.status_changed' ORDER BY f.seq DESC",
                         "ev-held", &fs_referral_status_changed_type, &told));
    cr_assert_str_eq (told.status, "on-hold");
    cr_assert_str_eq (told.reason_code, "consent_missing");
    fs_proto_clear (&fs_referral_status_changed_type, &told);
    s_expect ("SELECT count(*) FROM referral_router.feed_items f JOIN referral_router.referrals"
              " r ON r.id = f.referral_id WHERE r.event_ref = $1"
              " AND f.item_type = 'referral.requested'", "ev-held", "0");
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    //  A consent for other recipients changes nothing
    s_consent (consent, person, "granted", "primary_care", "identity contact", NULL);
    s_expect_referral ("ev-held", "on-hold|consent_missing|complementation|OH-01");
    fs_uuid (consent);
    s_consent (consent, person, "granted", "housing", "identity contact social_health", NULL);
    s_expect_referral ("ev-held", "requested|-|complementation|OH-01");
    cr_assert (s_decode ("SELECT f.payload FROM referral_router.feed_items f"
                         " JOIN referral_router.referrals r ON r.id = f.referral_id"
                         " WHERE r.event_ref = $1 AND f.feed = 'pc-feed'"
                         " AND f.item_type = 'referral.status_changed' ORDER BY f.seq DESC",
                         "ev-held", &fs_referral_status_changed_type, &told));
    cr_assert_str_eq (told.status, "requested");
    cr_assert_str_eq (told.previous, "on-hold");
    fs_proto_clear (&fs_referral_status_changed_type, &told);
    //  Both changes told on the bus in the referral's own chain (the release is caused by
    //  the consent change, but belongs to the referral's correlation)
    s_expect ("SELECT count(*) FROM referral_router.outbox o JOIN referral_router.referrals r"
              " ON r.correlation_id = o.correlation_id WHERE r.event_ref = $1"
              " AND o.type = 'referral.status_changed' AND o.consumer = 'notification'",
              "ev-held", "2");
    fs_referral_package_t package = { 0 };
    cr_assert (s_package ("ev-held", &package));
    cr_assert_str_eq (package.note, "Lives alone, behind on rent");
    cr_assert_eq (package.icd10_codes.n, 1);
    fs_proto_clear (&fs_referral_package_type, &package);

    //  Withdrawn after routing: what was sent stays sent; the next request is held
    s_consent (consent, person, "withdrawn", NULL, NULL, NULL);
    s_request ("ev-after", person, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    s_expect_referral ("ev-after", "on-hold|consent_withdrawn|complementation|OH-01");
    s_expect ("SELECT count(*) FROM referral_router.referral_packages p"
              " JOIN referral_router.referrals r ON r.id = p.referral_id"
              " WHERE r.person_id = $1::uuid", person, "1");

    //  Expired
    char *other = s_person ();
    fs_uuid (consent);
    s_consent (consent, other, "granted", "housing", "identity contact",
               "2020-01-01T00:00:00Z");
    s_request ("ev-expired", other, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    s_expect_referral ("ev-expired", "on-hold|consent_expired|complementation|OH-01");

    //  Withdrawn while held: a held referral stays held, nothing is sent
    char *third = s_person ();
    s_request ("ev-held-2", third, &(s_req_t) { .level = "complementation",
               .codes = { "Z59.1" }, .minors = -1 });
    fs_uuid (consent);
    s_consent (consent, third, "withdrawn", "housing", "identity", NULL);
    s_expect_referral ("ev-held-2", "on-hold|consent_withdrawn|complementation|OH-01");

    //  Override: refused without a basis or on a referral not held for consent; then an
    //  audited release with the data the basis allows
    char *id = s_text ("SELECT id FROM referral_router.referrals WHERE event_ref = $1",
                       "ev-after");
    char *sent = s_text ("SELECT id FROM referral_router.referrals WHERE event_ref = $1",
                         "ev-held");
    cr_assert_eq (s_run ("override-consent", id, "--basis", "curiosity", "--by", "dr-x",
                         "--reason", "why not", NULL), 2);
    cr_assert_eq (s_run ("override-consent", id, "--basis", "vital_interest", NULL), 2);
    cr_assert_eq (s_run ("override-consent", sent, "--basis", "vital_interest", "--by",
                         "dr-x", "--reason", "emergency", NULL), 1);
    cr_assert (strstr (s_err, "not held for consent"), "%s", s_err);
    s_expect ("SELECT count(*) FROM referral_router.consent_overrides", NULL, "0");
    cr_assert_eq (s_run ("override-consent", id, "--basis", "legal_obligation", "--by",
                         "judge-y", "--reason", "court order 12/2026", NULL), 0, "%s", s_err);
    s_expect_referral ("ev-after", "requested|-|complementation|OH-01");
    s_expect ("SELECT basis || '|' || by_who || '|' || array_to_string (categories, ' ')"
              " FROM referral_router.consent_overrides WHERE referral_id = $1::uuid", id,
              "legal_obligation|judge-y|identity contact");
    cr_assert (s_package ("ev-after", &package));
    cr_assert_str_eq (package.legal_basis, "legal_obligation");
    cr_assert_str_eq (package.subject.given_name, "Laia");
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_note));
    cr_assert_not (FS_PRESENT (&package, fs_referral_package_F_icd10_codes));
    fs_proto_clear (&fs_referral_package_type, &package);
    //  Released once: a second override finds nothing held
    cr_assert_eq (s_run ("override-consent", id, "--basis", "vital_interest", "--by", "dr-x",
                         "--reason", "again", NULL), 1);
    free (id);
    free (sent);
    free (person);
    free (other);
    free (third);
}

Test (router_route, joint_treatment_needs_a_complexity_factor)
{
    char *person = s_person ();
    char consent [FS_UUID_LEN + 1];
    fs_uuid (consent);
    s_consent (consent, person, "granted", "housing", "identity contact social_health", NULL);
    //  One need, no minors: no factor -> refused to complementation, reason recorded
    s_request ("ev-joint-0", person, &(s_req_t) { .level = "joint_treatment",
               .codes = { "Z59.1" }, .minors = 0 });
    s_expect_referral ("ev-joint-0", "requested|-|complementation|OH-01");
    s_expect ("SELECT level_requested || '|' || split_part (level_reason, ':', 1)"
              " FROM referral_router.referrals WHERE event_ref = $1", "ev-joint-0",
              "joint_treatment|joint_treatment_without_factor");
    s_expect ("SELECT count(*) FROM referral_router.shared_plans p JOIN"
              " referral_router.referrals r ON r.id = p.referral_id WHERE r.event_ref = $1",
              "ev-joint-0", "0");
    //  Housing and a child at risk: two factors; the shared plan, the conference in 7 days
    s_request ("ev-joint-1", person, &(s_req_t) { .level = "joint_treatment",
               .codes = { "Z59.1", "Z62.0" }, .minors = 2 });
    s_expect_referral ("ev-joint-1", "requested|-|joint_treatment|OH-01");
    s_expect ("SELECT array_to_string (factors, ' ') || '|' || requester_service || '|'"
              " || target_service || '|' || (conference_on - (now () AT TIME ZONE 'UTC')::date)"
              " FROM referral_router.shared_plans p JOIN referral_router.referrals r"
              " ON r.id = p.referral_id WHERE r.event_ref = $1", "ev-joint-1",
              "multiple_domains minors_at_risk|CSS01|OH-01|7");
    fs_referral_package_t package = { 0 };
    cr_assert (s_package ("ev-joint-1", &package));
    cr_assert_str_eq (package.level, "joint_treatment");
    cr_assert_eq (package.complexity_factors.n, 2);
    cr_assert (FS_PRESENT (&package, fs_referral_package_F_conference_on));
    cr_assert_str_eq (package.requester_referent, "referent_professional@CSS01");
    cr_assert_str_eq (package.target_referent, "referent_professional@OH-01");
    cr_assert_str_eq (package.subject.given_name, "Laia");
    fs_proto_clear (&fs_referral_package_type, &package);
    //  The same request again: one referral
    s_request ("ev-joint-1", person, &(s_req_t) { .level = "joint_treatment",
               .codes = { "Z59.1", "Z62.0" }, .minors = 2 });
    s_expect ("SELECT count(*) FROM referral_router.referrals WHERE event_ref = $1",
              "ev-joint-1", "1");
    free (person);
}

Test (router_route, intake_s_request_carries_the_facts_the_router_keeps)
{
    //  Through intake's ingest: the processor fills subject and needs; the router keeps the
    //  snapshot and maps the health codes (no territory loaded in intake: unplaced, so the
    //  neighbourhood is unknown and no centre can be shown to fit: a draft, not a guess)
    fs_test_suite_start (s_suite, "intake");
    zchunk_t *event = fs_test_event_social_risk ("risk-e2e-1", "primary-care", "preferent");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (s_suite->ingest_endpoint, zchunk_data (event),
                                   zchunk_size (event), &receipt, 10000), 0);
    cr_assert_str_eq (receipt.status, "accepted");
    zchunk_destroy (&event);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
               " referral_router.referral_subjects WHERE subject IS NOT NULL", 1, 20000),
               "no referral with a subject (logs in %s)", s_suite->log_dir);
    s_expect ("SELECT array_to_string (needs, ' ') || '|' || status || '|' || reason_code"
              " FROM referral_router.referrals WHERE event_ref = $1", receipt.ref,
              "homelessness housing|draft|no_fitting_service");
    fs_referral_subject_t subject = { 0 };
    cr_assert (s_decode ("SELECT s.subject FROM referral_router.referral_subjects s"
                         " JOIN referral_router.referrals r ON r.id = s.referral_id"
                         " WHERE r.event_ref = $1", receipt.ref, &fs_referral_subject_type,
                         &subject));
    cr_assert_str_eq (subject.given_name, "Anna");
    cr_assert_str_eq (subject.doc_number, "12345678Z");
    cr_assert_str_eq (subject.birth_date, "1980-04-01");
    cr_assert_str_eq (subject.address.postcode, "08001");
    fs_proto_clear (&fs_referral_subject_type, &subject);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
}
