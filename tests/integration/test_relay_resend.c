/*  test_relay_resend - when the relay sends an envelope again. A real relay actor (common/
    fs_relay.c) on a real outbox in PostgreSQL sends to a consumer written here: a ROUTER
    speaking the bus protocol (envelope in, ack out) that acknowledges when, and what, the
    test decides. Checked: a consumer that acks slowly but steadily gets nothing twice; an
    envelope lost while acks flow is re-sent; a silent consumer gets only its oldest row as a
    probe, and the rest once it answers; a restarted relay re-sends everything unacknowledged.
    Counts are asserted after the fact; waits are generous, never measured. */
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

//  n notification.queued events into the outbox, one transaction each (reporting consumes)
static void
s_emit (s_world_t *self, int n)
{
    for (int i = 0; i < n; i++) {
        char id [FS_UUID_LEN + 1];
        fs_uuid (id);
        fs_notification_queued_t queued = { 0 };
        const fs_type_t *type = &fs_notification_queued_type;
        fs_proto_set_str (type, &queued, "notification_id", id);
        fs_proto_set_str (type, &queued, "recipient", "someone");
        fs_proto_set_str (type, &queued, "topic", "x");
        fs_proto_set_str (type, &queued, "channel", "sms");
        fs_proto_error_t err = { 0 };
        cr_assert_eq (fs_pg_begin (self->pg), 0);
        cr_assert_eq (fs_outbox_emit (self->pg, "notification", "notification", self->routes,
                                      type, &queued, NULL, NULL, &err), 0,
                      "%s %s", err.message, fs_pg_error (self->pg));
        cr_assert_eq (fs_pg_commit (self->pg), 0);
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

//  Waits until the outbox has nothing undelivered, acknowledging promptly meanwhile
static void
s_drain_until_delivered (s_world_t *self, int timeout_ms)
{
    int64_t end = fs_mono_ms () + timeout_ms;
    while (s_outbox (self, S_UNDELIVERED) > 0) {
        cr_assert (fs_mono_ms () < end, "still undelivered: %ld",
                   s_outbox (self, S_UNDELIVERED));
        s_drain (&self->consumer, 200);
    }
}

#define s_resent(self) ((long) fs_counter_value ((self)->args.resent))
#define s_sent(self) ((long) fs_counter_value ((self)->args.sent))

TestSuite (relay_resend, .timeout = 120);

//  Acks flowing but late: each envelope waits for its ack far longer than the retry time
//  (200 envelopes acked one every 15 ms: the last after 3 s, retry 2 s), yet the consumer
//  is never silent and nothing overtakes anything: nothing is sent twice. (Before, the
//  whole window not yet acknowledged was re-sent every retry time.)
Test (relay_resend, slow_consumer_gets_nothing_twice)
{
    enum { N = 200 };
    s_world_t *world = s_world_new ("2000");
    s_emit (world, N);
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    int acked = 0;
    int64_t end = fs_mono_ms () + 60000;
    while (acked < N) {
        cr_assert (fs_mono_ms () < end, "only %d of %d acknowledged", acked, N);
        //  Take what has arrived, then acknowledge the next one in arrival order
        while (s_receive (consumer, acked < consumer->nids ? 0 : 1000) >= 0)
            ;
        if (acked < consumer->nids) {
            usleep (15 * 1000);
            s_ack (consumer, acked++);
        }
    }
    //  Anything re-sent late would arrive now
    s_drain (consumer, 3000);
    cr_assert_eq (consumer->nids, N);
    for (int i = 0; i < N; i++)
        cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                      consumer->counts [i]);
    cr_assert_eq (consumer->receipts, N);
    cr_assert_eq (s_sent (world), N);
    cr_assert_eq (s_resent (world), 0);
    cr_assert_eq (s_outbox (world, S_UNDELIVERED), 0);
    cr_assert_eq (s_outbox (world, "SELECT count(*) FROM notification.outbox"
                                   " WHERE attempts <> 1"), 0);
    s_world_destroy (&world);
}

//  A consumer that stops answering for longer than the retry time, twice, while far behind
//  (a long transaction, a checkpoint): each stall costs one probe, the oldest row then in
//  flight, not the rows waiting behind it (its ack is the original's, and the acks for the
//  rows sent before the probe that follow say they were never lost)
Test (relay_resend, stalling_consumer_gets_only_probes)
{
    enum { N = 200 };
    s_world_t *world = s_world_new ("2000");
    s_emit (world, N);
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    int acked = 0;
    int64_t end = fs_mono_ms () + 60000;
    while (acked < N) {
        cr_assert (fs_mono_ms () < end, "only %d of %d acknowledged", acked, N);
        if (acked == 0 || acked == 50) {
            //  Stalled for 1.5 retry times, receiving only
            int64_t until = fs_mono_ms () + 3000;
            int64_t now;
            while ((now = fs_mono_ms ()) < until)
                s_receive (consumer, (int) (until - now));
        }
        while (s_receive (consumer, acked < consumer->nids ? 0 : 1000) >= 0)
            ;
        if (acked < consumer->nids) {
            usleep (15 * 1000);
            s_ack (consumer, acked++);
        }
    }
    s_drain (consumer, 3000);
    cr_assert_eq (consumer->nids, N);
    //  The probes: the oldest in flight at each stall
    cr_expect_geq (consumer->counts [0], 2, "no probe in the first stall");
    cr_expect_geq (consumer->counts [50], 2, "no probe in the second stall");
    int extra = 0;
    for (int i = 0; i < N; i++) {
        if (i != 0 && i != 50)
            cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                          consumer->counts [i]);
        extra += consumer->counts [i] - 1;
    }
    cr_assert_eq (s_resent (world), extra);
    cr_assert_eq (s_outbox (world, S_UNDELIVERED), 0);
    s_world_destroy (&world);
}

