/*  router_deadline - deadlines to accept: a referral still `requested` past its urgency's
    time is marked overdue and escalated (to the target centre's management and the sender,
    on the bus and on their feeds) exactly once, whichever replica finds it first. */
#include "router.h"

#define S_BATCH 100                 //  referrals escalated per transaction (the LIMIT)

static struct {
    fs_counter_t *overdue [3];      /* escalations, by urgency */
    int timer;                      /* the scan's zloop timer, -1 when none */
} s_deadline = { { NULL }, -1 };

static const char *s_urgencies [3] = { "urgent", "preferent", "ordinary" };

int
router_deadline_init (fs_server_t *server)
{
    fs_metrics_t *metrics = fs_server_metrics (server);
    const char *labels [3] = { "urgency=\"urgent\"", "urgency=\"preferent\"",
                               "urgency=\"ordinary\"" };
    for (int i = 0; i < 3; i++)
        s_deadline.overdue [i] = fs_metrics_counter (metrics, "finestra_router_overdue_total",
                                                     "Referrals not accepted in time, escalated",
                                                     labels [i]);
    return 0;
}

//  Marks one locked row overdue and escalates it. 1 escalated, 0 already was, -1 database
static int
s_escalate (fs_server_t *server, fs_pg_t *pg, PGresult *rows, int i)
{
    const char *id = PQgetvalue (rows, i, 0), *source = PQgetvalue (rows, i, 3);
    const char *correlation = PQgetvalue (rows, i, 4);
    const char *target = PQgetisnull (rows, i, 7) ? NULL : PQgetvalue (rows, i, 7);
    char requested [40], due [40], management [128], sender [128], to [300];
    fs_rfc3339 (atoll (PQgetvalue (rows, i, 5)), requested);
    fs_rfc3339 (atoll (PQgetvalue (rows, i, 6)), due);
    snprintf (management, sizeof management, "management-of:%s", target ? target : "unrouted");
    snprintf (sender, sizeof sender, "sender:%s", source);
    //  An array literal of two quoted elements (the codes are directory and source names)
    snprintf (to, sizeof to, "{\"%s\",\"%s\"}", management, sender);
    const char *values [3] = { id, due, to };
    //  The escalation's key makes it once per referral and deadline, whoever comes second
    PGresult *result = fs_pg_exec (pg,
        "WITH e AS (INSERT INTO referral_router.referral_escalations (referral_id, deadline,"
        "   due_at, escalate_to) VALUES ($1::uuid, 'acceptance', $2::timestamptz, $3::text[])"
        "   ON CONFLICT DO NOTHING RETURNING referral_id)"
        " UPDATE referral_router.referrals SET overdue_at = now ()"
        " WHERE id = (SELECT referral_id FROM e)", 3, values);
    if (!result)
        return -1;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh)
        return 0;
    fs_referral_overdue_t overdue = { 0 };
    const fs_type_t *type = &fs_referral_overdue_type;
    fs_proto_set_str (type, &overdue, "referral_id", id);
    fs_proto_set_str (type, &overdue, "event_ref", PQgetvalue (rows, i, 1));
    fs_proto_set_str (type, &overdue, "urgency", PQgetvalue (rows, i, 2));
    fs_proto_set_str (type, &overdue, "deadline", "acceptance");
    fs_proto_set_str (type, &overdue, "requested_at", requested);
    fs_proto_set_str (type, &overdue, "due_at", due);
    fs_proto_set_str (type, &overdue, "sender", source);
    if (target)
        fs_proto_set_str (type, &overdue, "target", target);
    overdue.escalate_to.items = (char **) calloc (2, sizeof (char *));
    if (overdue.escalate_to.items) {
        overdue.escalate_to.items [0] = strdup (management);
        overdue.escalate_to.items [1] = strdup (sender);
        overdue.escalate_to.n = 2;
    }
    overdue.present |= 1u << fs_referral_overdue_F_escalate_to;
    fs_envelope_t cause = { 0 };
    cause.hdr.correlation_id = (char *) correlation;
    fs_proto_error_t perr = { 0 };
    int rc = fs_outbox_emit (pg, fs_server_schema (server), fs_server_name (server),
                             fs_server_routes (server), type, &overdue, &cause, NULL, &perr);
    if (rc && perr.code)
        fs_pg_set_error (pg, "referral.overdue: %s", perr.message);
    if (rc == 0)
        rc = router_feed_tell (pg, id, correlation, ROUTER_FEED_SENDER | ROUTER_FEED_TARGET,
                               type, &overdue);
    fs_proto_clear (type, &overdue);
    return rc ? -1 : 1;
}

