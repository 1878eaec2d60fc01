/*  test_router_replicas - two referral-router replicas on one PostgreSQL and Redis share the
    stream of requests with no referral handled twice; kill -9 of a replica, or of a single
    router, at random moments mid-stream loses and doubles nothing (checked in PostgreSQL).
    All real: intake's ingest, relays, both replicas, notification, reporting. */
#include "fs_test.h"
#include <signal.h>

#define S_REPLICAS 2

typedef struct {
    fs_test_suite_t *suite;             /* intake, notification, reporting; stores */
    int nreplicas;                      /* router processes */
    int bus [S_REPLICAS];               /* each replica's bus ROUTER port */
    int http [S_REPLICAS];              /* and HTTP port */
    char bind [S_REPLICAS][64];         /* FINESTRA_BUS_BIND=... (outlives the children) */
    char feed [S_REPLICAS][80];         /* each its own feed endpoint */
    char label [S_REPLICAS][32];        /* log name */
    pid_t pid [S_REPLICAS];             /* 0 when not running */
    char list [160];                    /* every replica's endpoint, comma-separated */
} s_world_t;

//  The suite with nreplicas routers; intake's relay connects to all of them
static s_world_t *
s_world_new (const char *name, int nreplicas)
{
    s_world_t *self = (s_world_t *) calloc (1, sizeof (s_world_t));
    cr_assert (self);
    self->suite = fs_test_suite_new (name);
    self->nreplicas = nreplicas;
    size_t used = 0;
    for (int i = 0; i < nreplicas; i++) {
        self->bus [i] = fs_test_free_port ();
        self->http [i] = fs_test_free_port ();
        snprintf (self->bind [i], sizeof self->bind [i], "FINESTRA_BUS_BIND=tcp://127.0.0.1:%d",
                  self->bus [i]);
        snprintf (self->feed [i], sizeof self->feed [i],
                  "FINESTRA_ROUTER_FEED_ENDPOINT=tcp://127.0.0.1:%d", fs_test_free_port ());
        snprintf (self->label [i], sizeof self->label [i], "referral-router-%d", i + 1);
        used += (size_t) snprintf (self->list + used, sizeof self->list - used, "%stcp://127.0.0.1:%d",
                                   i ? "," : "", self->bus [i]);
    }
    fs_test_suite_setenv (self->suite, "FINESTRA_BUS_REFERRAL_ROUTER", self->list);
    fs_test_suite_start (self->suite, "intake");
    fs_test_suite_start (self->suite, "notification");
    fs_test_suite_start (self->suite, "reporting");
    return self;
}

static void
s_replica_start (s_world_t *self, int i)
{
    const char *settings [] = { self->bind [i], self->feed [i], NULL };
    self->pid [i] = fs_test_suite_start_replica (self->suite, "referral-router", self->label [i],
                                                 self->http [i], settings);
}

static void
s_replica_kill (s_world_t *self, int i)
{
    cr_assert_eq (fs_test_pid_stop (self->pid [i], SIGKILL, 5000), 128 + SIGKILL);
    self->pid [i] = 0;
}

static void
s_world_destroy (s_world_t **self_p)
{
    s_world_t *self = *self_p;
    for (int i = 0; i < self->nreplicas; i++)
        if (self->pid [i])
            fs_test_pid_stop (self->pid [i], SIGKILL, 5000);
    fs_test_suite_destroy (&self->suite);
    free (self);
    *self_p = NULL;
}

//  One health.social_risk_detected through intake's ingest, accepted
static void
s_publish (s_world_t *self, int n)
{
    char id [32];
    snprintf (id, sizeof id, "risk-%d", n);
    zchunk_t *event = fs_test_event_social_risk (id, "primary-care",
                                                 n % 3 == 0 ? "urgent" : "ordinary");
    fs_ingest_receipt_t receipt = { 0 };
    cr_assert_eq (fs_test_publish (self->suite->ingest_endpoint, zchunk_data (event),
                                   zchunk_size (event), &receipt, 10000), 0,
                  "no receipt from intake for %s", id);
    cr_assert_str_eq (receipt.status, "accepted", "%s: %s", id, receipt.status);
    fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    zchunk_destroy (&event);
}

//  A replica's count of envelopes applied, from its /metrics (-1 if unreadable)
static long
s_applied (int http_port)
{
    int status = 0;
    char *body = NULL;
    long applied = -1;
    if (fs_test_http_get (http_port, "/metrics", &status, &body) == 0 && status == 200) {
        const char *line = strstr (body, "finestra_inbox_total{");
        while (line && !strstr (line, "outcome=\"applied\"}"))
            line = strstr (line + 1, "finestra_inbox_total{");
        const char *value = line ? strstr (line, "outcome=\"applied\"}") : NULL;
        if (value)
            applied = atol (value + strlen ("outcome=\"applied\"}"));
    }
    free (body);
    return applied;
}

