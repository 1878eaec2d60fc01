/*  referral_router_server - routes the referrals intake asks for (router_route.c), keeps the
    consents it checks, and runs the operators' commands. */
#include "router.h"

extern const fs_migration_t referral_router_migrations[];
/* router_consents.c */
int router_on_consent_changed (fs_inbox_ctx_t *ctx);
int router_consents_init (fs_server_t *server);

static int
s_init (fs_server_t *server)
{
    return router_route_init (server) || router_feed_init (server)
        || router_deadline_init (server) || router_consents_init (server) ? -1 : 0;
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
    { "intake.referral_requested", router_on_referral_requested },
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
    if (streq (argv [0], "override-consent"))
        return router_override_command (server, argc, argv);
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
