/*  router_consents - the router's copy of intake's consents (intake.consent_changed), which it
    checks before any data leaves: the latest state of each consent; a change checks the
    person's held referrals again. A withdrawal also reaches the targets that already hold
    data sent under that consent (GDPR art. 7(3) and 19): each is told once,
    referral.consent_withdrawn, on its feed or on the bus; the referral is not cancelled. */
#include "router.h"
#include "router_scope.h"

static fs_counter_t *s_recalls;     //  targets told of a withdrawal (referral.consent_withdrawn)

//  Registers the recall counter (the service's init hook, before /metrics serves). 0
int
router_consents_init (fs_server_t *server)
{
    s_recalls = fs_metrics_counter (fs_server_metrics (server),
        "finestra_router_consent_recalls_total",
        "Targets told that a consent their referral's data was sent under was withdrawn"
        " (referral.consent_withdrawn, on their feed or the bus)", NULL);
    return 0;
}

//  Counts the recalls of a withdrawal once they are committed (after_data: their number)
static void
s_count_recalls (fs_inbox_ctx_t *ctx)
{
    if (s_recalls)
        fs_counter_add (s_recalls, strtoull (ctx->after_data, NULL, 10));
}

// ---- recall: a withdrawal reaches the targets that already hold the data -------------------

#define S_SEP "\x1f"                //  list separator in text results (codes hold no 0x1f)
#define S_PERSON_LOCK "1383351155"  //  'RtCs': first half of the per-person advisory lock

//  The items of sent (S_SEP list) no item of kept names, into out (S_SEP list, "" none)
static void
s_minus (const char *sent, const char *kept, char *out, size_t size)
{
    *out = 0;
    char *copy = strdup (sent);
    for (char *save = NULL, *c = strtok_r (copy, S_SEP, &save); c;
         c = strtok_r (NULL, S_SEP, &save))
        if (!router_list_has (kept, c)) {
            size_t used = strlen (out);
            snprintf (out + used, size - used, "%s%s", used ? S_SEP : "", c);
        }
    free (copy);
}

//  What the target must do, in words (the message's `action`)
static void
s_action (const char *purpose, const char *categories, const char *sent_at, char *out,
          size_t size)
{
    char list [256];
    snprintf (list, sizeof list, "%s", categories);
    for (char *p = list; *p; p++)
        if (*p == S_SEP [0])
            *p = ',';
    snprintf (out, size,
              "The person withdrew the consent (%s) under which this referral's data (%s)"
              " were sent to you%s%.10s. What was done before the withdrawal stays lawful"
              " (GDPR art. 7(3)). Stop processing these data for this purpose and erase what"
              " you do not have to keep on another legal basis (art. 17 and 19). The referral"
              " is not cancelled: whether it goes on, on another basis, is your decision.",
              purpose, list, *sent_at ? " on " : "", sent_at);
}