//  Polls count queries until each gives n; fails naming the first that does not
static void
s_expect (s_world_t *self, const char *what, const char *sql, long n)
{
    const char *url = self->suite->pg_url;
    cr_assert (fs_test_pg_wait (url, sql, n, 30000), "expected %ld %s, found %ld (logs in %s)",
               n, what, fs_test_pg_long (url, sql), self->suite->log_dir);
}

//  n requests gave exactly n referrals and one of each effect, nothing doubled or lost
static void
s_assert_exactly_n (s_world_t *self, long n)
{
    const char *url = self->suite->pg_url;
    s_expect (self, "stored events", "SELECT count(*) FROM intake.events", n);
    s_expect (self, "requests in the router's inbox",
              "SELECT count(*) FROM referral_router.inbox WHERE type = 'intake.referral_requested'", n);
    s_expect (self, "referrals", "SELECT count(*) FROM referral_router.referrals", n);
    //  Every outbox everywhere delivered, nothing dead-lettered
    const char *schemas [] = { "intake", "referral_router", "notification", "reporting" };
    char sql [512];
    for (size_t i = 0; i < 4; i++) {
        snprintf (sql, sizeof sql, "SELECT count(*) FROM %s.outbox WHERE delivered_at IS NULL",
                  schemas [i]);
        s_expect (self, "undelivered outbox rows", sql, 0);
        snprintf (sql, sizeof sql, "SELECT count(*) FROM %s.dead_letter", schemas [i]);
        cr_assert_eq (fs_test_pg_long (url, sql), 0, "%s dead-lettered something", schemas [i]);
    }
    //  One referral per request: per stored event, per intake request emitted
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM referral_router.referrals r JOIN intake.events e"
        " ON r.correlation_id = e.ref"), n);
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(DISTINCT correlation_id) FROM referral_router.referrals"), n);
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM intake.outbox WHERE type = 'intake.referral_requested'"
        " AND consumer = 'referral-router'"), n);
    //  Each referral's status change emitted once per consumer (a second application would
    //  have emitted another under a new id)
    const char *consumers [] = { "notification", "reporting" };
    for (size_t i = 0; i < 2; i++) {
        snprintf (sql, sizeof sql,
                  "SELECT count(*) FROM referral_router.outbox o JOIN referral_router.referrals r"
                  " ON o.correlation_id = r.correlation_id"
                  " WHERE o.type = 'referral.status_changed' AND o.consumer = '%s'",
                  consumers [i]);
        cr_assert_eq (fs_test_pg_long (url, sql), n, "status changes for %s", consumers [i]);
        snprintf (sql, sizeof sql,
                  "SELECT count(*) FROM (SELECT correlation_id FROM referral_router.outbox"
                  " WHERE type = 'referral.status_changed' AND consumer = '%s'"
                  " GROUP BY correlation_id, type HAVING count(*) > 1) d", consumers [i]);
        cr_assert_eq (fs_test_pg_long (url, sql), 0, "a doubled status change for %s",
                      consumers [i]);
    }
    //  No history row twice for one referral and status
    cr_assert_eq (fs_test_pg_long (url,
        "SELECT count(*) FROM (SELECT referral_id, to_status FROM"
        " referral_router.referral_transitions GROUP BY 1, 2 HAVING count(*) > 1) d"), 0);
    //  Down-stream: one notification per status change, counted once in reporting
    s_expect (self, "notifications", "SELECT count(*) FROM notification.notifications", n);
    s_expect (self, "counted requests",
              "SELECT count FROM reporting.event_counts WHERE type = 'intake.referral_requested'", n);
    s_expect (self, "counted status changes",
              "SELECT count FROM reporting.event_counts WHERE type = 'referral.status_changed'", n);
}

//  (a) both replicas take part, every request gives one referral
Test (router_replicas, two_replicas_share_the_stream, .timeout = 180)
{
    s_world_t *self = s_world_new ("replicas", 2);
    s_replica_start (self, 0);
    s_replica_start (self, 1);
    int n = 200;
    for (int i = 0; i < n; i++)
        s_publish (self, i);
    s_assert_exactly_n (self, n);
    long a = s_applied (self->http [0]);
    long b = s_applied (self->http [1]);
    //  The relay's DEALER reaches a replica some time after it is ready (it reconnects every
    //  100 ms): a stream the router now drains in a second may all go to one. More, until
    //  both took part (or 500 more did not make them)
    for (int round = 0; round < 10 && (a == 0 || b == 0); round++) {
        for (int k = 0; k < 50; k++)
            s_publish (self, n++);
        s_assert_exactly_n (self, n);
        a = s_applied (self->http [0]);
        b = s_applied (self->http [1]);
    }
    cr_log_info ("replica 1 applied %ld, replica 2 applied %ld", a, b);
    cr_assert (a > 0 && b > 0, "both replicas must apply work: %ld and %ld", a, b);
    //  Applied by one or the other, never both (duplicates are counted apart)
    cr_assert_eq (a + b, n, "applied %ld + %ld for %d requests", a, b, n);
    //  Both replicas leave cleanly
    for (int i = 0; i < 2; i++) {
        cr_assert_eq (fs_test_pid_stop (self->pid [i], SIGTERM, 5000), 0);
        self->pid [i] = 0;
    }
    s_world_destroy (&self);
}

