/*  test_relay_cursor - the relay reads new outbox rows from the highest seq it has sent (an
    index range start) instead of walking every row in flight; seq order is not commit
    order, so a row that commits after a higher one was read must still be sent, at once (not
    at the next read from the oldest undelivered row, one retry time later). A real relay
    actor (common/fs_relay.c) on a real outbox, a consumer written here (a ROUTER that
    acknowledges), emitting transactions held open and committed in the opposite order of
    their seqs. The retry time is an hour: whatever arrives came by the reads of new rows. */
#include "fs_test.h"

#define S_MAX 400                       //  envelopes a test emits at most

//  The consumer: what arrived, in order, and how often each envelope
typedef struct {
    zsock_t *router;                    /* the consumer's bus ROUTER */
    zframe_t *peer;                     /* the relay's identity (last seen) */
    char ids [S_MAX][FS_UUID_LEN + 1];  /* envelope ids in the order they first arrived */
    int counts [S_MAX];                 /* receipts of each */
    int nids;                           /* distinct ids */
    int receipts;                       /* all receipts */
} s_consumer_t;

//  The relay under test and what it runs on
typedef struct {
    char *pg_url;                       /* a fresh database */
    fs_pg_t *pg;                        /* the test's own connection (emitting) */
    fs_config_t *config;
    fs_routes_t *routes;
    fs_metrics_t *metrics;
    fs_relay_args_t args;               /* outlives the actor */
    zactor_t *relay;
    s_consumer_t consumer;
} s_world_t;

static s_world_t *
s_world_new (const char *retry_ms)
{
    s_world_t *self = (s_world_t *) zmalloc (sizeof (s_world_t));
    self->pg_url = fs_test_db_create ("relay_resend");
    self->consumer.router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (self->consumer.router, 0);
    int port = zsock_bind (self->consumer.router, "tcp://127.0.0.1:*");
    cr_assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    //  Each test runs in its own process: the settings are its own
    setenv ("FINESTRA_PG_URL", self->pg_url, 1);
    setenv ("FINESTRA_BUS_REPORTING", endpoint, 1);
    setenv ("FINESTRA_RELAY_RETRY_MS", retry_ms, 1);
    char err [256];
    self->config = fs_config_load (err, sizeof err);
    cr_assert (self->config, "%s", err);
    self->routes = fs_routes_load (self->config, err, sizeof err);
    cr_assert (self->routes, "%s", err);
    fs_log_init ("relay-test", FS_LOG_WARN);
    self->pg = fs_pg_new (self->pg_url);
    cr_assert (self->pg);
    cr_assert (fs_migrate_run (self->pg, "notification", "common", common_migrations) >= 0,
               "%s", fs_pg_error (self->pg));
    self->metrics = fs_metrics_new ("notification");
    fs_relay_register (&self->args, self->metrics);
    self->args.config = self->config;
    self->args.service = "notification";
    self->args.schema = "notification";
    self->args.routes = self->routes;
    return self;
}

static void
s_relay_start (s_world_t *self)
{
    self->relay = zactor_new (fs_relay_actor, &self->args);
    cr_assert (self->relay);
}

static void
s_relay_stop (s_world_t *self)
{
    zactor_destroy (&self->relay);
}

static void
s_world_destroy (s_world_t **self_p)
{
    s_world_t *self = *self_p;
    s_relay_stop (self);
    zsock_destroy (&self->consumer.router);
    zframe_destroy (&self->consumer.peer);
    fs_metrics_destroy (&self->metrics);
    fs_pg_destroy (&self->pg);
    fs_routes_destroy (&self->routes);
    fs_config_destroy (&self->config);
    fs_test_db_drop (self->pg_url);
    free (self->pg_url);
    free (self);
    *self_p = NULL;
}

//  One notification.queued event into the outbox on pg, in the transaction open there
static void
s_emit_on (s_world_t *self, fs_pg_t *pg)
{
    {
        char id [FS_UUID_LEN + 1];
        fs_uuid (id);
        fs_notification_queued_t queued = { 0 };
        const fs_type_t *type = &fs_notification_queued_type;
        fs_proto_set_str (type, &queued, "notification_id", id);
        fs_proto_set_str (type, &queued, "recipient", "someone");
        fs_proto_set_str (type, &queued, "topic", "x");
        fs_proto_set_str (type, &queued, "channel", "sms");
        fs_proto_error_t err = { 0 };
        cr_assert_eq (fs_outbox_emit (pg, "notification", "notification", self->routes,
                                      type, &queued, NULL, NULL, &err), 0,
                      "%s %s", err.message, fs_pg_error (pg));
        fs_proto_clear (type, &queued);
    }
}

