/*  test_ingest - the ingest contract v1 through a real socket against a real intake process:
    every receipt status, every error code with its field path, idempotency across restarts,
    garbage, concurrent publishers, and a database outage. */
#include "fs_test.h"
#include "../unit/proto_testkit.h"
#include <signal.h>

#define S_SOURCE "primary-care"

//  A valid health.social_risk_detected event, with one edit (path NULL: none); malloc'd
static char *
s_event (const char *id, const char *path, tk_op_t op, msgpack_object val, size_t *len)
{
    zchunk_t *base = fs_test_event_social_risk (id, S_SOURCE, "urgent");
    char *data;
    if (path)
        data = tk_edit ((const char *) zchunk_data (base), zchunk_size (base), path, op, val, len);
    else {
        *len = zchunk_size (base);
        data = (char *) malloc (*len);
        memcpy (data, zchunk_data (base), *len);
    }
    zchunk_destroy (&base);
    return data;
}

//  A valid event of type t whose data is the codec's sample of t (variant)
static char *
s_typed_event (const char *id, const fs_type_t *t, tk_variant_t variant, size_t *len)
{
    char *sample;
    size_t slen;
    tk_sample_bytes (t, variant, &sample, &slen);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    cr_assert_eq (msgpack_unpack_next (&unpacked, sample, slen, NULL), MSGPACK_UNPACK_SUCCESS);
    size_t tlen;
    char *typed = s_event (id, "type", TK_SET, tk_str (t->wire), &tlen);
    char *data = tk_edit (typed, tlen, "data", TK_SET, unpacked.data, len);
    msgpack_unpacked_destroy (&unpacked);
    free (typed);
    free (sample);
    return data;
}

//  Sends one event over REQ; its receipt (asserts one came)
static void
s_send (fs_test_suite_t *suite, const void *data, size_t len, fs_ingest_receipt_t *receipt)
{
    memset (receipt, 0, sizeof *receipt);
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, data, len, receipt, 10000), 0,
                  "no receipt from intake (log in %s)", suite->log_dir);
}

static void
s_expect_status (fs_test_suite_t *suite, const void *data, size_t len, const char *status,
                 char *ref_out)
{
    fs_ingest_receipt_t receipt;
    s_send (suite, data, len, &receipt);
    cr_assert_str_eq (receipt.status, status, "expected %s, got %s (%s: %s)", status,
                      receipt.status, FS_PRESENT (&receipt, fs_ingest_receipt_F_error)
                      ? receipt.error.code : "", FS_PRESENT (&receipt, fs_ingest_receipt_F_error)
                      ? receipt.error.message : "");
    if (!streq (status, "rejected")) {
        cr_assert (receipt.ref && strlen (receipt.ref) == FS_UUID_LEN);
        if (ref_out)
            strcpy (ref_out, receipt.ref);
    }
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
}

//  Sends data and expects rejected with code and field ("" = no field)
static void
s_expect_error (fs_test_suite_t *suite, const void *data, size_t len, const char *code,
                const char *field)
{
    fs_ingest_receipt_t receipt;
    s_send (suite, data, len, &receipt);
    cr_assert_str_eq (receipt.status, "rejected");
    cr_assert (FS_PRESENT (&receipt, fs_ingest_receipt_F_error));
    cr_assert_str_eq (receipt.error.code, code, "expected %s at '%s', got %s at '%s': %s", code,
                      field, receipt.error.code, receipt.error.field ? receipt.error.field : "",
                      receipt.error.message);
    cr_assert_str_eq (receipt.error.field ? receipt.error.field : "", field,
                      "%s: expected field '%s', got '%s'", code, field,
                      receipt.error.field ? receipt.error.field : "");
    cr_assert (strlen (receipt.error.message) > 0);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
}

//  An edited event must be rejected with code at field
static void
s_expect_edit (fs_test_suite_t *suite, const char *path, tk_op_t op, msgpack_object val,
               const char *code, const char *field)
{
    size_t len;
    char *data = s_event ("edit", path, op, val, &len);
    s_expect_error (suite, data, len, code, field);
    free (data);
}

