/*  test_router_batch - requests waiting together on the referral-router's bus are routed in
    one batch (fs_inbox batch function, router_route.c's batch writer): a rejected one is
    dead-lettered and the others applied; a batch whose write fails is applied one at a time,
    a bad one left for the sender; the same event_ref twice in one batch, or raced by two
    replicas, gives one referral. To make requests wait together, the test holds the router
    inside an earlier transaction (the directory's table locked) while they arrive. */
#include "fs_test.h"
#include <signal.h>

static const char *s_services_csv =
    "code,kind,name,territory_scope,territory_codes,age_min,age_max,residency,needs,conditions,"
    "criteria_text,capacity,delivery,delivery_target,demo\n"
    "CSS01,social_services_centre,CSS One,neighbourhood,01,,,lives_in_city,*,,"
    "Anyone living in neighbourhood 01,capacity,internal,notification,true\n"
    "OH-01,housing_office,Housing One,district,01,18,,lives_in_city,housing,,"
    "Adults living in district 01,capacity,feed,housing-feed,true\n";
static const char *s_territory_csv =
    "district_code,district,neighbourhood_code,neighbourhood\n"
    "01,One,01,N one\n01,One,02,N two\n";

static char s_out [8192], s_err [8192];
static fs_test_command_t s_router = {
    .service = "referral-router", .capture = true, .out = s_out, .out_size = sizeof s_out,
    .err = s_err, .err_size = sizeof s_err
};

static fs_test_suite_t *
s_suite_new (const char *name)
{
    fs_test_suite_t *suite = fs_test_suite_new (name);
    fs_test_suite_start (suite, "referral-router");
    fs_test_command_use_suite (&s_router, suite);
    fs_test_router_load (&s_router, name, s_services_csv, s_territory_csv);
    return suite;
}

static int
s_router_port (fs_test_suite_t *suite)
{
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, "referral-router"))
            return suite->bus_ports [i];
    return -1;
}

static zsock_t *
s_dealer (int port)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 15000);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", port), 0);
    return dealer;
}

static PGconn *
s_connect (fs_test_suite_t *suite)
{
    PGconn *conn = PQconnectdb (suite->pg_url);
    cr_assert (PQstatus (conn) == CONNECTION_OK);
    return conn;
}

static void
s_sql (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    cr_assert (PQresultStatus (result) == PGRES_COMMAND_OK
               || PQresultStatus (result) == PGRES_TUPLES_OK, "%s: %s", sql,
               PQerrorMessage (conn));
    PQclear (result);
}

//  Holds every router on the directory's table: a batch that begins waits for s_release
static PGconn *
s_hold (fs_test_suite_t *suite)
{
    PGconn *conn = s_connect (suite);
    s_sql (conn, "BEGIN");
    s_sql (conn, "LOCK TABLE referral_router.services IN ACCESS EXCLUSIVE MODE");
    return conn;
}

static void
s_release (PGconn **conn_p)
{
    s_sql (*conn_p, "COMMIT");
    PQfinish (*conn_p);
    *conn_p = NULL;
}

static void
s_send (zsock_t *dealer, const char *data, size_t len)
{
    zframe_t *frame = zframe_new (data, len);
    cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
}

//  A request for event_ref (person fresh, birth date given or the default), sent on dealer;
//  its envelope id into id
static void
s_request (zsock_t *dealer, const char *event_ref, const char *birth, char *id)
{
    char person [FS_UUID_LEN + 1];
    fs_uuid (person);
    fs_test_router_req_t r = { .needs = { "housing" }, .minors = -1, .birth = birth };
    size_t len = 0;
    char *data = fs_test_router_request_encode (event_ref, person, &r, &len, id);
    s_send (dealer, data, len);
    free (data);
}

//  The next ack on dealer must be for id with status
static void
s_expect_ack (zsock_t *dealer, const char *id, const char *status)
{
    zframe_t *answer = zframe_recv (dealer);
    cr_assert (answer, "no ack for %s", id);
    fs_ack_t ack = { 0 };
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer),
                                   &ack, &err), 0);
    zframe_destroy (&answer);
    cr_assert_str_eq (ack.id, id);
    cr_assert_str_eq (ack.status, status, "%s: %s %s", id, ack.status,
                      ack.reason ? ack.reason : "");
    fs_proto_clear (&fs_ack_type, &ack);
}

//  A request sent alone first: the router's batch for it waits on the held table, so what
//  is sent next queues on its socket
static void
s_opener (zsock_t *dealer, const char *event_ref, char *id)
{
    s_request (dealer, event_ref, NULL, id);
    usleep (300 * 1000);
}

//  Sends a request for each of refs (births: NULL or the birth dates) so that they wait on
//  the router's socket together, behind an opener; their envelope ids into ids, the
//  opener's into opener
static void
s_send_together (fs_test_suite_t *suite, zsock_t *dealer, size_t n, const char *const *refs,
                 const char *const *births, char (*ids) [FS_UUID_LEN + 1], char *opener)
{
    PGconn *hold = s_hold (suite);
    s_opener (dealer, "rb-opener", opener);
    for (size_t i = 0; i < n; i++)
        s_request (dealer, refs [i], births ? births [i] : NULL, ids [i]);
    usleep (300 * 1000);
    s_release (&hold);
}

