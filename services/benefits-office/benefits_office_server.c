/*  benefits_office_server - the Benefits Office. The foundation runs it as a skeleton (stores,
    bus, relay, HTTP) with no handlers yet: its capability is a later issue. */
#include "finestra.h"

extern const fs_migration_t benefits_office_migrations[];

static const fs_handler_t s_handlers [] = { { NULL, NULL } };

const fs_service_t benefits_office_service = {
    .name = "benefits-office",
    .migrations = benefits_office_migrations,
    .handlers = s_handlers,
};
