/*  bench_router - the referral-router's speed through the real chain: health.social_risk_detected
    events published to intake's ingest, processed, relayed, routed. (a) A paced stream (500/s
    for 10 s): latency per event from the ingest receipt (accepted) to the commit of its
    referral at the router, p50/p99, split by stage; (b) a backlog of requests queued in
    intake's outbox while the router is stopped, then drained: routed referrals/s (the
    router's own ceiling). Medians of the repetitions. Starts and stops the router(s) itself;
    intake, notification and reporting run already (bench/run router). */
#include "bench_common.h"
#include <signal.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#define S_TARGET_P99_MS 50.0        /* issue 4: p99 under 50 ms ... */
#define S_TARGET_RATE 500.0         /* ... at 500 referrals/s */
#define S_MAX_ROUTERS 4

typedef struct {
    int bus, http, feed;            /* a router replica's ports */
    pid_t pid;                      /* running, or 0 */
} s_router_t;

//  What to run, from the command line
typedef struct {
    const char *endpoint;           /* intake's ingest */
    const char *pg_url;             /* the suite's database */
    const char *router;             /* the finestra-referral-router binary */
    const char *log;                /* the routers' log */
    s_router_t routers [S_MAX_ROUTERS];
    int nrouters;                   /* replicas (one endpoint each) */
    int rate;                       /* paced stream, events/s */
    int seconds;                    /* its length */
    int backlog;                    /* requests queued for the drain */
    int reps;                       /* repetitions */
    bool commit_ts;                 /* PostgreSQL tracks commit timestamps */
} s_options_t;