static long
s_stored (fs_test_suite_t *suite)
{
    return fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM intake.events");
}

Test (ingest, every_error_code_with_its_field)
{
    fs_test_suite_t *suite = fs_test_suite_new ("ingest");
    fs_test_suite_start (suite, "intake");

    //  malformed: not msgpack, not a map, trailing bytes, two frames
    s_expect_error (suite, "\xc1", 1, "malformed", "");
    s_expect_error (suite, "\x93\x01\x02\x03", 4, "malformed", "");
    s_expect_error (suite, "\x80\x80", 2, "malformed", "");
    s_expect_error (suite, "", 0, "malformed", "");
    zsock_t *req = zsock_new (ZMQ_REQ);
    zsock_set_rcvtimeo (req, 10000);
    cr_assert_eq (zsock_connect (req, "%s", suite->ingest_endpoint), 0);
    cr_assert_eq (zstr_sendx (req, "one", "two", NULL), 0);
    zframe_t *answer = zframe_recv (req);
    cr_assert_not_null (answer);
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_proto_decode (&fs_ingest_receipt_type, zframe_data (answer),
                                   zframe_size (answer), &receipt, NULL), 0);
    cr_assert_str_eq (receipt.status, "rejected");
    cr_assert_str_eq (receipt.error.code, "malformed");
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    zframe_destroy (&answer);
    zsock_destroy (&req);

    //  the version
    s_expect_edit (suite, "v", TK_SET, tk_int (2), "unsupported_version", "v");
    s_expect_edit (suite, "v", TK_SET, tk_int (-1), "unsupported_version", "v");
    s_expect_edit (suite, "v", TK_REMOVE, tk_nil (), "missing_field", "v");
    s_expect_edit (suite, "v", TK_SET, tk_str ("1"), "invalid_field", "v");

    //  missing, at every depth; nil is missing for required fields
    s_expect_edit (suite, "id", TK_REMOVE, tk_nil (), "missing_field", "id");
    s_expect_edit (suite, "subject.birth_date", TK_REMOVE, tk_nil (), "missing_field",
                   "subject.birth_date");
    s_expect_edit (suite, "subject.address.postcode", TK_REMOVE, tk_nil (), "missing_field",
                   "subject.address.postcode");
    s_expect_edit (suite, "data.urgency", TK_REMOVE, tk_nil (), "missing_field", "data.urgency");
    s_expect_edit (suite, "subject.given_name", TK_SET, tk_nil (), "missing_field",
                   "subject.given_name");

    //  invalid: dates, enums, bounds, ICD-10, doc_number with NONE
    s_expect_edit (suite, "subject.birth_date", TK_SET, tk_str ("1980-02-30"), "invalid_field",
                   "subject.birth_date");
    s_expect_edit (suite, "subject.birth_date", TK_SET, tk_str ("2999-01-01"), "invalid_field",
                   "subject.birth_date");
    s_expect_edit (suite, "occurred_at", TK_SET, tk_str ("yesterday"), "invalid_field",
                   "occurred_at");
    s_expect_edit (suite, "subject.doc_type", TK_SET, tk_str ("PASSPORTE"), "invalid_field",
                   "subject.doc_type");
    s_expect_edit (suite, "data.urgency", TK_SET, tk_str ("soon"), "invalid_field", "data.urgency");
    s_expect_edit (suite, "subject.address.postcode", TK_SET, tk_str ("0800"), "invalid_field",
                   "subject.address.postcode");
    char long_id [130];
    memset (long_id, 'x', 129);
    long_id [129] = 0;
    s_expect_edit (suite, "id", TK_SET, tk_str (long_id), "invalid_field", "id");
    //  An id that is not UTF-8 is refused, and the receipt still comes (without the id)
    s_expect_edit (suite, "id", TK_SET, tk_str ("caf\xe9"), "invalid_field", "id");
    s_expect_edit (suite, "subject.doc_type", TK_SET, tk_str ("NONE"), "invalid_field",
                   "subject.doc_number");
    msgpack_object codes [3] = { tk_str ("Z59.0"), tk_str ("Z65"), tk_str ("I10") };
    s_expect_edit (suite, "data.icd10_codes", TK_SET, tk_array (codes, 3), "invalid_field",
                   "data.icd10_codes[2]");
    const char *bad_codes [] = { "Z54", "Z66", "Z59.", "Z59.01", "z59", "Z5" };
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes [0]; i++) {
        msgpack_object one = tk_str (bad_codes [i]);
        s_expect_edit (suite, "data.icd10_codes", TK_SET, tk_array (&one, 1), "invalid_field",
                       "data.icd10_codes[0]");
    }

    //  unknown type, including our internal events
    s_expect_edit (suite, "type", TK_SET, tk_str ("health.unheard_of"), "unknown_type", "type");
    s_expect_edit (suite, "type", TK_SET, tk_str ("intake.referral_requested"), "unknown_type",
                   "type");

    //  too large: over FINESTRA_INTAKE_MAX_BYTES (256 KiB), under twice it
    size_t big = 300 * 1024;
    char *large = (char *) calloc (1, big);
    large [0] = (char) 0xc6;                    //  bin32 of big - 5 bytes
    uint32_t n = htonl ((uint32_t) (big - 5));
    memcpy (large + 1, &n, 4);
    s_expect_error (suite, large, big, "too_large", "");
    free (large);

    //  Nothing above was stored
    cr_assert_eq (s_stored (suite), 0);
    fs_test_suite_destroy (&suite);
}

