/*  fs_inbox - applies each envelope from the bus exactly once, then acknowledges it. */
#include "finestra.h"

//  Largest envelope a service accepts on its bus (events are small; this bounds memory)
#define FS_INBOX_MAX_BYTES (1024 * 1024)
//  Most envelopes applied in one transaction (those already waiting on the socket)
#define FS_INBOX_BATCH 64

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

//  Batch functions by type (fs_inbox_batch_set), the process's
#define S_BATCH_MAX 32
static struct {
    char type [64];
    fs_batch_fn *batch;
} s_batch_fns [S_BATCH_MAX];

int
fs_inbox_batch_set (const char *type, fs_batch_fn *batch)
{
    for (int i = 0; i < S_BATCH_MAX; i++)
        if (!s_batch_fns [i].batch || streq (s_batch_fns [i].type, type)) {
            snprintf (s_batch_fns [i].type, sizeof s_batch_fns [i].type, "%s", type);
            s_batch_fns [i].batch = batch;
            return 0;
        }
    return -1;
}

static fs_batch_fn *
s_batch_fn (const char *type)
{
    for (int i = 0; i < S_BATCH_MAX && s_batch_fns [i].batch; i++)
        if (streq (s_batch_fns [i].type, type))
            return s_batch_fns [i].batch;
    return NULL;
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

//  One envelope of a batch: what arrived, and the ack it gets once the batch commits
typedef struct {
    zframe_t *identity;         /* the sender's (relay's) routing id */
    zframe_t *body;             /* the envelope as received */
    fs_envelope_t env;          /* decoded, when decoded */
    bool decoded;               /* env holds a decoded envelope */
    char id [FS_UUID_LEN + 1];  /* its id, "" when unreadable */
    fs_inbox_ctx_t ctx;         /* the handler's context (after_commit runs on it) */
    const char *status;         /* ack after the commit; NULL: none (the sender re-sends) */
    char code [64];             /* when rejected */
    char reason [400];
} s_item_t;

//  Statements inside the batch's transaction; a failed one leaves the batch to decide
static int
s_savepoint (fs_pg_t *pg, const char *verb)
{
    char sql [64];
    snprintf (sql, sizeof sql, "%s fs_inbox_item", verb);
    return fs_pg_run (pg, sql, 0, NULL);
}

//  Undoes an item's work and drops its savepoint (so savepoints never nest); 0 or -1
static int
s_undo (fs_pg_t *pg)
{
    if (s_savepoint (pg, "ROLLBACK TO SAVEPOINT"))
        return -1;
    return s_savepoint (pg, "RELEASE SAVEPOINT");
}

//  Dead-letters an item inside the batch (own savepoint); 0 or -1
static int
s_item_dead_letter (fs_server_t *server, s_item_t *item, const char *source, const char *type)
{
    fs_pg_t *pg = fs_server_pg (server);
    if (s_savepoint (pg, "SAVEPOINT"))
        return -1;
    if (s_dead_letter (server, item->id [0] ? item->id : NULL, source, type, item->code,
                       item->reason, item->body)) {
        s_undo (pg);
        return -1;
    }
    return s_savepoint (pg, "RELEASE SAVEPOINT");
}

//  Applies one decoded item inside the batch's transaction, under a savepoint, so its
//  failure undoes only its own work. Sets item->status. -1 when the whole batch must be
//  abandoned (connection lost, or the transaction cannot go on)
static int
s_apply (fs_server_t *server, s_item_t *item, uint64_t batch)
{
    fs_pg_t *pg = fs_server_pg (server);
    const char *schema = fs_server_schema (server);
    fs_envelope_t *env = &item->env;
    if (s_savepoint (pg, "SAVEPOINT"))
        return -1;
    char sql [256];
    snprintf (sql, sizeof sql,
              "INSERT INTO \"%s\".inbox (msg_id, type, source, correlation_id, outcome)"
              " VALUES ($1, $2, $3, $4, 'applied') ON CONFLICT (msg_id) DO NOTHING", schema);
    const char *values [4] = { env->hdr.id, env->hdr.type, env->hdr.source,
                               env->hdr.correlation_id };
    PGresult *result = fs_pg_exec (pg, sql, 4, values);
    if (!result)
        return fs_pg_lost (pg) || s_undo (pg) ? -1 : 0;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh) {
        item->status = "duplicate";
        return s_savepoint (pg, "RELEASE SAVEPOINT");
    }
    const fs_handler_t *handler = s_handler (server, env->hdr.type);
    fs_inbox_ctx_t *ctx = &item->ctx;
    *ctx = (fs_inbox_ctx_t) { .server = server, .pg = pg, .env = env, .batch = batch };
    int rc = FS_HANDLER_REJECT;
    if (handler)
        rc = handler->fn (ctx);
    else
        snprintf (ctx->reason, sizeof ctx->reason, "%s has no handler for %s (check the routes)",
                  fs_server_name (server), env->hdr.type);
    //  A handler that said OK over a failed statement: RELEASE fails, the item is retried
    if (rc == FS_HANDLER_OK && s_savepoint (pg, "RELEASE SAVEPOINT") == 0) {
        item->status = "applied";
        return 0;
    }
    if (fs_pg_lost (pg) || s_undo (pg))
        return -1;
    ctx->after_commit = NULL;
    if (rc != FS_HANDLER_REJECT)
        return 0;                   //  transient: no ack, the sender re-sends
    //  Rejected: keep it as a dead letter, in the same transaction
    snprintf (item->code, sizeof item->code, "%s", handler ? "handler_rejected" : "no_handler");
    snprintf (item->reason, sizeof item->reason, "%s",
              ctx->reason [0] ? ctx->reason : "rejected by handler");
    if (s_item_dead_letter (server, item, env->hdr.source, env->hdr.type))
        return fs_pg_lost (pg) ? -1 : 0;
    item->status = "rejected";
    return 0;
}

