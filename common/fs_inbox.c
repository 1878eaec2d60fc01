/*  fs_inbox - applies each envelope from the bus exactly once, then acknowledges it. */
#include "finestra.h"

//  Largest envelope a service accepts on its bus (events are small; this bounds memory)
#define FS_INBOX_MAX_BYTES (1024 * 1024)

static void
s_ack (zsock_t *router, zframe_t *identity, const char *id, const char *status,
       const char *code, const char *reason)
{
    fs_ack_t ack = { 0 };
    fs_proto_set_str (&fs_ack_type, &ack, "id", id);
    fs_proto_set_str (&fs_ack_type, &ack, "status", status);
    if (code)
        fs_proto_set_str (&fs_ack_type, &ack, "code", code);
    if (reason && *reason) {
        char bounded [512];
        snprintf (bounded, sizeof bounded, "%s", reason);
        fs_proto_set_str (&fs_ack_type, &ack, "reason", bounded);
    }
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    if (fs_proto_encode (&fs_ack_type, &ack, &data, &len, &err) == 0) {
        zframe_t *copy = zframe_dup (identity);
        zframe_t *body = zframe_new (data, len);
        //  ROUTER_MANDATORY: fails if the sender has gone; it will re-send and get a duplicate
        if (zframe_send (&copy, router, ZFRAME_MORE | ZFRAME_DONTWAIT)
        ||  zframe_send (&body, router, ZFRAME_DONTWAIT)) {
            fs_debug ("ack not sent: sender gone", "id", id);
            zframe_destroy (&copy);
            zframe_destroy (&body);
        }
    }
    else
        fs_error ("cannot encode ack", "id", id, "reason", err.message);
    free (data);
    fs_proto_clear (&fs_ack_type, &ack);
}

//  Records an envelope that can never be applied, so it is kept and not re-sent forever
static int
s_dead_letter (fs_server_t *server, const char *id, const char *source, const char *type,
               const char *code, const char *reason, zframe_t *body)
{
    fs_pg_t *pg = fs_server_pg (server);
    char sql [512];
    snprintf (sql, sizeof sql,
              "INSERT INTO \"%s\".dead_letter (msg_id, source, type, code, reason, envelope)"
              " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (msg_id) DO NOTHING",
              fs_server_schema (server));
    const char *values [6] = { id, source, type, code, reason, (char *) zframe_data (body) };
    int lengths [6] = { 0, 0, 0, 0, 0, (int) zframe_size (body) };
    int formats [6] = { 0, 0, 0, 0, 0, 1 };
    PGresult *result = fs_pg_execb (pg, sql, 6, values, lengths, formats, 0);
    if (!result)
        return -1;
    PQclear (result);
    if (id && type && source) {
        snprintf (sql, sizeof sql,
                  "INSERT INTO \"%s\".inbox (msg_id, type, source, outcome)"
                  " VALUES ($1, $2, $3, 'rejected') ON CONFLICT (msg_id) DO NOTHING",
                  fs_server_schema (server));
        const char *inbox [3] = { id, type, source };
        return fs_pg_run (pg, sql, 3, inbox);
    }
    return 0;
}

int
fs_inbox_emit (fs_inbox_ctx_t *ctx, const fs_type_t *ptype, const void *payload)
{
    fs_proto_error_t err;
    return fs_outbox_emit (ctx->pg, fs_server_schema (ctx->server), fs_server_name (ctx->server),
                           fs_server_routes (ctx->server), ptype, payload, ctx->env, NULL, &err);
}

static const fs_handler_t *
s_handler (fs_server_t *server, const char *type)
{
    for (const fs_handler_t *h = fs_server_handlers (server); h && h->type; h++)
        if (streq (h->type, type))
            return h;
    return NULL;
}

void
fs_inbox_register (fs_inbox_metrics_t *counters, fs_metrics_t *metrics)
{
    counters->applied = fs_metrics_counter (metrics, "finestra_inbox_total",
                                            "Envelopes received on the bus, by outcome",
                                            "outcome=\"applied\"");
    counters->duplicate = fs_metrics_counter (metrics, "finestra_inbox_total",
                                              "Envelopes received on the bus, by outcome",
                                              "outcome=\"duplicate\"");
    counters->rejected = fs_metrics_counter (metrics, "finestra_inbox_total",
                                             "Envelopes received on the bus, by outcome",
                                             "outcome=\"rejected\"");
    counters->retried = fs_metrics_counter (metrics, "finestra_inbox_total",
                                            "Envelopes received on the bus, by outcome",
                                            "outcome=\"retry\"");
    counters->apply_seconds = fs_metrics_histogram (metrics, "finestra_inbox_apply_seconds",
                                                    "Time to apply one envelope, commit included",
                                                    NULL);
}

