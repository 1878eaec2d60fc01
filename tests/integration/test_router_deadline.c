/*  test_router_deadline - deadlines to accept through the real services: a referral left
    `requested` past its (short, for the test) deadline is marked overdue and escalated once
    (history row, referral.overdue to notification and reporting, items on the sender's and
    target's feeds, the metric); one accepted in time or not yet due is not; several scans at
    once (the timer and concurrent `escalate-overdue` runs, as replicas would) escalate each
    referral exactly once. */
#include "fs_test.h"

static fs_test_suite_t *s_suite;

//  `finestra-referral-router ARGS...` on the suite's database (set by s_setup), stdout to
//  /dev/null, with the suite's deadlines
static fs_test_command_t s_router = {
    .service = "referral-router",
    .settings = (const char *const []) { "FINESTRA_ROUTER_DEADLINE_URGENT_S=1",
                                         "FINESTRA_ROUTER_DEADLINE_PREFERENT_S=3600", NULL }
};
#define s_spawn(...) fs_test_command_spawnl (&s_router, __VA_ARGS__)
#define s_wait(pid) fs_test_command_wait (&s_router, pid)

static void
s_setup (void)
{
    s_suite = fs_test_suite_new ("router_deadline");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_DEADLINE_URGENT_S", "1");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_DEADLINE_PREFERENT_S", "3600");
    fs_test_suite_setenv (s_suite, "FINESTRA_ROUTER_DEADLINE_SCAN_MS", "200");
    fs_test_suite_start (s_suite, "notification");
    fs_test_suite_start (s_suite, "reporting");
    fs_test_suite_start (s_suite, "referral-router");
    fs_test_command_use_suite (&s_router, s_suite);
}

static void
s_teardown (void)
{
    fs_test_suite_destroy (&s_suite);
}

//  Runs sql with text parameters on the suite's database; the first value, "" when none
#define s_sql(sql, n, values) fs_test_pg_text (s_suite->pg_url, sql, n, values)

#define s_expect(sql, id, expected) \
    fs_test_pg_expect_text (s_suite->pg_url, sql, id, expected)

//  A referral as routing leaves it, requested `age` ago; id out
static void
s_referral (const char *urgency, const char *age, char *id)
{
    fs_uuid (id);
    char correlation [FS_UUID_LEN + 1];
    fs_uuid (correlation);
    const char *values [4] = { id, urgency, correlation, age };
    free (s_sql ("INSERT INTO referral_router.referrals (id, event_ref, source, event_type,"
                 " urgency, status, correlation_id, created_at) VALUES ($1::uuid, 'ev-' || $1,"
                 " 'primary-care', 'health.social_risk_detected', $2, 'requested', $3::uuid,"
                 " now () - $4::interval)", 4, values));
}

TestSuite (router_deadline, .init = s_setup, .fini = s_teardown, .timeout = 240);