//  Applies a run of items of one batch handler together: their inbox rows in one statement,
//  the handler once for the fresh ones, under one savepoint. 1 applied (statuses set), 0
//  undone (to be applied one at a time), -1 when the whole batch must be abandoned
static int
s_apply_together (fs_server_t *server, const fs_handler_t *handler, s_item_t **run, size_t n,
                  uint64_t batch)
{
    fs_pg_t *pg = fs_server_pg (server);
    if (s_savepoint (pg, "SAVEPOINT"))
        return -1;
    //  The same id twice in the run: the later ones are duplicates of the first
    zchunk_t *lists [4];
    for (int k = 0; k < 4; k++)
        lists [k] = zchunk_new (NULL, 64 * n);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i && !run [i]->status; j++)
            if (!run [j]->status && streq (run [j]->id, run [i]->id))
                run [i]->status = "duplicate";
        if (run [i]->status)
            continue;
        const fs_envelope_t *env = &run [i]->env;
        fs_pg_array_add (lists [0], env->hdr.id);
        fs_pg_array_add (lists [1], env->hdr.type);
        fs_pg_array_add (lists [2], env->hdr.source);
        fs_pg_array_add (lists [3], env->hdr.correlation_id);
    }
    char sql [384];
    snprintf (sql, sizeof sql,
              "INSERT INTO \"%s\".inbox (msg_id, type, source, correlation_id, outcome)"
              " SELECT i, t, s, c, 'applied' FROM unnest ($1::uuid[], $2::text[], $3::text[],"
              " $4::uuid[]) AS u (i, t, s, c) ON CONFLICT (msg_id) DO NOTHING"
              " RETURNING msg_id::text", fs_server_schema (server));
    const char *values [4];
    for (int k = 0; k < 4; k++)
        values [k] = fs_pg_array_end (lists [k]);
    PGresult *fresh = fs_pg_exec (pg, sql, 4, values);
    for (int k = 0; k < 4; k++)
        zchunk_destroy (&lists [k]);
    fs_inbox_ctx_t **ctxs = (fs_inbox_ctx_t **) zmalloc ((n ? n : 1) * sizeof (fs_inbox_ctx_t *));
    size_t nctx = 0;
    int rc = fresh ? FS_HANDLER_OK : FS_HANDLER_RETRY;
    for (size_t i = 0; fresh && i < n; i++) {
        s_item_t *item = run [i];
        if (item->status)
            continue;
        bool known = true;          //  not inserted now: applied before
        for (int row = 0; row < PQntuples (fresh) && known; row++)
            known = !streq (PQgetvalue (fresh, row, 0), item->id);
        if (known) {
            item->status = "duplicate";
            continue;
        }
        item->ctx = (fs_inbox_ctx_t) { .server = server, .pg = pg, .env = &item->env,
                                       .batch = batch, .result = FS_HANDLER_OK };
        ctxs [nctx++] = &item->ctx;
    }
    PQclear (fresh);
    if (rc == FS_HANDLER_OK && nctx)
        rc = s_batch_fn (handler->type) (ctxs, nctx);
    //  The rejected ones: dead letters, their inbox rows saying so
    for (size_t i = 0; rc == FS_HANDLER_OK && i < nctx; i++) {
        if (ctxs [i]->result != FS_HANDLER_REJECT)
            continue;
        s_item_t *item = (s_item_t *) ((char *) ctxs [i] - offsetof (s_item_t, ctx));
        snprintf (item->code, sizeof item->code, "handler_rejected");
        snprintf (item->reason, sizeof item->reason, "%s",
                  ctxs [i]->reason [0] ? ctxs [i]->reason : "rejected by handler");
        snprintf (sql, sizeof sql, "UPDATE \"%s\".inbox SET outcome = 'rejected'"
                  " WHERE msg_id = $1::uuid", fs_server_schema (server));
        const char *key [1] = { item->id };
        if (fs_pg_run (pg, sql, 1, key)
        ||  s_dead_letter (server, item->id, item->env.hdr.source, item->env.hdr.type,
                           item->code, item->reason, item->body))
            rc = FS_HANDLER_RETRY;
    }
    free (ctxs);
    if (rc == FS_HANDLER_OK && s_savepoint (pg, "RELEASE SAVEPOINT") == 0) {
        for (size_t i = 0; i < n; i++)
            if (!run [i]->status)
                run [i]->status = run [i]->ctx.result == FS_HANDLER_REJECT ? "rejected"
                                                                           : "applied";
        return 1;
    }
    fs_warn ("inbox batch not applied together: one at a time", "type", handler->type,
             "reason", fs_pg_error (pg));
    if (fs_pg_lost (pg) || s_undo (pg))
        return -1;
    for (size_t i = 0; i < n; i++) {
        run [i]->status = NULL;
        run [i]->code [0] = run [i]->reason [0] = 0;
        run [i]->ctx = (fs_inbox_ctx_t) { 0 };
    }
    return 0;
}