//  One recall: recorded once (consent_recalls' key), then told to the target: on its feed
//  when it was delivered by feed, on the bus (notification) inside the suite. 1 told,
//  0 told before, -1 database or message error
static int
s_recall_one (fs_inbox_ctx_t *ctx, const fs_consent_changed_t *change, PGresult *rows,
              int row, const char *categories)
{
    const char *id = PQgetvalue (rows, row, 0), *target = PQgetvalue (rows, row, 2);
    const char *correlation = PQgetvalue (rows, row, 3);
    const char *delivery = PQgetvalue (rows, row, 4);
    const char *values [5] = { id, change->consent_id, target, delivery, categories };
    PGresult *result = fs_pg_exec (ctx->pg,
        "INSERT INTO referral_router.consent_recalls (referral_id, consent_id, target,"
        " delivery, categories) VALUES ($1::uuid, $2::uuid, $3, $4,"
        " string_to_array ($5, E'\\x1f')) ON CONFLICT DO NOTHING", 5, values);
    if (!result)
        return -1;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh)
        return 0;
    char sent_at [32] = "", action [1001];
    if (!PQgetisnull (rows, row, 7))
        fs_rfc3339 (atoll (PQgetvalue (rows, row, 7)), sent_at);
    s_action (change->purpose, categories, sent_at, action, sizeof action);

    const fs_type_t *type = &fs_referral_consent_withdrawn_type;
    fs_referral_consent_withdrawn_t recall = { 0 };
    fs_proto_set_str (type, &recall, "referral_id", id);
    fs_proto_set_str (type, &recall, "event_ref", PQgetvalue (rows, row, 1));
    fs_proto_set_str (type, &recall, "target", target);
    fs_proto_set_str (type, &recall, "purpose", change->purpose);
    fs_proto_set_str (type, &recall, "withdrawn_at", ctx->env->hdr.time);
    fs_proto_set_str (type, &recall, "sent_at", *sent_at ? sent_at : NULL);
    fs_proto_set_str (type, &recall, "action", action);
    size_t n = 1;
    for (const char *p = categories; *p; p++)
        n += *p == S_SEP [0];
    recall.data_categories.items = (char **) zmalloc (n * sizeof (char *));
    char *copy = strdup (categories);
    for (char *save = NULL, *c = strtok_r (copy, S_SEP, &save); c;
         c = strtok_r (NULL, S_SEP, &save))
        recall.data_categories.items [recall.data_categories.n++] = strdup (c);
    free (copy);
    recall.present |= 1ull << fs_referral_consent_withdrawn_F_data_categories;

    int rc;
    if (streq (delivery, "feed"))
        rc = router_feed_tell (ctx->pg, id, correlation, ROUTER_FEED_TARGET, type, &recall);
    else {
        //  In the referral's own chain, caused by the withdrawal
        fs_envelope_t chain = { 0 };
        chain.hdr.correlation_id = (char *) correlation;
        chain.hdr.id = ctx->env->hdr.id;
        fs_proto_error_t err = { 0 };
        rc = fs_outbox_emit (ctx->pg, fs_server_schema (ctx->server),
                             fs_server_name (ctx->server), fs_server_routes (ctx->server),
                             type, &recall, &chain, NULL, &err);
        if (rc && err.code != FS_PROTO_OK)
            fs_pg_set_error (ctx->pg, "cannot emit %s: %s", type->wire, err.message);
    }
    fs_proto_clear (type, &recall);
    return rc ? -1 : 1;
}

