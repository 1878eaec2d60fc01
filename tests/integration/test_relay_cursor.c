/*  test_relay_cursor - the relay reads new outbox rows from the highest seq it has sent (an
    index range start) instead of walking every row in flight; seq order is not commit
    order, so a row that commits after a higher one was read must still be sent, at once (not
    at the next read from the oldest undelivered row, one retry time later). A real relay
    actor (common/fs_relay.c) on a real outbox, a test consumer (fs_test_relay: a ROUTER that
    acknowledges), emitting transactions held open and committed in the opposite order of
    their seqs. The retry time is an hour: whatever arrives came by the reads of new rows. */
#include "fs_test.h"

#define s_outbox(self, sql) fs_test_pg_long ((self)->pg_url, sql)
#define S_UNDELIVERED "SELECT count(*) FROM notification.outbox WHERE delivered_at IS NULL"
#define s_resent(self) ((long) fs_counter_value ((self)->args.resent))
#define s_sent(self) ((long) fs_counter_value ((self)->args.sent))

//  One event committed on the test's own connection
static void
s_emit (fs_test_relay_t *self)
{
    cr_assert_eq (fs_pg_begin (self->pg), 0);
    fs_test_relay_emit_on (self, self->pg);
    cr_assert_eq (fs_pg_commit (self->pg), 0);
}

//  A connection with a transaction open that has emitted one event (not committed)
static fs_pg_t *
s_open_emit (fs_test_relay_t *self)
{
    fs_pg_t *pg = fs_pg_new (self->pg_url);
    cr_assert (pg);
    cr_assert_eq (fs_pg_begin (pg), 0);
    fs_test_relay_emit_on (self, pg);
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
s_receive_until (fs_test_consumer_t *consumer, int n)
{
    int64_t end = fs_mono_ms () + 30000;
    while (consumer->nids < n) {
        int64_t now = fs_mono_ms ();
        cr_assert (now < end, "only %d of %d envelopes arrived", consumer->nids, n);
        int index = fs_test_consumer_receive (consumer, (int) (end - now));
        if (index >= 0)
            fs_test_consumer_ack (consumer, index);
    }
}

TestSuite (relay_cursor, .timeout = 120);

//  Transaction A draws a seq, B a higher one; B commits and its row is sent (the cursor
//  passes A's seq); then A commits: its row is sent at once, once
Test (relay_cursor, row_committed_after_a_higher_one_is_sent)
{
    fs_test_relay_t *world = fs_test_relay_new ("3600000");
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
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
    fs_test_relay_destroy (&world);
}

//  Eight transactions hold seqs open while rows after them keep committing and being sent;
//  they commit in the opposite order of their seqs, one committed row between each: every
//  row arrives, exactly once
Test (relay_cursor, held_transactions_committing_in_reverse_order)
{
    enum { K = 8 };
    fs_test_relay_t *world = fs_test_relay_new ("3600000");
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
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
    fs_test_consumer_drain (consumer, 500);
    cr_assert_eq (consumer->nids, 1 + 2 * K);
    for (int i = 0; i < consumer->nids; i++)
        cr_expect_eq (consumer->counts [i], 1, "envelope %d received %d times", i,
                      consumer->counts [i]);
    cr_assert_eq (s_sent (world), 1 + 2 * K);
    cr_assert_eq (s_resent (world), 0);
    fs_test_relay_destroy (&world);
}

//  A row committed late while the relay is far ahead (many reads since): still sent, and
//  the reads go back to starting at the cursor once it has (the rows after it arrive too)
Test (relay_cursor, long_transaction_commits_after_many_reads)
{
    fs_test_relay_t *world = fs_test_relay_new ("3600000");
    fs_test_relay_start (world);
    fs_test_consumer_t *consumer = &world->consumer;
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
    fs_test_consumer_drain (consumer, 500);
    cr_assert_eq (consumer->nids, expected);
    cr_assert_eq (consumer->receipts, expected);
    cr_assert_eq (s_sent (world), expected);
    cr_assert_eq (s_resent (world), 0);
    fs_test_relay_destroy (&world);
}
