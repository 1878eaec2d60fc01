/*  test_relay_resend - when the relay sends an envelope again. A real relay actor (common/
    fs_relay.c) on a real outbox in PostgreSQL sends to a test consumer (fs_test_relay): a ROUTER
    speaking the bus protocol (envelope in, ack out) that acknowledges when, and what, the
    test decides. Checked: a consumer that acks slowly but steadily gets nothing twice; an
    envelope lost while acks flow is re-sent; a silent consumer gets only its oldest row as a
    probe, and the rest once it answers; a restarted relay re-sends everything unacknowledged.
    Counts are asserted after the fact; waits are generous, never measured. */
#include "fs_test.h"

//  n notification.queued events into the outbox, one transaction each (reporting consumes)
static void
s_emit (fs_test_relay_t *self, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq (fs_pg_begin (self->pg), 0);
        fs_test_relay_emit_on (self, self->pg);
        cr_assert_eq (fs_pg_commit (self->pg), 0);
    }
}

#define s_outbox(self, sql) fs_test_pg_long ((self)->pg_url, sql)
#define S_UNDELIVERED "SELECT count(*) FROM notification.outbox WHERE delivered_at IS NULL"

//  Waits until the outbox has nothing undelivered, acknowledging promptly meanwhile
static void
s_drain_until_delivered (fs_test_relay_t *self, int timeout_ms)
{
    int64_t end = fs_mono_ms () + timeout_ms;
    while (s_outbox (self, S_UNDELIVERED) > 0) {
        cr_assert (fs_mono_ms () < end, "still undelivered: %ld",
                   s_outbox (self, S_UNDELIVERED));
        fs_test_consumer_drain (&self->consumer, 200);
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
    fs_test_relay_t *world = fs_test_relay_new ("2000");
    s_emit (world, N);
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
    int acked = 0;
    int64_t end = fs_mono_ms () + 60000;
    while (acked < N) {
        cr_assert (fs_mono_ms () < end, "only %d of %d acknowledged", acked, N);
        //  Take what has arrived, then acknowledge the next one in arrival order
        while (fs_test_consumer_receive (consumer, acked < consumer->nids ? 0 : 1000) >= 0)
            ;
        if (acked < consumer->nids) {
            usleep (15 * 1000);
            fs_test_consumer_ack (consumer, acked++);
        }
    }
    //  Anything re-sent late would arrive now
    fs_test_consumer_drain (consumer, 3000);
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
    fs_test_relay_destroy (&world);
}

//  A consumer that stops answering for longer than the retry time, twice, while far behind
//  (a long transaction, a checkpoint): each stall costs one probe, the oldest row then in
//  flight, not the rows waiting behind it (its ack is the original's, and the acks for the
//  rows sent before the probe that follow say they were never lost)
Test (relay_resend, stalling_consumer_gets_only_probes)
{
    enum { N = 200 };
    fs_test_relay_t *world = fs_test_relay_new ("2000");
    s_emit (world, N);
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
    int acked = 0;
    int64_t end = fs_mono_ms () + 60000;
    while (acked < N) {
        cr_assert (fs_mono_ms () < end, "only %d of %d acknowledged", acked, N);
        if (acked == 0 || acked == 50) {
            //  Stalled for 1.5 retry times, receiving only
            int64_t until = fs_mono_ms () + 3000;
            int64_t now;
            while ((now = fs_mono_ms ()) < until)
                fs_test_consumer_receive (consumer, (int) (until - now));
        }
        while (fs_test_consumer_receive (consumer, acked < consumer->nids ? 0 : 1000) >= 0)
            ;
        if (acked < consumer->nids) {
            usleep (15 * 1000);
            fs_test_consumer_ack (consumer, acked++);
        }
    }
    fs_test_consumer_drain (consumer, 3000);
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
    fs_test_relay_destroy (&world);
}

//  One envelope lost (never acknowledged) while the consumer acknowledges everything else at
//  once and new events keep coming, so it is never silent: the lost one is re-sent anyway
//  (a row sent after it was acknowledged, and it is older than 3 retry times), once
Test (relay_resend, lost_envelope_is_resent_while_acks_flow)
{
    fs_test_relay_t *world = fs_test_relay_new ("2000");
    s_emit (world, 10);
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
    int lost = -1;
    //  The third to arrive is dropped; the others acknowledged at once
    while (consumer->nids < 10) {
        int index = fs_test_consumer_receive (consumer, 10000);
        cr_assert (index >= 0, "only %d of 10 arrived", consumer->nids);
        if (consumer->nids == 3 && lost < 0)
            lost = index;
        else
            fs_test_consumer_ack (consumer, index);
    }
    //  An event every 100 ms, each acknowledged at once, until the lost one comes again
    int64_t end = fs_mono_ms () + 30000;
    while (consumer->counts [lost] < 2) {
        cr_assert (fs_mono_ms () < end, "the lost envelope was not re-sent while acks flow");
        s_emit (world, 1);
        fs_test_consumer_drain (consumer, 100);
    }
    s_drain_until_delivered (world, 20000);
    fs_test_consumer_drain (consumer, 1000);
    cr_assert_eq (consumer->counts [lost], 2);
    for (int i = 0; i < consumer->nids; i++)
        if (i != lost)
            cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                          consumer->counts [i]);
    cr_assert_eq (consumer->receipts, consumer->nids + 1);
    cr_assert_eq (s_resent (world), 1);
    cr_assert_eq (s_sent (world), consumer->nids);
    cr_assert_eq (s_outbox (world, "SELECT count(*) FROM notification.outbox"), consumer->nids);
    fs_test_relay_destroy (&world);
}

