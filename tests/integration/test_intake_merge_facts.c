/*  test_intake_merge_facts - a merge carries the person facts to routing, end to end: events
    go in through intake's real ingest socket, the operator merges two files of one woman with
    the real `finestra-intake merge`, and the real referral-router routes the kept file's next
    requests by the facts the merged file brought (migration 015): her sex (the women's
    service), her padró registration (a service for registered people) and her benefit
    application (in intake.referral_requested's subject). Unmerge takes them back. */
#include "fs_test.h"

#define S_AT "2026-05-10T10:00:00+02:00"

static fs_test_suite_t *s_suite;
static char s_out [8192], s_err [8192];
static fs_test_publisher_t s_publisher = { .id_prefix = "merge-facts", .at = S_AT };

static const char *s_services_csv =
    FS_TEST_ROUTER_SERVICES_HEADER
    "CSS01,social_services_centre,CSS One,neighbourhood,01,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 01,capacity,internal,notification,true\n"
    "PIAD-01,womens_service,PIAD One,district,01,16,,any,gender_violence,woman,"
    "Women in district 01,capacity,internal,notification,true\n"
    "OH-CITY,housing_office,Housing,city,,18,,registered_in_city,housing,,"
    "Adults registered in the city,capacity,feed,housing-feed,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n01,One,01,N one\n";

static fs_test_command_t s_router = {
    FS_TEST_COMMAND_CAPTURE ("referral-router", s_out, s_err)
};
static fs_test_command_t s_intake = {
    FS_TEST_COMMAND_CAPTURE ("intake", s_out, s_err)
};

static void
s_setup (void)
{
    s_suite = fs_test_suite_new ("intake_merge_facts");
    fs_test_suite_setenv (s_suite, "FINESTRA_INTAKE_PROCESS_POLL_MS", "200");
    fs_test_suite_start (s_suite, "intake");
    fs_test_suite_start (s_suite, "referral-router");
    s_publisher.suite = s_suite;
    fs_test_command_use_suite (&s_router, s_suite);
    fs_test_command_use_suite (&s_intake, s_suite);
    fs_test_router_load (&s_router, "intake_merge_facts", s_services_csv, s_territory_csv);
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    PGresult *result = PQexec (conn,
        "INSERT INTO intake.districts VALUES ('01', 'One');"
        "INSERT INTO intake.neighbourhoods VALUES ('01', '01', 'N one');"
        "INSERT INTO intake.centres VALUES ('CSS01', 'CSS One', '01', true);"
        "INSERT INTO intake.centre_neighbourhoods VALUES ('01', 'CSS01');"
        "INSERT INTO intake.postcodes VALUES ('08001', '01', true);");
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

TestSuite (intake_merge_facts, .init = s_setup, .fini = s_teardown, .timeout = 180);

//  The person an event is about: her DNI, her sex (NULL: not given)
typedef struct {
    const char *dni, *sex;
} s_who_t;

//  Who as the events' subject: Laia Merge, born 1984-02-03, living at Carrer de la Prova 1,
//  08001
static fs_test_person_t
s_person (const s_who_t *who)
{
    return (fs_test_person_t) {
        .dni = who->dni, .given = "Laia", .family = "Merge", .birth = "1984-02-03",
        .sex = who->sex, .street = "Carrer de la Prova", .number = "1", .postcode = "08001"
    };
}

//  Publishes an event of type dt (its data given, then cleared) about who; expects
//  `accepted`; intake's ref into ref (FS_UUID_LEN + 1)
static void
s_publish (const s_who_t *who, const fs_type_t *dt, void *data, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_publish (&s_publisher, &person, dt, data, ref);
}

//  Waits until intake processed the event of ref
#define s_processed(ref) fs_test_person_processed (&s_publisher, ref)

//  register.address_changed: the padró registers who at Carrer de la Prova 1
static void
s_registered (const s_who_t *who)
{
    fs_test_person_t person = s_person (who);
    char ref [FS_UUID_LEN + 1];
    fs_test_person_registered (&s_publisher, &person, ref);
    s_processed (ref);
}

//  benefits.application_submitted: an emergency aid application
static void
s_application (const s_who_t *who)
{
    const fs_type_t *t = &fs_ev_benefits_application_submitted_type;
    fs_ev_benefits_application_submitted_t data = { 0 };
    fs_proto_set_str (t, &data, "programme", "emergency_aid");
    fs_proto_set_str (t, &data, "application_ref", who->dni);
    fs_proto_set_str (t, &data, "submitted_at", "2026-03-01T10:00:00+01:00");
    fs_proto_set_str (t, &data, "channel", "online");
    char ref [FS_UUID_LEN + 1];
    s_publish (who, t, &data, ref);
    s_processed (ref);
}

//  emergency.intervention of kind gender_violence (need gender_violence), routed
static void
s_gender_violence (const s_who_t *who, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_gender_violence (&s_publisher, &person, ref);
}

//  housing.eviction_scheduled (need housing) of a household of two
static void
s_eviction (const s_who_t *who, char *ref)
{
    fs_test_person_t person = s_person (who);
    fs_test_person_eviction (&s_publisher, &person, 2, ref);
}

static char *
s_query (const char *sql, const char *value)
{
    const char *values [1] = { value };
    return fs_test_pg_text (s_suite->pg_url, sql, value ? 1 : 0, values);
}

//  The file the DNI leads to (malloc'd)
static char *
s_file (const char *dni)
{
    char *id = s_query ("SELECT person_id::text FROM intake.person_documents"
                        " WHERE doc_type = 'DNI' AND doc_number = $1", dni);
    cr_assert_eq (strlen (id), FS_UUID_LEN, "no file for %s", dni);
    return id;
}

//  Routes the event of ref: waits for its referral; its target ("" none, malloc'd)
static char *
s_target (const char *ref)
{
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM referral_router.referrals"
              " WHERE event_ref = '%s' AND level IS NOT NULL", ref);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, sql, 1, 20000),
               "no referral routed for %s (logs in %s)", ref, s_suite->log_dir);
    return s_query ("SELECT coalesce (target, '') FROM referral_router.referrals"
                    " WHERE event_ref = $1", ref);
}

