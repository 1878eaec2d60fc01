/*  fs_test_envelope - bus envelopes for tests, made with the real codec. */
#include "fs_test.h"

char *
fs_test_envelope_queued (const char *channel, size_t *len, char *id_out)
{
    fs_notification_queued_t queued = { 0 };
    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    fs_proto_set_str (&fs_notification_queued_type, &queued, "notification_id", id);
    fs_proto_set_str (&fs_notification_queued_type, &queued, "recipient", "someone");
    fs_proto_set_str (&fs_notification_queued_type, &queued, "topic", "x");
    fs_proto_set_str (&fs_notification_queued_type, &queued, "channel", channel);
    char *data = NULL;
    fs_proto_error_t err;
    cr_assert_eq (fs_envelope_encode ("notification", &fs_notification_queued_type, &queued,
                                      NULL, &data, len, id_out, &err), 0);
    fs_proto_clear (&fs_notification_queued_type, &queued);
    return data;
}
