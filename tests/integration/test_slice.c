/*  test_slice - one external event through every hop: intake stores it and emits; the router
    records a referral; notification records a pending notification; reporting counts each.
    All real: service processes, sockets, PostgreSQL, Redis. Then the same with kill -9 and
    restart at each hop: still exactly one of each. */
#include "fs_test.h"
#include <signal.h>

//  Exactly one of everything, and every outbox row acknowledged
static void
s_assert_exactly_one (fs_test_suite_t *suite)
{
    const char *url = suite->pg_url;
    struct { const char *what; const char *sql; } checks [] = {
        { "stored event",       "SELECT count(*) FROM intake.events" },
        { "referral",           "SELECT count(*) FROM referral_router.referrals" },
        { "notification",       "SELECT count(*) FROM notification.notifications" },
        { "count of requests",  "SELECT count FROM reporting.event_counts WHERE type = 'intake.referral_requested'" },
        { "count of changes",   "SELECT count FROM reporting.event_counts WHERE type = 'referral.status_changed'" },
        { "count of queued",    "SELECT count FROM reporting.event_counts WHERE type = 'notification.queued'" },
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks [0]; i++)
        cr_assert (fs_test_pg_wait (url, checks [i].sql, 1, 20000),
                   "expected exactly one %s, found %ld (logs in %s)", checks [i].what,
                   fs_test_pg_long (url, checks [i].sql), suite->log_dir);
    //  Everything emitted was delivered, nothing dead-lettered
    const char *schemas [] = { "intake", "referral_router", "notification", "reporting" };
    for (size_t i = 0; i < 4; i++) {
        char sql [256];
        snprintf (sql, sizeof sql, "SELECT count(*) FROM %s.outbox WHERE delivered_at IS NULL",
                  schemas [i]);
        cr_assert (fs_test_pg_wait (url, sql, 0, 20000), "%s has undelivered events", schemas [i]);
        snprintf (sql, sizeof sql, "SELECT count(*) FROM %s.dead_letter", schemas [i]);
        cr_assert_eq (fs_test_pg_long (url, sql), 0, "%s dead-lettered something", schemas [i]);
    }
    //  The chain shares one correlation id: the stored event's ref
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM referral_router.referrals r JOIN intake.events e"
        " ON r.correlation_id = e.ref"), 1);
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM notification.notifications n JOIN intake.events e"
        " ON n.correlation_id = e.ref"), 1);
    //  The live counters in Redis agree with PostgreSQL
    char err [256];
    fs_redis_t *redis = fs_redis_new (suite->redis_url, err, sizeof err);
    cr_assert (redis && fs_redis_connect (redis, 2000) == 0);
    const char *types [] = { "intake.referral_requested", "referral.status_changed",
                             "notification.queued" };
    for (size_t i = 0; i < 3; i++) {
        redisReply *reply = fs_redis_command (redis, "HGET %sevent_counts %s",
                                              suite->redis_prefix, types [i]);
        cr_assert (reply && reply->type == REDIS_REPLY_STRING, "no live count for %s", types [i]);
        cr_assert_str_eq (reply->str, "1");
        freeReplyObject (reply);
    }
    fs_redis_destroy (&redis);
}

static void
s_publish_one (fs_test_suite_t *suite, const char *id)
{
    zchunk_t *event = fs_test_event_social_risk (id, "primary-care", "urgent");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, zchunk_data (event), zchunk_size (event),
                                   &receipt, 10000), 0, "no receipt from intake");
    cr_assert_str_eq (receipt.status, "accepted");
    cr_assert (receipt.ref && strlen (receipt.ref) == FS_UUID_LEN);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    zchunk_destroy (&event);
}

Test (slice, one_event_through_every_hop)
{
    fs_test_suite_t *suite = fs_test_suite_new ("slice");
    fs_test_suite_start_all (suite);
    s_publish_one (suite, "evt-1");
    s_assert_exactly_one (suite);
    //  Every service leaves on SIGTERM, exit code 0, within 5 s
    for (int i = 0; fs_services [i].name; i++)
        cr_assert_eq (fs_test_suite_stop (suite, fs_services [i].name, SIGTERM, 5000), 0,
                      "%s did not stop cleanly on SIGTERM", fs_services [i].name);
    fs_test_suite_destroy (&suite);
}