//  intake.referral_requested's subject for the event of ref, as "sex|residency|benefits"
static void
s_subject (const char *ref, char *out, size_t size)
{
    PGconn *conn = PQconnectdb (s_suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK);
    PGresult *result = PQexecParams (conn, "SELECT envelope FROM intake.outbox"
        " WHERE type = 'intake.referral_requested' AND consumer = 'referral-router'"
        " ORDER BY seq", 0, NULL, NULL, NULL, NULL, 1);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s", PQerrorMessage (conn));
    *out = 0;
    for (int row = 0; row < PQntuples (result); row++) {
        fs_envelope_t env;
        fs_proto_error_t err;
        cr_assert_eq (fs_envelope_decode (PQgetvalue (result, row, 0),
                                          (size_t) PQgetlength (result, row, 0), 1 << 20, &env,
                                          &err), 0, "%s", err.message);
        const fs_referral_requested_t *request = env.payload;
        if (streq (request->event_ref, ref)) {
            const fs_referral_subject_t *subject = &request->subject;
            snprintf (out, size, "%s|%s|", subject->sex ? subject->sex : "-",
                      subject->residency ? subject->residency : "-");
            for (size_t i = 0; i < subject->benefits.n; i++) {
                const fs_referral_benefit_t *benefit =
                    &((const fs_referral_benefit_t *) subject->benefits.items) [i];
                snprintf (out + strlen (out), size - strlen (out), "%s%s", i ? "," : "",
                          benefit->programme);
            }
        }
        fs_envelope_clear (&env);
    }
    PQclear (result);
    PQfinish (conn);
    cr_assert (*out, "no intake.referral_requested for %s", ref);
}

Test (intake_merge_facts, the_kept_file_is_routed_by_what_the_merged_one_brought)
{
    //  Her first file: a woman, registered on the padró, who applied for emergency aid
    s_who_t first = { "30000001A", "female" };
    s_registered (&first);
    s_application (&first);
    //  A second file of hers, under another DNI number (a typing error): no sex, nothing
    s_who_t second = { "30000009Z", NULL };
    char ref [FS_UUID_LEN + 1], subject [256];
    s_gender_violence (&second, ref);
    char *target = s_target (ref);
    cr_assert_str_eq (target, "CSS01", "before the merge the women's service cannot tell");
    free (target);
    char *keep = s_file (second.dni), *merged = s_file (first.dni);
    cr_assert_str_neq (keep, merged, "intake made one file of the two DNIs");

    //  The operator merges the first file into the second
    cr_assert_eq (fs_test_command_runl (&s_intake, "merge", keep, merged, "--by", "ana",
                                        "--reason", "same woman, DNI mistyped", NULL), 0,
                  "%s", s_err);
    s_gender_violence (&second, ref);
    target = s_target (ref);
    cr_assert_str_eq (target, "PIAD-01", "the sex the merged file brought decides woman");
    free (target);
    s_subject (ref, subject, sizeof subject);
    cr_assert_str_eq (subject, "female|registered_in_city|emergency_aid");
    s_eviction (&second, ref);
    target = s_target (ref);
    cr_assert_str_eq (target, "OH-CITY", "the registration the merged file brought counts");
    free (target);

    //  Unmerged: the second file is routed as it was before
    cr_assert_eq (fs_test_command_runl (&s_intake, "unmerge", "1", "--by", "ana", "--reason",
                                        "not the same after all", NULL), 0, "%s", s_err);
    s_gender_violence (&second, ref);
    target = s_target (ref);
    cr_assert_str_eq (target, "CSS01");
    free (target);
    s_subject (ref, subject, sizeof subject);
    cr_assert_str_eq (subject, "-|lives_in_city|");
    free (keep);
    free (merged);
}