//  Applies a decoded envelope in one transaction. Returns the ack status to send, or NULL
//  when nothing must be sent (transient failure: the sender re-sends).
static const char *
s_apply (fs_server_t *server, fs_envelope_t *env, zframe_t *body, char *code, char *reason,
         size_t reasonlen)
{
    fs_pg_t *pg = fs_server_pg (server);
    const char *schema = fs_server_schema (server);
    if (fs_pg_begin (pg))
        return NULL;
    char sql [256];
    snprintf (sql, sizeof sql,
              "INSERT INTO \"%s\".inbox (msg_id, type, source, correlation_id, outcome)"
              " VALUES ($1, $2, $3, $4, 'applied') ON CONFLICT (msg_id) DO NOTHING", schema);
    const char *values [4] = { env->hdr.id, env->hdr.type, env->hdr.source,
                               env->hdr.correlation_id };
    PGresult *result = fs_pg_exec (pg, sql, 4, values);
    if (!result)
        goto retry;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh) {
        fs_pg_rollback (pg);
        return "duplicate";
    }
    const fs_handler_t *handler = s_handler (server, env->hdr.type);
    fs_inbox_ctx_t ctx = { .server = server, .pg = pg, .env = env };
    int rc = FS_HANDLER_REJECT;
    if (handler)
        rc = handler->fn (&ctx);
    else
        snprintf (ctx.reason, sizeof ctx.reason, "%s has no handler for %s (check the routes)",
                  fs_server_name (server), env->hdr.type);
    if (rc == FS_HANDLER_OK) {
        if (fs_pg_commit (pg))
            return NULL;
        if (ctx.after_commit)
            ctx.after_commit (&ctx);
        return "applied";
    }
    fs_pg_rollback (pg);
    if (rc == FS_HANDLER_RETRY)
        return NULL;
    //  Rejected: keep it as a dead letter, in its own transaction
    strcpy (code, handler ? "handler_rejected" : "no_handler");
    snprintf (reason, reasonlen, "%s", ctx.reason [0] ? ctx.reason : "rejected by handler");
    if (fs_pg_begin (pg) == 0
    &&  s_dead_letter (server, env->hdr.id, env->hdr.source, env->hdr.type, code, reason, body) == 0
    &&  fs_pg_commit (pg) == 0)
        return "rejected";
    fs_pg_rollback (pg);
    return NULL;

retry:
    fs_pg_rollback (pg);
    return NULL;
}

int
fs_inbox_handle (fs_server_t *server, zsock_t *router)
{
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return 0;
    fs_inbox_metrics_t *counters = fs_server_inbox_metrics (server);
    int64_t started = fs_mono_ms ();
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *body = zmsg_pop (msg);
    if (!identity || !body || zmsg_size (msg) != 0) {
        //  Not the bus protocol (one frame per envelope); nothing to acknowledge
        fs_warn ("bus message with a wrong frame count dropped", "service", fs_server_name (server));
        goto done;
    }
    fs_envelope_t env = { 0 };
    fs_proto_error_t err;
    if (fs_envelope_decode (zframe_data (body), zframe_size (body), FS_INBOX_MAX_BYTES, &env, &err)) {
        //  Answer with the id if the header itself is readable, so the sender stops
        fs_envelope_wire_t hdr = { 0 };
        fs_proto_error_t herr;
        bool have_id = zframe_size (body) <= FS_INBOX_MAX_BYTES
                    && fs_proto_decode (&fs_envelope_wire_type, zframe_data (body),
                                        zframe_size (body), &hdr, &herr) == 0;
        char reason [400];
        snprintf (reason, sizeof reason, "%s%s%s", err.field, err.field [0] ? ": " : "", err.message);
        fs_warn ("bus envelope rejected", "code", fs_proto_code_name (err.code), "reason", reason,
                 "id", have_id ? hdr.id : NULL);
        fs_pg_t *pg = fs_server_pg (server);
        if (have_id && fs_pg_begin (pg) == 0) {
            if (s_dead_letter (server, hdr.id, hdr.source, hdr.type, fs_proto_code_name (err.code),
                               reason, body) == 0
            &&  fs_pg_commit (pg) == 0) {
                s_ack (router, identity, hdr.id, "rejected", fs_proto_code_name (err.code), reason);
                fs_counter_add (counters->rejected, 1);
            }
            else
                fs_pg_rollback (pg);
        }
        fs_proto_clear (&fs_envelope_wire_type, &hdr);
        goto done;
    }
    char code [64] = "", reason [400] = "";
    const char *status = s_apply (server, &env, body, code, reason, sizeof reason);
    if (status) {
        s_ack (router, identity, env.hdr.id, status, code [0] ? code : NULL, reason);
        fs_counter_add (streq (status, "applied") ? counters->applied
                      : streq (status, "duplicate") ? counters->duplicate : counters->rejected, 1);
        fs_histogram_observe (counters->apply_seconds, (double) (fs_mono_ms () - started) / 1000.0);
    }
    else {
        fs_counter_add (counters->retried, 1);
        fs_warn ("bus envelope not applied yet, sender will retry", "id", env.hdr.id,
                 "type", env.hdr.type, "reason", fs_pg_error (fs_server_pg (server)));
    }
    fs_envelope_clear (&env);
done:
    zframe_destroy (&identity);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    return 0;
}