//  A consumer that answers nothing (dead, restarted, or all lost): while silent only the
//  oldest envelope is re-sent, as a probe (not the whole window), less and less often; once
//  it acknowledges the probe and has nothing more to say for a retry time, the others (sent
//  before the probe, so lost) are re-sent, once
Test (relay_resend, silent_consumer_gets_a_probe_then_the_rest)
{
    enum { N = 20 };
    fs_test_relay_t *world = fs_test_relay_new ("1000");
    s_emit (world, N);
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
    //  Deaf: receives, acknowledges nothing, for 4.5 retry times
    int64_t end = fs_mono_ms () + 4500;
    int64_t now;
    while ((now = fs_mono_ms ()) < end)
        fs_test_consumer_receive (consumer, (int) (end - now));
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
    fs_test_consumer_drain (consumer, 1000);
    for (int i = 1; i < N; i++)
        cr_expect_eq (consumer->counts [i], 2, "envelope %d received %d times", i,
                      consumer->counts [i]);
    cr_assert_eq (consumer->nids, N);
    cr_assert_gt (consumer->counts [0], probes);
    cr_assert_eq (s_resent (world), consumer->receipts - N);
    cr_assert_eq (s_sent (world), N);
    fs_test_relay_destroy (&world);
}

//  A relay that restarts knows nothing of what was in flight: every row not acknowledged
//  is sent again at once (at-least-once on the wire), none that was acknowledged
Test (relay_resend, restarted_relay_resends_everything_unacknowledged)
{
    enum { N = 10 };
    fs_test_relay_t *world = fs_test_relay_new ("3600000");     //  no re-send by time in this test
    s_emit (world, N);
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
    while (consumer->nids < N) {
        int index = fs_test_consumer_receive (consumer, 10000);
        cr_assert (index >= 0, "only %d of %d arrived", consumer->nids, N);
        if (index % 2 == 0)
            fs_test_consumer_ack (consumer, index);
    }
    cr_assert (fs_test_pg_wait (world->pg_url, S_UNDELIVERED, N / 2, 20000));
    fs_test_relay_stop (world);
    fs_test_relay_start (world);
    s_drain_until_delivered (world, 20000);
    fs_test_consumer_drain (consumer, 500);
    for (int i = 0; i < N; i++)
        cr_expect_eq (consumer->counts [i], i % 2 ? 2 : 1, "envelope %d received %d times",
                      i, consumer->counts [i]);
    cr_assert_eq (s_resent (world), N / 2);
    cr_assert_eq (s_outbox (world, "SELECT count(*) FROM notification.outbox"
                                   " WHERE attempts = 2"), N / 2);
    fs_test_relay_destroy (&world);
}