//  Wall clock, as PostgreSQL's timestamps on this machine
static double
s_wall (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

//  p-th percentile (0..100) of values (sorted in place), nearest rank
static double
s_percentile (double *values, size_t n, double p)
{
    if (n == 0)
        return -1;
    qsort (values, n, sizeof *values, fs_bench_cmp_double);
    size_t rank = (size_t) (p / 100.0 * (double) n + 0.999999);
    rank = rank < 1 ? 1 : rank > n ? n : rank;
    return values [rank - 1];
}

static double
s_median (const double *values, int n)
{
    double sorted [16];
    memcpy (sorted, values, sizeof (double) * (size_t) n);
    return s_percentile (sorted, (size_t) n, 50);
}

// -- events: health.social_risk_detected, a varied population ------------------------------

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  Event i of run `tag`: one of 2,000 people of the demo city, Z-codes of the housing,
//  economic, family and social blocks, a third of them urgent. With consent, i is the
//  person and the event is their consent.granted for every recipient the router may pick
//  (so referrals go the real way: requested at their target, not on-hold)
static zchunk_t *
s_event_of (const char *tag, long i, bool consent)
{
    static const char *given [] = { "Anna", "Jordi", "Fatima", "Pau", "Laia", "Mohamed",
                                    "Núria", "Carlos", "Mei", "Oriol", "Lucía", "Ibrahim" };
    static const char *family [] = { "Puig i Ferrer", "García López", "El Amrani", "Vidal Roca",
                                     "Sánchez de la Torre", "Chen", "Martí Soler", "Diallo",
                                     "Fernández Ruiz", "Ortega i Pons", "Khan", "Rovira" };
    static const char *codes [] = { "Z59.0", "Z59.5", "Z60.2", "Z63.5", "Z56.0", "Z62.4" };
    static const char *streets [] = { "Carrer de Sant Pau", "Carrer de la Riera Baixa",
                                      "Passeig de Sant Joan", "Carrer de Mallorca" };
    long p = consent ? i % 2000 : (i * 7919) % 2000;
    char id [96], now [32], dni [16], birth [16], number [16], postcode [8];
    snprintf (id, sizeof id, "%s-%ld", tag, i);
    fs_rfc3339 (fs_now_ms (), now);
    long doc = 20000000 + p * 37;
    snprintf (dni, sizeof dni, "%08ld%c", doc, "TRWAGMYFPDXBNJZSQVHLCKE" [doc % 23]);
    time_t when = (time_t) (-946771200L + (p % 25000) * 86400L);
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (birth, sizeof birth, "%Y-%m-%d", &tm);
    snprintf (number, sizeof number, "%ld", 1 + p % 150);
    snprintf (postcode, sizeof postcode, "080%02ld", 1 + p % 42);

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "v");           msgpack_pack_int (&pk, 1);
    s_str (&pk, "id");          s_str (&pk, id);
    s_str (&pk, "source");      s_str (&pk, i % 2 ? "primary-care" : "hospital-clinic");
    s_str (&pk, "type");
    s_str (&pk, consent ? "consent.granted" : "health.social_risk_detected");
    s_str (&pk, "occurred_at"); s_str (&pk, now);
    s_str (&pk, "subject");
    msgpack_pack_map (&pk, 6);
    s_str (&pk, "doc_type");    s_str (&pk, "DNI");
    s_str (&pk, "doc_number");  s_str (&pk, dni);
    s_str (&pk, "given_name");  s_str (&pk, given [p % 12]);
    s_str (&pk, "family_name"); s_str (&pk, family [(p / 12) % 12]);
    s_str (&pk, "birth_date");  s_str (&pk, birth);
    s_str (&pk, "address");
    msgpack_pack_map (&pk, 3);
    s_str (&pk, "street");      s_str (&pk, streets [p % 4]);
    s_str (&pk, "number");      s_str (&pk, number);
    s_str (&pk, "postcode");    s_str (&pk, postcode);
    s_str (&pk, "data");
    if (consent) {
        static const char *categories [] = { "identity", "contact", "social_health",
                                             "economic" };
        static const char *recipients [] = { "social_services", "primary_care", "housing",
                                             "employment" };
        char ref [32];
        snprintf (ref, sizeof ref, "bench-consent-%ld", p);
        msgpack_pack_map (&pk, 5);
        s_str (&pk, "consent_ref");     s_str (&pk, ref);
        s_str (&pk, "purpose");         s_str (&pk, "social_health_coordination");
        s_str (&pk, "data_categories");
        msgpack_pack_array (&pk, 4);
        for (int k = 0; k < 4; k++)
            s_str (&pk, categories [k]);
        s_str (&pk, "recipients");
        msgpack_pack_array (&pk, 4);
        for (int k = 0; k < 4; k++)
            s_str (&pk, recipients [k]);
        s_str (&pk, "given_at");        s_str (&pk, now);
    }
    else {
        msgpack_pack_map (&pk, 3);
        s_str (&pk, "icd10_codes");
        msgpack_pack_array (&pk, 1 + i % 2);
        s_str (&pk, codes [i % 6]);
        if (i % 2)
            s_str (&pk, codes [(i / 6) % 6]);
        s_str (&pk, "suggested_level");
        s_str (&pk, i % 4 ? "complementation" : "orientation");
        s_str (&pk, "urgency");         s_str (&pk, i % 3 ? "ordinary" : "urgent");
    }
    zchunk_t *chunk = zchunk_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return chunk;
}

// -- publishing: one DEALER, pipelined, paced or not; each receipt's wall time by its ref ---

typedef struct {
    zhashx_t *receipts;             /* ref -> receipt wall time (double, boxed) */
    int accepted;                   /* accepted receipts */
    int other;                      /* anything else */
    bool consent;                   /* the people's consents, not risk events */
} s_published_t;