//  A consent withdrawn: every referral of the person whose package went to a recipient the
//  consent covered, on the basis `consent`, and not cancelled or entered-in-error (whose
//  target was already told to stop using the data), is recalled at its target with the
//  categories sent that no other valid consent of the person covers for that recipient.
//  Inside the handler's transaction. 0 or -1
static int
s_recall (fs_inbox_ctx_t *ctx, const fs_consent_changed_t *change)
{
    const char *values [2] = { change->consent_id, ROUTER_PURPOSE };
    //  As the consent is stored now (an older withdrawal arriving after a newer change
    //  recalls nothing); feeds in name order, as router_feed_append asks
    PGresult *rows = fs_pg_exec (ctx->pg,
        "SELECT r.id, r.event_ref, r.target, r.correlation_id, p.delivery, d.kind,"
        " array_to_string (ARRAY (SELECT x FROM unnest (r.data_categories) WITH ORDINALITY"
        "   AS u (x, i) WHERE x = ANY (c.data_categories) ORDER BY i), E'\\x1f'),"
        " (extract (epoch FROM p.sent_at) * 1000)::bigint,"
        " array_to_string (c.recipients, E'\\x1f')"
        " FROM referral_router.consents c"
        " JOIN referral_router.referrals r ON r.person_id = c.person_id"
        "  AND r.legal_basis = 'consent'"
        " JOIN referral_router.referral_packages p ON p.referral_id = r.id"
        " LEFT JOIN referral_router.services d ON d.code = r.target"
        " WHERE c.consent_id = $1::uuid AND c.status = 'withdrawn' AND c.purpose = $2"
        "  AND r.status NOT IN ('cancelled', 'entered-in-error')"
        "  AND NOT EXISTS (SELECT 1 FROM referral_router.consent_recalls x"
        "   WHERE x.referral_id = r.id AND x.consent_id = c.consent_id)"
        " ORDER BY p.delivery, p.destination, r.id FOR UPDATE OF r", 2, values);
    if (!rows)
        return -1;
    int rc = 0, told = 0;
    for (int row = 0; row < PQntuples (rows) && rc == 0; row++) {
        int kind = PQgetisnull (rows, row, 5) ? -1
                 : router_kind_parse (PQgetvalue (rows, row, 5));
        //  The recipient group routing checked the consent for (router_route.c)
        const char *recipient = router_recipient_of ((router_kind_t) (kind < 0 ? 0 : kind));
        if (!router_list_has (PQgetvalue (rows, row, 8), recipient))
            continue;           //  not a recipient this consent covered
        //  What the person's other valid consents still allow that recipient
        const char *other [4] = { change->person_id, ROUTER_PURPOSE, change->consent_id,
                                  recipient };
        PGresult *kept = fs_pg_exec (ctx->pg,
            "SELECT string_agg (DISTINCT k, E'\\x1f') FROM referral_router.consents o,"
            " unnest (o.data_categories) k WHERE o.person_id = $1::uuid AND o.purpose = $2"
            " AND o.consent_id <> $3::uuid AND o.status = 'granted'"
            " AND (o.expires_at IS NULL OR o.expires_at > now ()) AND $4 = ANY (o.recipients)",
            4, other);
        if (!kept) {
            rc = -1;
            break;
        }
        char categories [256];
        s_minus (PQgetvalue (rows, row, 6),
                 PQgetisnull (kept, 0, 0) ? "" : PQgetvalue (kept, 0, 0), categories,
                 sizeof categories);
        PQclear (kept);
        if (!*categories)
            continue;           //  another consent still covers all that was sent
        int one = s_recall_one (ctx, change, rows, row, categories);
        if (one < 0)
            rc = -1;
        else
            told += one;
    }
    PQclear (rows);
    if (rc == 0 && told) {
        char count [16];
        snprintf (count, sizeof count, "%d", told);
        fs_info ("consent withdrawn: targets holding its data told", "consent",
                 change->consent_id, "referrals", count);
        //  Counted when the handler's transaction commits: a retry must not count twice
        snprintf (ctx->after_data, sizeof ctx->after_data, "%d", told);
        ctx->after_commit = s_count_recalls;
    }
    return rc;
}

int
router_on_consent_changed (fs_inbox_ctx_t *ctx)
{
    const fs_consent_changed_t *change = (const fs_consent_changed_t *) ctx->env->payload;
    zchunk_t *recipients = zchunk_new (NULL, 128);
    zchunk_t *categories = zchunk_new (NULL, 128);
    fs_pg_array (recipients, (const char *const *) change->recipients.items,
                 change->recipients.n);
    fs_pg_array (categories, (const char *const *) change->data_categories.items,
                 change->data_categories.n);
    //  One change of a person's consents at a time (replicas included): two withdrawals
    //  each seeing the other consent still valid would otherwise both recall nothing
    const char *person [1] = { change->person_id };
    if (fs_pg_run (ctx->pg, "SELECT pg_advisory_xact_lock (" S_PERSON_LOCK ","
                            " hashtext ($1))", 1, person))
        return FS_HANDLER_RETRY;
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
    if (rc == 0 && streq (change->status, "withdrawn"))
        rc = s_recall (ctx, change);
    return rc ? FS_HANDLER_RETRY : FS_HANDLER_OK;
}
