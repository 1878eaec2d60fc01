/*  test_notify_batch - notification and reporting apply a run of envelopes together, their
    types interleaved (fs_inbox_batch_set): every envelope of the run counted exactly once
    and told exactly once per recipient, an envelope re-sent inside the same batch a
    duplicate, a recipient an envelope names twice told once. */
#include "fs_test.h"
#include <signal.h>

#define S_CHANGES 20                //  referral.status_changed envelopes in the run
#define S_OVERDUES 3                //  referral.overdue envelopes, 2 recipients each

//  Index of a service in fs_services (the suite's arrays)
static int
s_index (const char *name)
{
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, name))
            return i;
    cr_assert_fail ("no service %s", name);
    return -1;
}

//  An encoded referral.status_changed from the router; its id in id_out
static char *
s_changed (int i, size_t *len, char *id_out)
{
    const fs_type_t *type = &fs_referral_status_changed_type;
    fs_referral_status_changed_t changed = { 0 };
    char referral [FS_UUID_LEN + 1], ref [32];
    fs_uuid (referral);
    snprintf (ref, sizeof ref, "nb-event-%d", i);
    fs_proto_set_str (type, &changed, "referral_id", referral);
    fs_proto_set_str (type, &changed, "event_ref", ref);
    fs_proto_set_str (type, &changed, "status", "requested");
    char *data = NULL;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_encode ("referral-router", type, &changed, NULL, &data, len,
                                      id_out, &err), 0, "%s", err.message);
    fs_proto_clear (type, &changed);
    return data;
}

//  An encoded referral.overdue escalated to the centre's management and the sender, the
//  management named twice; its id in id_out
static char *
s_overdue (int i, size_t *len, char *id_out)
{
    const fs_type_t *type = &fs_referral_overdue_type;
    fs_referral_overdue_t overdue = { 0 };
    char referral [FS_UUID_LEN + 1], ref [32];
    fs_uuid (referral);
    snprintf (ref, sizeof ref, "nb-late-%d", i);
    fs_proto_set_str (type, &overdue, "referral_id", referral);
    fs_proto_set_str (type, &overdue, "event_ref", ref);
    fs_proto_set_str (type, &overdue, "urgency", "urgent");
    fs_proto_set_str (type, &overdue, "deadline", "acceptance");
    fs_proto_set_str (type, &overdue, "requested_at", "2026-01-05T09:00:00Z");
    fs_proto_set_str (type, &overdue, "due_at", "2026-01-06T09:00:00Z");
    fs_proto_set_str (type, &overdue, "sender", "hospital-a");
    fs_proto_set_str (type, &overdue, "target", "SAD-01");
    const char *whom [3] = { "management-of:SAD-01", "sender:hospital-a",
                             "management-of:SAD-01" };
    overdue.escalate_to.items = (char **) zmalloc (3 * sizeof (char *));
    for (size_t k = 0; k < 3; k++)
        overdue.escalate_to.items [k] = strdup (whom [k]);
    overdue.escalate_to.n = 3;
    overdue.present |= 1ull << fs_referral_overdue_F_escalate_to;
    char *data = NULL;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_encode ("referral-router", type, &overdue, NULL, &data, len,
                                      id_out, &err), 0, "%s", err.message);
    fs_proto_clear (type, &overdue);
    return data;
}

typedef struct {
    char *data;
    size_t len;
    char id [FS_UUID_LEN + 1];
} s_env_t;

//  Sends frames to a stopped service so they wait on its socket together, lets it go, and
//  checks each ack in the order sent: the first of an id applied, a later one duplicate
static void
s_send_batch (fs_test_suite_t *suite, const char *service, s_env_t **sent, size_t n)
{
    int index = s_index (service);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 10000);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", suite->bus_ports [index]), 0);
    cr_assert_eq (kill (suite->pids [index], SIGSTOP), 0);
    for (size_t i = 0; i < n; i++) {
        zframe_t *frame = zframe_new (sent [i]->data, sent [i]->len);
        cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
    }
    usleep (300 * 1000);
    cr_assert_eq (kill (suite->pids [index], SIGCONT), 0);
    for (size_t i = 0; i < n; i++) {
        zframe_t *answer = zframe_recv (dealer);
        cr_assert (answer, "%s: ack %zu missing", service, i);
        fs_ack_t ack = { 0 };
        fs_proto_error_t err;
        cr_assert_eq (fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer),
                                       &ack, &err), 0);
        zframe_destroy (&answer);
        bool again = false;
        for (size_t j = 0; j < i; j++)
            again |= sent [j] == sent [i];
        cr_assert_str_eq (ack.id, sent [i]->id, "%s: ack %zu", service, i);
        cr_assert_str_eq (ack.status, again ? "duplicate" : "applied", "%s: ack %zu: %s %s",
                          service, i, ack.code ? ack.code : "", ack.reason ? ack.reason : "");
        fs_proto_clear (&fs_ack_type, &ack);
    }
    zsock_destroy (&dealer);
}

//  The service's log says its runs were applied together, never one at a time
static void
s_expect_together (fs_test_suite_t *suite, const char *service)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.log", suite->log_dir, service);
    FILE *file = fopen (path, "r");
    cr_assert (file, "no log %s", path);
    char line [4096];
    while (fgets (line, sizeof line, file))
        cr_assert (!strstr (line, "one at a time"), "%s fell back: %s", service, line);
    fclose (file);
}