static void
s_box_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Publishes n events of `tag`, at rate/s (0: as fast as a window of 256 allows). 0, or -1
static int
s_publish (const s_options_t *options, const char *tag, int n, int rate, s_published_t *out)
{
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_rcvhwm (dealer, 100000);
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", options->endpoint)) {
        fprintf (stderr, "bench_router: cannot connect %s\n", options->endpoint);
        zsock_destroy (&dealer);
        return -1;
    }
    const int window = 256;
    double interval = rate > 0 ? 1.0 / rate : 0;
    double start = fs_bench_now () + 0.1;
    int sent = 0, received = 0, rc = 0;
    double last_progress = fs_bench_now ();
    while (received < n) {
        double now = fs_bench_now ();
        while (sent < n && sent - received < window
           &&  (interval == 0 || start + sent * interval <= now)) {
            zchunk_t *event = s_event_of (tag, sent, out->consent);
            zmsg_t *msg = zmsg_new ();
            zmsg_addmem (msg, NULL, 0);
            zmsg_addmem (msg, zchunk_data (event), zchunk_size (event));
            zchunk_destroy (&event);
            if (zmsg_send (&msg, dealer)) {
                zmsg_destroy (&msg);
                rc = -1;
                goto done;
            }
            sent++;
        }
        int timeout_ms = 100;
        if (interval > 0 && sent < n && sent - received < window) {
            double wait = start + sent * interval - fs_bench_now ();
            timeout_ms = wait <= 0 ? 0 : (int) (wait * 1000.0);
        }
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, timeout_ms) < 0) {
            rc = -1;
            goto done;
        }
        while (zsock_events (dealer) & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (dealer);
            if (!msg)
                break;
            double at = s_wall ();
            zframe_t *body = zmsg_last (msg);
            fs_ingest_receipt_t receipt = { 0 };
            fs_proto_error_t err;
            if (zmsg_size (msg) == 2 && body
            &&  fs_proto_decode (&fs_ingest_receipt_type, zframe_data (body), zframe_size (body),
                                 &receipt, &err) == 0
            &&  streq (receipt.status, "accepted") && receipt.ref) {
                double *boxed = (double *) malloc (sizeof (double));
                *boxed = at;
                zhashx_update (out->receipts, receipt.ref, boxed);
                out->accepted++;
            }
            else
            if (out->other++ < 3)
                fprintf (stderr, "bench_router: receipt %s %s\n",
                         receipt.id ? receipt.id : "?", receipt.status ? receipt.status : "?");
            fs_proto_clear (&fs_ingest_receipt_type, &receipt);
            zmsg_destroy (&msg);
            received++;
            last_progress = fs_bench_now ();
        }
        if (fs_bench_now () - last_progress > 30) {
            fprintf (stderr, "bench_router: no receipt for 30 s; %d missing\n", n - received);
            rc = -1;
            goto done;
        }
    }
done:
    zsock_destroy (&dealer);
    return rc;
}

// -- PostgreSQL ------------------------------------------------------------------------------

static PGconn *
s_pg (const s_options_t *options)
{
    PGconn *conn = PQconnectdb (options->pg_url);
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "bench_router: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    return conn;
}

static long
s_pg_long (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    long value = -1;
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1
    &&  !PQgetisnull (result, 0, 0))
        value = atol (PQgetvalue (result, 0, 0));
    else
    if (PQresultStatus (result) != PGRES_TUPLES_OK)
        fprintf (stderr, "bench_router: %s: %s", sql, PQerrorMessage (conn));
    PQclear (result);
    return value;
}

//  Polls until the query gives at least expected, or timeout_s passes; the last value
static long
s_pg_wait (PGconn *conn, const char *sql, long expected, double timeout_s)
{
    double until = fs_bench_now () + timeout_s;
    long value;
    while ((value = s_pg_long (conn, sql)) < expected && fs_bench_now () < until)
        usleep (100 * 1000);
    return value;
}

// -- router replicas: start, stop --------------------------------------------------------------

