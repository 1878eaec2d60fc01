/*  test_router_facts - the person's facts from intake's file to the router's criteria and the
    target's package, end to end: events go in through intake's real ingest socket, intake
    keeps the facts on the person's file (sql/011_person_facts.sql) and puts them in
    intake.referral_requested's subject, the real referral-router routes by them.
    - sex: a woman with a gender_violence need goes to the women's service of her district;
      a man does not (the decision says why); the sex given earlier on the file counts.
    - registration: someone the municipal register (padró) registered fits a service for
      registered people; someone only living in the city does not (unknown); someone living
      outside the city fails residency.
    - economic: household size and benefit applications reach the target only when the
      consent covers economic data (the package kept in referral_packages).
    The router's side needs router_route.c to pass the subject's sex to the criteria
    (`facts.sex = subject->sex;`) and to list what router_scope_fill carried in the package's
    data_categories (`sent |= router_scope_fill (...)`): S_NEEDS says so when they fail. */
#include "fs_test.h"

#define S_AT "2026-05-10T10:00:00+02:00"
#define S_NEEDS " (does router_route.c set facts.sex from the subject? see the header)"

static fs_test_suite_t *s_suite;
static char s_out [8192], s_err [8192];
static fs_test_publisher_t s_publisher = { .id_prefix = "facts", .at = S_AT };

static const char *s_services_csv =
    FS_TEST_ROUTER_SERVICES_HEADER
    "CSS01,social_services_centre,CSS One,neighbourhood,01 02,,,lives_in_city,*,,"
    "Anyone living in neighbourhoods 01 and 02,capacity,internal,notification,true\n"
    "CSS03,social_services_centre,CSS Three,neighbourhood,03,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 03,capacity,internal,notification,true\n"
    "PIAD-01,womens_service,PIAD One,district,01,16,,any,gender_violence family_support,woman,"
    "Women in district 01,capacity,internal,notification,true\n"
    "PIAD-02,womens_service,PIAD Two,district,02,16,,any,gender_violence family_support,woman,"
    "Women in district 02,capacity,internal,notification,true\n"
    "OH-CITY,housing_office,Housing,city,,18,,registered_in_city,housing,,"
    "Adults registered in the city,capacity,feed,housing-feed,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n"
    "01,One,01,N one\n01,One,02,N two\n02,Two,03,N three\n";

static fs_test_command_t s_router = {
    FS_TEST_COMMAND_CAPTURE ("referral-router", s_out, s_err)
};

