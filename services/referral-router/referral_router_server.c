/*  referral_router_server - records referrals intake asks for and tells who needs to know.
    The foundation slice: a request becomes a referral in status `requested`. */
#include "router.h"

extern const fs_migration_t referral_router_migrations[];
/* router_consents.c */
int router_on_consent_changed (fs_inbox_ctx_t *ctx);

static int
s_on_referral_requested (fs_inbox_ctx_t *ctx)
{
    const fs_referral_requested_t *request = (const fs_referral_requested_t *) ctx->env->payload;
    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    const char *values [6] = { id, request->event_ref, request->source, request->event_type,
                               request->urgency, ctx->env->hdr.correlation_id };
    PGresult *result = fs_pg_exec (ctx->pg,
        "INSERT INTO referral_router.referrals"
        " (id, event_ref, source, event_type, urgency, status, correlation_id)"
        " VALUES ($1, $2, $3, $4, $5, 'requested', $6) ON CONFLICT (event_ref) DO NOTHING",
        6, values);
    if (!result)
        return FS_HANDLER_RETRY;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh)
        return FS_HANDLER_OK;       //  the same request again under another id: one referral
    fs_referral_status_changed_t changed = { 0 };
    const fs_type_t *type = &fs_referral_status_changed_type;
    fs_proto_set_str (type, &changed, "referral_id", id);
    fs_proto_set_str (type, &changed, "event_ref", request->event_ref);
    fs_proto_set_str (type, &changed, "status", "requested");
    fs_proto_set_str (type, &changed, "previous", "draft");
    int rc = fs_inbox_emit (ctx, type, &changed);
    fs_proto_clear (type, &changed);
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}

static int
s_init (fs_server_t *server)
{
    return router_feed_init (server) || router_deadline_init (server) ? -1 : 0;
}

//  The feed endpoint and the deadline timer
static int
s_start (fs_server_t *server)
{
    return router_feed_start (server) || router_deadline_start (server) ? -1 : 0;
}

static void
s_stop (fs_server_t *server)
{
    router_deadline_stop (server);
    router_feed_stop (server);
}

static const fs_handler_t s_handlers [] = {
    { "intake.referral_requested", s_on_referral_requested },
    { "intake.consent_changed",    router_on_consent_changed },
    { NULL, NULL }
};

static int
s_command (fs_server_t *server, int argc, char **argv)
{
    if (streq (argv [0], "load-directory"))
        return router_directory_load (server, argc, argv);
    if (streq (argv [0], "map-zcode"))
        return router_directory_map_zcodes (server, argc, argv);
    if (streq (argv [0], "find-services"))
        return router_directory_find_services (server, argc, argv);
    if (streq (argv [0], "transition"))
        return router_referral_command (server, argc, argv);
    if (streq (argv [0], "sender-feed"))
        return router_feed_command (server, argc, argv);
    if (streq (argv [0], "escalate-overdue"))
        return router_deadline_command (server, argc, argv);
    return -1;
}

const fs_service_t referral_router_service = {
    .name = "referral-router",
    .migrations = referral_router_migrations,
    .handlers = s_handlers,
    .init = s_init,
    .start = s_start,
    .stop = s_stop,
    .command = s_command,
};