static int
s_routers_start (s_options_t *options)
{
    for (int r = 0; r < options->nrouters; r++) {
        s_router_t *router = &options->routers [r];
        pid_t pid = fork ();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            prctl (PR_SET_PDEATHSIG, SIGKILL);      //  dies with the bench
            char value [64];
            snprintf (value, sizeof value, "tcp://127.0.0.1:%d", router->bus);
            setenv ("FINESTRA_BUS_BIND", value, 1);
            snprintf (value, sizeof value, "%d", router->http);
            setenv ("FINESTRA_HTTP_PORT", value, 1);
            snprintf (value, sizeof value, "tcp://127.0.0.1:%d", router->feed);
            setenv ("FINESTRA_ROUTER_FEED_ENDPOINT", value, 1);
            int fd = open (options->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2 (fd, 1);
                dup2 (fd, 2);
                close (fd);
            }
            execl (options->router, options->router, (char *) NULL);
            _exit (127);
        }
        router->pid = pid;
    }
    for (int r = 0; r < options->nrouters; r++) {
        s_router_t *router = &options->routers [r];
        int tries;
        for (tries = 0; tries < 600; tries++) {
            if (fs_bench_http_status (router->http, "/readyz") == 200)
                break;
            if (waitpid (router->pid, NULL, WNOHANG) == router->pid) {
                fprintf (stderr, "bench_router: the router exited; see %s\n", options->log);
                router->pid = 0;
                return -1;
            }
            usleep (20 * 1000);
        }
        if (tries == 600) {
            fprintf (stderr, "bench_router: the router not ready in 12 s; see %s\n", options->log);
            return -1;
        }
    }
    return 0;
}

static void
s_routers_stop (s_options_t *options)
{
    for (int r = 0; r < options->nrouters; r++)
        if (options->routers [r].pid > 0)
            kill (options->routers [r].pid, SIGTERM);
    for (int r = 0; r < options->nrouters; r++) {
        s_router_t *router = &options->routers [r];
        if (router->pid <= 0)
            continue;
        int waited;
        for (waited = 0; waited < 10000; waited += 20) {
            if (waitpid (router->pid, NULL, WNOHANG) == router->pid)
                break;
            usleep (20 * 1000);
        }
        if (waited >= 10000) {
            kill (router->pid, SIGKILL);
            waitpid (router->pid, NULL, 0);
        }
        router->pid = 0;
    }
}

// -- one repetition ------------------------------------------------------------------------

typedef struct {
    double p50, p99, max;           /* receipt -> referral committed, ms */
    double stage_p50 [3];           /* receipt -> processed, -> router began, -> committed */
    double stage_p99 [3];
    int measured;                   /* events with a referral */
    int missing;                    /* accepted without a referral in time */
    double backlog_rate;            /* referrals/s draining the backlog */
    double backlog_wall;            /* s from the router ready to the last referral */
} s_rep_t;

