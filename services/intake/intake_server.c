/*  intake_server - intake's service: its hooks (init, start, stop) and commands. */
#include "intake.h"

static int
s_init (fs_server_t *server)
{
    return intake_ingest_init (server) || intake_process_init (server) ? -1 : 0;
}

//  The processor starts after the ingest socket; it stops first, rolling back what it was
//  doing (those events stay unprocessed and are claimed again)
static int
s_start (fs_server_t *server)
{
    return intake_ingest_start (server) || intake_process_start (server) ? -1 : 0;
}

static void
s_stop (fs_server_t *server)
{
    intake_process_stop (server);
    intake_ingest_stop (server);
}

static int
s_command (fs_server_t *server, int argc, char **argv)
{
    if (streq (argv [0], "load-territory"))
        return intake_territory_load (server, argc, argv);
    return intake_admin_command (server, argc, argv);
}

static const fs_handler_t s_handlers [] = { { NULL, NULL } };

const fs_service_t intake_service = {
    .name = "intake",
    .migrations = intake_migrations,
    .handlers = s_handlers,
    .init = s_init,
    .start = s_start,
    .stop = s_stop,
    .command = s_command,
};
