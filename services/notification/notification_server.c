/*  notification_server - records what must be told to whom. The foundation slice: every
    referral status change becomes a pending in-app notification to the referral's sender. */
#include "finestra.h"

extern const fs_migration_t notification_migrations[];

static int
s_on_referral_status_changed (fs_inbox_ctx_t *ctx)
{
    const fs_referral_status_changed_t *changed =
        (const fs_referral_status_changed_t *) ctx->env->payload;
    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    char recipient [128];
    snprintf (recipient, sizeof recipient, "sender-of:%s", changed->event_ref);
    const char *values [5] = { id, ctx->env->hdr.id, recipient, changed->referral_id,
                               ctx->env->hdr.correlation_id };
    if (fs_pg_run (ctx->pg,
                   "INSERT INTO notification.notifications"
                   " (id, cause_id, recipient, topic, channel, subject_ref, correlation_id)"
                   " VALUES ($1, $2, $3, 'referral.status_changed', 'inbox', $4, $5)", 5, values))
        return FS_HANDLER_RETRY;
    fs_notification_queued_t queued = { 0 };
    const fs_type_t *type = &fs_notification_queued_type;
    fs_proto_set_str (type, &queued, "notification_id", id);
    fs_proto_set_str (type, &queued, "recipient", recipient);
    fs_proto_set_str (type, &queued, "topic", "referral.status_changed");
    fs_proto_set_str (type, &queued, "channel", "inbox");
    int rc = fs_inbox_emit (ctx, type, &queued);
    fs_proto_clear (type, &queued);
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}

static const fs_handler_t s_handlers [] = {
    { "referral.status_changed", s_on_referral_status_changed },
    { NULL, NULL }
};

const fs_service_t notification_service = {
    .name = "notification",
    .migrations = notification_migrations,
    .handlers = s_handlers,
};
