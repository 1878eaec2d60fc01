/*  test_inbox_batch - envelopes waiting together on a service's bus share one transaction,
    each under its own savepoint: a rejected or duplicate one in the middle changes nothing
    for the others, each gets its own ack after the commit. */
#include "fs_test.h"
#include <signal.h>

//  An encoded notification.queued envelope (reporting counts it); its id in id_out
static char *
s_queued (const char *channel, const char *type, size_t *len, char *id_out)
{
    char *data = fs_test_envelope_queued (channel, len, id_out);
    if (type) {
        //  Same envelope under a type reporting has no handler for: rejected
        fs_proto_error_t err;
        fs_envelope_t env = { 0 };
        cr_assert_eq (fs_envelope_decode (data, *len, *len, &env, &err), 0);
        free (data);
        fs_proto_set_str (&fs_envelope_wire_type, &env.hdr, "type", type);
        cr_assert_eq (fs_proto_encode (&fs_envelope_wire_type, &env.hdr, &data, len, &err), 0);
        fs_envelope_clear (&env);
    }
    return data;
}

Test (inbox_batch, mixed_batch_each_gets_its_own_outcome)
{
    fs_test_suite_t *suite = fs_test_suite_new ("inboxbatch");
    fs_test_suite_start (suite, "reporting");
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 5000);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", suite->bus_ports [4]), 0);

    char a [FS_UUID_LEN + 1], b [FS_UUID_LEN + 1], c [FS_UUID_LEN + 1], x [FS_UUID_LEN + 1];
    size_t alen, blen, clen, xlen;
    char *adata = s_queued ("sms", NULL, &alen, a);
    char *bdata = s_queued ("inbox", NULL, &blen, b);
    char *cdata = s_queued ("email", NULL, &clen, c);
    char *xdata = s_queued ("sms", "attention.requested", &xlen, x);
    //  The service is stopped while they are sent, so they wait on its socket together
    pid_t pid = suite->pids [4];
    cr_assert_eq (kill (pid, SIGSTOP), 0);
    struct { const char *data; size_t len; } frames [] = {
        { adata, alen }, { xdata, xlen }, { bdata, blen }, { adata, alen },
        { "\xc1\xc1garbage", 9 }, { cdata, clen } };
    for (size_t i = 0; i < 6; i++) {
        zframe_t *frame = zframe_new (frames [i].data, frames [i].len);
        cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
    }
    usleep (200 * 1000);
    cr_assert_eq (kill (pid, SIGCONT), 0);

    //  Five acks (the garbage has no id to answer to), in the order sent
    const char *ids [5] = { a, x, b, a, c };
    const char *statuses [5] = { "applied", "rejected", "applied", "duplicate", "applied" };
    for (int i = 0; i < 5; i++) {
        zframe_t *answer = zframe_recv (dealer);
        cr_assert (answer, "ack %d missing", i);
        fs_ack_t ack = { 0 };
        fs_proto_error_t err;
        cr_assert_eq (fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer),
                                       &ack, &err), 0);
        zframe_destroy (&answer);
        cr_assert_str_eq (ack.id, ids [i], "ack %d", i);
        cr_assert_str_eq (ack.status, statuses [i], "ack %d for %s", i, ids [i]);
        fs_proto_clear (&fs_ack_type, &ack);
    }
    const char *url = suite->pg_url;
    //  A, B, C counted once each; X dead-lettered, nothing of it applied
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count FROM reporting.event_counts WHERE type = 'notification.queued'"), 3);
    cr_assert_eq (fs_test_pg_long (url, "SELECT count(*) FROM reporting.dead_letter"), 1);
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM reporting.inbox WHERE outcome = 'applied'"), 3);
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM reporting.inbox WHERE outcome = 'rejected'"), 1);
    //  They shared transactions: fewer distinct start times than envelopes stored
    long transactions = fs_test_pg_long (url,
        "SELECT count(DISTINCT received_at) FROM reporting.inbox");
    cr_log_info ("4 envelopes stored in %ld transaction(s)", transactions);
    cr_assert (transactions < 4, "no batch: %ld transactions for 4 envelopes", transactions);

    //  Sent again after the batch: duplicates and the same rejection
    zframe_t *again = zframe_new (bdata, blen);
    cr_assert_eq (zframe_send (&again, dealer, 0), 0);
    zframe_t *answer = zframe_recv (dealer);
    cr_assert (answer);
    fs_ack_t ack = { 0 };
    fs_proto_error_t err;
    cr_assert_eq (fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer),
                                   &ack, &err), 0);
    cr_assert_str_eq (ack.status, "duplicate");
    fs_proto_clear (&fs_ack_type, &ack);
    zframe_destroy (&answer);
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count FROM reporting.event_counts WHERE type = 'notification.queued'"), 3);

    free (adata);
    free (bdata);
    free (cdata);
    free (xdata);
    zsock_destroy (&dealer);
    cr_assert_eq (fs_test_suite_stop (suite, "reporting", SIGTERM, 5000), 0);
    fs_test_suite_destroy (&suite);
}