Test (ingest, accepted_duplicate_conflict_and_after_restart)
{
    fs_test_suite_t *suite = fs_test_suite_new ("ingest");
    fs_test_suite_start (suite, "intake");
    size_t len;
    char *event = s_event ("evt-1", NULL, TK_SET, tk_nil (), &len);
    char ref [FS_UUID_LEN + 1], again [FS_UUID_LEN + 1];
    s_expect_status (suite, event, len, "accepted", ref);
    cr_assert_eq (s_stored (suite), 1);
    s_expect_status (suite, event, len, "duplicate", again);
    cr_assert_str_eq (again, ref);

    //  Same content, keys in another order and an unknown key: still the same event
    size_t olen;
    char *other_order = tk_edit (event, len, "subject.address.postcode", TK_REMOVE, tk_nil (),
                                 &olen);
    size_t rlen;
    char *reordered = tk_edit (other_order, olen, "subject.address.postcode", TK_SET,
                               tk_str ("08001"), &rlen);
    size_t xlen;
    char *extra = tk_edit (reordered, rlen, "x_unknown", TK_SET, tk_int (5), &xlen);
    s_expect_status (suite, extra, xlen, "duplicate", again);
    cr_assert_str_eq (again, ref);
    free (other_order);
    free (reordered);
    free (extra);

    //  Optional fields sent as nil are absent: same content again
    size_t nlen;
    char *nils = tk_edit (event, len, "subject.phone", TK_SET, tk_nil (), &nlen);
    s_expect_status (suite, nils, nlen, "duplicate", again);
    cr_assert_str_eq (again, ref);
    free (nils);

    //  Same id, other content
    size_t clen;
    char *changed = tk_edit (event, len, "data.urgency", TK_SET, tk_str ("ordinary"), &clen);
    s_expect_error (suite, changed, clen, "id_conflict", "id");
    //  Same id from another source is another event
    size_t slen;
    char *elsewhere = tk_edit (event, len, "source", TK_SET, tk_str ("hospital-del-mar"), &slen);
    s_expect_status (suite, elsewhere, slen, "accepted", NULL);
    cr_assert_eq (s_stored (suite), 2);

    //  After a restart: still a duplicate with the same ref, still a conflict
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGTERM, 5000), 0);
    fs_test_suite_start (suite, "intake");
    s_expect_status (suite, event, len, "duplicate", again);
    cr_assert_str_eq (again, ref);
    s_expect_error (suite, changed, clen, "id_conflict", "id");
    cr_assert_eq (s_stored (suite), 2);

    //  Times RFC 3339 allows and PostgreSQL's parser does not: stored, to the millisecond
    const char *times [] = { "0000-01-01T00:00:00Z", "2026-01-01T10:00:00.5+23:59",
                             "2016-12-31t23:59:60z" };
    for (size_t i = 0; i < 3; i++) {
        char id [32];
        snprintf (id, sizeof id, "time-%zu", i);
        size_t tlen;
        char *timed = s_event (id, "occurred_at", TK_SET, tk_str (times [i]), &tlen);
        s_expect_status (suite, timed, tlen, "accepted", NULL);
        free (timed);
    }
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
        "SELECT (extract (epoch FROM occurred_at) * 1000)::bigint FROM intake.events"
        " WHERE external_id = 'time-1'"), 1767261600500L - (23 * 60 + 59) * 60000L);
    cr_assert_eq (s_stored (suite), 5);

    //  Every catalogue type is accepted (fewest and most fields)
    int count = 0;
    for (size_t i = 0; fs_proto_messages [i]; i++) {
        const fs_type_t *t = fs_proto_messages [i];
        if (strncmp (t->name, "fs_ev_", 6) || t == &fs_ev_social_risk_detected_type)
            continue;       //  social risk needs real ICD-10 codes: the base event is one
        for (int variant = TK_MIN; variant <= TK_MAX; variant++) {
            //  the sample's members would be NONE with a number: the minimum only
            if (variant == TK_MAX && t == &fs_ev_benefits_application_submitted_type)
                continue;
            char id [64];
            snprintf (id, sizeof id, "typed-%s-%d", t->wire, variant);
            size_t tlen;
            char *typed = s_typed_event (id, t, (tk_variant_t) variant, &tlen);
            s_expect_status (suite, typed, tlen, "accepted", NULL);
            free (typed);
            count++;
        }
    }
    cr_assert_eq (count, 13, "the catalogue v1 has 8 types; 7 sampled here");
    cr_assert_eq (s_stored (suite), 5 + count);
    free (event);
    free (changed);
    free (elsewhere);
    fs_test_suite_destroy (&suite);
}

