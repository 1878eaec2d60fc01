/*  benefits_office_applications - records each benefit application intake received
    (intake.benefit_application_received). Minimal: assessing applications is a later issue. */
#include "finestra.h"

int
benefits_office_on_application (fs_inbox_ctx_t *ctx)
{
    const fs_benefit_application_received_t *application =
        (const fs_benefit_application_received_t *) ctx->env->payload;
    const char *values [5] = { application->event_ref, application->person_id,
                               application->case_id, application->source,
                               ctx->env->hdr.correlation_id };
    //  The same application under another envelope id: one row
    int rc = fs_pg_run (ctx->pg,
        "INSERT INTO benefits_office.applications"
        " (event_ref, person_id, case_id, source, correlation_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_ref) DO NOTHING", 5, values);
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}