//  (b) kill -9 of one replica at random moments mid-stream, restarted: nothing lost or doubled
Test (router_replicas, replica_killed_mid_stream, .timeout = 240)
{
    unsigned seed = (unsigned) time (NULL);
    cr_log_info ("seed %u", seed);
    srand (seed);
    s_world_t *self = s_world_new ("replkill", 2);
    s_replica_start (self, 0);
    s_replica_start (self, 1);
    const int n = 300;
    int kills = 0;
    for (int i = 0; i < n; i++) {
        s_publish (self, i);
        //  About every 60 events one replica dies; it comes back some events later
        for (int r = 0; r < 2; r++) {
            if (self->pid [r] && self->pid [1 - r] && rand () % 60 == 0) {
                s_replica_kill (self, r);
                kills++;
            }
            else
            if (!self->pid [r] && rand () % 15 == 0)
                s_replica_start (self, r);
        }
    }
    //  At least one kill even when the dice said none
    if (!kills) {
        s_replica_kill (self, 0);
        kills++;
    }
    for (int r = 0; r < 2; r++)
        if (!self->pid [r])
            s_replica_start (self, r);
    cr_log_info ("%d kills", kills);
    s_assert_exactly_n (self, n);
    s_world_destroy (&self);
}

//  (b) the same with a single router: while it is down its requests wait in intake's outbox
Test (router_replicas, single_router_killed_mid_stream, .timeout = 240)
{
    unsigned seed = (unsigned) time (NULL) + 1;
    cr_log_info ("seed %u", seed);
    srand (seed);
    s_world_t *self = s_world_new ("routerkill", 1);
    s_replica_start (self, 0);
    const int n = 200;
    int kills = 0;
    for (int i = 0; i < n; i++) {
        s_publish (self, i);
        if (self->pid [0] && (rand () % 50 == 0 || (i == n / 2 && !kills))) {
            s_replica_kill (self, 0);
            kills++;
        }
        else
        if (!self->pid [0] && rand () % 10 == 0)
            s_replica_start (self, 0);
    }
    if (!self->pid [0])
        s_replica_start (self, 0);
    cr_log_info ("%d kills", kills);
    cr_assert (kills > 0);
    s_assert_exactly_n (self, n);
    s_world_destroy (&self);
}

//  Whether a replica's log has a line with text in it
static bool
s_log_has (s_world_t *self, const char *label, const char *text)
{
    char path [512], line [4096];
    snprintf (path, sizeof path, "%s/%s.log", self->suite->log_dir, label);
    FILE *file = fopen (path, "r");
    bool found = false;
    while (file && !found && fgets (line, sizeof line, file))
        found = strstr (line, text) != NULL;
    if (file)
        fclose (file);
    return found;
}

//  Two intake replicas (two ingest endpoints, two relays, two processors) in front of the
//  router: one relay leads (advisory lock); kill -9 of the first, the other takes over and
//  processes and relays the rest, and what the dead one had claimed
Test (router_replicas, intake_replica_takes_over, .timeout = 240)
{
    s_world_t *self = s_world_new ("intakerepl", 1);
    s_replica_start (self, 0);
    char ingest [96], bind [64], endpoint [64];
    int ingest_port = fs_test_free_port ();
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", ingest_port);
    snprintf (ingest, sizeof ingest, "FINESTRA_INTAKE_ENDPOINT=%s", endpoint);
    snprintf (bind, sizeof bind, "FINESTRA_BUS_BIND=tcp://127.0.0.1:%d", fs_test_free_port ());
    const char *settings [] = { ingest, bind, NULL };
    pid_t second = fs_test_suite_start_replica (self->suite, "intake", "intake-2",
                                                fs_test_free_port (), settings);
    const int n = 120;
    char saved [64];
    snprintf (saved, sizeof saved, "%s", self->suite->ingest_endpoint);
    for (int i = 0; i < n; i++) {
        //  Alternate between the replicas' endpoints while both live
        bool first = i % 2 == 0 && i < n / 2;
        snprintf (self->suite->ingest_endpoint, sizeof self->suite->ingest_endpoint, "%s",
                  first ? saved : endpoint);
        s_publish (self, i);
        if (i == n / 2) {
            //  The first started leads; the second's relay waits for the lock
            cr_assert (s_log_has (self, "intake", "\"relay leads\""));
            cr_assert_not (s_log_has (self, "intake-2", "\"relay leads\""));
            cr_assert_eq (fs_test_suite_stop (self->suite, "intake", SIGKILL, 5000),
                          128 + SIGKILL);
        }
    }
    snprintf (self->suite->ingest_endpoint, sizeof self->suite->ingest_endpoint, "%s", saved);
    //  The second replica's relay now leads; everything arrives once
    s_assert_exactly_n (self, n);
    cr_assert (s_log_has (self, "intake-2", "\"relay leads\""));
    cr_assert_eq (fs_test_pid_stop (second, SIGTERM, 5000), 0);
    s_world_destroy (&self);
}
