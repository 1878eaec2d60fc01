/*  benefits_office_server - the Benefits Office. The foundation runs it as a skeleton (stores,
    bus, relay, HTTP); so far it only records the applications intake received. */
#include "finestra.h"

extern const fs_migration_t benefits_office_migrations[];
/* benefits_office_applications.c */
int benefits_office_on_application (fs_inbox_ctx_t *ctx);

static const fs_handler_t s_handlers [] = {
    { "intake.benefit_application_received", benefits_office_on_application },
    { NULL, NULL }
};

const fs_service_t benefits_office_service = {
    .name = "benefits-office",
    .migrations = benefits_office_migrations,
    .handlers = s_handlers,
};
