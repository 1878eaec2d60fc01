/*  reporting_server - counts every domain event it receives. PostgreSQL holds the counts;
    Redis holds a live copy (hash <prefix>event_counts) that `rebuild-redis` remakes. */
#include "finestra.h"

extern const fs_migration_t reporting_migrations[];

//  after_data: "<type>\t<count>", written by the handler from the committed row
static void
s_publish_count (fs_inbox_ctx_t *ctx)
{
    char *tab = strchr (ctx->after_data, '\t');
    if (!tab)
        return;
    *tab = 0;
    char key [128];
    snprintf (key, sizeof key, "%sevent_counts", fs_server_config (ctx->server)->redis_prefix);
    //  A set, not an increment: replaying it cannot over-count
    redisReply *reply = fs_redis_command (fs_server_redis (ctx->server), "HSET %s %s %s",
                                          key, ctx->after_data, tab + 1);
    if (reply)
        freeReplyObject (reply);
    else
        fs_warn ("live counter not updated (rebuild-redis repairs it)",
                 "reason", fs_redis_error (fs_server_redis (ctx->server)));
}

//  Counts a run of envelopes (the inbox's batch; their types interleave): one upsert adds
//  each type's number, and the run's last envelope of each type publishes that type's
//  committed count (s_publish_count). FS_HANDLER_OK, or _RETRY
static int
s_count_batch (fs_inbox_ctx_t **ctxs, size_t n)
{
    zchunk_t *types = zchunk_new (NULL, 32 * n);
    for (size_t i = 0; i < n; i++) {
        ctxs [i]->result = FS_HANDLER_OK;
        fs_pg_array_add (types, ctxs [i]->env->hdr.type);
    }
    const char *values [1] = { fs_pg_array_end (types) };
    //  In the types' order, so that two counting at once take the rows' locks alike
    PGresult *result = fs_pg_exec (ctxs [0]->pg,
        "INSERT INTO reporting.event_counts (type, count)"
        " SELECT t, count(*) FROM unnest ($1::text[]) AS u (t) GROUP BY t ORDER BY t"
        " ON CONFLICT (type) DO UPDATE SET count = reporting.event_counts.count + EXCLUDED.count"
        " RETURNING type, count", 1, values);
    zchunk_destroy (&types);
    if (!result)
        return FS_HANDLER_RETRY;
    for (int row = 0; row < PQntuples (result); row++) {
        const char *type = PQgetvalue (result, row, 0);
        size_t last = n;
        while (last > 0 && !streq (ctxs [last - 1]->env->hdr.type, type))
            last--;
        if (last == 0)
            continue;               //  not asked for: cannot happen
        fs_inbox_ctx_t *ctx = ctxs [last - 1];
        snprintf (ctx->after_data, sizeof ctx->after_data, "%s\t%s", type,
                  PQgetvalue (result, row, 1));
        ctx->after_commit = s_publish_count;
    }
    PQclear (result);
    return FS_HANDLER_OK;
}

//  One envelope (the inbox's one-at-a-time path): a run of one
static int
s_count (fs_inbox_ctx_t *ctx)
{
    return s_count_batch (&ctx, 1);
}

//  rebuild-redis: remakes the live counters from PostgreSQL
static int
s_command (fs_server_t *server, int argc, char **argv)
{
    if (!streq (argv [0], "rebuild-redis"))
        return -1;
    PGresult *result = fs_pg_exec (fs_server_pg (server),
                                   "SELECT type, count FROM reporting.event_counts", 0, NULL);
    if (!result) {
        fprintf (stderr, "cannot read counts: %s\n", fs_pg_error (fs_server_pg (server)));
        return 1;
    }
    char key [128];
    snprintf (key, sizeof key, "%sevent_counts", fs_server_config (server)->redis_prefix);
    fs_redis_t *redis = fs_server_redis (server);
    redisReply *reply = fs_redis_command (redis, "DEL %s", key);
    int rc = reply ? 0 : 1;
    if (reply)
        freeReplyObject (reply);
    for (int i = 0; rc == 0 && i < PQntuples (result); i++) {
        reply = fs_redis_command (redis, "HSET %s %s %s", key, PQgetvalue (result, i, 0),
                                  PQgetvalue (result, i, 1));
        rc = reply ? 0 : 1;
        if (reply)
            freeReplyObject (reply);
    }
    if (rc)
        fprintf (stderr, "cannot write Redis: %s\n", fs_redis_error (redis));
    else
        printf ("rebuilt %s: %d types\n", key, PQntuples (result));
    PQclear (result);
    return rc;
}

static const fs_handler_t s_handlers [] = {
    { "intake.referral_requested", s_count },
    { "referral.status_changed",   s_count },
    { "referral.overdue",          s_count },
    { "referral.orientation_given", s_count },
    { "referral.consent_withdrawn", s_count },
    { "notification.queued",       s_count },
    { "intake.case_opened",        s_count },
    { "intake.person_merged",      s_count },
    { "intake.person_unmerged",    s_count },
    { "intake.case_placed",        s_count },
    { "intake.consent_changed",    s_count },
    { "intake.benefit_application_received", s_count },
    { NULL, NULL }
};

//  Every type is counted a run at a time (runs mix them: they arrive interleaved)
static int
s_init (fs_server_t *server)
{
    (void) server;
    for (const fs_handler_t *handler = s_handlers; handler->type; handler++)
        if (fs_inbox_batch_set (handler->type, s_count_batch))
            return -1;
    return 0;
}

const fs_service_t reporting_service = {
    .name = "reporting",
    .init = s_init,
    .migrations = reporting_migrations,
    .handlers = s_handlers,
    .command = s_command,
};
