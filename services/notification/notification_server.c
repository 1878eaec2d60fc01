/*  notification_server - records what must be told to whom: every referral status change
    (to the referral's sender), every referral delivered inside the suite (to the target
    service), every orientation (to the person) and every consent withdrawal that reaches a
    target inside the suite (to that service) becomes a pending in-app notification.
    Envelopes waiting together are recorded together, whatever their types (s_record_batch):
    their notifications in one statement, what reporting is told in another. */
#include "finestra.h"

extern const fs_migration_t notification_migrations[];

#define S_RECIPIENT_MAX 128         //  notification.queued's recipient

//  Who an envelope tells: up to S_TOLD_MAX recipients, about subject_ref
#define S_TOLD_MAX 8
typedef struct {
    size_t n;
    char recipient [S_TOLD_MAX][S_RECIPIENT_MAX + 1];
    const char *subject_ref;
} s_told_t;

//  Adds a recipient; false when it does not fit (the envelope is rejected with why)
static bool
s_tell (fs_inbox_ctx_t *ctx, s_told_t *told, const char *prefix, const char *ref)
{
    int len = snprintf (told->n < S_TOLD_MAX ? told->recipient [told->n] : NULL,
                        told->n < S_TOLD_MAX ? sizeof told->recipient [0] : 0,
                        "%s%s", prefix, ref);
    if (told->n >= S_TOLD_MAX || len > S_RECIPIENT_MAX) {
        snprintf (ctx->reason, sizeof ctx->reason, "%s",
                  told->n >= S_TOLD_MAX ? "more than 8 recipients"
                                        : "recipient longer than 128 characters");
        return false;
    }
    told->n++;
    return true;
}

//  Whom one envelope tells, by its type; false (reason set) when it can never be recorded
static bool
s_whom (fs_inbox_ctx_t *ctx, s_told_t *told)
{
    const char *type = ctx->env->hdr.type;
    const void *payload = ctx->env->payload;
    told->n = 0;
    if (streq (type, "referral.status_changed")) {
        //  To the referral's sender
        const fs_referral_status_changed_t *changed =
            (const fs_referral_status_changed_t *) payload;
        told->subject_ref = changed->referral_id;
        return s_tell (ctx, told, "sender-of:", changed->event_ref);
    }
    if (streq (type, "referral.requested")) {
        //  Delivered inside the suite: the target centre's professionals
        const fs_referral_package_t *package = (const fs_referral_package_t *) payload;
        told->subject_ref = package->referral_id;
        return s_tell (ctx, told, "service:", package->target);
    }
    if (streq (type, "referral.orientation_given")) {
        //  The person is told where to go and why
        const fs_orientation_given_t *given = (const fs_orientation_given_t *) payload;
        told->subject_ref = given->referral_id;
        return s_tell (ctx, told, "person:",
                       FS_PRESENT (given, fs_orientation_given_F_person_id) ? given->person_id
                                                                            : given->event_ref);
    }
    if (streq (type, "referral.overdue")) {
        //  Not accepted in time: the target centre's management and the sender
        const fs_referral_overdue_t *overdue = (const fs_referral_overdue_t *) payload;
        told->subject_ref = overdue->referral_id;
        for (size_t i = 0; i < overdue->escalate_to.n; i++)
            if (!s_tell (ctx, told, "", overdue->escalate_to.items [i]))
                return false;
        return true;
    }
    if (streq (type, "referral.consent_withdrawn")) {
        //  Data that reached a service inside the suite under a consent now withdrawn: its
        //  professionals are told to stop processing them for that purpose
        const fs_referral_consent_withdrawn_t *recall =
            (const fs_referral_consent_withdrawn_t *) payload;
        told->subject_ref = recall->referral_id;
        return s_tell (ctx, told, "service:", recall->target);
    }
    snprintf (ctx->reason, sizeof ctx->reason, "no notification for %s", type);
    return false;
}