static long
s_count (fs_test_suite_t *suite, const char *sql)
{
    return fs_test_pg_long (suite->pg_url, sql);
}

Test (router_batch, a_rejected_request_is_dead_lettered_the_others_applied, .timeout = 120)
{
    fs_test_suite_t *suite = s_suite_new ("rbatch_reject");
    zsock_t *dealer = s_dealer (s_router_port (suite));
    const char *refs [4] = { "rb-a", "rb-bad", "rb-c", "rb-d" };
    const char *births [4] = { NULL, "2999-01-01", NULL, NULL };
    const char *acks [4] = { "applied", "rejected", "applied", "applied" };
    char opener [FS_UUID_LEN + 1], ids [4][FS_UUID_LEN + 1];
    s_send_together (suite, dealer, 4, refs, births, ids, opener);
    s_expect_ack (dealer, opener, "applied");
    for (int i = 0; i < 4; i++)
        s_expect_ack (dealer, ids [i], acks [i]);
    //  The good ones routed, the bad one kept as a dead letter with why, nothing of it written
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals"
                                  " WHERE event_ref IN ('rb-a', 'rb-c', 'rb-d')"), 3);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals"
                                  " WHERE event_ref = 'rb-bad'"), 0);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.dead_letter"
                                  " WHERE code = 'handler_rejected'"
                                  " AND reason LIKE '%birth_date 2999-01-01%'"), 1);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.inbox"
                                  " WHERE outcome = 'rejected'"), 1);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.inbox"
                                  " WHERE outcome = 'applied'"), 4);
    //  Each routed in full: decisions, snapshot, history, held for consent (none given)
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals r WHERE"
                                  " status = 'on-hold' AND reason_code = 'consent_missing'"
                                  " AND EXISTS (SELECT 1 FROM referral_router.routing_decisions"
                                  " d WHERE d.referral_id = r.id AND d.outcome = 'chosen')"
                                  " AND EXISTS (SELECT 1 FROM referral_router.referral_subjects"
                                  " s WHERE s.referral_id = r.id AND s.subject IS NOT NULL)"
                                  " AND EXISTS (SELECT 1 FROM referral_router.referral_transitions"
                                  " t WHERE t.referral_id = r.id AND t.to_status = 'on-hold')"),
                  4);
    //  The three good ones written by one statement (one subtransaction: one xmin)
    cr_assert_eq (s_count (suite, "SELECT count(DISTINCT xmin::text) FROM"
                                  " referral_router.referrals"
                                  " WHERE event_ref IN ('rb-a', 'rb-c', 'rb-d')"), 1);
    zsock_destroy (&dealer);
    fs_test_suite_destroy (&suite);
}

Test (router_batch, a_failed_batch_write_is_applied_one_at_a_time, .timeout = 120)
{
    fs_test_suite_t *suite = s_suite_new ("rbatch_fallback");
    //  A write of more than one referral fails, and so does every write of rb-bad
    PGconn *conn = s_connect (suite);
    s_sql (conn, "CREATE FUNCTION referral_router.test_refuse () RETURNS trigger"
                 " LANGUAGE plpgsql AS $$ BEGIN"
                 " IF (SELECT count(*) FROM n) > 1"
                 " OR EXISTS (SELECT 1 FROM n WHERE event_ref = 'rb-bad') THEN"
                 " RAISE EXCEPTION 'test: refused'; END IF; RETURN NULL; END $$");
    s_sql (conn, "CREATE TRIGGER test_refuse AFTER INSERT ON referral_router.referrals"
                 " REFERENCING NEW TABLE AS n FOR EACH STATEMENT"
                 " EXECUTE FUNCTION referral_router.test_refuse ()");
    PQfinish (conn);
    zsock_t *dealer = s_dealer (s_router_port (suite));
    const char *refs [3] = { "rb-a", "rb-bad", "rb-c" };
    char opener [FS_UUID_LEN + 1], ids [3][FS_UUID_LEN + 1];
    s_send_together (suite, dealer, 3, refs, NULL, ids, opener);
    //  The good ones applied one at a time; the bad one not acknowledged (the sender
    //  re-sends it), nothing of it kept, not even its inbox row
    s_expect_ack (dealer, opener, "applied");
    s_expect_ack (dealer, ids [0], "applied");
    s_expect_ack (dealer, ids [2], "applied");
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals"
                                  " WHERE event_ref IN ('rb-a', 'rb-c')"), 2);
    cr_assert_eq (s_count (suite, "SELECT count(DISTINCT xmin::text) FROM"
                                  " referral_router.referrals"
                                  " WHERE event_ref IN ('rb-a', 'rb-c')"), 2);
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM referral_router.inbox WHERE msg_id = '%s'",
              ids [1]);
    cr_assert_eq (s_count (suite, sql), 0);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.dead_letter"), 0);
    //  Tried together first: the router said it fell back
    char path [512];
    snprintf (path, sizeof path, "%s/referral-router.log", suite->log_dir);
    zfile_t *log = zfile_new (NULL, path);
    cr_assert (log && zfile_input (log) == 0, "no log %s", path);
    zchunk_t *text = zfile_read (log, zfile_cursize (log), 0);
    zchunk_extend (text, "", 1);
    cr_assert (strstr ((char *) zchunk_data (text), "inbox batch not applied together"),
               "no fallback logged in %s", path);
    zchunk_destroy (&text);
    zfile_destroy (&log);
    //  Once the failure is gone, the re-sent request is applied
    conn = s_connect (suite);
    s_sql (conn, "DROP TRIGGER test_refuse ON referral_router.referrals");
    PQfinish (conn);
    fs_test_router_req_t r = { .needs = { "housing" }, .minors = -1 };
    char person [FS_UUID_LEN + 1];
    fs_uuid (person);
    fs_test_router_request (suite, "rb-bad", person, &r);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals"
                                  " WHERE event_ref = 'rb-bad'"), 1);
    zsock_destroy (&dealer);
    fs_test_suite_destroy (&suite);
}