static void
s_setup (void)
{
    s_suite = fs_test_suite_new ("router_facts");
    fs_test_suite_setenv (s_suite, "FINESTRA_INTAKE_PROCESS_POLL_MS", "200");
    fs_test_suite_start (s_suite, "intake");
    fs_test_suite_start (s_suite, "referral-router");
    s_publisher.suite = s_suite;
    fs_test_command_use_suite (&s_router, s_suite);
    fs_test_router_load (&s_router, "router_facts", s_services_csv, s_territory_csv);
    //  Intake's territory, the same districts: 08001 -> 01, 08003 -> 03 (district 02);
    //  17001 (Girona) is not the city's
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    PGresult *result = PQexec (conn,
        "INSERT INTO intake.districts VALUES ('01', 'One'), ('02', 'Two');"
        "INSERT INTO intake.neighbourhoods VALUES ('01', '01', 'N one'), ('02', '01', 'N two'),"
        " ('03', '02', 'N three');"
        "INSERT INTO intake.centres VALUES ('CSS01', 'CSS One', '01', true),"
        " ('CSS03', 'CSS Three', '02', true);"
        "INSERT INTO intake.centre_neighbourhoods VALUES ('01', 'CSS01'), ('02', 'CSS01'),"
        " ('03', 'CSS03');"
        "INSERT INTO intake.postcodes VALUES ('08001', '01', true), ('08003', '03', true);");
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (router_facts, .init = s_setup, .fini = s_teardown, .timeout = 180);

// ---- publishing through intake -----------------------------------------------------------

//  The person an event is about: DNI, names, where they live, sex (NULL: not given)
typedef struct {
    const char *dni, *given, *postcode, *sex;
} s_who_t;

//  Who as the events' subject: family name Facts, born 1980-04-01, living at Carrer de la
//  Prova <the DNI's last three characters>
static fs_test_person_t
s_person (const s_who_t *who)
{
    return (fs_test_person_t) {
        .dni = who->dni, .given = who->given, .family = "Facts", .birth = "1980-04-01",
        .sex = who->sex, .street = "Carrer de la Prova", .number = who->dni + 6,
        .postcode = who->postcode
    };
}

//  The encoded event of type dt about who (data cleared), for tests that alter bytes
static char *
s_encode (const s_who_t *who, const fs_type_t *dt, void *data, size_t *len)
{
    fs_test_person_t person = s_person (who);
    return fs_test_person_encode (&s_publisher, &person, dt, data, len);
}

//  Publishes an event of type dt about who (its data given); expects `accepted`; intake's ref
//  into ref (FS_UUID_LEN + 1). Clears data.
static void
s_publish (const s_who_t *who, const fs_type_t *dt, void *data, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_publish (&s_publisher, &person, dt, data, ref);
}

//  emergency.intervention of kind gender_violence (need gender_violence)
static void
s_gender_violence (const s_who_t *who, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_gender_violence (&s_publisher, &person, ref);
}

//  housing.eviction_scheduled (need housing) of a household of size
static void
s_eviction (const s_who_t *who, int size, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_eviction (&s_publisher, &person, size, ref);
}

//  register.address_changed: the padró registers who at their address
static void
s_registered (const s_who_t *who, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_registered (&s_publisher, &person, ref);
}

//  consent.granted for social_health_coordination to social services and housing
static void
s_consent (const s_who_t *who, const char *categories, char *ref)
{
    const fs_type_t *t = &fs_ev_consent_granted_type;
    fs_ev_consent_granted_t data = { 0 };
    char name [64];
    snprintf (name, sizeof name, "consent-%s", who->dni);
    fs_proto_set_str (t, &data, "consent_ref", name);
    fs_proto_set_str (t, &data, "purpose", "social_health_coordination");
    fs_proto_set_str (t, &data, "given_at", S_AT);
    char copy [128];
    snprintf (copy, sizeof copy, "%s", categories);
    data.data_categories.items = (char **) zmalloc (4 * sizeof (char *));
    char *save = NULL;
    for (char *w = strtok_r (copy, " ", &save); w && data.data_categories.n < 4;
         w = strtok_r (NULL, " ", &save))
        data.data_categories.items [data.data_categories.n++] = strdup (w);
    data.recipients.items = (char **) zmalloc (2 * sizeof (char *));
    data.recipients.items [0] = strdup ("social_services");
    data.recipients.items [1] = strdup ("housing");
    data.recipients.n = 2;
    data.present |= (1ull << fs_ev_consent_granted_F_data_categories)
                  | (1ull << fs_ev_consent_granted_F_recipients);
    s_publish (who, t, &data, ref);
}

//  benefits.application_submitted: an emergency aid application of a household of three
static void
s_application (const s_who_t *who, char *ref)
{
    const fs_type_t *t = &fs_ev_benefits_application_submitted_type;
    fs_ev_benefits_application_submitted_t data = { 0 };
    fs_proto_set_str (t, &data, "programme", "emergency_aid");
    fs_proto_set_str (t, &data, "application_ref", who->dni);
    fs_proto_set_str (t, &data, "submitted_at", "2026-03-01T10:00:00+01:00");
    fs_proto_set_str (t, &data, "channel", "online");
    const fs_type_t *mt = &fs_ingest_household_member_type;
    fs_ingest_household_member_t *members =
        (fs_ingest_household_member_t *) zmalloc (3 * sizeof *members);
    const char *rel [3] = { "applicant", "partner", "child" };
    const char *given [3] = { who->given, "Pau", "Nil" };
    const char *birth [3] = { "1980-04-01", "1979-02-02", "2015-06-06" };
    for (int i = 0; i < 3; i++) {
        fs_proto_set_str (mt, &members [i], "relationship", rel [i]);
        fs_proto_set_str (mt, &members [i], "given_name", given [i]);
        fs_proto_set_str (mt, &members [i], "family_name", "Facts");
        fs_proto_set_str (mt, &members [i], "birth_date", birth [i]);
    }
    data.household_members.items = members;
    data.household_members.n = 3;
    data.present |= 1ull << fs_ev_benefits_application_submitted_F_household_members;
    s_publish (who, t, &data, ref);
}

// ---- what intake and the router did ------------------------------------------------------

static char *
s_query (const char *sql, const char *value)
{
    const char *values [1] = { value };
    return fs_test_pg_text (s_suite->pg_url, sql, value ? 1 : 0, values);
}

//  Waits until intake processed the event of ref
#define s_processed(ref) fs_test_person_processed (&s_publisher, ref)

//  Waits until the router routed the referral of intake's event ref
static void
s_routed (const char *ref)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM referral_router.referrals"
              " WHERE event_ref = '%s' AND level IS NOT NULL", ref);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, sql, 1, 20000),
               "no referral routed for %s (logs in %s)", ref, s_suite->log_dir);
}