//  Records n envelopes' pending in-app notifications, one per envelope and recipient (topic
//  the envelope's type), in one statement, and tells reporting each is queued (one more).
//  An envelope that can never be recorded is marked rejected and the others kept.
//  FS_HANDLER_OK, or _RETRY (nothing kept: the inbox undoes the run)
static int
s_record_batch (fs_inbox_ctx_t **ctxs, size_t n)
{
    fs_inbox_ctx_t *first = ctxs [0];
    s_told_t *told = (s_told_t *) zmalloc (n * sizeof (s_told_t));
    zchunk_t *lists [6];
    for (int k = 0; k < 6; k++)
        lists [k] = zchunk_new (NULL, 64 * n);
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        ctxs [i]->result = FS_HANDLER_OK;
        if (!s_whom (ctxs [i], &told [i])) {
            ctxs [i]->result = FS_HANDLER_REJECT;
            continue;
        }
        const fs_envelope_t *env = ctxs [i]->env;
        for (size_t r = 0; r < told [i].n; r++, rows++) {
            char id [FS_UUID_LEN + 1];
            fs_uuid (id);
            fs_pg_array_add (lists [0], id);
            fs_pg_array_add (lists [1], env->hdr.id);
            fs_pg_array_add (lists [2], told [i].recipient [r]);
            fs_pg_array_add (lists [3], env->hdr.type);
            fs_pg_array_add (lists [4], told [i].subject_ref);
            fs_pg_array_add (lists [5], env->hdr.correlation_id);
        }
    }
    const char *values [6];
    for (int k = 0; k < 6; k++)
        values [k] = fs_pg_array_end (lists [k]);
    //  A recipient named twice by one envelope is told once (the constraint of 002); the
    //  rows come back in the arrays' order, which is the order reporting is told in
    PGresult *result = rows == 0 ? NULL : fs_pg_exec (first->pg,
        "WITH added AS (INSERT INTO notification.notifications"
        " (id, cause_id, recipient, topic, channel, subject_ref, correlation_id)"
        " SELECT i, c, r, t, 'inbox', s, k FROM unnest ($1::uuid[], $2::uuid[], $3::text[],"
        " $4::text[], $5::text[], $6::uuid[]) WITH ORDINALITY AS u (i, c, r, t, s, k, o)"
        " ORDER BY o ON CONFLICT (cause_id, recipient) DO NOTHING RETURNING id, cause_id)"
        " SELECT added.id::text, u.o FROM added JOIN unnest ($1::uuid[]) WITH ORDINALITY"
        " AS u (i, o) ON u.i = added.id ORDER BY u.o", 6, values);
    for (int k = 0; k < 6; k++)
        zchunk_destroy (&lists [k]);
    int rc = rows == 0 || result ? FS_HANDLER_OK : FS_HANDLER_RETRY;
    size_t nrows = result ? (size_t) PQntuples (result) : 0;
    fs_notification_queued_t *queued = (fs_notification_queued_t *)
        zmalloc ((nrows ? nrows : 1) * sizeof (fs_notification_queued_t));
    fs_outbox_item_t *items = (fs_outbox_item_t *)
        zmalloc ((nrows ? nrows : 1) * sizeof (fs_outbox_item_t));
    //  Row o (1-based) of the arrays: envelope i, recipient r
    size_t i = 0, o = 1;
    const fs_type_t *type = &fs_notification_queued_type;
    for (size_t row = 0; rc == FS_HANDLER_OK && row < nrows; row++) {
        size_t want = (size_t) atol (PQgetvalue (result, (int) row, 1));
        for (; i < n; i++) {
            if (ctxs [i]->result == FS_HANDLER_REJECT)
                continue;
            if (want < o + told [i].n)
                break;
            o += told [i].n;
        }
        if (i == n) {               //  a row no envelope asked for: cannot happen
            fs_pg_set_error (first->pg, "notification row %zu not asked for", want);
            rc = FS_HANDLER_RETRY;
            break;
        }
        size_t r = want - o;
        fs_proto_set_str (type, &queued [row], "notification_id",
                          PQgetvalue (result, (int) row, 0));
        fs_proto_set_str (type, &queued [row], "recipient", told [i].recipient [r]);
        fs_proto_set_str (type, &queued [row], "topic", ctxs [i]->env->hdr.type);
        fs_proto_set_str (type, &queued [row], "channel", "inbox");
        items [row] = (fs_outbox_item_t) { type, &queued [row], ctxs [i]->env };
    }
    PQclear (result);
    fs_server_t *server = first->server;
    fs_proto_error_t err;
    if (rc == FS_HANDLER_OK && nrows
    &&  fs_outbox_emit_many (first->pg, fs_server_schema (server), fs_server_name (server),
                             fs_server_routes (server), items, nrows, &err)) {
        if (err.code != FS_PROTO_OK)
            fs_pg_set_error (first->pg, "cannot emit: %s", err.message);
        rc = FS_HANDLER_RETRY;
    }
    for (size_t row = 0; row < nrows; row++)
        fs_proto_clear (type, &queued [row]);
    free (queued);
    free (items);
    free (told);
    if (rc != FS_HANDLER_OK)
        fs_warn ("notifications not recorded", "reason", fs_pg_error (first->pg));
    return rc;
}

//  One envelope (the inbox's one-at-a-time path): a batch of one
static int
s_record (fs_inbox_ctx_t *ctx)
{
    int rc = s_record_batch (&ctx, 1);
    return rc == FS_HANDLER_OK && ctx->result == FS_HANDLER_REJECT ? FS_HANDLER_REJECT : rc;
}

static const fs_handler_t s_handlers [] = {
    { "referral.status_changed", s_record },
    { "referral.overdue",        s_record },
    { "referral.requested",      s_record },
    { "referral.orientation_given", s_record },
    { "referral.consent_withdrawn", s_record },
    { NULL, NULL }
};

//  Every type's envelopes are recorded together, one run for all types
static int
s_init (fs_server_t *server)
{
    (void) server;
    for (const fs_handler_t *handler = s_handlers; handler->type; handler++)
        if (fs_inbox_batch_set (handler->type, s_record_batch))
            return -1;
    return 0;
}

const fs_service_t notification_service = {
    .name = "notification",
    .migrations = notification_migrations,
    .handlers = s_handlers,
    .init = s_init,
};
