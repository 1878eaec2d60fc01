/*  bench_ingest - intake's ingest throughput and receipt latency against a running intake,
    and the ceiling: the same rows inserted straight into PostgreSQL. Run by bench/run. */
#include "bench_common.h"
#include <pthread.h>
#include <poll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/resource.h>

//  What to run, from the command line
typedef struct {
    const char *endpoint;           /* intake's ingest endpoint */
    const char *pg_url;             /* intake's database (the ceiling's too) */
    int metrics_port;               /* intake's HTTP port, for its group-commit counters */
    int intake_pid;                 /* for VmHWM and CPU; 0 = not reported */
    int pg_pid;                     /* PostgreSQL's postmaster, for CPU; 0 = not reported */
    int events;                     /* per throughput repetition */
    int publishers;                 /* concurrent DEALERs, one thread each */
    int window;                     /* requests in flight per publisher */
    int rate;                       /* paced run: events/s over all publishers */
    int paced_events;               /* per paced repetition */
    int reps;                       /* repetitions of each measurement */
    int connections;                /* ceiling: PostgreSQL connections */
} s_options_t;

//  One publisher's work and results; the thread owns it until joined
typedef struct {
    const s_options_t *options;     /* read only */
    zchunk_t **events;              /* its events, encoded */
    int n;                          /* how many */
    double interval;                /* paced: seconds between its sends, 0 = as fast as allowed */
    double start;                   /* paced: when the first is due (monotonic seconds) */
    double *latency;                /* out: ms per event, send (or due time) to receipt */
    double first_send;              /* out: monotonic seconds */
    double last_receipt;            /* out: monotonic seconds */
    int accepted;                   /* out: receipts `accepted` */
    int other;                      /* out: any other receipt */
    int lost;                       /* out: no receipt within the timeout */
    char error [256];               /* out: why it stopped early, "" if it did not */
} s_publisher_t;

// -- events -------------------------------------------------------------------------

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

static void
s_address (msgpack_packer *pk, long i)
{
    char number [16], postcode [8];
    snprintf (number, sizeof number, "%ld", 1 + i % 180);
    snprintf (postcode, sizeof postcode, "080%02ld", 1 + i % 42);
    msgpack_pack_map (pk, 3);
    s_str (pk, "street");   s_str (pk, i % 2 ? "Carrer de la Riera Baixa" : "Passeig de Sant Joan");
    s_str (pk, "number");   s_str (pk, number);
    s_str (pk, "postcode"); s_str (pk, postcode);
}

