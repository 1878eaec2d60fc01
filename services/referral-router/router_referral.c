/*  router_referral - moves a referral through its lifecycle: the transition table decides,
    the row, its history and the referral.status_changed event change in one transaction. */
#include "router.h"

int
router_referral_transition (fs_server_t *server, const char *referral_id, router_status_t to,
                            router_actor_t actor, const char *reason_code,
                            const char *reason_text, char *err, size_t errlen)
{
    return router_referral_transition_on (server, fs_server_pg (server), referral_id, to, actor,
                                          reason_code, reason_text, err, errlen);
}

int
router_referral_transition_on (fs_server_t *server, fs_pg_t *pg, const char *referral_id,
                               router_status_t to, router_actor_t actor,
                               const char *reason_code, const char *reason_text, char *err,
                               size_t errlen)
{
    assert (server && pg && referral_id && err);
    err [0] = 0;
    //  The row locked: two changes to one referral are decided one after the other
    const char *key [1] = { referral_id };
    PGresult *result = fs_pg_exec (pg, "SELECT status, event_ref, correlation_id"
                                       " FROM referral_router.referrals"
                                       " WHERE id = $1::uuid FOR UPDATE", 1, key);
    if (!result) {
        snprintf (err, errlen, "%s", fs_pg_error (pg));
        return -1;
    }
    if (PQntuples (result) == 0) {
        PQclear (result);
        snprintf (err, errlen, "no referral %s", referral_id);
        return ROUTER_REFERRAL_UNKNOWN;
    }
    char event_ref [128], correlation [FS_UUID_LEN + 1];
    snprintf (event_ref, sizeof event_ref, "%s", PQgetvalue (result, 0, 1));
    snprintf (correlation, sizeof correlation, "%s", PQgetvalue (result, 0, 2));
    int from = router_status_parse (PQgetvalue (result, 0, 0));
    PQclear (result);
    if (from < 0) {
        snprintf (err, errlen, "referral %s is in an unknown status", referral_id);
        return ROUTER_TX_UNKNOWN_STATUS;
    }
    bool given = reason_code && *reason_code;
    router_tx_result_t check = router_transition_check ((router_status_t) from, to, actor,
                                                        reason_code, reason_text, err, errlen);
    if (check != ROUTER_TX_OK)
        return check;
    const router_reason_t *reason = given ? router_reason_find (reason_code) : NULL;
    bool has_text = reason_text && *reason_text;
    const char *values [7] = {
        referral_id, router_status_name ((router_status_t) from), router_status_name (to),
        router_actor_name (actor), reason ? reason->code : NULL, has_text ? reason_text : NULL,
        reason && reason->inappropriate ? "true" : "false"
    };
    const char *row [5] = { values [0], values [1], values [2], values [4], values [5] };
    if (fs_pg_run (pg, "UPDATE referral_router.referrals SET status = $3, reason_code = $4,"
                       " reason_text = $5, updated_at = now () WHERE id = $1::uuid"
                       " AND status = $2", 5, row)
    ||  fs_pg_run (pg, "INSERT INTO referral_router.referral_transitions (referral_id,"
                       " from_status, to_status, actor, reason_code, reason_text, inappropriate)"
                       " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::boolean)", 7, values)) {
        snprintf (err, errlen, "%s", fs_pg_error (pg));
        return -1;
    }
    //  The sender learns every change (closed loop); the chain keeps its correlation
    fs_referral_status_changed_t changed = { 0 };
    const fs_type_t *type = &fs_referral_status_changed_type;
    fs_proto_set_str (type, &changed, "referral_id", referral_id);
    fs_proto_set_str (type, &changed, "event_ref", event_ref);
    fs_proto_set_str (type, &changed, "status", values [2]);
    fs_proto_set_str (type, &changed, "previous", values [1]);
    fs_proto_set_str (type, &changed, "actor", values [3]);
    if (reason) {
        char words [1001];
        snprintf (words, sizeof words, "%s", has_text ? reason_text : reason->meaning);
        fs_proto_set_str (type, &changed, "reason_code", reason->code);
        fs_proto_set_str (type, &changed, "reason", words);
    }
    fs_envelope_t cause = { 0 };
    cause.hdr.correlation_id = correlation;
    fs_proto_error_t perr;
    int rc = fs_outbox_emit (pg, fs_server_schema (server), fs_server_name (server),
                             fs_server_routes (server), type, &changed, &cause, NULL, &perr);
    //  External systems are told on their feeds: the sender of every change, the target of
    //  the requester's (a cancellation must reach whoever holds the data)
    if (rc == 0) {
        int whom = ROUTER_FEED_SENDER | (actor == ROUTER_ACTOR_REQUESTER ? ROUTER_FEED_TARGET : 0);
        if (router_feed_tell (pg, referral_id, correlation, whom, type, &changed)) {
            fs_proto_clear (type, &changed);
            snprintf (err, errlen, "cannot append to the feeds: %s", fs_pg_error (pg));
            return -1;
        }
    }
    fs_proto_clear (type, &changed);
    if (rc) {
        snprintf (err, errlen, "cannot emit: %s", *perr.message ? perr.message : fs_pg_error (pg));
        return -1;
    }
    return ROUTER_TX_OK;
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: finestra-referral-router transition REFERRAL_ID STATUS"
                     " --as requester|target [--reason CODE] [--text TEXT]\n");
}

int
router_referral_command (fs_server_t *server, int argc, char **argv)
{
    if (argc < 4) {
        s_usage ();
        return 2;
    }
    const char *id = argv [1], *reason = NULL, *text = NULL;
    int to = router_status_parse (argv [2]), actor = -1;
    for (int a = 3; a < argc; a += 2) {
        const char *value = a + 1 < argc ? argv [a + 1] : NULL;
        if (!value) {
            s_usage ();
            return 2;
        }
        if (streq (argv [a], "--as"))
            actor = router_actor_parse (value);
        else
        if (streq (argv [a], "--reason"))
            reason = value;
        else
        if (streq (argv [a], "--text"))
            text = value;
        else {
            s_usage ();
            return 2;
        }
    }
    if (to < 0 || actor < 0 || strlen (id) != FS_UUID_LEN
    ||  (text && strlen (text) > 1000)) {
        fprintf (stderr, "transition: %s\n", to < 0 ? "unknown status"
                 : actor < 0 ? "--as takes requester or target"
                 : strlen (id) != FS_UUID_LEN ? "REFERRAL_ID is a UUID"
                 : "--text is at most 1000 bytes");
        s_usage ();
        return 2;
    }
    fs_pg_t *pg = fs_server_pg (server);
    char err [ROUTER_ERR_MAX];
    int rc = fs_pg_begin (pg) ? -1
           : router_referral_transition (server, id, (router_status_t) to,
                                         (router_actor_t) actor, reason, text, err, sizeof err);
    if (rc == -1 && !*err)
        snprintf (err, sizeof err, "%s", fs_pg_error (pg));
    if (rc == 0 && fs_pg_commit (pg)) {
        snprintf (err, sizeof err, "%s", fs_pg_error (pg));
        rc = -1;
    }
    if (rc) {
        fs_pg_rollback (pg);
        fprintf (stderr, "refused: %s\n", err);
        return 1;
    }
    printf ("%s: %s (%s)\n", id, argv [2], router_actor_name ((router_actor_t) actor));
    return 0;
}