//  Status changes the router emitted to notification
static long
s_told (fs_test_suite_t *suite)
{
    return s_count (suite, "SELECT count(*) FROM referral_router.outbox"
                           " WHERE type = 'referral.status_changed' AND consumer = 'notification'");
}

Test (router_batch, the_same_event_ref_twice_in_one_batch_is_one_referral, .timeout = 120)
{
    fs_test_suite_t *suite = s_suite_new ("rbatch_twice");
    zsock_t *dealer = s_dealer (s_router_port (suite));
    const char *refs [3] = { "rb-x", "rb-y", "rb-x" };
    char opener [FS_UUID_LEN + 1], ids [3][FS_UUID_LEN + 1];
    s_send_together (suite, dealer, 3, refs, NULL, ids, opener);
    s_expect_ack (dealer, opener, "applied");
    for (int i = 0; i < 3; i++)
        s_expect_ack (dealer, ids [i], "applied");
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals"
                                  " WHERE event_ref = 'rb-x'"), 1);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referral_transitions t"
                                  " JOIN referral_router.referrals r ON r.id = t.referral_id"
                                  " WHERE r.event_ref = 'rb-x'"), 1);
    cr_assert_eq (s_told (suite), 3, "one status change each: opener, x, y");
    //  Both envelopes recorded as applied: neither is sent again
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.inbox"
                                  " WHERE type = 'intake.referral_requested'"), 4);
    zsock_destroy (&dealer);
    fs_test_suite_destroy (&suite);
}

Test (router_batch, two_replicas_racing_on_one_event_ref_give_one_referral, .timeout = 180)
{
    fs_test_suite_t *suite = s_suite_new ("rbatch_race");
    int bus = fs_test_free_port ();
    char bind [64], feed [80];
    snprintf (bind, sizeof bind, "FINESTRA_BUS_BIND=tcp://127.0.0.1:%d", bus);
    snprintf (feed, sizeof feed, "FINESTRA_ROUTER_FEED_ENDPOINT=tcp://127.0.0.1:%d",
              fs_test_free_port ());
    const char *settings [] = { bind, feed, NULL };
    pid_t replica = fs_test_suite_start_replica (suite, "referral-router", "referral-router-2",
                                                 fs_test_free_port (), settings);
    zsock_t *dealers [2] = { s_dealer (s_router_port (suite)), s_dealer (bus) };
    //  Both replicas held, then given the same five requests (other envelope ids) at once
    const int n = 5;
    char ids [2][5][FS_UUID_LEN + 1], openers [2][FS_UUID_LEN + 1];
    PGconn *hold = s_hold (suite);
    s_opener (dealers [0], "rb-opener-1", openers [0]);
    s_opener (dealers [1], "rb-opener-2", openers [1]);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n; i++) {
            char ref [32];
            snprintf (ref, sizeof ref, "rb-race-%d", i);
            s_request (dealers [k], ref, NULL, ids [k][i]);
        }
    usleep (300 * 1000);
    s_release (&hold);
    for (int k = 0; k < 2; k++) {
        s_expect_ack (dealers [k], openers [k], "applied");
        for (int i = 0; i < n; i++)
            s_expect_ack (dealers [k], ids [k][i], "applied");
    }
    //  One referral each, written and told once, whichever replica won it
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referrals"
                                  " WHERE event_ref LIKE 'rb-race-%'"), n);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referral_transitions t"
                                  " JOIN referral_router.referrals r ON r.id = t.referral_id"
                                  " WHERE r.event_ref LIKE 'rb-race-%'"), n);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.referral_subjects s"
                                  " JOIN referral_router.referrals r ON r.id = s.referral_id"
                                  " WHERE r.event_ref LIKE 'rb-race-%'"), n);
    cr_assert_eq (s_told (suite), n + 2);
    cr_assert_eq (s_count (suite, "SELECT count(*) FROM referral_router.dead_letter"), 0);
    for (int k = 0; k < 2; k++)
        zsock_destroy (&dealers [k]);
    cr_assert_eq (fs_test_pid_stop (replica, SIGTERM, 5000), 0);
    fs_test_suite_destroy (&suite);
}
