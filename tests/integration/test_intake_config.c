/*  test_intake_config - the processor keeps the triage rules and the neighbourhoods between
    rounds (013_process_config_stamp.sql): a neighbourhood added while intake runs, after the
    processor has read the territory, is known to the next event; each change bumps the stamp
    the claim reads, and without a bump the processor keeps what it read. */
#include "fs_test.h"

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  A health.social_risk_detected event whose address names its neighbourhood explicitly
static void
s_publish (fs_test_suite_t *suite, const char *id, const char *neighbourhood)
{
    char now [32];
    fs_rfc3339 (fs_now_ms (), now);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "v");            msgpack_pack_int (&pk, 1);
    s_str (&pk, "id");           s_str (&pk, id);
    s_str (&pk, "source");       s_str (&pk, "primary-care");
    s_str (&pk, "type");         s_str (&pk, "health.social_risk_detected");
    s_str (&pk, "occurred_at");  s_str (&pk, now);
    s_str (&pk, "subject");
    msgpack_pack_map (&pk, 6);
    s_str (&pk, "doc_type");     s_str (&pk, "DNI");
    s_str (&pk, "doc_number");   s_str (&pk, "12345678Z");
    s_str (&pk, "given_name");   s_str (&pk, "Anna");
    s_str (&pk, "family_name");  s_str (&pk, "Puig i Ferrer");
    s_str (&pk, "birth_date");   s_str (&pk, "1980-04-01");
    s_str (&pk, "address");
    msgpack_pack_map (&pk, 4);
    s_str (&pk, "street");       s_str (&pk, "Carrer de la Riera Baixa");
    s_str (&pk, "number");       s_str (&pk, "7");
    s_str (&pk, "postcode");     s_str (&pk, "08999");     //  no postcode row: the name decides
    s_str (&pk, "neighbourhood"); s_str (&pk, neighbourhood);
    s_str (&pk, "data");
    msgpack_pack_map (&pk, 3);
    s_str (&pk, "icd10_codes");  msgpack_pack_array (&pk, 1); s_str (&pk, "Z59.0");
    s_str (&pk, "suggested_level"); s_str (&pk, "complementation");
    s_str (&pk, "urgency");      s_str (&pk, "ordinary");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, buffer.data, buffer.size, &receipt,
                                   10000), 0, "no receipt (log in %s)", suite->log_dir);
    cr_assert_str_eq (receipt.status, "accepted");
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    msgpack_sbuffer_destroy (&buffer);
    cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count(*) FROM intake.events"
                                " WHERE processed_at IS NULL", 0, 30000),
               "event %s not processed (log in %s)", id, suite->log_dir);
}

static void
s_sql (fs_test_suite_t *suite, const char *sql)
{
    PGconn *conn = PQconnectdb (suite->pg_url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    PGresult *result = PQexec (conn, sql);
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
}

//  "centre neighbourhood unplaced-reason" of the case the event with this id opened
static char *
s_placed (fs_test_suite_t *suite, const char *id)
{
    const char *values [1] = { id };
    return fs_test_pg_text (suite->pg_url,
        "SELECT coalesce (c.centre_code, '-') || ' ' || coalesce (c.neighbourhood_code, '-')"
        " || ' ' || coalesce (u.reason, '-')"
        " FROM intake.cases c JOIN intake.events e ON e.ref = c.event_ref"
        " LEFT JOIN intake.unplaced u ON u.case_id = c.id WHERE e.external_id = $1",
        1, values);
}

Test (intake_config, territory_change_reaches_the_next_event)
{
    fs_test_suite_t *suite = fs_test_suite_new ("intake_config");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_POLL_MS", "200");
    //  One worker: what "the processor has read" means is then one cache, not one per worker
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_WORKERS", "1");
    fs_test_suite_start (suite, "intake");
    s_sql (suite, "INSERT INTO intake.districts VALUES ('01', 'Ciutat Vella');"
                  "INSERT INTO intake.neighbourhoods VALUES ('01', '01', 'el Raval');"
                  "INSERT INTO intake.centres VALUES ('CSS01', 'CSS Raval', '01', true),"
                  " ('CSS02', 'CSS Gòtic', '01', true);"
                  "INSERT INTO intake.centre_neighbourhoods VALUES ('01', 'CSS01');");
    //  The first event makes the processor read the territory (one neighbourhood)
    s_publish (suite, "config-1", "el Raval");
    char *placed = s_placed (suite, "config-1");
    cr_assert_str_eq (placed, "CSS01 01 -");
    free (placed);
    s_publish (suite, "config-2", "el Barri Gòtic");
    placed = s_placed (suite, "config-2");
    cr_assert_str_eq (placed, "- - unknown_neighbourhood");
    free (placed);

    //  A neighbourhood added now bumps the stamp; the next event is placed by its name
    long before = fs_test_pg_long (suite->pg_url,
                                   "SELECT stamp FROM intake.process_config_stamp");
    s_sql (suite, "INSERT INTO intake.neighbourhoods VALUES ('02', '01', 'el Barri Gòtic');"
                  "INSERT INTO intake.centre_neighbourhoods VALUES ('02', 'CSS02');");
    cr_assert_gt (fs_test_pg_long (suite->pg_url,
                                   "SELECT stamp FROM intake.process_config_stamp"), before);
    s_publish (suite, "config-3", "el barri gotic");
    placed = s_placed (suite, "config-3");
    cr_assert_str_eq (placed, "CSS02 02 -");
    free (placed);

    //  The stamp is what makes it read again (not every round): a change that does not
    //  bump it (trigger off) is not seen; any later bump makes it seen
    s_sql (suite, "ALTER TABLE intake.neighbourhoods DISABLE TRIGGER neighbourhoods_stamp;"
                  "INSERT INTO intake.neighbourhoods VALUES ('03', '01', 'la Barceloneta');"
                  "INSERT INTO intake.centre_neighbourhoods VALUES ('03', 'CSS02');"
                  "ALTER TABLE intake.neighbourhoods ENABLE TRIGGER neighbourhoods_stamp;");
    s_publish (suite, "config-4", "la Barceloneta");
    placed = s_placed (suite, "config-4");
    cr_assert_str_eq (placed, "- - unknown_neighbourhood");
    free (placed);
    s_sql (suite, "UPDATE intake.neighbourhoods SET name = name WHERE false");
    s_publish (suite, "config-5", "la Barceloneta");
    placed = s_placed (suite, "config-5");
    cr_assert_str_eq (placed, "CSS02 03 -");
    free (placed);

    //  A rule change bumps it too (the triage itself after a change: test_intake_process)
    before = fs_test_pg_long (suite->pg_url, "SELECT stamp FROM intake.process_config_stamp");
    s_sql (suite, "UPDATE intake.triage_rules SET enabled = enabled");
    cr_assert_gt (fs_test_pg_long (suite->pg_url,
                                   "SELECT stamp FROM intake.process_config_stamp"), before);
    fs_test_suite_destroy (&suite);
}