//  Event i of the run `tag`: a valid contract-v1 event, the type cycling through the catalogue
static zchunk_t *
s_event (const char *tag, long i)
{
    static const char *types [] = {
        "attention.requested", "health.social_risk_detected", "housing.eviction_scheduled",
        "emergency.intervention", "register.address_changed", "benefits.application_submitted",
        "consent.granted", "consent.revoked" };
    static const char *sources [] = {
        "citizen-office", "primary-care", "housing-office", "cuesb", "municipal-register",
        "e-office", "primary-care", "primary-care" };
    int t = (int) (i % 8);
    char id [96], now [32], dni [16], ref [112];
    snprintf (id, sizeof id, "%s-%ld", tag, i);
    snprintf (ref, sizeof ref, "ref-%s-%ld", tag, i);
    fs_rfc3339 (fs_now_ms (), now);
    long number = 10000000 + (i * 7919) % 89999999;
    snprintf (dni, sizeof dni, "%08ld%c", number, "TRWAGMYFPDXBNJZSQVHLCKE" [number % 23]);

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "v");           msgpack_pack_int (&pk, 1);
    s_str (&pk, "id");          s_str (&pk, id);
    s_str (&pk, "source");      s_str (&pk, sources [t]);
    s_str (&pk, "type");        s_str (&pk, types [t]);
    s_str (&pk, "occurred_at"); s_str (&pk, now);
    s_str (&pk, "subject");
    msgpack_pack_map (&pk, 6);
    s_str (&pk, "doc_type");    s_str (&pk, "DNI");
    s_str (&pk, "doc_number");  s_str (&pk, dni);
    s_str (&pk, "given_name");  s_str (&pk, i % 3 ? "Anna" : "Jordi");
    s_str (&pk, "family_name"); s_str (&pk, i % 5 ? "Puig i Ferrer" : "Garcia Soler");
    s_str (&pk, "birth_date");  s_str (&pk, i % 2 ? "1980-04-01" : "1995-11-23");
    s_str (&pk, "address");     s_address (&pk, i);
    s_str (&pk, "data");
    switch (t) {
        case 0:
            msgpack_pack_map (&pk, 2);
            s_str (&pk, "channel"); s_str (&pk, "phone");
            s_str (&pk, "reason");  s_str (&pk, "Needs help paying the rent this month");
            break;
        case 1:
            msgpack_pack_map (&pk, 3);
            s_str (&pk, "icd10_codes"); msgpack_pack_array (&pk, 2);
            s_str (&pk, "Z59.0"); s_str (&pk, "Z60");
            s_str (&pk, "suggested_level"); s_str (&pk, "complementation");
            s_str (&pk, "urgency"); s_str (&pk, i % 16 == 1 ? "urgent" : "ordinary");
            break;
        case 2:
            msgpack_pack_map (&pk, 3);
            s_str (&pk, "eviction_date");  s_str (&pk, "2027-03-15");
            s_str (&pk, "household_size"); msgpack_pack_int (&pk, 3);
            s_str (&pk, "minors");         msgpack_pack_int (&pk, 1);
            break;
        case 3:
            msgpack_pack_map (&pk, 4);
            s_str (&pk, "kind");            s_str (&pk, "emergency_accommodation");
            s_str (&pk, "at");              s_str (&pk, now);
            s_str (&pk, "minors_involved"); msgpack_pack_int (&pk, 0);
            s_str (&pk, "urgency");         s_str (&pk, "preferent");
            break;
        case 4:
            msgpack_pack_map (&pk, 2);
            s_str (&pk, "new_address");    s_address (&pk, i + 1);
            s_str (&pk, "effective_date"); s_str (&pk, "2026-10-01");
            break;
        case 5:
            msgpack_pack_map (&pk, 4);
            s_str (&pk, "programme");       s_str (&pk, "child_fund_0_17");
            s_str (&pk, "application_ref"); s_str (&pk, ref);
            s_str (&pk, "submitted_at");    s_str (&pk, now);
            s_str (&pk, "channel");         s_str (&pk, "online");
            break;
        case 6:
            msgpack_pack_map (&pk, 5);
            s_str (&pk, "consent_ref");     s_str (&pk, ref);
            s_str (&pk, "purpose");         s_str (&pk, "social_health_coordination");
            s_str (&pk, "data_categories"); msgpack_pack_array (&pk, 2);
            s_str (&pk, "identity"); s_str (&pk, "social_health");
            s_str (&pk, "recipients");      msgpack_pack_array (&pk, 1);
            s_str (&pk, "social_services");
            s_str (&pk, "given_at");        s_str (&pk, now);
            break;
        default:
            msgpack_pack_map (&pk, 2);
            s_str (&pk, "consent_ref"); s_str (&pk, ref);
            s_str (&pk, "revoked_at");  s_str (&pk, now);
            break;
    }
    zchunk_t *chunk = zchunk_new (buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    return chunk;
}

// -- publishers -----------------------------------------------------------------------

//  The string value of key in a msgpack map, or NULL (len set)
static const char *
s_receipt_str (const msgpack_object *map, const char *key, size_t *len)
{
    size_t klen = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        const msgpack_object *v = &map->via.map.ptr [i].val;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen
        &&  memcmp (k->via.str.ptr, key, klen) == 0 && v->type == MSGPACK_OBJECT_STR) {
            *len = v->via.str.size;
            return v->via.str.ptr;
        }
    }
    return NULL;
}

//  Reads one receipt: the event's index (its id's last number) and whether it was accepted.
//  -1 when unreadable. Light on purpose (msgpack only, two keys), so the publishers take
//  less of the cores intake shares with them; the full decode only to print a refusal.
static long
s_read_receipt (zsock_t *dealer, bool *accepted)
{
    zmsg_t *msg = zmsg_recv (dealer);
    if (!msg)
        return -1;
    long index = -1;
    zframe_t *body = zmsg_last (msg);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t idlen = 0, slen = 0;
    const char *id = NULL, *status = NULL;
    if (zmsg_size (msg) == 2 && body
    &&  msgpack_unpack_next (&unpacked, (const char *) zframe_data (body), zframe_size (body),
                             NULL) == MSGPACK_UNPACK_SUCCESS
    &&  unpacked.data.type == MSGPACK_OBJECT_MAP) {
        id = s_receipt_str (&unpacked.data, "id", &idlen);
        status = s_receipt_str (&unpacked.data, "status", &slen);
    }
    if (id && status) {
        char text [160];
        snprintf (text, sizeof text, "%.*s", (int) idlen, id);
        const char *dash = strrchr (text, '-');
        index = dash ? atol (dash + 1) : -1;
        *accepted = slen == 8 && memcmp (status, "accepted", 8) == 0;
        fs_ingest_receipt_t receipt = { 0 };
        fs_proto_error_t err;
        if (!*accepted
        &&  fs_proto_decode (&fs_ingest_receipt_type, zframe_data (body), zframe_size (body),
                             &receipt, &err) == 0 && receipt.id && receipt.error.message)
            fprintf (stderr, "bench_ingest: %s %s: %s\n", receipt.id, receipt.status,
                     receipt.error.message);
        fs_proto_clear (&fs_ingest_receipt_type, &receipt);
    }
    msgpack_unpacked_destroy (&unpacked);
    zmsg_destroy (&msg);
    return index;
}