Test (router_deadline, breach_escalates_once)
{
    cr_assert_eq (s_wait (s_spawn ("sender-feed", "primary-care", "health-primary-care",
                                   NULL)), 0);
    char late [FS_UUID_LEN + 1], in_time [FS_UUID_LEN + 1], not_due [FS_UUID_LEN + 1];
    s_referral ("urgent", "0 s", late);
    s_referral ("urgent", "0 s", in_time);
    s_referral ("preferent", "0 s", not_due);
    //  `late` was delivered to a target by feed (as routing records it)
    const char *values [1] = { late };
    free (s_sql ("INSERT INTO referral_router.referral_feeds (referral_id, feed)"
                 " VALUES ($1::uuid, 'eaia')", 1, values));
    //  Accepted within its second
    cr_assert_eq (s_wait (s_spawn ("transition", in_time, "accepted", "--as", "target",
                                   NULL)), 0);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " referral_router.referral_escalations", 1, 20000),
               "the urgent referral left requested is escalated");
    s_expect ("SELECT escalate_to::text || '|' || deadline FROM"
              " referral_router.referral_escalations WHERE referral_id = $1::uuid", late,
              "{management-of:eaia,sender:primary-care}|acceptance");
    s_expect ("SELECT (overdue_at IS NOT NULL)::text || status FROM referral_router.referrals"
              " WHERE id = $1::uuid", late, "truerequested");
    s_expect ("SELECT (overdue_at IS NULL)::text FROM referral_router.referrals"
              " WHERE id = $1::uuid", in_time, "true");
    s_expect ("SELECT (overdue_at IS NULL)::text FROM referral_router.referrals"
              " WHERE id = $1::uuid", not_due, "true");
    //  Told: the target centre's management and the sender (notification), counted
    //  (reporting), and on both feeds
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " notification.notifications WHERE topic = 'referral.overdue'",
                                2, 20000));
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count FROM reporting.event_counts"
                                " WHERE type = 'referral.overdue'", 1, 20000));
    s_expect ("SELECT string_agg (recipient, ',' ORDER BY recipient) FROM"
              " notification.notifications WHERE topic = 'referral.overdue'"
              " AND subject_ref = $1", late, "management-of:eaia,sender:primary-care");
    s_expect ("SELECT string_agg (feed, ',' ORDER BY feed) FROM referral_router.feed_items"
              " WHERE item_type = 'referral.overdue' AND referral_id = $1::uuid", late,
              "eaia,health-primary-care");
    //  More scans (the timer's, an operator's): nothing more
    cr_assert_eq (s_wait (s_spawn ("escalate-overdue", NULL)), 0);
    usleep (1000 * 1000);
    s_expect ("SELECT count(*) FROM referral_router.referral_escalations", NULL, "1");
    s_expect ("SELECT count(*) FROM referral_router.feed_items"
              " WHERE item_type = 'referral.overdue'", NULL, "2");
    s_expect ("SELECT count(*) FROM notification.notifications"
              " WHERE topic = 'referral.overdue'", NULL, "2");
    //  Accepting it late is still allowed; it stays marked overdue
    cr_assert_eq (s_wait (s_spawn ("transition", late, "accepted", "--as", "target", NULL)), 0);
    s_expect ("SELECT (overdue_at IS NOT NULL)::text || status FROM referral_router.referrals"
              " WHERE id = $1::uuid", late, "trueaccepted");
    //  The metric
    int status = 0;
    char *body = NULL;
    cr_assert_eq (fs_test_http_get (s_suite->http_ports [1], "/metrics", &status, &body), 0);
    cr_expect (strstr (body, "urgency=\"urgent\"} 1"), "%s", body);
    free (body);
}

//  Scans at once (the router's timer and three `escalate-overdue` processes, as replicas'
//  timers would run): every overdue referral escalated exactly once
Test (router_deadline, concurrent_scans_escalate_each_once)
{
    enum { N = 150 };
    char id [FS_UUID_LEN + 1];
    for (int i = 0; i < N; i++)
        s_referral ("urgent", "1 hour", id);
    pid_t pids [3];
    for (int i = 0; i < 3; i++)
        pids [i] = s_spawn ("escalate-overdue", NULL);
    for (int i = 0; i < 3; i++)
        cr_expect_eq (s_wait (pids [i]), 0);
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " referral_router.referral_escalations", N, 20000));
    usleep (600 * 1000);
    s_expect ("SELECT count(*) FROM referral_router.referral_escalations", NULL, "150");
    s_expect ("SELECT count(*) FROM referral_router.referrals WHERE overdue_at IS NOT NULL",
              NULL, "150");
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count FROM reporting.event_counts"
                                " WHERE type = 'referral.overdue'", N, 20000));
    cr_assert (fs_test_pg_wait (s_suite->pg_url, "SELECT count(*) FROM"
                                " notification.notifications WHERE topic = 'referral.overdue'",
                                2 * N, 20000));
    usleep (600 * 1000);
    s_expect ("SELECT count FROM reporting.event_counts WHERE type = 'referral.overdue'", NULL,
              "150");
}