//  "outcome|criterion|reason" of service's decision for the referral of event ref ("" none)
static char *
s_decision (const char *ref, const char *service)
{
    const char *values [2] = { ref, service };
    return fs_test_pg_text (s_suite->pg_url,
        "SELECT d.outcome || '|' || coalesce (d.criterion, '') || '|' || d.reason"
        " FROM referral_router.routing_decisions d"
        " JOIN referral_router.referrals r ON r.id = d.referral_id"
        " WHERE r.event_ref = $1 AND d.service_code = $2", 2, values);
}

static void
s_expect_target (const char *ref, const char *target)
{
    char *got = s_query ("SELECT coalesce (target, '') FROM referral_router.referrals"
                         " WHERE event_ref = $1", ref);
    cr_assert_str_eq (got, target);
    free (got);
}

//  The package kept for the referral of event ref (asserted there, decoded)
static void
s_package (const char *ref, fs_referral_package_t *package)
{
    char sql [320];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM referral_router.referral_packages p"
              " JOIN referral_router.referrals r ON r.id = p.referral_id"
              " WHERE r.event_ref = '%s'", ref);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, sql, 1, 20000), "no package for %s", ref);
    char *hex = s_query ("SELECT encode (p.payload, 'hex') FROM referral_router.referral_packages p"
                         " JOIN referral_router.referrals r ON r.id = p.referral_id"
                         " WHERE r.event_ref = $1", ref);
    size_t len = strlen (hex) / 2;
    char *bytes = (char *) zmalloc (len + 1);
    for (size_t i = 0; i < len; i++)
        sscanf (hex + 2 * i, "%2hhx", (unsigned char *) &bytes [i]);
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_referral_package_type, bytes, len, package, &err), 0,
                  "%s", err.message);
    free (bytes);
    free (hex);
}

static bool
s_listed (const fs_strlist_t *list, const char *item)
{
    for (size_t i = 0; i < list->n; i++)
        if (streq (list->items [i], item))
            return true;
    return false;
}

//  The router has a consent of the person of dni
static void
s_consent_reached (const char *dni)
{
    char sql [320];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM referral_router.consents c"
              " JOIN intake.person_documents d ON d.person_id = c.person_id"
              " WHERE d.doc_number = '%s'", dni);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, sql, 1, 20000), "consent of %s not in the"
               " router (logs in %s)", dni, s_suite->log_dir);
}

// ---- sex -----------------------------------------------------------------------------------

Test (router_facts, a_woman_goes_to_the_womens_service_of_her_district)
{
    s_who_t anna = { "10000001A", "Anna", "08003", "female" };
    char ref [FS_UUID_LEN + 1];
    s_gender_violence (&anna, ref);
    s_routed (ref);
    char *decision = s_decision (ref, "PIAD-02");
    cr_assert (strncmp (decision, "chosen||", 8) == 0, "PIAD-02: %s" S_NEEDS, decision);
    free (decision);
    s_expect_target (ref, "PIAD-02");
    //  The other district's service is no candidate at all; the centre fits, ranked after
    decision = s_decision (ref, "PIAD-01");
    cr_assert_str_eq (decision, "");
    free (decision);
    decision = s_decision (ref, "CSS03");
    cr_assert (strncmp (decision, "fits_not_chosen|", 16) == 0, "CSS03: %s", decision);
    free (decision);
    //  On her file
    char *sex = s_query ("SELECT p.sex FROM intake.persons p JOIN intake.person_documents d"
                         " ON d.person_id = p.id WHERE d.doc_number = $1", anna.dni);
    cr_assert_str_eq (sex, "female");
    free (sex);
}

