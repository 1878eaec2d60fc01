/*  router_consents - the router's copy of intake's consents (intake.consent_changed), which it
    checks before any data leaves: the latest state of each consent; a change checks the
    person's held referrals again. */
#include "router.h"

//  Appends a PostgreSQL array literal of list to chunk: {"a","b"}
static void
s_array (zchunk_t *chunk, const fs_strlist_t *list)
{
    zchunk_extend (chunk, "{", 1);
    for (size_t i = 0; i < list->n; i++) {
        zchunk_extend (chunk, i ? ",\"" : "\"", i ? 2 : 1);
        for (const char *p = list->items [i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                zchunk_extend (chunk, "\\", 1);
            zchunk_extend (chunk, p, 1);
        }
        zchunk_extend (chunk, "\"", 1);
    }
    zchunk_extend (chunk, "}", 2);          //  with the NUL
}

int
router_on_consent_changed (fs_inbox_ctx_t *ctx)
{
    const fs_consent_changed_t *change = (const fs_consent_changed_t *) ctx->env->payload;
    zchunk_t *recipients = zchunk_new (NULL, 128);
    zchunk_t *categories = zchunk_new (NULL, 128);
    s_array (recipients, &change->recipients);
    s_array (categories, &change->data_categories);
    const char *values [8] = { change->consent_id, change->person_id, change->status,
                               change->purpose, (const char *) zchunk_data (recipients),
                               (const char *) zchunk_data (categories), change->expires_at,
                               ctx->env->hdr.time };
    //  A withdrawal carries no lists: it keeps those of the grant. An older change arriving
    //  after a newer one (a re-send) does not undo it
    int rc = fs_pg_run (ctx->pg,
        "INSERT INTO referral_router.consents AS c (consent_id, person_id, status, purpose,"
        " recipients, data_categories, expires_at, updated)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (consent_id) DO UPDATE SET person_id = EXCLUDED.person_id,"
        "  status = EXCLUDED.status, purpose = EXCLUDED.purpose,"
        "  recipients = CASE WHEN cardinality (EXCLUDED.recipients) > 0"
        "               THEN EXCLUDED.recipients ELSE c.recipients END,"
        "  data_categories = CASE WHEN cardinality (EXCLUDED.data_categories) > 0"
        "                    THEN EXCLUDED.data_categories ELSE c.data_categories END,"
        "  expires_at = coalesce (EXCLUDED.expires_at, c.expires_at), updated = EXCLUDED.updated"
        " WHERE c.updated <= EXCLUDED.updated", 8, values);
    zchunk_destroy (&recipients);
    zchunk_destroy (&categories);
    //  Referrals held for this person's consent are checked again at once: a grant releases
    //  them, a withdrawal keeps them held (and nothing more is sent)
    if (rc == 0)
        rc = router_route_recheck (ctx->server, ctx->pg, change->person_id, ctx->env);
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}