//  The referrals of this run's refs, with each stage's time, from PostgreSQL
static int
s_measure (const s_options_t *options, PGconn *conn, s_published_t *pub, s_rep_t *rep)
{
    //  Commit timestamps when tracked; else each transaction's start (now ())
    //  The processing commit is the event row's last change (processed_at; the outbox row
    //  is changed again by the relay's acknowledgement)
    const char *sql = options->commit_ts
        ? "SELECT r.correlation_id::text,"
          " extract (epoch FROM pg_xact_commit_timestamp (e.xmin))::float8,"
          " extract (epoch FROM i.received_at)::float8,"
          " extract (epoch FROM pg_xact_commit_timestamp (r.xmin))::float8"
          " FROM referral_router.referrals r"
          " JOIN referral_router.inbox i ON i.correlation_id = r.correlation_id"
          "  AND i.type = 'intake.referral_requested'"
          " JOIN intake.events e ON e.ref = r.correlation_id"
        : "SELECT r.correlation_id::text, extract (epoch FROM e.processed_at)::float8,"
          " extract (epoch FROM i.received_at)::float8, extract (epoch FROM r.created_at)::float8"
          " FROM referral_router.referrals r"
          " JOIN referral_router.inbox i ON i.correlation_id = r.correlation_id"
          "  AND i.type = 'intake.referral_requested'"
          " JOIN intake.events e ON e.ref = r.correlation_id";
    PGresult *result = PQexec (conn, sql);
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        fprintf (stderr, "bench_router: %s", PQerrorMessage (conn));
        PQclear (result);
        return -1;
    }
    size_t n = zhashx_size (pub->receipts);
    double *total = (double *) calloc (n + 1, sizeof (double));
    double *stage [3];
    for (int s = 0; s < 3; s++)
        stage [s] = (double *) calloc (n + 1, sizeof (double));
    size_t k = 0;
    for (int row = 0; row < PQntuples (result) && k < n; row++) {
        double *receipt = (double *) zhashx_lookup (pub->receipts, PQgetvalue (result, row, 0));
        if (!receipt)
            continue;                   //  another run's
        double processed = atof (PQgetvalue (result, row, 1));
        double began = atof (PQgetvalue (result, row, 2));
        double committed = atof (PQgetvalue (result, row, 3));
        total [k] = (committed - *receipt) * 1000.0;
        stage [0][k] = (processed - *receipt) * 1000.0;
        stage [1][k] = (began - processed) * 1000.0;
        stage [2][k] = (committed - began) * 1000.0;
        k++;
    }
    PQclear (result);
    rep->measured = (int) k;
    rep->missing = (int) n - (int) k;
    rep->p50 = s_percentile (total, k, 50);
    rep->p99 = s_percentile (total, k, 99);
    rep->max = s_percentile (total, k, 100);
    for (int s = 0; s < 3; s++) {
        rep->stage_p50 [s] = s_percentile (stage [s], k, 50);
        rep->stage_p99 [s] = s_percentile (stage [s], k, 99);
        free (stage [s]);
    }
    free (total);
    return 0;
}

static int
s_rep (s_options_t *options, PGconn *conn, int run, s_rep_t *rep)
{
    //  (a) the paced stream, routers running
    char tag [32];
    snprintf (tag, sizeof tag, "paced-%d-%d", getpid (), run);
    long before = s_pg_long (conn, "SELECT count(*) FROM referral_router.referrals");
    s_published_t pub = { zhashx_new (), 0, 0, false };
    zhashx_set_destructor (pub.receipts, s_box_free);
    int n = options->rate * options->seconds;
    if (s_publish (options, tag, n, options->rate, &pub)) {
        zhashx_destroy (&pub.receipts);
        return -1;
    }
    long got = s_pg_wait (conn, "SELECT count(*) FROM referral_router.referrals",
                          before + pub.accepted, 120);
    if (got < before + pub.accepted)
        fprintf (stderr, "bench_router: %ld of %d referrals after 120 s\n", got - before,
                 pub.accepted);
    int rc = s_measure (options, conn, &pub, rep);
    zhashx_destroy (&pub.receipts);
    if (rc)
        return -1;

    //  (b) the backlog: requests wait in intake's outbox while the routers are down
    s_routers_stop (options);
    snprintf (tag, sizeof tag, "backlog-%d-%d", getpid (), run);
    s_published_t queued = { zhashx_new (), 0, 0, false };
    zhashx_set_destructor (queued.receipts, s_box_free);
    before = s_pg_long (conn, "SELECT count(*) FROM referral_router.referrals");
    long requests = s_pg_long (conn, "SELECT count(*) FROM intake.outbox"
                               " WHERE consumer = 'referral-router'");
    rc = s_publish (options, tag, options->backlog, 0, &queued);
    if (rc == 0
    &&  s_pg_wait (conn, "SELECT count(*) FROM intake.outbox WHERE consumer = 'referral-router'",
                   requests + queued.accepted, 120) < requests + queued.accepted) {
        fprintf (stderr, "bench_router: intake did not emit the backlog's requests\n");
        rc = -1;
    }
    zhashx_destroy (&queued.receipts);
    if (rc || s_routers_start (options))
        return -1;
    double ready = s_wall ();
    got = s_pg_wait (conn, "SELECT count(*) FROM referral_router.referrals",
                     before + queued.accepted, 120);
    if (got < before + queued.accepted)
        fprintf (stderr, "bench_router: backlog: %ld of %d referrals after 120 s\n",
                 got - before, queued.accepted);
    //  Rate between the first and the last referral: start-up excluded
    char sql [512];
    snprintf (sql, sizeof sql,
              "SELECT count(*) || ' ' || extract (epoch FROM min (t))::float8 || ' '"
              " || extract (epoch FROM max (t))::float8 FROM (SELECT %s AS t"
              " FROM referral_router.referrals ORDER BY created_at DESC LIMIT %ld) x",
              options->commit_ts ? "pg_xact_commit_timestamp (xmin)" : "created_at",
              got - before);
    PGresult *result = PQexec (conn, sql);
    long count = 0;
    double first = 0, last = 0;
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1)
        sscanf (PQgetvalue (result, 0, 0), "%ld %lf %lf", &count, &first, &last);
    PQclear (result);
    rep->backlog_rate = count > 1 && last > first ? (double) (count - 1) / (last - first) : 0;
    rep->backlog_wall = last - ready;
    return 0;
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: bench_router --endpoint E --pg URL --router BIN --log FILE\n"
        "                    --replica BUS:HTTP:FEED [--replica ...]\n"
        "                    [--rate 500] [--seconds 10] [--backlog 5000] [--reps 3]\n"
        "Intake, notification and reporting must run; FINESTRA_BUS_REFERRAL_ROUTER must list\n"
        "the replicas' bus ports. Run by bench/run router.\n");
}

