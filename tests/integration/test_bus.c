/*  test_bus - what a service does with bad input on its bus: answers what it can, keeps
    what it cannot apply as a dead letter, never crashes, never applies anything twice. */
#include "fs_test.h"
#include <signal.h>

//  Sends one frame to the reporting service's bus ROUTER; returns the decoded ack or NULL
static bool
s_send (fs_test_suite_t *suite, zsock_t *dealer, const void *data, size_t len, fs_ack_t *ack)
{
    zframe_t *frame = zframe_new (data, len);
    cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
    zframe_t *answer = zframe_recv (dealer);
    if (!answer)
        return false;
    fs_proto_error_t err;
    int rc = fs_proto_decode (&fs_ack_type, zframe_data (answer), zframe_size (answer), ack, &err);
    zframe_destroy (&answer);
    cr_assert_eq (rc, 0, "unreadable ack: %s", err.message);
    return true;
}

static zsock_t *
s_dealer (fs_test_suite_t *suite)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, 1500);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", suite->bus_ports [4]), 0);
    return dealer;
}

Test (bus, bad_envelopes_are_dead_lettered_and_the_service_goes_on)
{
    fs_test_suite_t *suite = fs_test_suite_new ("bus");
    fs_test_suite_start (suite, "reporting");
    zsock_t *dealer = s_dealer (suite);
    fs_ack_t ack = { 0 };

    //  Garbage: no id to answer to; nothing is acknowledged, nothing stored
    cr_assert_not (s_send (suite, dealer, "\xc1\xc1garbage", 9, &ack));
    cr_assert_eq (fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM reporting.inbox"), 0);

    //  A well-formed envelope of a type reporting has no handler for: rejected, dead-lettered
    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    fs_notification_queued_t queued = { 0 };
    fs_proto_set_str (&fs_notification_queued_type, &queued, "notification_id", id);
    fs_proto_set_str (&fs_notification_queued_type, &queued, "recipient", "someone");
    fs_proto_set_str (&fs_notification_queued_type, &queued, "topic", "x");
    fs_proto_set_str (&fs_notification_queued_type, &queued, "channel", "fax");   //  not allowed
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    //  An invalid payload cannot even be encoded by our own codec...
    cr_assert_neq (fs_envelope_encode ("notification", &fs_notification_queued_type, &queued,
                                       NULL, &data, &len, NULL, &err), 0);
    cr_assert_str_eq (err.field, "payload.channel");
    //  ...so build a valid one and swap the type to something reporting does not consume
    fs_proto_set_str (&fs_notification_queued_type, &queued, "channel", "inbox");
    char sent_id [FS_UUID_LEN + 1];
    cr_assert_eq (fs_envelope_encode ("notification", &fs_notification_queued_type, &queued,
                                      NULL, &data, &len, sent_id, &err), 0);
    fs_envelope_t env = { 0 };
    cr_assert_eq (fs_envelope_decode (data, len, len, &env, &err), 0);
    free (data);
    fs_proto_set_str (&fs_envelope_wire_type, &env.hdr, "type", "attention.requested");
    cr_assert_eq (fs_proto_encode (&fs_envelope_wire_type, &env.hdr, &data, &len, &err), 0);
    cr_assert (s_send (suite, dealer, data, len, &ack));
    cr_assert_str_eq (ack.id, sent_id);
    cr_assert_str_eq (ack.status, "rejected");
    cr_assert_str_eq (ack.code, "invalid_field");   //  the payload is not an attention.requested
    fs_proto_clear (&fs_ack_type, &ack);
    //  Sent again: still rejected, still one dead letter
    cr_assert (s_send (suite, dealer, data, len, &ack));
    cr_assert_str_eq (ack.status, "rejected");
    fs_proto_clear (&fs_ack_type, &ack);
    cr_assert_eq (fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM reporting.dead_letter"), 1);
    free (data);
    fs_envelope_clear (&env);

    //  A good one is applied once, however often it is sent
    cr_assert_eq (fs_envelope_encode ("notification", &fs_notification_queued_type, &queued,
                                      NULL, &data, &len, sent_id, &err), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert (s_send (suite, dealer, data, len, &ack));
        cr_assert_str_eq (ack.status, i == 0 ? "applied" : "duplicate");
        fs_proto_clear (&fs_ack_type, &ack);
    }
    free (data);
    cr_assert_eq (fs_test_pg_long (suite->pg_url,
        "SELECT count FROM reporting.event_counts WHERE type = 'notification.queued'"), 1);

    //  Still alive and answering
    int status = 0;
    cr_assert_eq (fs_test_http_get (suite->http_ports [4], "/readyz", &status, NULL), 0);
    cr_assert_eq (status, 200);
    fs_proto_clear (&fs_notification_queued_type, &queued);
    zsock_destroy (&dealer);
    cr_assert_eq (fs_test_suite_stop (suite, "reporting", SIGTERM, 5000), 0);
    fs_test_suite_destroy (&suite);
}

Test (bus, random_frames_never_crash_the_service)
{
    fs_test_suite_t *suite = fs_test_suite_new ("busfuzz");
    fs_test_suite_start (suite, "reporting");
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    cr_assert_eq (zsock_connect (dealer, "tcp://127.0.0.1:%d", suite->bus_ports [4]), 0);
    unsigned int seed = 42;
    for (int i = 0; i < 2000; i++) {
        size_t len = (size_t) (rand_r (&seed) % 300);
        unsigned char buffer [300];
        for (size_t j = 0; j < len; j++)
            buffer [j] = (unsigned char) rand_r (&seed);
        //  Half of them look like a msgpack map to get past the first byte
        if (len && i % 2)
            buffer [0] = 0x88;
        //  Some multi-frame messages too
        zsock_send (dealer, i % 7 ? "b" : "bb", buffer, len, buffer, len);
    }
    //  It still applies a good envelope
    size_t len = 0;
    char *data = fs_test_envelope_queued ("sms", &len, NULL);
    zframe_t *frame = zframe_new (data, len);
    zframe_send (&frame, dealer, 0);
    free (data);
    cr_assert (fs_test_pg_wait (suite->pg_url,
        "SELECT count FROM reporting.event_counts WHERE type = 'notification.queued'", 1, 20000));
    zsock_destroy (&dealer);
    cr_assert_eq (fs_test_suite_stop (suite, "reporting", SIGTERM, 5000), 0);
    fs_test_suite_destroy (&suite);
}