//  Receives one envelope within timeout_ms; its index in the consumer's ids, -1 when none
static int
s_receive (s_consumer_t *self, int timeout_ms)
{
    zsock_set_rcvtimeo (self->router, timeout_ms);
    zframe_t *identity = zframe_recv (self->router);
    if (!identity)
        return -1;
    cr_assert (zframe_more (identity));
    zframe_t *body = zframe_recv (self->router);
    cr_assert (body);
    fs_envelope_t env = { 0 };
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_decode ((const char *) zframe_data (body), zframe_size (body),
                                      zframe_size (body), &env, &err), 0, "%s", err.message);
    zframe_destroy (&body);
    zframe_destroy (&self->peer);
    self->peer = identity;
    int index = 0;
    while (index < self->nids && strcmp (self->ids [index], env.hdr.id))
        index++;
    if (index == self->nids) {
        cr_assert (self->nids < S_MAX);
        snprintf (self->ids [self->nids++], FS_UUID_LEN + 1, "%s", env.hdr.id);
    }
    self->counts [index]++;
    self->receipts++;
    fs_envelope_clear (&env);
    return index;
}

//  Acknowledges envelope index `applied`, as fs_inbox does
static void
s_ack (s_consumer_t *self, int index)
{
    fs_ack_t ack = { 0 };
    fs_proto_set_str (&fs_ack_type, &ack, "id", self->ids [index]);
    fs_proto_set_str (&fs_ack_type, &ack, "status", "applied");
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_encode (&fs_ack_type, &ack, &data, &len, &err), 0);
    zframe_t *identity = zframe_dup (self->peer);
    zframe_t *body = zframe_new (data, len);
    cr_assert_eq (zframe_send (&identity, self->router, ZFRAME_MORE), 0);
    cr_assert_eq (zframe_send (&body, self->router, 0), 0);
    free (data);
    fs_proto_clear (&fs_ack_type, &ack);
}

//  Receives and acknowledges at once whatever comes within ms (a prompt consumer)
static void
s_drain (s_consumer_t *self, int ms)
{
    int64_t end = fs_mono_ms () + ms;
    int64_t now;
    while ((now = fs_mono_ms ()) < end) {
        int index = s_receive (self, (int) (end - now));
        if (index >= 0)
            s_ack (self, index);
    }
}

#define s_outbox(self, sql) fs_test_pg_long ((self)->pg_url, sql)
#define S_UNDELIVERED "SELECT count(*) FROM notification.outbox WHERE delivered_at IS NULL"
#define s_resent(self) ((long) fs_counter_value ((self)->args.resent))
#define s_sent(self) ((long) fs_counter_value ((self)->args.sent))

//  One event committed on the test's own connection
static void
s_emit (s_world_t *self)
{
    cr_assert_eq (fs_pg_begin (self->pg), 0);
    s_emit_on (self, self->pg);
    cr_assert_eq (fs_pg_commit (self->pg), 0);
}

//  A connection with a transaction open that has emitted one event (not committed)
static fs_pg_t *
s_open_emit (s_world_t *self)
{
    fs_pg_t *pg = fs_pg_new (self->pg_url);
    cr_assert (pg);
    cr_assert_eq (fs_pg_begin (pg), 0);
    s_emit_on (self, pg);
    return pg;
}

static void
s_commit (fs_pg_t **pg_p)
{
    cr_assert_eq (fs_pg_commit (*pg_p), 0, "%s", fs_pg_error (*pg_p));
    fs_pg_destroy (pg_p);
}

//  Receives and acknowledges until the consumer has seen n envelopes (within 30 s: the
//  retry time is an hour, so only a read of new rows can bring them)
static void
s_receive_until (s_consumer_t *consumer, int n)
{
    int64_t end = fs_mono_ms () + 30000;
    while (consumer->nids < n) {
        int64_t now = fs_mono_ms ();
        cr_assert (now < end, "only %d of %d envelopes arrived", consumer->nids, n);
        int index = s_receive (consumer, (int) (end - now));
        if (index >= 0)
            s_ack (consumer, index);
    }
}