//  Applies a run of items whose handler has a batch function: together when more than one,
//  otherwise (or when that fails) one at a time. -1 when the batch must be abandoned
static int
s_apply_run (fs_server_t *server, const fs_handler_t *handler, s_item_t **run, size_t n,
             uint64_t batch)
{
    int rc = n > 1 ? s_apply_together (server, handler, run, n, batch) : 0;
    if (rc)
        return rc < 0 ? -1 : 0;
    for (size_t i = 0; i < n; i++)
        if (!run [i]->status && s_apply (server, run [i], batch))
            return -1;
    return 0;
}

//  An envelope that does not decode: dead-lettered when its header gives an id, so the
//  sender stops; otherwise nothing to acknowledge. -1 when the batch must be abandoned
static int
s_undecodable (fs_server_t *server, s_item_t *item, const fs_proto_error_t *err)
{
    fs_envelope_wire_t hdr = { 0 };
    fs_proto_error_t herr;
    bool have_id = zframe_size (item->body) <= FS_INBOX_MAX_BYTES
                && fs_proto_decode (&fs_envelope_wire_type, zframe_data (item->body),
                                    zframe_size (item->body), &hdr, &herr) == 0;
    snprintf (item->reason, sizeof item->reason, "%s%s%s", err->field,
              err->field [0] ? ": " : "", err->message);
    snprintf (item->code, sizeof item->code, "%s", fs_proto_code_name (err->code));
    fs_warn ("bus envelope rejected", "code", item->code, "reason", item->reason,
             "id", have_id ? hdr.id : NULL);
    int rc = 0;
    if (have_id) {
        snprintf (item->id, sizeof item->id, "%s", hdr.id);
        if (s_item_dead_letter (server, item, hdr.source, hdr.type) == 0)
            item->status = "rejected";
        else
            rc = fs_pg_lost (fs_server_pg (server)) ? -1 : 0;
    }
    fs_proto_clear (&fs_envelope_wire_type, &hdr);
    return rc;
}

//  Reads the envelopes waiting on the bus, up to FS_INBOX_BATCH: the first is there (the
//  loop saw the socket readable), the others only if already queued, never waited for.
//  Returns how many items were filled
static int
s_read_batch (fs_server_t *server, zsock_t *router, s_item_t *items)
{
    int n = 0;
    while (n < FS_INBOX_BATCH && (n == 0 || (zsock_events (router) & ZMQ_POLLIN))) {
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        zframe_t *identity = zmsg_pop (msg);
        zframe_t *body = zmsg_pop (msg);
        if (!identity || !body || zmsg_size (msg) != 0) {
            //  Not the bus protocol (one frame per envelope); nothing to acknowledge
            fs_warn ("bus message with a wrong frame count dropped",
                     "service", fs_server_name (server));
            zframe_destroy (&identity);
            zframe_destroy (&body);
        }
        else {
            items [n] = (s_item_t) { .identity = identity, .body = body };
            n++;
        }
        zmsg_destroy (&msg);
    }
    return n;
}

