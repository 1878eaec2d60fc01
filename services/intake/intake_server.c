/*  intake_server - intake's service: its hooks (init, start, stop) and commands. */
#include "intake.h"

static int
s_init (fs_server_t *server)
{
    return intake_ingest_init (server);
}

static int
s_command (fs_server_t *server, int argc, char **argv)
{
    if (streq (argv [0], "load-territory"))
        return intake_territory_load (server, argc, argv);
    return -1;
}

static const fs_handler_t s_handlers [] = { { NULL, NULL } };

const fs_service_t intake_service = {
    .name = "intake",
    .migrations = intake_migrations,
    .handlers = s_handlers,
    .init = s_init,
    .start = intake_ingest_start,
    .stop = intake_ingest_stop,
    .command = s_command,
};
