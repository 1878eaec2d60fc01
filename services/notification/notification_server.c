/*  notification_server - records what must be told to whom: every referral status change
    (to the referral's sender), every referral delivered inside the suite (to the target
    service), every orientation (to the person) and every consent withdrawal that reaches a
    target inside the suite (to that service) becomes a pending in-app notification. */
#include "finestra.h"

extern const fs_migration_t notification_migrations[];

//  Records one pending in-app notification about subject_ref for recipient, topic the
//  envelope's type, and tells reporting it is queued
static int
s_record (fs_inbox_ctx_t *ctx, const char *recipient, const char *subject_ref)
{
    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    const char *topic = ctx->env->hdr.type;
    const char *values [6] = { id, ctx->env->hdr.id, recipient, subject_ref,
                               ctx->env->hdr.correlation_id, topic };
    if (fs_pg_run (ctx->pg,
                   "INSERT INTO notification.notifications"
                   " (id, cause_id, recipient, topic, channel, subject_ref, correlation_id)"
                   " VALUES ($1, $2, $3, $6, 'inbox', $4, $5)", 6, values))
        return FS_HANDLER_RETRY;
    fs_notification_queued_t queued = { 0 };
    const fs_type_t *type = &fs_notification_queued_type;
    fs_proto_set_str (type, &queued, "notification_id", id);
    fs_proto_set_str (type, &queued, "recipient", recipient);
    fs_proto_set_str (type, &queued, "topic", topic);
    fs_proto_set_str (type, &queued, "channel", "inbox");
    int rc = fs_inbox_emit (ctx, type, &queued);
    fs_proto_clear (type, &queued);
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}

static int
s_on_referral_status_changed (fs_inbox_ctx_t *ctx)
{
    const fs_referral_status_changed_t *changed =
        (const fs_referral_status_changed_t *) ctx->env->payload;
    char recipient [128];
    snprintf (recipient, sizeof recipient, "sender-of:%s", changed->event_ref);
    return s_record (ctx, recipient, changed->referral_id);
}

//  A referral delivered inside the suite: the target centre's professionals are told
static int
s_on_referral_requested (fs_inbox_ctx_t *ctx)
{
    const fs_referral_package_t *package = (const fs_referral_package_t *) ctx->env->payload;
    char recipient [128];
    snprintf (recipient, sizeof recipient, "service:%s", package->target);
    return s_record (ctx, recipient, package->referral_id);
}

//  Orientation: the person is told where to go and why
static int
s_on_orientation_given (fs_inbox_ctx_t *ctx)
{
    const fs_orientation_given_t *given = (const fs_orientation_given_t *) ctx->env->payload;
    char recipient [128];
    snprintf (recipient, sizeof recipient, "person:%s",
              FS_PRESENT (given, fs_orientation_given_F_person_id) ? given->person_id
                                                                   : given->event_ref);
    return s_record (ctx, recipient, given->referral_id);
}

//  A referral not accepted in time: the target centre's management and the sender are told
static int
s_on_referral_overdue (fs_inbox_ctx_t *ctx)
{
    const fs_referral_overdue_t *overdue = (const fs_referral_overdue_t *) ctx->env->payload;
    for (size_t i = 0; i < overdue->escalate_to.n; i++) {
        int rc = s_record (ctx, overdue->escalate_to.items [i], overdue->referral_id);
        if (rc != FS_HANDLER_OK)
            return rc;
    }
    return FS_HANDLER_OK;
}

//  A consent withdrawn under which a referral's data reached a service inside the suite:
//  the target centre's professionals are told to stop processing them for that purpose
static int
s_on_referral_consent_withdrawn (fs_inbox_ctx_t *ctx)
{
    const fs_referral_consent_withdrawn_t *recall =
        (const fs_referral_consent_withdrawn_t *) ctx->env->payload;
    char recipient [128];
    snprintf (recipient, sizeof recipient, "service:%s", recall->target);
    return s_record (ctx, recipient, recall->referral_id);
}

static const fs_handler_t s_handlers [] = {
    { "referral.status_changed", s_on_referral_status_changed },
    { "referral.overdue",        s_on_referral_overdue },
    { "referral.requested",      s_on_referral_requested },
    { "referral.orientation_given", s_on_orientation_given },
    { "referral.consent_withdrawn", s_on_referral_consent_withdrawn },
    { NULL, NULL }
};

const fs_service_t notification_service = {
    .name = "notification",
    .migrations = notification_migrations,
    .handlers = s_handlers,
};