//  Receives every answer on sock until n arrived or timeout; counts receipt statuses
static void
s_collect (zsock_t **socks, size_t nsocks, size_t n, size_t counts [3])
{
    zpoller_t *poller = zpoller_new (NULL);
    for (size_t i = 0; i < nsocks; i++)
        zpoller_add (poller, socks [i]);
    size_t got = 0;
    while (got < n) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 20000);
        cr_assert_not_null (which, "only %zu of %zu answers came", got, n);
        zmsg_t *msg = zmsg_recv (which);
        cr_assert_not_null (msg);
        zframe_t *last = zmsg_last (msg);
        fs_ingest_receipt_t receipt = { 0 };
        cr_assert_eq (fs_proto_decode (&fs_ingest_receipt_type, zframe_data (last),
                                       zframe_size (last), &receipt, NULL), 0);
        counts [streq (receipt.status, "accepted") ? 0
              : streq (receipt.status, "duplicate") ? 1 : 2]++;
        fs_proto_clear (&fs_ingest_receipt_type, &receipt);
        zmsg_destroy (&msg);
        got++;
    }
    zpoller_destroy (&poller);
}

Test (ingest, garbage_then_concurrent_dealers)
{
    fs_test_suite_t *suite = fs_test_suite_new ("ingest");
    fs_test_suite_start (suite, "intake");

    //  Thousands of random messages (1-3 frames of random bytes) on one DEALER: each
    //  gets one answer and is not stored; then a valid event from it is accepted
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    cr_assert_eq (zsock_connect (dealer, "%s", suite->ingest_endpoint), 0);
    uint64_t seed = 0x1234567u;
    size_t garbage = 3000;
    for (size_t i = 0; i < garbage; i++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, "", 0);
        size_t frames = 1 + tk_rand (&seed) % 3;
        for (size_t f = 0; f < frames; f++) {
            char bytes [200];
            size_t size = tk_rand (&seed) % sizeof bytes;
            for (size_t b = 0; b < size; b++)
                bytes [b] = (char) tk_rand (&seed);
            //  Some look like the start of a map, to get past the first byte
            if (size && tk_rand (&seed) % 2)
                bytes [0] = (char) (0x80 | (tk_rand (&seed) % 16));
            zmsg_addmem (msg, bytes, size);
        }
        cr_assert_eq (zmsg_send (&msg, dealer), 0);
    }
    size_t counts [3] = { 0 };
    s_collect (&dealer, 1, garbage, counts);
    cr_assert_eq (counts [2], garbage, "every random message is rejected");
    size_t len;
    char *event = s_event ("after-garbage", NULL, TK_SET, tk_nil (), &len);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "", 0);
    zmsg_addmem (msg, event, len);
    cr_assert_eq (zmsg_send (&msg, dealer), 0);
    memset (counts, 0, sizeof counts);
    s_collect (&dealer, 1, 1, counts);
    cr_assert_eq (counts [0], 1, "a DEALER with the delimiter is answered like a REQ");
    free (event);
    zsock_destroy (&dealer);
    cr_assert_eq (s_stored (suite), 1);

    //  500 events from 4 DEALERs at once, each sent twice: 500 accepted, 500 duplicates,
    //  500 rows
    zsock_t *dealers [4];
    for (int d = 0; d < 4; d++) {
        dealers [d] = zsock_new (ZMQ_DEALER);
        zsock_set_sndhwm (dealers [d], 0);
        zsock_set_rcvhwm (dealers [d], 0);
        cr_assert_eq (zsock_connect (dealers [d], "%s", suite->ingest_endpoint), 0);
    }
    //  Built once: occurred_at is "now", and a re-send must be the same content
    zchunk_t *events [500];
    for (int i = 0; i < 500; i++) {
        char id [32];
        snprintf (id, sizeof id, "batch-%d", i);
        events [i] = fs_test_event_social_risk (id, S_SOURCE, "ordinary");
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 500; i++) {
            msg = zmsg_new ();
            zmsg_addmem (msg, "", 0);
            zmsg_addmem (msg, zchunk_data (events [i]), zchunk_size (events [i]));
            cr_assert_eq (zmsg_send (&msg, dealers [i % 4]), 0);
        }
        memset (counts, 0, sizeof counts);
        s_collect (dealers, 4, 500, counts);
        cr_assert_eq (counts [round], 500, "round %d: %zu accepted, %zu duplicate, %zu rejected",
                      round, counts [0], counts [1], counts [2]);
    }
    for (int i = 0; i < 500; i++)
        zchunk_destroy (&events [i]);
    //  Both copies at once: the same id twice in one batch is stored once
    for (int i = 0; i < 200; i++) {
        char id [32];
        snprintf (id, sizeof id, "twice-%d", i);
        zchunk_t *one = fs_test_event_social_risk (id, S_SOURCE, "ordinary");
        for (int copy = 0; copy < 2; copy++) {
            msg = zmsg_new ();
            zmsg_addmem (msg, "", 0);
            zmsg_addmem (msg, zchunk_data (one), zchunk_size (one));
            cr_assert_eq (zmsg_send (&msg, dealers [(2 * i + copy) % 4]), 0);
        }
        zchunk_destroy (&one);
    }
    memset (counts, 0, sizeof counts);
    s_collect (dealers, 4, 400, counts);
    cr_assert_eq (counts [0], 200);
    cr_assert_eq (counts [1], 200);
    for (int d = 0; d < 4; d++)
        zsock_destroy (&dealers [d]);
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
        "SELECT count(*) FROM intake.events WHERE external_id LIKE 'batch-%'"), 500);
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
        "SELECT count(DISTINCT external_id) FROM intake.events WHERE external_id LIKE 'twice-%'"),
        200);
    cr_assert_eq (s_stored (suite), 701);
    fs_test_suite_destroy (&suite);
}