Test (router_facts, a_man_is_not_sent_there_and_the_decision_says_why)
{
    s_who_t pere = { "10000002B", "Pere", "08003", "male" };
    char ref [FS_UUID_LEN + 1];
    s_gender_violence (&pere, ref);
    s_routed (ref);
    char *decision = s_decision (ref, "PIAD-02");
    cr_assert_str_eq (decision, "no_fit|conditions|conditions: requires woman; the person's"
                      " sex is recorded as male", "%s" S_NEEDS, decision);
    free (decision);
    s_expect_target (ref, "CSS03");
}

Test (router_facts, sex_unknown_is_never_a_fit_and_the_file_remembers_it)
{
    //  No sex given: the women's service is "unknown", not chosen
    s_who_t x = { "10000003C", "Alex", "08003", NULL };
    char ref [FS_UUID_LEN + 1];
    s_gender_violence (&x, ref);
    s_routed (ref);
    char *decision = s_decision (ref, "PIAD-02");
    cr_assert (strncmp (decision, "unknown|conditions|", 19) == 0, "PIAD-02: %s", decision);
    free (decision);
    s_expect_target (ref, "CSS03");
    //  Given once (by another system, another event), kept: the next request has it
    s_who_t given = x;
    given.sex = "female";
    char first [FS_UUID_LEN + 1];
    s_eviction (&given, 1, first);
    s_processed (first);
    s_gender_violence (&x, ref);
    s_routed (ref);
    decision = s_decision (ref, "PIAD-02");
    cr_assert (strncmp (decision, "chosen||", 8) == 0, "PIAD-02: %s" S_NEEDS, decision);
    free (decision);
    s_expect_target (ref, "PIAD-02");
    //  The last value given wins
    given.sex = "non_binary";
    s_eviction (&given, 1, first);
    s_processed (first);
    s_gender_violence (&x, ref);
    s_routed (ref);
    decision = s_decision (ref, "PIAD-02");
    cr_assert_str_eq (decision, "no_fit|conditions|conditions: requires woman; the person's"
                      " sex is recorded as non-binary");
    free (decision);
}

//  The contract: sex is one of the register's three values, case and all; nothing stored
Test (router_facts, ingest_refuses_a_sex_outside_the_three_values)
{
    s_who_t eva = { "10000010K", "Eva", "08001", "female" };
    const fs_type_t *t = &fs_ev_emergency_intervention_type;
    fs_ev_emergency_intervention_t data = { 0 };
    fs_proto_set_str (t, &data, "kind", "gender_violence");
    fs_proto_set_str (t, &data, "at", S_AT);
    fs_proto_set_int (t, &data, "minors_involved", 0);
    fs_proto_set_str (t, &data, "urgency", "urgent");
    long events = fs_test_pg_long (s_suite->pg_url, "SELECT count(*) FROM intake.events");
    size_t len;
    char *bytes = s_encode (&eva, t, &data, &len);
    char *value = NULL;
    for (size_t i = 0; !value && i + 6 <= len; i++)
        if (memcmp (bytes + i, "female", 6) == 0)
            value = bytes + i;
    cr_assert (value);
    memcpy (value, "Female", 6);            //  the same length: only the value is wrong
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (s_suite->ingest_endpoint, bytes, len, &receipt, 10000), 0);
    cr_assert_str_eq (receipt.status, "rejected");
    cr_assert (FS_PRESENT (&receipt, fs_ingest_receipt_F_error));
    cr_assert_str_eq (receipt.error.code, "invalid_field");
    cr_assert_str_eq (receipt.error.field, "subject.sex");
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    free (bytes);
    cr_assert_eq (fs_test_pg_long (s_suite->pg_url, "SELECT count(*) FROM intake.events"), events);
}

// ---- registration ----------------------------------------------------------------------------