//  The live counter of type in Redis
static long
s_live (fs_test_suite_t *suite, const char *type)
{
    char err [256];
    fs_redis_t *redis = fs_redis_new (suite->redis_url, err, sizeof err);
    cr_assert (redis && fs_redis_connect (redis, 2000) == 0);
    redisReply *reply = fs_redis_command (redis, "HGET %sevent_counts %s",
                                          suite->redis_prefix, type);
    cr_assert (reply && reply->type == REDIS_REPLY_STRING, "no live count for %s", type);
    long value = atol (reply->str);
    freeReplyObject (reply);
    fs_redis_destroy (&redis);
    return value;
}

Test (notify_batch, a_run_counts_and_tells_once_per_envelope_and_recipient)
{
    fs_test_suite_t *suite = fs_test_suite_new ("notifybatch");
    fs_test_suite_start (suite, "reporting");
    fs_test_suite_start (suite, "notification");

    //  One batch, the types interleaved as they arrive: the first half of the changes, the
    //  1st overdue, the second half, the 4th change again, the other overdues, the 1st again
    s_env_t changes [S_CHANGES], overdues [S_OVERDUES];
    for (int i = 0; i < S_CHANGES; i++)
        changes [i].data = s_changed (i, &changes [i].len, changes [i].id);
    for (int i = 0; i < S_OVERDUES; i++)
        overdues [i].data = s_overdue (i, &overdues [i].len, overdues [i].id);
    s_env_t *sent [S_CHANGES + S_OVERDUES + 2];
    size_t n = 0;
    for (int i = 0; i < S_CHANGES / 2; i++)
        sent [n++] = &changes [i];
    sent [n++] = &overdues [0];
    for (int i = S_CHANGES / 2; i < S_CHANGES; i++)
        sent [n++] = &changes [i];
    sent [n++] = &changes [3];
    for (int i = 1; i < S_OVERDUES; i++)
        sent [n++] = &overdues [i];
    sent [n++] = &overdues [0];

    //  Reporting: each type's run counted exactly (added to what was counted before),
    //  PostgreSQL and Redis agreeing
    const char *url = suite->pg_url;
    fs_test_pg_expect_one (url, "INSERT INTO reporting.event_counts VALUES"
                           " ('referral.status_changed', 100) RETURNING count", "100");
    s_send_batch (suite, "reporting", sent, n);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count FROM reporting.event_counts"
                                   " WHERE type = 'referral.status_changed'"), 100 + S_CHANGES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count FROM reporting.event_counts"
                                   " WHERE type = 'referral.overdue'"), S_OVERDUES);
    cr_assert_eq (s_live (suite, "referral.status_changed"), 100 + S_CHANGES);
    cr_assert_eq (s_live (suite, "referral.overdue"), S_OVERDUES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM reporting.inbox"),
                  S_CHANGES + S_OVERDUES);
    long transactions = fs_test_pg_long (url,
        "SELECT count(DISTINCT received_at) FROM reporting.inbox");
    cr_assert (transactions < S_CHANGES, "no batch: %ld transactions", transactions);

    //  Notification: one per change to its sender; two per overdue (management once)
    s_send_batch (suite, "notification", sent, n);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.notifications"
                                   " WHERE topic = 'referral.status_changed'"), S_CHANGES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(DISTINCT cause_id)"
                                   " FROM notification.notifications"
                                   " WHERE topic = 'referral.status_changed'"), S_CHANGES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.notifications"
                                   " WHERE topic = 'referral.status_changed'"
                                   " AND recipient LIKE 'sender-of:nb-event-%'"), S_CHANGES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.notifications"
                                   " WHERE topic = 'referral.overdue'"), 2 * S_OVERDUES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.notifications"
                                   " WHERE topic = 'referral.overdue'"
                                   " AND recipient = 'management-of:SAD-01'"), S_OVERDUES);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.notifications n"
                                   " JOIN notification.inbox i ON i.msg_id = n.cause_id"
                                   " WHERE n.correlation_id = i.correlation_id"),
                  S_CHANGES + 2 * S_OVERDUES);
    //  Each notification told to reporting once, in one outbox row naming it
    const long told = S_CHANGES + 2 * S_OVERDUES;
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.outbox"
                                   " WHERE type = 'notification.queued'"), told);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(DISTINCT msg_id) FROM notification.outbox"
                                   " WHERE type = 'notification.queued'"), told);
    cr_assert (fs_test_pg_wait (url, "SELECT count FROM reporting.event_counts"
                                " WHERE type = 'notification.queued'", told, 20000),
               "reporting counted %ld notification.queued of %ld", fs_test_pg_long (url,
               "SELECT count FROM reporting.event_counts WHERE type = 'notification.queued'"),
               told);
    cr_assert (fs_test_pg_wait (url, "SELECT count(*) FROM notification.outbox"
                                " WHERE delivered_at IS NULL", 0, 20000));
    cr_assert_eq (s_live (suite, "notification.queued"), told);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM notification.dead_letter"), 0);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM reporting.dead_letter"), 0);
    s_expect_together (suite, "reporting");
    s_expect_together (suite, "notification");

    for (int i = 0; i < S_CHANGES; i++)
        free (changes [i].data);
    for (int i = 0; i < S_OVERDUES; i++)
        free (overdues [i].data);
    cr_assert_eq (fs_test_suite_stop (suite, "notification", SIGTERM, 5000), 0);
    cr_assert_eq (fs_test_suite_stop (suite, "reporting", SIGTERM, 5000), 0);
    fs_test_suite_destroy (&suite);
}