int
router_deadline_scan (fs_server_t *server, fs_pg_t *pg, long *escalated)
{
    const fs_config_t *config = fs_server_config (server);
    char limits [3][24];
    snprintf (limits [0], sizeof limits [0], "%ld", config->router_deadline_urgent_s);
    snprintf (limits [1], sizeof limits [1], "%ld", config->router_deadline_preferent_s);
    snprintf (limits [2], sizeof limits [2], "%ld", config->router_deadline_ordinary_s);
    const char *values [3] = { limits [0], limits [1], limits [2] };
    *escalated = 0;
    long counts [3] = { 0, 0, 0 };
    while (true) {
        if (fs_pg_begin (pg))
            return -1;
        //  SKIP LOCKED: another replica's scan (or a transition) holding a row is left to
        //  it; a row it marked meanwhile no longer matches when locked. The target: the
        //  directory code routing records (006's column, read through to_jsonb so this does
        //  not depend on it), else the feed it was delivered to
        PGresult *rows = fs_pg_exec (pg,
            "SELECT r.id, r.event_ref, r.urgency, r.source, r.correlation_id,"
            " (extract (epoch FROM r.requested_at) * 1000)::bigint,"
            " (extract (epoch FROM r.requested_at + a.allowed) * 1000)::bigint,"
            " coalesce (to_jsonb (r) ->> 'target', (SELECT min (f.feed)"
            "   FROM referral_router.referral_feeds f WHERE f.referral_id = r.id))"
            " FROM referral_router.referrals r CROSS JOIN LATERAL (SELECT CASE r.urgency"
            "   WHEN 'urgent' THEN $1::bigint WHEN 'preferent' THEN $2::bigint"
            "   ELSE $3::bigint END * interval '1 second' AS allowed) a"
            " WHERE r.status = 'requested' AND r.overdue_at IS NULL"
            "   AND r.requested_at + a.allowed < now ()"
            " ORDER BY r.requested_at LIMIT 100 FOR UPDATE OF r SKIP LOCKED", 3, values);
        if (!rows) {
            fs_pg_rollback (pg);
            return -1;
        }
        int n = PQntuples (rows), done = 0;
        long batch [3] = { 0, 0, 0 };
        for (int i = 0; i < n; i++) {
            int rc = s_escalate (server, pg, rows, i);
            if (rc < 0) {
                PQclear (rows);
                fs_pg_rollback (pg);
                return -1;
            }
            if (rc == 1) {
                const char *urgency = PQgetvalue (rows, i, 2);
                for (int u = 0; u < 3; u++)
                    batch [u] += streq (urgency, s_urgencies [u]);
                done++;
            }
        }
        PQclear (rows);
        if (fs_pg_commit (pg)) {
            fs_pg_rollback (pg);
            return -1;
        }
        *escalated += done;
        for (int u = 0; u < 3; u++) {
            counts [u] += batch [u];
            if (s_deadline.overdue [u] && batch [u])
                fs_counter_add (s_deadline.overdue [u], (uint64_t) batch [u]);
        }
        if (n < S_BATCH)
            break;
    }
    if (*escalated) {
        char text [3][24];
        for (int u = 0; u < 3; u++)
            snprintf (text [u], sizeof text [u], "%ld", counts [u]);
        fs_info ("referrals overdue, escalated", "urgent", text [0], "preferent", text [1],
                 "ordinary", text [2]);
    }
    return 0;
}

static int
s_on_timer (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    fs_server_t *server = (fs_server_t *) arg;
    long escalated;
    if (router_deadline_scan (server, fs_server_pg (server), &escalated))
        fs_warn ("deadline scan failed; next round retries",
                 "reason", fs_pg_error (fs_server_pg (server)));
    return 0;
}

int
router_deadline_start (fs_server_t *server)
{
    s_deadline.timer = zloop_timer (fs_server_loop (server),
                                    (size_t) fs_server_config (server)->router_deadline_scan_ms,
                                    0, s_on_timer, server);
    return s_deadline.timer < 0 ? -1 : 0;
}

void
router_deadline_stop (fs_server_t *server)
{
    if (s_deadline.timer >= 0)
        zloop_timer_end (fs_server_loop (server), s_deadline.timer);
    s_deadline.timer = -1;
}

//  `escalate-overdue`: one scan now (the timer does it every FINESTRA_ROUTER_DEADLINE_SCAN_MS)
int
router_deadline_command (fs_server_t *server, int argc, char **argv)
{
    (void) argv;
    if (argc != 1) {
        fprintf (stderr, "usage: finestra-referral-router escalate-overdue\n");
        return 2;
    }
    long escalated;
    if (router_deadline_scan (server, fs_server_pg (server), &escalated)) {
        fprintf (stderr, "escalate-overdue: %s\n", fs_pg_error (fs_server_pg (server)));
        return 1;
    }
    printf ("%ld referrals overdue, escalated\n", escalated);
    return 0;
}