//  The hops whose process dies: each emits or consumes on the path
static const char *s_hops [] = { "intake", "referral-router", "notification", "reporting" };
//  What shows that a hop has applied the event (then we kill it right away)
static const char *s_applied [] = {
    "SELECT (count(*) > 0)::int FROM intake.events",
    "SELECT (count(*) > 0)::int FROM referral_router.inbox",
    "SELECT (count(*) > 0)::int FROM notification.inbox",
    "SELECT (count(*) > 0)::int FROM reporting.inbox",
};

//  kill -9 a hop while it is down-stream of a sent event: the sender re-sends after restart
Test (slice, hop_down_when_event_arrives)
{
    for (size_t hop = 1; hop < 4; hop++) {
        fs_test_suite_t *suite = fs_test_suite_new ("slicedown");
        fs_test_suite_start_all (suite);
        cr_assert_eq (fs_test_suite_stop (suite, s_hops [hop], SIGKILL, 5000), 128 + SIGKILL);
        s_publish_one (suite, "evt-down");
        //  Wait until something for the dead hop was sent (and not acknowledged) at least once
        char sql [512];
        snprintf (sql, sizeof sql,
                  "SELECT count(*) FROM (SELECT 1 FROM intake.outbox WHERE consumer = '%1$s' AND attempts > 0"
                  " UNION ALL SELECT 1 FROM referral_router.outbox WHERE consumer = '%1$s' AND attempts > 0"
                  " UNION ALL SELECT 1 FROM notification.outbox WHERE consumer = '%1$s' AND attempts > 0"
                  " LIMIT 1) t", s_hops [hop]);
        cr_assert (fs_test_pg_wait (suite->pg_url, sql, 1, 20000), "nothing sent to %s", s_hops [hop]);
        fs_test_suite_start (suite, s_hops [hop]);
        s_assert_exactly_one (suite);
        fs_test_suite_destroy (&suite);
    }
}

//  kill -9 each hop right after it applied the event (its ack or its own emission may be lost)
Test (slice, hop_killed_after_applying)
{
    for (size_t hop = 0; hop < 4; hop++) {
        fs_test_suite_t *suite = fs_test_suite_new ("slicekill");
        fs_test_suite_start_all (suite);
        s_publish_one (suite, "evt-kill");
        cr_assert (fs_test_pg_wait (suite->pg_url, s_applied [hop], 1, 20000),
                   "%s never applied the event", s_hops [hop]);
        cr_assert_eq (fs_test_suite_stop (suite, s_hops [hop], SIGKILL, 5000), 128 + SIGKILL);
        fs_test_suite_start (suite, s_hops [hop]);
        s_assert_exactly_one (suite);
        fs_test_suite_destroy (&suite);
    }
}

//  The publisher re-sends the same event (its receipt was lost): one effect, same ref
Test (slice, resent_event_is_a_duplicate)
{
    fs_test_suite_t *suite = fs_test_suite_new ("slicedup");
    fs_test_suite_start_all (suite);
    zchunk_t *event = fs_test_event_social_risk ("evt-dup", "primary-care", "urgent");
    fs_ingest_receipt_t first = { 0 }, second = { 0 };
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, zchunk_data (event), zchunk_size (event),
                                   &first, 10000), 0);
    cr_assert_eq (fs_test_suite_stop (suite, "intake", SIGKILL, 5000), 128 + SIGKILL);
    fs_test_suite_start (suite, "intake");
    cr_assert_eq (fs_test_publish (suite->ingest_endpoint, zchunk_data (event), zchunk_size (event),
                                   &second, 10000), 0);
    cr_assert_str_eq (first.status, "accepted");
    cr_assert_str_eq (second.status, "duplicate");
    cr_assert_str_eq (first.ref, second.ref);
    s_assert_exactly_one (suite);
    fs_proto_clear (&fs_ingest_receipt_type, &first);
    fs_proto_clear (&fs_ingest_receipt_type, &second);
    zchunk_destroy (&event);
    fs_test_suite_destroy (&suite);
}