//  Runs one statement on the cluster's admin database with the suite's database name as $1
static void
s_admin (const char *sql, const char *dbname)
{
    char *url = fs_test_pg_url ();
    PGconn *conn = PQconnectdb (url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    const char *values [1] = { dbname };
    PGresult *result = PQexecParams (conn, sql, dbname ? 1 : 0, NULL, values, NULL, NULL, 0);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK
            || PQresultStatus (result) == PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
    free (url);
}

//  ALLOW_CONNECTIONS takes an identifier, not a parameter: quoted by libpq
static void
s_allow_connections (const char *dbname, bool allow)
{
    char *url = fs_test_pg_url ();
    PGconn *conn = PQconnectdb (url);
    cr_assert_eq (PQstatus (conn), CONNECTION_OK);
    char *ident = PQescapeIdentifier (conn, dbname, strlen (dbname));
    char sql [256];
    snprintf (sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS %s", ident,
              allow ? "true" : "false");
    PQfreemem (ident);
    PGresult *result = PQexec (conn, sql);
    cr_assert_eq (PQresultStatus (result), PGRES_COMMAND_OK, "%s", PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
    free (url);
}

Test (ingest, database_outage_gives_unavailable_then_recovers)
{
    fs_test_suite_t *suite = fs_test_suite_new ("ingest");
    fs_test_suite_start (suite, "intake");
    const char *dbname = strrchr (suite->pg_url, '/') + 1;
    size_t len;
    char *first = s_event ("before", NULL, TK_SET, tk_nil (), &len);
    s_expect_status (suite, first, len, "accepted", NULL);
    free (first);

    //  The database refuses intake: no new connections, its sessions ended
    s_allow_connections (dbname, false);
    s_admin ("SELECT pg_terminate_backend (pid) FROM pg_stat_activity"
             " WHERE datname = $1 AND pid <> pg_backend_pid ()", dbname);
    char *during = s_event ("during", NULL, TK_SET, tk_nil (), &len);
    for (int i = 0; i < 3; i++)
        s_expect_error (suite, during, len, "unavailable", "");
    //  Intake still answers everything else as before
    s_expect_edit (suite, "v", TK_SET, tk_int (2), "unsupported_version", "v");

    //  Back: the same bytes are accepted, once
    s_allow_connections (dbname, true);
    fs_ingest_receipt_t receipt = { 0 };
    bool accepted = false;
    for (int attempt = 0; attempt < 100 && !accepted; attempt++) {
        s_send (suite, during, len, &receipt);
        accepted = streq (receipt.status, "accepted");
        if (!accepted)
            cr_assert_str_eq (receipt.error.code, "unavailable");
        fs_proto_clear (&fs_ingest_receipt_type, &receipt);
        if (!accepted)
            zclock_sleep (100);     //  a publisher's retry pause, not an assertion's
    }
    cr_assert (accepted, "intake did not reconnect (log in %s)", suite->log_dir);
    s_expect_status (suite, during, len, "duplicate", NULL);
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
        "SELECT count(*) FROM intake.events WHERE external_id = 'during'"), 1);
    cr_assert_eq (s_stored (suite), 2);
    free (during);
    fs_test_suite_destroy (&suite);
}

//  proto/INGEST.md's tables are fs_proto_doc's output for the definitions in this build
Test (ingest, contract_doc_matches_the_definitions)
{
    FILE *doc = popen (FS_TEST_BIN_DIR "/fs_proto_doc --ingest", "r");
    cr_assert_not_null (doc);
    char *tables = (char *) calloc (1, 1 << 20);
    size_t n = fread (tables, 1, (1 << 20) - 1, doc);
    cr_assert_eq (pclose (doc), 0);
    cr_assert_gt (n, 1000);
    FILE *file = fopen (FS_TEST_SOURCE_DIR "/proto/INGEST.md", "r");
    cr_assert_not_null (file);
    char *page = (char *) calloc (1, 1 << 20);
    cr_assert_gt (fread (page, 1, (1 << 20) - 1, file), 0);
    fclose (file);
    cr_assert_not_null (strstr (page, tables), "proto/INGEST.md is out of date: regenerate its"
                        " tables with fs_proto_doc --ingest");
    free (tables);
    free (page);
}