static void *
s_publisher (void *arg)
{
    s_publisher_t *self = (s_publisher_t *) arg;
    const s_options_t *options = self->options;
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    if (!dealer) {
        snprintf (self->error, sizeof self->error, "cannot create a DEALER");
        return NULL;
    }
    zsock_set_sndhwm (dealer, 100000);
    zsock_set_rcvhwm (dealer, 100000);
    zsock_set_linger (dealer, 0);
    if (zsock_connect (dealer, "%s", options->endpoint)) {
        snprintf (self->error, sizeof self->error, "cannot connect %s", options->endpoint);
        zsock_destroy (&dealer);
        return NULL;
    }
    //  Sent-at per event, by index; latency filled as receipts come
    double *sent_at = (double *) calloc ((size_t) self->n, sizeof *sent_at);
    bool *answered = (bool *) calloc ((size_t) self->n, sizeof *answered);
    int sent = 0, received = 0;
    double last_progress = fs_bench_now ();
    self->first_send = 0;
    while (received < self->n && sent_at && answered) {
        double now = fs_bench_now ();
        //  Send what the window (or the pace) allows
        while (sent < self->n && sent - received < options->window) {
            double due = self->interval > 0 ? self->start + sent * self->interval : now;
            if (due > now)
                break;
            zchunk_t *event = self->events [sent];
            zmsg_t *msg = zmsg_new ();
            zmsg_addmem (msg, NULL, 0);
            zmsg_addmem (msg, zchunk_data (event), zchunk_size (event));
            //  Paced: latency counts from when it was due (a late send is intake's delay too)
            sent_at [sent] = self->interval > 0 ? due : now;
            if (zmsg_send (&msg, dealer)) {
                zmsg_destroy (&msg);
                snprintf (self->error, sizeof self->error, "send failed");
                goto done;
            }
            if (self->first_send == 0)
                self->first_send = sent_at [sent];
            sent++;
            now = fs_bench_now ();
        }
        //  Wait for a receipt, or until the next send is due
        int timeout_ms = 1000;
        if (self->interval > 0 && sent < self->n && sent - received < options->window) {
            double wait = self->start + sent * self->interval - fs_bench_now ();
            timeout_ms = wait <= 0 ? 0 : (int) (wait * 1000.0) + 1;
            if (timeout_ms > 1000)
                timeout_ms = 1000;
        }
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, timeout_ms);
        if (rc < 0) {
            snprintf (self->error, sizeof self->error, "poll: %s", zmq_strerror (zmq_errno ()));
            goto done;
        }
        while (zsock_events (dealer) & ZMQ_POLLIN) {
            bool accepted = false;
            long index = s_read_receipt (dealer, &accepted);
            double at = fs_bench_now ();
            if (index < 0 || index >= self->n || answered [index]) {
                self->other++;
                continue;
            }
            answered [index] = true;
            self->latency [received++] = (at - sent_at [index]) * 1000.0;
            self->last_receipt = at;
            last_progress = at;
            if (accepted)
                self->accepted++;
            else
                self->other++;
        }
        if (fs_bench_now () - last_progress > 30) {
            self->lost = self->n - received;
            snprintf (self->error, sizeof self->error, "no receipt for 30 s; %d missing",
                      self->lost);
            goto done;
        }
    }
done:
    free (sent_at);
    free (answered);
    zsock_destroy (&dealer);
    return NULL;
}

//  Results of one run over all publishers
typedef struct {
    double rate;                    /* accepted events/s, first send to last receipt */
    double p50, p99, max;           /* receipt latency, ms */
    int accepted;                   /* receipts `accepted` */
    int failed;                     /* other receipts and missing ones */
    double cpu_intake;              /* CPU seconds during the run: intake (0 = unknown) */
    double cpu_pg;                  /* PostgreSQL (0 = unknown) */
    double cpu_bench;               /* the publishers (this process) */
} s_run_t;

static double s_cpu_of (int pid);
static double s_pg_cpu (int postmaster);
static double s_self_cpu (void);