//  One envelope lost (never acknowledged) while the consumer acknowledges everything else at
//  once and new events keep coming, so it is never silent: the lost one is re-sent anyway
//  (a row sent after it was acknowledged, and it is older than 3 retry times), once
Test (relay_resend, lost_envelope_is_resent_while_acks_flow)
{
    s_world_t *world = s_world_new ("2000");
    s_emit (world, 10);
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    int lost = -1;
    //  The third to arrive is dropped; the others acknowledged at once
    while (consumer->nids < 10) {
        int index = s_receive (consumer, 10000);
        cr_assert (index >= 0, "only %d of 10 arrived", consumer->nids);
        if (consumer->nids == 3 && lost < 0)
            lost = index;
        else
            s_ack (consumer, index);
    }
    //  An event every 100 ms, each acknowledged at once, until the lost one comes again
    int64_t end = fs_mono_ms () + 30000;
    while (consumer->counts [lost] < 2) {
        cr_assert (fs_mono_ms () < end, "the lost envelope was not re-sent while acks flow");
        s_emit (world, 1);
        s_drain (consumer, 100);
    }
    s_drain_until_delivered (world, 20000);
    s_drain (consumer, 1000);
    cr_assert_eq (consumer->counts [lost], 2);
    for (int i = 0; i < consumer->nids; i++)
        if (i != lost)
            cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                          consumer->counts [i]);
    cr_assert_eq (consumer->receipts, consumer->nids + 1);
    cr_assert_eq (s_resent (world), 1);
    cr_assert_eq (s_sent (world), consumer->nids);
    cr_assert_eq (s_outbox (world, "SELECT count(*) FROM notification.outbox"), consumer->nids);
    s_world_destroy (&world);
}

//  A consumer that answers nothing (dead, restarted, or all lost): while silent only the
//  oldest envelope is re-sent, as a probe (not the whole window), less and less often; once
//  it acknowledges the probe and has nothing more to say for a retry time, the others (sent
//  before the probe, so lost) are re-sent, once
Test (relay_resend, silent_consumer_gets_a_probe_then_the_rest)
{
    enum { N = 20 };
    s_world_t *world = s_world_new ("1000");
    s_emit (world, N);
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    //  Deaf: receives, acknowledges nothing, for 4.5 retry times
    int64_t end = fs_mono_ms () + 4500;
    int64_t now;
    while ((now = fs_mono_ms ()) < end)
        s_receive (consumer, (int) (end - now));
    cr_assert_eq (consumer->nids, N);
    //  The oldest came again (probes), nothing else did
    cr_assert_geq (consumer->counts [0], 2, "no probe while silent");
    //  Backing off: probes at 1 and 3 retry times (the next at 7), not one every retry time
    cr_assert_leq (consumer->counts [0], 3, "%d probes in 4.5 retry times",
                   consumer->counts [0] - 1);
    for (int i = 1; i < N; i++)
        cr_assert_eq (consumer->counts [i], 1, "envelope %d received %d times while silent",
                      i, consumer->counts [i]);
    int probes = consumer->counts [0];
    //  Back: acknowledges whatever comes (the next probe first, then the rest)
    s_drain_until_delivered (world, 20000);
    s_drain (consumer, 1000);
    for (int i = 1; i < N; i++)
        cr_expect_eq (consumer->counts [i], 2, "envelope %d received %d times", i,
                      consumer->counts [i]);
    cr_assert_eq (consumer->nids, N);
    cr_assert_gt (consumer->counts [0], probes);
    cr_assert_eq (s_resent (world), consumer->receipts - N);
    cr_assert_eq (s_sent (world), N);
    s_world_destroy (&world);
}

//  A relay that restarts knows nothing of what was in flight: every row not acknowledged
//  is sent again at once (at-least-once on the wire), none that was acknowledged
Test (relay_resend, restarted_relay_resends_everything_unacknowledged)
{
    enum { N = 10 };
    s_world_t *world = s_world_new ("3600000");     //  no re-send by time in this test
    s_emit (world, N);
    s_relay_start (world);
    s_consumer_t *consumer = &world->consumer;
    while (consumer->nids < N) {
        int index = s_receive (consumer, 10000);
        cr_assert (index >= 0, "only %d of %d arrived", consumer->nids, N);
        if (index % 2 == 0)
            s_ack (consumer, index);
    }
    cr_assert (fs_test_pg_wait (world->pg_url, S_UNDELIVERED, N / 2, 20000));
    s_relay_stop (world);
    s_relay_start (world);
    s_drain_until_delivered (world, 20000);
    s_drain (consumer, 500);
    for (int i = 0; i < N; i++)
        cr_expect_eq (consumer->counts [i], i % 2 ? 2 : 1, "envelope %d received %d times",
                      i, consumer->counts [i]);
    cr_assert_eq (s_resent (world), N / 2);
    cr_assert_eq (s_outbox (world, "SELECT count(*) FROM notification.outbox"
                                   " WHERE attempts = 2"), N / 2);
    s_world_destroy (&world);
}
