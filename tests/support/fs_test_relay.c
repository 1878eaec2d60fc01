/*  fs_test_relay - a real relay actor (common/fs_relay.c) on notification's outbox in a fresh
    database, sending to a consumer written for the tests: a ROUTER speaking the bus protocol
    (envelope in, ack out) that acknowledges when, and what, the test decides. */
#include "fs_test.h"

fs_test_relay_t *
fs_test_relay_new (const char *retry_ms)
{
    fs_test_relay_t *self = (fs_test_relay_t *) zmalloc (sizeof (fs_test_relay_t));
    self->pg_url = fs_test_db_create ("relay");
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

void
fs_test_relay_start (fs_test_relay_t *self)
{
    self->relay = zactor_new (fs_relay_actor, &self->args);
    cr_assert (self->relay);
}

void
fs_test_relay_stop (fs_test_relay_t *self)
{
    zactor_destroy (&self->relay);
}

void
fs_test_relay_destroy (fs_test_relay_t **self_p)
{
    fs_test_relay_t *self = *self_p;
    fs_test_relay_stop (self);
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

void
fs_test_relay_emit_on (fs_test_relay_t *self, fs_pg_t *pg)
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

int
fs_test_consumer_receive (fs_test_consumer_t *self, int timeout_ms)
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
        cr_assert (self->nids < FS_TEST_CONSUMER_MAX);
        snprintf (self->ids [self->nids++], FS_UUID_LEN + 1, "%s", env.hdr.id);
    }
    self->counts [index]++;
    self->receipts++;
    fs_envelope_clear (&env);
    return index;
}

void
fs_test_consumer_ack (fs_test_consumer_t *self, int index)
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

void
fs_test_consumer_drain (fs_test_consumer_t *self, int ms)
{
    int64_t end = fs_mono_ms () + ms;
    int64_t now;
    while ((now = fs_mono_ms ()) < end) {
        int index = fs_test_consumer_receive (self, (int) (end - now));
        if (index >= 0)
            fs_test_consumer_ack (self, index);
    }
}