//  Publishes n events tagged `tag`; rate 0 = as fast as the windows allow
static int
s_run (const s_options_t *options, const char *tag, int n, int rate, s_run_t *run)
{
    int publishers = options->publishers;
    s_publisher_t *pubs = (s_publisher_t *) calloc ((size_t) publishers, sizeof *pubs);
    pthread_t *threads = (pthread_t *) calloc ((size_t) publishers, sizeof *threads);
    double *all = (double *) calloc ((size_t) n, sizeof *all);
    assert (pubs && threads && all);
    //  Encoded up front, so the run measures intake, not the encoder
    for (int p = 0; p < publishers; p++) {
        s_publisher_t *pub = &pubs [p];
        pub->options = options;
        pub->n = n / publishers + (p < n % publishers);
        pub->events = (zchunk_t **) calloc ((size_t) pub->n, sizeof *pub->events);
        pub->latency = (double *) calloc ((size_t) pub->n, sizeof *pub->latency);
        assert (pub->events && pub->latency);
        char ptag [64];
        snprintf (ptag, sizeof ptag, "%s-p%d", tag, p);
        for (int i = 0; i < pub->n; i++)
            pub->events [i] = s_event (ptag, i);
    }
    //  Paced: each publisher sends every publishers/rate s, staggered so sends interleave
    double start = fs_bench_now () + 0.2;
    for (int p = 0; p < publishers && rate > 0; p++) {
        pubs [p].interval = (double) publishers / rate;
        pubs [p].start = start + pubs [p].interval * p / publishers;
    }
    memset (run, 0, sizeof *run);
    //  CPU from here: the events are encoded, so this is sending, receipts and storing
    double cpu_intake = options->intake_pid > 0 ? s_cpu_of (options->intake_pid) : 0;
    double cpu_pg = options->pg_pid > 0 ? s_pg_cpu (options->pg_pid) : 0;
    double cpu_bench = s_self_cpu ();
    for (int p = 0; p < publishers; p++)
        if (pthread_create (&threads [p], NULL, s_publisher, &pubs [p]))
            return -1;
    double first_send = 0, last_receipt = 0;
    size_t nlat = 0;
    int rc = 0;
    for (int p = 0; p < publishers; p++)
        pthread_join (threads [p], NULL);
    run->cpu_bench = s_self_cpu () - cpu_bench;
    if (options->intake_pid > 0)
        run->cpu_intake = s_cpu_of (options->intake_pid) - cpu_intake;
    if (options->pg_pid > 0)
        run->cpu_pg = s_pg_cpu (options->pg_pid) - cpu_pg;
    for (int p = 0; p < publishers; p++) {
        s_publisher_t *pub = &pubs [p];
        if (pub->error [0]) {
            fprintf (stderr, "bench_ingest: publisher %d: %s\n", p, pub->error);
            rc = -1;
        }
        if (pub->first_send > 0 && (first_send == 0 || pub->first_send < first_send))
            first_send = pub->first_send;
        if (pub->last_receipt > last_receipt)
            last_receipt = pub->last_receipt;
        int answered = pub->accepted + pub->other;
        if (answered > pub->n)
            answered = pub->n;
        memcpy (all + nlat, pub->latency, (size_t) answered * sizeof *all);
        nlat += (size_t) answered;
        run->accepted += pub->accepted;
        run->failed += pub->other + pub->lost;
        for (int i = 0; i < pub->n; i++)
            zchunk_destroy (&pub->events [i]);
        free (pub->events);
        free (pub->latency);
    }
    qsort (all, nlat, sizeof *all, fs_bench_cmp_double);
    run->p50 = fs_bench_percentile_sorted (all, nlat, 0.50);
    run->p99 = fs_bench_percentile_sorted (all, nlat, 0.99);
    run->max = nlat ? all [nlat - 1] : 0;
    run->rate = last_receipt > first_send ? run->accepted / (last_receipt - first_send) : 0;
    free (all);
    free (pubs);
    free (threads);
    return rc;
}

// -- intake's own figures: group commit size, peak memory -----------------------------

//  Sum of the values of the lines of metric `name` in intake's /metrics whose labels
//  contain `label` (NULL: any); -1 if none
static double
s_metric (int port, const char *name, const char *label)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct timeval tv = { 5, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double value = -1;
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0) {
        const char request [] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (write (fd, request, sizeof request - 1) == (ssize_t) sizeof request - 1) {
            size_t cap = 1 << 20, len = 0;
            char *text = (char *) malloc (cap);
            ssize_t got;
            while (text && len < cap - 1 && (got = read (fd, text + len, cap - 1 - len)) > 0)
                len += (size_t) got;
            if (text) {
                text [len] = 0;
                size_t nlen = strlen (name);
                for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
                    if (strncmp (line, name, nlen) == 0
                    &&  (line [nlen] == ' ' || line [nlen] == '{')
                    &&  (!label || strstr (line, label))) {
                        char *space = strrchr (line, ' ');
                        value = (value < 0 ? 0 : value) + (space ? atof (space + 1) : 0);
                    }
            }
            free (text);
        }
    }
    close (fd);
    return value;
}