int
fs_inbox_handle (fs_server_t *server, zsock_t *router)
{
    s_item_t *items = (s_item_t *) calloc (FS_INBOX_BATCH, sizeof (s_item_t));
    assert (items);
    int n = s_read_batch (server, router, items);
    if (n == 0) {
        free (items);
        return 0;
    }
    fs_inbox_metrics_t *counters = fs_server_inbox_metrics (server);
    fs_pg_t *pg = fs_server_pg (server);
    int64_t started = fs_mono_ms ();
    //  Decode all; then one look for ids applied already (a relay re-sends what a busy
    //  consumer had not acknowledged within its retry time): those are acknowledged
    //  duplicates without a statement each
    fs_proto_error_t *errs = (fs_proto_error_t *) calloc ((size_t) n, sizeof (fs_proto_error_t));
    assert (errs);
    zchunk_t *ids = zchunk_new (NULL, 40 * (size_t) n);
    int decoded = 0;
    for (int i = 0; i < n; i++) {
        s_item_t *item = &items [i];
        if (fs_envelope_decode (zframe_data (item->body), zframe_size (item->body),
                                FS_INBOX_MAX_BYTES, &item->env, &errs [i]) == 0) {
            item->decoded = true;
            snprintf (item->id, sizeof item->id, "%s", item->env.hdr.id);
            fs_pg_array_add (ids, item->id);
            decoded++;
        }
    }
    fs_pg_array_end (ids);
    if (decoded) {
        char sql [128];
        snprintf (sql, sizeof sql, "SELECT msg_id::text FROM \"%s\".inbox"
                  " WHERE msg_id = ANY ($1::uuid[])", fs_server_schema (server));
        const char *values [1] = { (const char *) zchunk_data (ids) };
        PGresult *known = fs_pg_exec (pg, sql, 1, values);
        //  Without an answer the INSERT below tells duplicates apart just the same
        for (int row = 0; known && row < PQntuples (known); row++)
            for (int i = 0; i < n; i++)
                if (items [i].decoded && streq (items [i].id, PQgetvalue (known, row, 0)))
                    items [i].status = "duplicate";
        PQclear (known);
    }
    zchunk_destroy (&ids);

    //  One transaction for the batch, one savepoint per envelope, one commit (and one
    //  flush to disk) for all: what lets a consumer keep up with a stream
    bool committed = false;
    static uint64_t s_batches;      //  shared by the process's inboxes: numbers stay unique
    uint64_t batch = __atomic_add_fetch (&s_batches, 1, __ATOMIC_RELAXED);
    if (fs_pg_begin (pg) == 0) {
        s_item_t **run = (s_item_t **) zmalloc (n * sizeof (s_item_t *));
        bool failed = false;
        for (int i = 0; i < n && !failed; i++) {
            s_item_t *item = &items [i];
            if (item->status)
                continue;               //  a known duplicate
            if (!item->decoded) {
                failed = s_undecodable (server, item, &errs [i]) != 0;
                continue;
            }
            const fs_handler_t *handler = s_handler (server, item->env.hdr.type);
            fs_batch_fn *fn = handler ? s_batch_fn (handler->type) : NULL;
            if (!fn) {
                failed = s_apply (server, item, batch) != 0;
                continue;
            }
            //  The run of envelopes that follow with the same batch function (order kept
            //  across runs): a consumer of several interleaved types sets one function for
            //  all of them, or its runs would be of one envelope
            size_t nrun = 0;
            for (; i < n; i++) {
                s_item_t *next = &items [i];
                if (next->status)
                    continue;
                const fs_handler_t *other = next->decoded
                                          ? s_handler (server, next->env.hdr.type) : NULL;
                if (!other || s_batch_fn (other->type) != fn)
                    break;
                run [nrun++] = next;
            }
            i--;                        //  the loop steps past the run's last
            failed = s_apply_run (server, handler, run, nrun, batch) != 0;
        }
        free (run);
        committed = !failed && fs_pg_commit (pg) == 0;
        if (!committed)
            fs_pg_rollback (pg);
    }
    free (errs);
    for (int i = 0; i < n; i++) {
        s_item_t *item = &items [i];
        if (committed && item->status) {
            if (item->ctx.after_commit)
                item->ctx.after_commit (&item->ctx);
            s_ack (router, item->identity, item->id, item->status,
                   item->code [0] ? item->code : NULL, item->reason);
            fs_counter_add (streq (item->status, "applied") ? counters->applied
                          : streq (item->status, "duplicate") ? counters->duplicate
                          : counters->rejected, 1);
            fs_histogram_observe (counters->apply_seconds,
                                  (double) (fs_mono_ms () - started) / 1000.0);
        }
        else
        if (item->decoded || item->id [0]) {
            fs_counter_add (counters->retried, 1);
            fs_warn ("bus envelope not applied yet, sender will retry", "id", item->id,
                     "type", item->decoded ? item->env.hdr.type : NULL,
                     "reason", fs_pg_error (pg));
        }
        if (item->decoded)
            fs_envelope_clear (&item->env);
        zframe_destroy (&item->identity);
        zframe_destroy (&item->body);
    }
    free (items);
    return 0;
}