TestSuite (relay_cursor, .timeout = 120);

//  Transaction A draws a seq, B a higher one; B commits and its row is sent (the cursor
//  passes A's seq); then A commits: its row is sent at once, once
Test (relay_cursor, row_committed_after_a_higher_one_is_sent)
{
    s_world_t *world = s_world_new ("3600000");
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    s_emit (world);
    s_receive_until (consumer, 1);
    fs_pg_t *a = s_open_emit (world);
    fs_pg_t *b = s_open_emit (world);
    s_commit (&b);
    s_receive_until (consumer, 2);
    //  B's row marked delivered (the relay's UPDATE follows the ack) while A's is open
    cr_assert (fs_test_pg_wait (world->pg_url, S_UNDELIVERED, 0, 20000));
    s_commit (&a);
    s_receive_until (consumer, 3);
    cr_assert (fs_test_pg_wait (world->pg_url, S_UNDELIVERED, 0, 20000));
    //  A's seq is below B's, and it came last
    cr_assert_eq (s_outbox (world, "SELECT count(*) FROM notification.outbox"
                                   " WHERE seq < (SELECT max (seq) FROM notification.outbox)"
                                   "   AND delivered_at > (SELECT max (delivered_at)"
                                   "     FROM notification.outbox o2 WHERE o2.seq ="
                                   "       (SELECT max (seq) FROM notification.outbox))"), 1);
    for (int i = 0; i < 3; i++)
        cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                      consumer->counts [i]);
    cr_assert_eq (s_sent (world), 3);
    cr_assert_eq (s_resent (world), 0);
    s_world_destroy (&world);
}

//  Eight transactions hold seqs open while rows after them keep committing and being sent;
//  they commit in the opposite order of their seqs, one committed row between each: every
//  row arrives, exactly once
Test (relay_cursor, held_transactions_committing_in_reverse_order)
{
    enum { K = 8 };
    s_world_t *world = s_world_new ("3600000");
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    s_emit (world);
    s_receive_until (consumer, 1);
    fs_pg_t *held [K];
    for (int i = 0; i < K; i++)
        held [i] = s_open_emit (world);
    int expected = 1;
    for (int i = K - 1; i >= 0; i--) {
        s_emit (world);
        s_receive_until (consumer, ++expected);
        s_commit (&held [i]);
        s_receive_until (consumer, ++expected);
    }
    cr_assert (fs_test_pg_wait (world->pg_url, S_UNDELIVERED, 0, 20000));
    s_drain (consumer, 500);
    cr_assert_eq (consumer->nids, 1 + 2 * K);
    for (int i = 0; i < consumer->nids; i++)
        cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                      consumer->counts [i]);
    cr_assert_eq (s_sent (world), 1 + 2 * K);
    cr_assert_eq (s_resent (world), 0);
    s_world_destroy (&world);
}

//  A row committed late while the relay is far ahead (many reads since): still sent, and
//  the reads go back to starting at the cursor once it has (the rows after it arrive too)
Test (relay_cursor, long_transaction_commits_after_many_reads)
{
    s_world_t *world = s_world_new ("3600000");
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    fs_pg_t *late = s_open_emit (world);
    //  More reads than the relay remembers one by one (it merges them)
    int expected = 0;
    for (int i = 0; i < 60; i++) {
        s_emit (world);
        s_receive_until (consumer, ++expected);
    }
    s_commit (&late);
    s_receive_until (consumer, ++expected);
    for (int i = 0; i < 5; i++) {
        s_emit (world);
        s_receive_until (consumer, ++expected);
    }
    cr_assert (fs_test_pg_wait (world->pg_url, S_UNDELIVERED, 0, 20000));
    s_drain (consumer, 500);
    cr_assert_eq (consumer->nids, expected);
    cr_assert_eq (consumer->receipts, expected);
    cr_assert_eq (s_sent (world), expected);
    cr_assert_eq (s_resent (world), 0);
    s_world_destroy (&world);
}