//  Mean events per group commit since the counters were (accepted0, batches0)
static double
s_batch_mean (const s_options_t *options, double accepted0, double batches0)
{
    double accepted = s_metric (options->metrics_port, "finestra_intake_receipts_total",
                                 "status=\"accepted\"");
    double batches = s_metric (options->metrics_port, "finestra_intake_batches_total", NULL);
    if (accepted < 0 || batches <= batches0)
        return -1;
    return (accepted - accepted0) / (batches - batches0);
}

//  CPU seconds (user + system, all threads) a process has used; 0 if unreadable
static double
s_cpu_of (int pid)
{
    double cpu = fs_bench_cpu_seconds (pid);
    return cpu < 0 ? 0 : cpu;
}

//  CPU seconds of the postmaster and its live children (backends, WAL writer, checkpointer);
//  a backend that exited in between is missed, so measure across runs with lasting connections
static double
s_pg_cpu (int postmaster)
{
    double children = fs_bench_children_cpu (postmaster);
    return s_cpu_of (postmaster) + (children > 0 ? children : 0);
}

//  This process's CPU seconds (the publishers, and libzmq's I/O threads)
static double
s_self_cpu (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (double) usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6
         + (double) usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

// -- the ceiling: the same rows, plain batched INSERTs ---------------------------------

//  The rows intake stored for one run, as INSERT parameters
typedef struct {
    int n;                          /* rows */
    PGresult *result;               /* owns the values */
} s_rows_t;

//  One inserting connection's share
typedef struct {
    const char *pg_url;             /* where */
    PGresult *rows;                 /* the rows (read only) */
    int from, to;                   /* its range */
    int batch;                      /* rows per INSERT (and per transaction) */
    char error [256];               /* "" when all went in */
    double cpu;                     /* out: its backend's CPU seconds (it exits with us) */
} s_inserter_t;

static void *
s_inserter (void *arg)
{
    s_inserter_t *self = (s_inserter_t *) arg;
    PGconn *conn = PQconnectdb (self->pg_url);
    if (PQstatus (conn) != CONNECTION_OK) {
        snprintf (self->error, sizeof self->error, "%s", PQerrorMessage (conn));
        PQfinish (conn);
        return NULL;
    }
    //  One statement per batch: "... VALUES ($1..$7), ($8..$14), ..."
    size_t cap = (size_t) self->batch * 64 + 256;
    char *sql = (char *) malloc (cap);
    int nparams = self->batch * 7;
    const char **values = (const char **) calloc ((size_t) nparams, sizeof *values);
    int *lengths = (int *) calloc ((size_t) nparams, sizeof *lengths);
    int *formats = (int *) calloc ((size_t) nparams, sizeof *formats);
    unsigned char **blobs = (unsigned char **) calloc ((size_t) self->batch, sizeof *blobs);
    assert (sql && values && lengths && formats && blobs);
    for (int from = self->from; from < self->to && !self->error [0]; from += self->batch) {
        int n = self->to - from < self->batch ? self->to - from : self->batch;
        size_t len = (size_t) snprintf (sql, cap, "INSERT INTO bench.scratch (ref, source,"
                                        " external_id, type, occurred_at, content_hash, event) VALUES ");
        for (int r = 0; r < n; r++) {
            int b = r * 7;
            len += (size_t) snprintf (sql + len, cap - len, "%s($%d,$%d,$%d,$%d,$%d,$%d,$%d)",
                                      r ? "," : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7);
            for (int c = 0; c < 6; c++) {
                values [b + c] = PQgetvalue (self->rows, from + r, c);
                formats [b + c] = 0;
            }
            //  The event as bytes, sent binary as intake's are
            size_t blen = 0;
            blobs [r] = PQunescapeBytea ((const unsigned char *) PQgetvalue (self->rows, from + r, 6),
                                         &blen);
            values [b + 6] = (const char *) blobs [r];
            lengths [b + 6] = (int) blen;
            formats [b + 6] = 1;
        }
        PGresult *result = PQexecParams (conn, sql, n * 7, NULL, values, lengths, formats, 0);
        if (PQresultStatus (result) != PGRES_COMMAND_OK)
            snprintf (self->error, sizeof self->error, "%s", PQerrorMessage (conn));
        PQclear (result);
        for (int r = 0; r < n; r++)
            PQfreemem (blobs [r]);
    }
    free (sql);
    free (values);
    free (lengths);
    free (formats);
    free (blobs);
    self->cpu = s_cpu_of (PQbackendPID (conn));
    PQfinish (conn);
    return NULL;
}

static PGresult *
s_query (PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *result = PQexecParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus (result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        fprintf (stderr, "bench_ingest: %s: %s", sql, PQerrorMessage (conn));
        PQclear (result);
        return NULL;
    }
    return result;
}

//  Inserts the rows of run `tag` into a fresh scratch table; events/s, or -1
static double
s_ceiling (const s_options_t *options, PGconn *conn, const char *tag, int batch, double *cpu)
{
    //  Same columns, defaults, constraints and indexes as intake.events, whatever they are now
    PGresult *result = s_query (conn, "CREATE SCHEMA IF NOT EXISTS bench", 0, NULL);
    PQclear (result);
    result = s_query (conn, "DROP TABLE IF EXISTS bench.scratch", 0, NULL);
    PQclear (result);
    result = s_query (conn, "CREATE TABLE bench.scratch (LIKE intake.events INCLUDING ALL)", 0, NULL);
    if (!result)
        return -1;
    PQclear (result);
    char pattern [80];
    snprintf (pattern, sizeof pattern, "%s-%%", tag);
    const char *params [1] = { pattern };
    PGresult *rows = s_query (conn,
        "SELECT ref::text, source, external_id, type, occurred_at::text, content_hash, event"
        " FROM intake.events WHERE external_id LIKE $1 ORDER BY seq", 1, params);
    if (!rows)
        return -1;
    int n = PQntuples (rows);
    int connections = options->connections;
    s_inserter_t *inserters = (s_inserter_t *) calloc ((size_t) connections, sizeof *inserters);
    pthread_t *threads = (pthread_t *) calloc ((size_t) connections, sizeof *threads);
    assert (inserters && threads);
    //  Same checkpoint state for every repetition
    result = s_query (conn, "CHECKPOINT", 0, NULL);
    PQclear (result);
    double pg_cpu = options->pg_pid > 0 ? s_pg_cpu (options->pg_pid) : 0;
    double started = fs_bench_now ();
    for (int c = 0; c < connections; c++) {
        inserters [c] = (s_inserter_t) { .pg_url = options->pg_url, .rows = rows,
                                         .from = (int) ((long) n * c / connections),
                                         .to = (int) ((long) n * (c + 1) / connections),
                                         .batch = batch };
        pthread_create (&threads [c], NULL, s_inserter, &inserters [c]);
    }
    bool ok = true;
    for (int c = 0; c < connections; c++) {
        pthread_join (threads [c], NULL);
        if (inserters [c].error [0]) {
            fprintf (stderr, "bench_ingest: ceiling: %s", inserters [c].error);
            ok = false;
        }
    }
    double elapsed = fs_bench_now () - started;
    //  PostgreSQL's CPU per row: the inserting backends (gone now) and the rest of it
    *cpu = 0;
    if (options->pg_pid > 0 && n > 0) {
        *cpu = s_pg_cpu (options->pg_pid) - pg_cpu;
        for (int c = 0; c < connections; c++)
            *cpu += inserters [c].cpu;
        *cpu = 1e6 * *cpu / n;
    }
    free (inserters);
    free (threads);
    PQclear (rows);
    if (!ok || n == 0)
        return -1;
    //  Every row must be there, or the figure means nothing
    result = s_query (conn, "SELECT count(*) FROM bench.scratch", 0, NULL);
    long stored = result ? atol (PQgetvalue (result, 0, 0)) : -1;
    PQclear (result);
    if (stored != n) {
        fprintf (stderr, "bench_ingest: ceiling stored %ld of %d rows\n", stored, n);
        return -1;
    }
    return n / elapsed;
}

// -- main -------------------------------------------------------------------------------

static void
s_row (const char *what, int decimals, double *values, int reps, const char *target,
       bool met)
{
    char cell [32];
    printf ("%-34s", what);
    for (int r = 0; r < reps; r++) {
        snprintf (cell, sizeof cell, "%.*f", decimals, values [r]);
        printf (" %10s", cell);
    }
    snprintf (cell, sizeof cell, "%.*f", decimals, fs_bench_median (values, reps));
    printf (" %10s  %-12s %s\n", cell, target, *target ? (met ? "met" : "MISSED") : "");
}

static void
s_usage (void)
{
    fprintf (stderr,
        "usage: bench_ingest --endpoint EP --pg URL --metrics-port PORT [--intake-pid PID]\n"
        "       [--pg-pid POSTMASTER_PID]\n"
        "       [--events N=30000] [--publishers P=8] [--window W=64] [--rate R=2000]\n"
        "       [--paced-events M=6000] [--reps 3] [--connections C=4]\n"
        "Measures a running intake (bench/run starts one on throwaway stores).\n");
}

int
main (int argc, char **argv)
{
    s_options_t options = { .events = 30000, .publishers = 8, .window = 64, .rate = 2000,
                            .paced_events = 6000, .reps = 3, .connections = 4 };
    for (int i = 1; i < argc; i++) {
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (!value) {
            s_usage ();
            return 2;
        }
        if      (streq (argv [i], "--endpoint"))     options.endpoint = value;
        else if (streq (argv [i], "--pg"))           options.pg_url = value;
        else if (streq (argv [i], "--metrics-port")) options.metrics_port = atoi (value);
        else if (streq (argv [i], "--intake-pid"))   options.intake_pid = atoi (value);
        else if (streq (argv [i], "--pg-pid"))       options.pg_pid = atoi (value);
        else if (streq (argv [i], "--events"))       options.events = atoi (value);
        else if (streq (argv [i], "--publishers"))   options.publishers = atoi (value);
        else if (streq (argv [i], "--window"))       options.window = atoi (value);
        else if (streq (argv [i], "--rate"))         options.rate = atoi (value);
        else if (streq (argv [i], "--paced-events")) options.paced_events = atoi (value);
        else if (streq (argv [i], "--reps"))         options.reps = atoi (value);
        else if (streq (argv [i], "--connections"))  options.connections = atoi (value);
        else {
            s_usage ();
            return 2;
        }
        i++;
    }
    if (!options.endpoint || !options.pg_url || options.metrics_port <= 0
    ||  options.events < options.publishers || options.publishers < 1 || options.window < 1
    ||  options.rate < 1 || options.paced_events < options.publishers || options.reps < 1
    ||  options.reps > 16 || options.connections < 1) {
        s_usage ();
        return 2;
    }
    zsys_init ();
    zsys_set_max_sockets (0);
    zsys_handler_set (NULL);

    PGconn *conn = PQconnectdb (options.pg_url);
    if (PQstatus (conn) != CONNECTION_OK) {
        fprintf (stderr, "bench_ingest: %s", PQerrorMessage (conn));
        PQfinish (conn);
        return 1;
    }
    //  The scratch table's DDL says NOTICEs we do not need
    PGresult *result = s_query (conn, "SET client_min_messages = warning", 0, NULL);
    PQclear (result);
    result = s_query (conn, "SHOW synchronous_commit", 0, NULL);
    char sync_commit [32] = "?";
    if (result)
        snprintf (sync_commit, sizeof sync_commit, "%s", PQgetvalue (result, 0, 0));
    PQclear (result);
    //  A run tag: ids stay distinct across runs on the same database
    char run_tag [16];
    snprintf (run_tag, sizeof run_tag, "b%08x", randombytes_random ());

    printf ("bench_ingest: %d publishers x window %d, %d events per run, %d repetitions;"
            " paced %d/s x %d events; ceiling %d connections; synchronous_commit=%s\n",
            options.publishers, options.window, options.events, options.reps, options.rate,
            options.paced_events, options.connections, sync_commit);
    if (!streq (sync_commit, "on"))
        printf ("WARNING: synchronous_commit is %s: figures are not durable-commit figures\n",
                sync_commit);
    fflush (stdout);

    //  Warm-up: connections, caches, intake's first batches
    s_run_t run;
    char tag [64];
    snprintf (tag, sizeof tag, "%s-warm", run_tag);
    if (s_run (&options, tag, options.publishers * 250, 0, &run) || run.failed) {
        fprintf (stderr, "bench_ingest: warm-up failed (%d not accepted)\n", run.failed);
        return 1;
    }

    int reps = options.reps;
    double rate [16], p50 [16], p99 [16], batch [16], paced_rate [16], paced_p50 [16],
           paced_p99 [16], ceiling [16], ratio [16], cpu_intake [16], cpu_pg [16],
           cpu_bench [16], cpu_ceiling [16];
    int failed = 0;
    for (int r = 0; r < reps; r++) {
        double accepted0 = s_metric (options.metrics_port, "finestra_intake_receipts_total",
                                     "status=\"accepted\"");
        double batches0 = s_metric (options.metrics_port, "finestra_intake_batches_total", NULL);
        snprintf (tag, sizeof tag, "%s-t%d", run_tag, r);
        if (s_run (&options, tag, options.events, 0, &run))
            failed++;
        failed += run.failed;
        rate [r] = run.rate;
        p50 [r] = run.p50;
        p99 [r] = run.p99;
        batch [r] = s_batch_mean (&options, accepted0, batches0);
        printf ("  throughput %d: %.0f accepted/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms,"
                " %.1f events per commit\n", r + 1, run.rate, run.p50, run.p99, run.max, batch [r]);
        //  Where the 2 cores went: all three share them
        cpu_intake [r] = 1e6 * run.cpu_intake / options.events;
        cpu_pg [r] = 1e6 * run.cpu_pg / options.events;
        cpu_bench [r] = 1e6 * run.cpu_bench / options.events;
        printf ("    CPU per event: intake %.1f us, PostgreSQL %.1f us, publishers %.1f us\n",
                cpu_intake [r], cpu_pg [r], cpu_bench [r]);
        fflush (stdout);
    }
    for (int r = 0; r < reps; r++) {
        snprintf (tag, sizeof tag, "%s-p%d", run_tag, r);
        if (s_run (&options, tag, options.paced_events, options.rate, &run))
            failed++;
        failed += run.failed;
        paced_rate [r] = run.rate;
        paced_p50 [r] = run.p50;
        paced_p99 [r] = run.p99;
        printf ("  paced %d: %.0f accepted/s, p50 %.2f ms, p99 %.2f ms, max %.1f ms\n",
                r + 1, run.rate, run.p50, run.p99, run.max);
        fflush (stdout);
    }
    //  The ceiling's batches are intake's mean group commit over the throughput runs
    int ceiling_batch = (int) (fs_bench_median (batch, reps) + 0.5);
    if (ceiling_batch < 1)
        ceiling_batch = 1;
    for (int r = 0; r < reps; r++) {
        snprintf (tag, sizeof tag, "%s-t%d", run_tag, r);
        ceiling [r] = s_ceiling (&options, conn, tag, ceiling_batch, &cpu_ceiling [r]);
        ratio [r] = ceiling [r] > 0 ? 100.0 * rate [r] / ceiling [r] : 0;
        printf ("  ceiling %d: %.0f rows/s in INSERTs of %d rows; PostgreSQL CPU %.1f us per row\n",
                r + 1, ceiling [r], ceiling_batch, cpu_ceiling [r]);
        fflush (stdout);
    }
    result = s_query (conn, "DROP TABLE IF EXISTS bench.scratch", 0, NULL);
    PQclear (result);
    PQfinish (conn);

    printf ("\n%-34s", "");
    for (int r = 0; r < reps; r++)
        printf ("      run %d", r + 1);
    printf ("     median  %-12s\n", "target");
    s_row ("accepted events/s", 0, rate, reps, ">= 20000", fs_bench_median (rate, reps) >= 20000);
    s_row ("receipt latency p50 (ms)", 2, p50, reps, "", true);
    s_row ("receipt latency p99 (ms)", 2, p99, reps, "", true);
    s_row ("events per group commit", 1, batch, reps, "", true);
    if (options.intake_pid > 0)
        s_row ("CPU per event: intake (us)", 1, cpu_intake, reps, "", true);
    if (options.pg_pid > 0)
        s_row ("CPU per event: PostgreSQL (us)", 1, cpu_pg, reps, "", true);
    s_row ("CPU per event: publishers (us)", 1, cpu_bench, reps, "", true);
    char paced [64];
    snprintf (paced, sizeof paced, "paced %d/s: accepted/s", options.rate);
    s_row (paced, 0, paced_rate, reps, "", true);
    snprintf (paced, sizeof paced, "paced %d/s: p50 (ms)", options.rate);
    s_row (paced, 2, paced_p50, reps, "", true);
    snprintf (paced, sizeof paced, "paced %d/s: p99 (ms)", options.rate);
    s_row (paced, 2, paced_p99, reps, "<= 25", fs_bench_median (paced_p99, reps) <= 25);
    snprintf (paced, sizeof paced, "ceiling: INSERTs of %d, %d conns/s", ceiling_batch,
              options.connections);
    s_row (paced, 0, ceiling, reps, "", true);
    if (options.pg_pid > 0)
        s_row ("ceiling: PostgreSQL CPU/row (us)", 1, cpu_ceiling, reps, "", true);
    s_row ("intake / ceiling (%)", 1, ratio, reps, ">= 40", fs_bench_median (ratio, reps) >= 40);
    if (options.intake_pid > 0)
        printf ("%-34s %10.1f MiB (VmHWM)\n", "intake peak RSS",
                fs_bench_vmhwm_kb (options.intake_pid) / 1024.0);
    printf ("%-34s %10s\n", "synchronous_commit", sync_commit);
    if (failed)
        printf ("WARNING: %d events not accepted or runs incomplete: see stderr\n", failed);
    return failed ? 1 : 0;
}