Test (router_facts, registered_fits_a_registered_only_service_living_only_does_not)
{
    //  Registered by the padró, then an eviction: the registered-only office takes her
    s_who_t marta = { "10000004D", "Marta", "08001", NULL };
    char padro [FS_UUID_LEN + 1], ref [FS_UUID_LEN + 1];
    s_registered (&marta, padro);
    s_processed (padro);
    s_eviction (&marta, 2, ref);
    s_routed (ref);
    s_expect_target (ref, "OH-CITY");
    char *decision = s_decision (ref, "OH-CITY");
    cr_assert (strncmp (decision, "chosen||", 8) == 0, "OH-CITY: %s", decision);
    free (decision);
    char *hood = s_query ("SELECT p.registered_hood || ' ' || p.registered_on"
                          " FROM intake.persons p JOIN intake.person_documents d"
                          " ON d.person_id = p.id WHERE d.doc_number = $1", marta.dni);
    cr_assert_str_eq (hood, "01 2025-01-15");
    free (hood);

    //  Living in the city, registration never heard of: not decided, not chosen
    s_who_t jordi = { "10000005E", "Jordi", "08001", NULL };
    s_eviction (&jordi, 2, ref);
    s_routed (ref);
    decision = s_decision (ref, "OH-CITY");
    cr_assert_str_eq (decision, "unknown|residency|residency: for people registered in the"
                      " city; the person lives in the city, whether registered is not known");
    free (decision);
    s_expect_target (ref, "CSS01");

    //  An address outside the city's territory: residency fails
    s_who_t lluis = { "10000006F", "Lluis", "17001", NULL };
    s_eviction (&lluis, 2, ref);
    s_routed (ref);
    decision = s_decision (ref, "OH-CITY");
    cr_assert_str_eq (decision, "no_fit|residency|residency: for people registered in the"
                      " city; the person does not live in the city");
    free (decision);

    //  Registered outside the city (the padró's last address is not the city's): not
    //  registered in the city, though living in it now
    s_who_t nuria = { "10000007G", "Nuria", "17001", NULL };
    s_registered (&nuria, padro);
    s_processed (padro);
    s_who_t moved = nuria;
    moved.postcode = "08001";
    s_eviction (&moved, 2, ref);
    s_routed (ref);
    decision = s_decision (ref, "OH-CITY");
    cr_assert (strncmp (decision, "unknown|residency|", 18) == 0, "OH-CITY: %s", decision);
    free (decision);
}

// ---- economic data ---------------------------------------------------------------------------

//  A person with a benefit application and an eviction, consent with categories; the package
//  sent to the centre (CSS01)
static void
s_economic_case (const s_who_t *who, const char *categories, fs_referral_package_t *package)
{
    char ref [FS_UUID_LEN + 1];
    s_application (who, ref);
    s_processed (ref);
    s_consent (who, categories, ref);
    s_consent_reached (who->dni);
    s_eviction (who, 4, ref);
    s_routed (ref);
    s_expect_target (ref, "CSS01");
    s_package (ref, package);
}

Test (router_facts, economic_data_goes_only_when_consent_covers_it)
{
    s_who_t rosa = { "10000008H", "Rosa", "08001", "female" };
    fs_referral_package_t package = { 0 };
    s_economic_case (&rosa, "identity contact economic", &package);
    cr_assert (FS_PRESENT (&package, fs_referral_package_F_subject));
    cr_assert_str_eq (package.subject.given_name, "Rosa");
    cr_assert_str_eq (package.subject.sex, "female");
    //  The eviction's household size (reported last), the application seen before
    cr_assert (FS_PRESENT (&package.subject, fs_referral_subject_F_household_size));
    cr_assert_eq (package.subject.household_size, 4);
    cr_assert_eq (package.subject.benefits.n, 1);
    const fs_referral_benefit_t *benefit =
        (const fs_referral_benefit_t *) package.subject.benefits.items;
    cr_assert_str_eq (benefit->programme, "emergency_aid");
    cr_assert_str_eq (benefit->submitted_on, "2026-03-01");
    cr_assert (s_listed (&package.data_categories, "economic"), "economic fields carried but"
               " not listed (does router_route.c take the categories from router_scope_fill?)");
    cr_assert (s_listed (&package.data_categories, "identity"));
    //  The routing fact never leaves
    cr_assert_not (FS_PRESENT (&package.subject, fs_referral_subject_F_residency));
    fs_proto_clear (&fs_referral_package_type, &package);

    //  Consent without economic: identity and contact go, no economic field
    s_who_t joan = { "10000009J", "Joan", "08001", "male" };
    s_economic_case (&joan, "identity contact", &package);
    cr_assert_str_eq (package.subject.given_name, "Joan");
    cr_assert_not (FS_PRESENT (&package.subject, fs_referral_subject_F_household_size));
    cr_assert_not (FS_PRESENT (&package.subject, fs_referral_subject_F_benefits));
    cr_assert_eq (package.subject.benefits.n, 0);
    cr_assert_not (s_listed (&package.data_categories, "economic"));
    fs_proto_clear (&fs_referral_package_type, &package);
}