int
main (int argc, char **argv)
{
    s_options_t options = { .rate = 500, .seconds = 10, .backlog = 5000, .reps = 3 };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (!value) {
            s_usage ();
            return 2;
        }
        i++;
        if (streq (arg, "--endpoint"))      options.endpoint = value;
        else if (streq (arg, "--pg"))       options.pg_url = value;
        else if (streq (arg, "--router"))   options.router = value;
        else if (streq (arg, "--log"))      options.log = value;
        else if (streq (arg, "--rate"))     options.rate = atoi (value);
        else if (streq (arg, "--seconds"))  options.seconds = atoi (value);
        else if (streq (arg, "--backlog"))  options.backlog = atoi (value);
        else if (streq (arg, "--reps"))     options.reps = atoi (value);
        else if (streq (arg, "--replica") && options.nrouters < S_MAX_ROUTERS) {
            s_router_t *router = &options.routers [options.nrouters++];
            if (sscanf (value, "%d:%d:%d", &router->bus, &router->http, &router->feed) != 3) {
                s_usage ();
                return 2;
            }
        }
        else {
            s_usage ();
            return 2;
        }
    }
    if (!options.endpoint || !options.pg_url || !options.router || !options.log
    ||  !options.nrouters || options.rate < 1 || options.seconds < 1 || options.backlog < 2
    ||  options.reps < 1 || options.reps > 15) {
        s_usage ();
        return 2;
    }
    PGconn *conn = s_pg (&options);
    if (!conn)
        return 1;
    PGresult *result = PQexec (conn, "SHOW track_commit_timestamp");
    options.commit_ts = PQresultStatus (result) == PGRES_TUPLES_OK
                     && streq (PQgetvalue (result, 0, 0), "on");
    PQclear (result);
    printf ("bench_router: %d router replica(s); paced %d/s for %d s, backlog %d; %d reps\n",
            options.nrouters, options.rate, options.seconds, options.backlog, options.reps);
    printf ("  times: %s\n", options.commit_ts
            ? "commit timestamps (track_commit_timestamp = on)"
            : "transaction start times (track_commit_timestamp off: latency understated)");
    if (s_routers_start (&options)) {
        s_routers_stop (&options);
        PQfinish (conn);
        return 1;
    }
    //  Every person's consent first, recorded at the router: the referrals measured are
    //  released to their target (requested), the path a real referral takes
    s_published_t consents = { zhashx_new (), 0, 0, true };
    zhashx_set_destructor (consents.receipts, s_box_free);
    long recorded = -1;
    if (s_publish (&options, "consent", 2000, 0, &consents) == 0 && consents.accepted == 2000)
        recorded = s_pg_wait (conn, "SELECT count(*) FROM referral_router.consents"
                                    " WHERE status = 'granted'", 2000, 120);
    zhashx_destroy (&consents.receipts);
    if (recorded < 2000) {
        fprintf (stderr, "bench_router: %ld of 2000 consents recorded at the router\n", recorded);
        s_routers_stop (&options);
        PQfinish (conn);
        return 1;
    }
    s_rep_t reps [15];
    double p50 [15], p99 [15], rate [15], stage50 [3][15], stage99 [3][15];
    int rc = 0;
    for (int r = 0; r < options.reps && rc == 0; r++) {
        memset (&reps [r], 0, sizeof reps [r]);
        rc = s_rep (&options, conn, r, &reps [r]);
        if (rc)
            break;
        s_rep_t *rep = &reps [r];
        printf ("  rep %d: paced p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d measured, %d missing);"
                " stages p50/p99 ms: receipt->processed %.1f/%.1f, ->router began %.1f/%.1f,"
                " ->committed %.1f/%.1f; backlog %.0f referrals/s (%.2f s after ready)\n",
                r + 1, rep->p50, rep->p99, rep->max, rep->measured, rep->missing,
                rep->stage_p50 [0], rep->stage_p99 [0], rep->stage_p50 [1], rep->stage_p99 [1],
                rep->stage_p50 [2], rep->stage_p99 [2], rep->backlog_rate, rep->backlog_wall);
        fflush (stdout);
        p50 [r] = rep->p50;
        p99 [r] = rep->p99;
        rate [r] = rep->backlog_rate;
        for (int s = 0; s < 3; s++) {
            stage50 [s][r] = rep->stage_p50 [s];
            stage99 [s][r] = rep->stage_p99 [s];
        }
    }
    s_routers_stop (&options);
    PQfinish (conn);
    int missing = 0;
    for (int r = 0; r < options.reps && rc == 0; r++)
        missing += reps [r].missing;
    if (rc)
        return 1;
    int n = options.reps;
    double m99 = s_median (p99, n);
    double mrate = s_median (rate, n);
    printf ("\nmedians of %d                      value      target      ratio\n", n);
    printf ("  p50 receipt -> requested     %8.1f ms\n", s_median (p50, n));
    printf ("  p99 receipt -> requested     %8.1f ms  < %5.0f ms   %5.2f %s\n", m99,
            S_TARGET_P99_MS, m99 / S_TARGET_P99_MS, m99 < S_TARGET_P99_MS ? "met" : "MISSED");
    printf ("  routed referrals/s (backlog) %8.0f /s  >= %5.0f /s  %5.2f %s\n", mrate,
            S_TARGET_RATE, mrate / S_TARGET_RATE, mrate >= S_TARGET_RATE ? "met" : "MISSED");
    printf ("  where the time goes (p50 / p99 ms): receipt -> intake processed %.1f / %.1f;"
            " -> router began %.1f / %.1f; -> referral committed %.1f / %.1f\n",
            s_median (stage50 [0], n), s_median (stage99 [0], n), s_median (stage50 [1], n),
            s_median (stage99 [1], n), s_median (stage50 [2], n), s_median (stage99 [2], n));
    if (missing)
        printf ("  %d accepted events got no referral in time: not measured, figures flattered\n",
                missing);
    return missing ? 1 : 0;
}
