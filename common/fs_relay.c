/*  fs_relay - sends a service's outbox to its consumers; marks rows delivered when acknowledged. */
#include "finestra.h"

#define FS_RELAY_MAX_CONSUMERS 8
#define FS_RELAY_LOCK_RETRY_MS 1000
//  A row this many retry times old is lost when a row sent after it has been acknowledged
#define FS_RELAY_LOST_RETRIES 3
//  Probes of a silent consumer back off, doubling, up to this many retry times apart
#define FS_RELAY_PROBE_RETRIES_MAX 32
//  Reads of new rows remembered while a transaction in progress at them may still commit
#define FS_RELAY_OPEN_READS 32

typedef struct {
    int64_t seq;                /* its outbox row */
    int64_t sent_at;            /* mono ms of its last send */
    int sends;                  /* sends by this leader: after 1, an ack may be any copy's */
} s_flight_t;

//  A read of new rows that transactions then in progress may still add rows below: until
//  they have all ended (the oldest transaction in progress is xmax or later), the reads
//  start at floor, not at the cursor, so a row that commits after a higher one is not lost
typedef struct {
    uint64_t xmax;              /* the read's snapshot: first transaction id not yet begun */
    int64_t floor;              /* the cursor before the read */
} s_open_read_t;

typedef struct {
    const char *name;           /* consumer service */
    zsock_t *dealer;            /* connected to its bus ROUTER */
    zhashx_t *inflight;         /* msg_id -> s_flight_t: sent by this leader, not acked */
    int64_t last_ack;           /* mono ms of its last ack (0: none since leading) */
    int64_t acked_sent;         /* send time of the newest row sent once it acknowledged */
    int64_t probe_acked;        /* send time of a re-sent row it acknowledged, while no row
                                   sent before that was acknowledged since (0: none) */
    int64_t probe_wait;         /* ms from a probe to the next while silent (0: retry) */
    bool wanted;                /* a send round may find rows for it */
    int64_t cursor;             /* highest seq its reads of new rows sent (0: none yet) */
    s_open_read_t open [FS_RELAY_OPEN_READS];
    size_t nopen;               /* reads still open, oldest first */
    int64_t next_full;          /* mono ms of the next read from its oldest undelivered row */
} s_consumer_t;

typedef struct {
    fs_relay_args_t *args;      /* settings, names, routes, counters (not owned) */
    zsock_t *pipe;              /* to the parent */
    fs_pg_t *pg;                /* own connection: holds the advisory lock and LISTENs */
    bool leader;                /* holds the lock: this replica's relay is the active one */
    int64_t next_lock_try;      /* mono ms of the next attempt to become leader */
    int64_t next_scan;          /* mono ms of the next scan for rows due to be re-sent */
    char leader_since [64];     /* database time it became leader: rows sent before are
                                   not in flight here and are sent again */
    s_consumer_t consumers [FS_RELAY_MAX_CONSUMERS];
    size_t nconsumers;          /* how many */
    char channel [96];          /* NOTIFY channel of the outbox */
    char sql_select [1024];     /* schema-qualified statements, built once */
    char sql_resend [256];
    char sql_sent [256];
    char sql_done [512];
    char sql_done_seq [384];
    char sql_rejected [256];
} s_relay_t;

void
fs_relay_register (fs_relay_args_t *args, fs_metrics_t *metrics)
{
    args->sent = fs_metrics_counter (metrics, "finestra_relay_sent_total",
                                     "Outbox envelopes sent for the first time", NULL);
    args->resent = fs_metrics_counter (metrics, "finestra_relay_resent_total",
                                       "Outbox envelopes re-sent: consumer silent, envelope"
                                       " lost, or relay restarted", NULL);
    args->delivered = fs_metrics_counter (metrics, "finestra_relay_delivered_total",
                                          "Envelopes acknowledged applied or duplicate", NULL);
    args->rejected = fs_metrics_counter (metrics, "finestra_relay_rejected_total",
                                         "Envelopes a consumer rejected (dead-lettered)", NULL);
}

static void
s_box_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Forgets what was in flight: it is sent again when leading next (the database has it)
static void
s_forget_flights (s_relay_t *self)
{
    for (size_t i = 0; i < self->nconsumers; i++) {
        zhashx_purge (self->consumers [i].inflight);
        self->consumers [i].last_ack = 0;
        self->consumers [i].acked_sent = 0;
        self->consumers [i].probe_acked = 0;
        self->consumers [i].probe_wait = 0;
        self->consumers [i].cursor = 0;
        self->consumers [i].nopen = 0;
        self->consumers [i].next_full = 0;
    }
}

static void
s_lose_leadership (s_relay_t *self, const char *why)
{
    if (self->leader)
        fs_warn ("relay stepped down", "schema", self->args->schema, "reason", why);
    self->leader = false;
    self->next_lock_try = fs_mono_ms () + FS_RELAY_LOCK_RETRY_MS;
    //  What was in flight will be re-sent by whoever leads next; forget it here
    s_forget_flights (self);
}

//  Becomes the active relay for the schema if no other replica is
static void
s_try_lead (s_relay_t *self)
{
    if (self->leader || fs_mono_ms () < self->next_lock_try)
        return;
    self->next_lock_try = fs_mono_ms () + FS_RELAY_LOCK_RETRY_MS;
    if (!fs_pg_ok (self->pg) && fs_pg_connect (self->pg, 0))
        return;
    char key [128];
    snprintf (key, sizeof key, "finestra.relay.%s", self->args->schema);
    const char *values [1] = { key };
    PGresult *result = fs_pg_exec (self->pg, "SELECT pg_try_advisory_lock (hashtext ($1)),"
                                   " now ()::text", 1, values);
    if (!result)
        return;
    bool locked = streq (PQgetvalue (result, 0, 0), "t");
    snprintf (self->leader_since, sizeof self->leader_since, "%s", PQgetvalue (result, 0, 1));
    PQclear (result);
    if (!locked)
        return;                 //  another replica relays; try again later
    char listen [128];
    snprintf (listen, sizeof listen, "LISTEN \"%s\"", self->channel);
    if (fs_pg_run (self->pg, listen, 0, NULL))
        return;
    self->leader = true;
    self->next_scan = 0;
    s_forget_flights (self);
    for (size_t i = 0; i < self->nconsumers; i++)
        self->consumers [i].wanted = true;
    fs_info ("relay leads", "schema", self->args->schema);
}

static int
s_seq_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

//  Rows in flight to consumer that are due again, oldest first, into due (room for every
//  row in flight); how many. The rules are in fs_relay.h. A consumer applies what it
//  receives in order, so an ack for a row sent once proves every row sent before it that
//  reached the consumer was applied first; an ack for a row sent more than once may be for
//  any copy, and proves only that the consumer is alive.
static size_t
s_due (s_relay_t *self, s_consumer_t *consumer, int64_t now, int64_t *due)
{
    int64_t retry = self->args->config->relay_retry_ms;
    bool silent = now - consumer->last_ack >= retry;
    s_flight_t *oldest = NULL;
    size_t n = 0;
    for (s_flight_t *flight = (s_flight_t *) zhashx_first (consumer->inflight); flight;
         flight = (s_flight_t *) zhashx_next (consumer->inflight)) {
        int64_t age = now - flight->sent_at;
        //  Lost: the consumer went on without it (dropped on a reconnect, a dead replica)
        if ((age >= FS_RELAY_LOST_RETRIES * retry && consumer->acked_sent > flight->sent_at)
        //  Silent after answering a probe: alive, and nothing sent before it is coming back
        ||  (silent && flight->sent_at < consumer->probe_acked))
            due [n++] = flight->seq;
        else
        if (!oldest || flight->seq < oldest->seq)
            oldest = flight;
    }
    if (silent)
        consumer->probe_acked = 0;
    //  Silent: the oldest alone, as a probe; always the oldest, so a consumer down for long
    //  gets that one again and again, not the window one by one; less and less often, as
    //  with one endpoint the probes queue for it until it comes back
    int64_t wait = consumer->probe_wait ? consumer->probe_wait : retry;
    if (n == 0 && silent && oldest && now - oldest->sent_at >= wait) {
        due [n++] = oldest->seq;
        consumer->probe_wait = 2 * wait < FS_RELAY_PROBE_RETRIES_MAX * retry
                             ? 2 * wait : FS_RELAY_PROBE_RETRIES_MAX * retry;
    }
    qsort (due, n, sizeof (int64_t), s_seq_compare);
    return n;
}

//  Sends rows (seq, msg_id, attempts, envelope; a NULL envelope: delivered meanwhile; a
//  NULL seq: no row) and records them in flight and their seqs in seqs (a "{...}" being
//  built, *nseqs so far); *last: the highest seq sent or in flight already (rows come in seq
//  order). resend: the rows are in flight already. False when the socket took no more.
static bool
s_send_rows (s_relay_t *self, s_consumer_t *consumer, PGresult *rows, bool resend,
             int64_t now, zchunk_t *seqs, int *nseqs, int64_t *last)
{
    for (int i = 0; i < PQntuples (rows); i++) {
        if (PQgetisnull (rows, i, 0))
            continue;
        const char *seq = PQgetvalue (rows, i, 0);
        const char *msg_id = PQgetvalue (rows, i, 1);
        int attempts = atoi (PQgetvalue (rows, i, 2));
        s_flight_t *flight = (s_flight_t *) zhashx_lookup (consumer->inflight, msg_id);
        if (resend && PQgetisnull (rows, i, 3)) {
            zhashx_delete (consumer->inflight, msg_id);
            continue;
        }
        if (!resend && flight) {
            *last = atoll (seq);
            continue;           //  in flight here already (the database clock went back)
        }
        zmq_msg_t frame;
        zmq_msg_init_size (&frame, (size_t) PQgetlength (rows, i, 3));
        memcpy (zmq_msg_data (&frame), PQgetvalue (rows, i, 3), zmq_msg_size (&frame));
        if (zmq_msg_send (&frame, zsock_resolve (consumer->dealer), ZMQ_DONTWAIT) < 0) {
            //  No replica of the consumer connected (a list of endpoints sends only to
            //  connected ones), or the HWM (should not happen: window < HWM): try again at
            //  the next scan, not in a busy loop
            zmq_msg_close (&frame);
            return false;
        }
        if (!flight) {
            flight = (s_flight_t *) zmalloc (sizeof (s_flight_t));
            flight->seq = atoll (seq);
            zhashx_insert (consumer->inflight, msg_id, flight);
        }
        flight->sent_at = now;
        flight->sends++;
        *last = flight->seq;
        if ((*nseqs)++)
            zchunk_extend (seqs, ",", 1);
        zchunk_extend (seqs, seq, strlen (seq));
        fs_counter_add (resend || attempts ? self->args->resent : self->args->sent, 1);
        if (resend || attempts)
            fs_debug ("relay re-sent", "consumer", consumer->name, "id", msg_id);
    }
    return true;
}

//  Re-sends the rows in flight that are due (s_due); false when the socket took no more
//  or the database failed (leadership lost)
static bool
s_resend (s_relay_t *self, s_consumer_t *consumer, int64_t now, zchunk_t *seqs, int *nseqs)
{
    size_t size = zhashx_size (consumer->inflight);
    if (size == 0)
        return true;
    int64_t *due = (int64_t *) zmalloc (size * sizeof (int64_t));
    size_t n = s_due (self, consumer, now, due);
    if (n == 0) {
        free (due);
        return true;
    }
    zchunk_t *list = zchunk_new ("{", 1);
    for (size_t i = 0; i < n; i++) {
        char text [24];
        snprintf (text, sizeof text, i ? ",%" PRId64 : "%" PRId64, due [i]);
        zchunk_extend (list, text, strlen (text));
    }
    zchunk_extend (list, "}\0", 2);
    const char *values [1] = { (const char *) zchunk_data (list) };
    PGresult *rows = fs_pg_execb (self->pg, self->sql_resend, 1, values, NULL, NULL, 1);
    zchunk_destroy (&list);
    if (!rows) {
        free (due);
        s_lose_leadership (self, fs_pg_error (self->pg));
        return false;
    }
    int found = PQntuples (rows);
    if ((size_t) found < n) {
        //  Rows gone from the outbox (none is ever deleted today): nothing to wait for
        int64_t *returned = (int64_t *) zmalloc ((size_t) found * sizeof (int64_t) + 1);
        for (int i = 0; i < found; i++)
            returned [i] = atoll (PQgetvalue (rows, i, 0));     //  ORDER BY seq
        zlist_t *gone = zlist_new ();
        for (s_flight_t *flight = (s_flight_t *) zhashx_first (consumer->inflight); flight;
             flight = (s_flight_t *) zhashx_next (consumer->inflight))
            if (bsearch (&flight->seq, due, n, sizeof (int64_t), s_seq_compare)
            && !bsearch (&flight->seq, returned, (size_t) found, sizeof (int64_t),
                         s_seq_compare))
                zlist_append (gone, (void *) zhashx_cursor (consumer->inflight));
        free (returned);
        for (const char *id = (const char *) zlist_first (gone); id;
             id = (const char *) zlist_next (gone))
            zhashx_delete (consumer->inflight, id);
        zlist_destroy (&gone);
    }
    free (due);
    int64_t last = 0;
    bool open = s_send_rows (self, consumer, rows, true, now, seqs, nseqs, &last);
    PQclear (rows);
    return open;
}

//  After a read of new rows whose snapshot had transactions from xmin (the oldest in
//  progress) to xmax (the first not begun) in progress: remembers it while those may still
//  commit rows below the cursor, and forgets the reads all of whose transactions have ended
//  (this read, with a floor at or below theirs, saw every row they committed)
static void
s_track_read (s_consumer_t *consumer, int64_t floor, uint64_t xmin, uint64_t xmax)
{
    if (consumer->nopen == FS_RELAY_OPEN_READS)
        //  Full: the newest entry stands for both reads (its floor, the later xmax): safe,
        //  the floor only stays lower for longer
        consumer->open [consumer->nopen - 1].xmax = xmax;
    else
        consumer->open [consumer->nopen++] = (s_open_read_t) { xmax, floor };
    //  xmax only grows from read to read: the open reads that ended are the first ones
    size_t ended = 0;
    while (ended < consumer->nopen && consumer->open [ended].xmax <= xmin)
        ended++;
    if (ended) {
        memmove (consumer->open, consumer->open + ended,
                 (consumer->nopen - ended) * sizeof (s_open_read_t));
        consumer->nopen -= ended;
    }
}

//  Sends what is due to one consumer: rows in flight due again, then rows not in flight
//  (never sent, or sent before this relay led), within its window. New rows are read from
//  the cursor (an index range start, not a walk over the rows in flight), or from below it
//  while a transaction that may still commit a lower seq was in progress at an earlier
//  read (seq order is not commit order), and from the oldest undelivered row once every
//  retry time (whatever else was missed: a seq drawn before its transaction had an id)
static void
s_send_round (s_relay_t *self, s_consumer_t *consumer)
{
    const fs_config_t *config = self->args->config;
    int64_t now = fs_mono_ms ();
    zchunk_t *seqs = zchunk_new ("{", 1);
    int nseqs = 0;
    bool open = s_resend (self, consumer, now, seqs, &nseqs);
    if (!self->leader) {
        zchunk_destroy (&seqs);
        return;
    }
    long space = config->relay_window - (long) zhashx_size (consumer->inflight);
    //  Window full: wait for an ack or the next scan, not in a busy loop
    consumer->wanted = false;
    if (open && space > 0) {
        long limit = space < config->relay_batch ? space : config->relay_batch;
        int64_t floor = consumer->nopen ? consumer->open [0].floor : consumer->cursor;
        if (now >= consumer->next_full) {
            floor = 0;
            consumer->next_full = now + config->relay_retry_ms;
        }
        char lim [24], from [24];
        snprintf (lim, sizeof lim, "%ld", limit);
        snprintf (from, sizeof from, "%" PRId64, floor);
        const char *values [4] = { consumer->name, self->leader_since, lim, from };
        //  Binary results: the envelope comes back as raw bytes
        PGresult *rows = fs_pg_execb (self->pg, self->sql_select, 4, values, NULL, NULL, 1);
        if (!rows) {
            zchunk_destroy (&seqs);
            s_lose_leadership (self, fs_pg_error (self->pg));
            return;
        }
        int before = nseqs;
        int64_t last = 0;
        open = s_send_rows (self, consumer, rows, false, now, seqs, &nseqs, &last);
        //  Rows below the cursor that transactions in progress may still commit: read
        //  from it until they end. Rows not sent (the socket full) are above last: the
        //  cursor stops there
        if (PQntuples (rows) > 0)
            s_track_read (consumer, consumer->cursor,
                          strtoull (PQgetvalue (rows, 0, 4), NULL, 10),
                          strtoull (PQgetvalue (rows, 0, 5), NULL, 10));
        if (last > consumer->cursor)
            consumer->cursor = last;
        //  A full batch, all sent: more may be waiting
        consumer->wanted = open && PQntuples (rows) == limit && nseqs - before == limit;
        PQclear (rows);
    }
    zchunk_extend (seqs, "}\0", 2);
    if (nseqs) {
        const char *marks [1] = { (const char *) zchunk_data (seqs) };
        if (fs_pg_run (self->pg, self->sql_sent, 1, marks))
            s_lose_leadership (self, fs_pg_error (self->pg));
    }
    zchunk_destroy (&seqs);
}

//  Marks the rows of one consumer's acks delivered, one statement: keys (seqs, or msg_ids
//  when by_id) and their outcomes, "{...}" lists of done rows
static void
s_mark_done (s_relay_t *self, s_consumer_t *consumer, bool by_id, zchunk_t *keys,
             zchunk_t *outcomes, int done)
{
    zchunk_extend (keys, "}\0", 2);
    zchunk_extend (outcomes, "}\0", 2);
    if (!done || !self->leader)
        return;
    const char *values [3] = { consumer->name, (char *) zchunk_data (keys),
                               (char *) zchunk_data (outcomes) };
    PGresult *result = by_id ? fs_pg_exec (self->pg, self->sql_done, 3, values)
                             : fs_pg_exec (self->pg, self->sql_done_seq, 2, values + 1);
    if (result) {
        fs_counter_add (self->args->delivered, (uint64_t) atoll (PQcmdTuples (result)));
        PQclear (result);
    }
    else
        s_lose_leadership (self, fs_pg_error (self->pg));
}

//  Adds a key and its outcome to the lists being built
static void
s_list_add (zchunk_t *keys, zchunk_t *outcomes, int *done, const char *key, const char *outcome)
{
    if ((*done)++) {
        zchunk_extend (keys, ",", 1);
        zchunk_extend (outcomes, ",", 1);
    }
    zchunk_extend (keys, key, strlen (key));
    zchunk_extend (outcomes, outcome, strlen (outcome));
}

//  Reads every acknowledgement waiting on one consumer's socket and records them, in one
//  UPDATE by seq (the primary key) for rows in flight here, by msg_id for the others (acks
//  of rows sent before this relay led, second acks of rows sent twice)
static void
s_read_acks (s_relay_t *self, s_consumer_t *consumer)
{
    zchunk_t *ids = zchunk_new ("{", 1);
    zchunk_t *outcomes = zchunk_new ("{", 1);
    zchunk_t *seqs = zchunk_new ("{", 1);
    zchunk_t *seq_outcomes = zchunk_new ("{", 1);
    int done = 0, done_seq = 0;
    while (zsock_events (consumer->dealer) & ZMQ_POLLIN) {
        zframe_t *frame = zframe_recv (consumer->dealer);
        if (!frame)
            break;
        fs_ack_t ack = { 0 };
        fs_proto_error_t err;
        if (zframe_more (frame)
        ||  fs_proto_decode (&fs_ack_type, zframe_data (frame), zframe_size (frame), &ack, &err)) {
            fs_warn ("relay got an unreadable ack", "consumer", consumer->name);
            zframe_destroy (&frame);
            continue;
        }
        zframe_destroy (&frame);
        //  Any ack says the consumer is alive; what it says of the rows sent before this
        //  one depends on whether this one was sent once (s_due)
        consumer->last_ack = fs_mono_ms ();
        consumer->probe_wait = 0;
        s_flight_t *flight = (s_flight_t *) zhashx_lookup (consumer->inflight, ack.id);
        if (flight && flight->sends > 1)
            consumer->probe_acked = flight->sent_at;
        else
        if (flight) {
            if (flight->sent_at > consumer->acked_sent)
                consumer->acked_sent = flight->sent_at;
            //  Still applying rows sent before the probe: its ack was the original's
            if (flight->sent_at < consumer->probe_acked)
                consumer->probe_acked = 0;
        }
        char seq [24] = "";
        if (flight)
            snprintf (seq, sizeof seq, "%" PRId64, flight->seq);
        zhashx_delete (consumer->inflight, ack.id);
        if (self->leader && streq (ack.status, "rejected")) {
            const char *values [4] = { ack.id, consumer->name,
                                       ack.code ? ack.code : "rejected",
                                       ack.reason ? ack.reason : "" };
            if (fs_pg_run (self->pg, self->sql_rejected, 4, values) == 0)
                fs_counter_add (self->args->rejected, 1);
            fs_warn ("consumer rejected an event", "consumer", consumer->name, "id", ack.id,
                     "code", ack.code, "reason", ack.reason);
        }
        else
        if (self->leader && *seq)
            s_list_add (seqs, seq_outcomes, &done_seq, seq, ack.status);
        else
        if (self->leader)
            s_list_add (ids, outcomes, &done, ack.id, ack.status);
        fs_proto_clear (&fs_ack_type, &ack);
    }
    s_mark_done (self, consumer, false, seqs, seq_outcomes, done_seq);
    s_mark_done (self, consumer, true, ids, outcomes, done);
    consumer->wanted = true;                //  window space freed
    zchunk_destroy (&ids);
    zchunk_destroy (&outcomes);
    zchunk_destroy (&seqs);
    zchunk_destroy (&seq_outcomes);
}

//  Drains notifications: each means "rows were committed to the outbox"
static void
s_read_notifies (s_relay_t *self)
{
    PGconn *conn = fs_pg_conn (self->pg);
    if (!conn || !PQconsumeInput (conn)) {
        s_lose_leadership (self, "lost PostgreSQL while listening");
        return;
    }
    PGnotify *notify;
    while ((notify = PQnotifies (conn))) {
        PQfreemem (notify);
        for (size_t i = 0; i < self->nconsumers; i++)
            self->consumers [i].wanted = true;
    }
}

static int
s_relay_setup (s_relay_t *self)
{
    fs_relay_args_t *args = self->args;
    const char *schema = args->schema;
    snprintf (self->channel, sizeof self->channel, "finestra_outbox_%s", schema);
    //  ORDER BY o.seq, the column: a bare "seq" would be the text output column, sorted as
    //  text ("10" before "9") after reading every pending row instead of walking the index
    //  The snapshot's bounds come with the rows (one row of NULLs when there is none): they
    //  tell which transactions may still commit rows below what this read saw
    snprintf (self->sql_select, sizeof self->sql_select,
              "SELECT r.seq::text, r.msg_id::text, r.attempts::text, r.envelope,"
              " pg_snapshot_xmin (s)::text, pg_snapshot_xmax (s)::text"
              " FROM pg_current_snapshot () s LEFT JOIN LATERAL"
              " (SELECT seq, msg_id, attempts, envelope FROM \"%s\".outbox o"
              "   WHERE consumer = $1 AND delivered_at IS NULL AND seq > $4::bigint"
              "     AND (last_sent_at IS NULL OR last_sent_at < $2::timestamptz)"
              "   ORDER BY o.seq LIMIT $3::int) r ON true ORDER BY r.seq", schema);
    //  Rows in flight due again; one delivered meanwhile comes back without its envelope
    snprintf (self->sql_resend, sizeof self->sql_resend,
              "SELECT seq::text, msg_id::text, attempts::text,"
              " CASE WHEN delivered_at IS NULL THEN envelope END FROM \"%s\".outbox"
              " WHERE seq = ANY ($1::bigint[]) ORDER BY seq", schema);
    snprintf (self->sql_sent, sizeof self->sql_sent,
              "UPDATE \"%s\".outbox SET attempts = attempts + 1, last_sent_at = now ()"
              " WHERE seq = ANY ($1::bigint[])", schema);
    snprintf (self->sql_done, sizeof self->sql_done,
              "UPDATE \"%s\".outbox o SET delivered_at = now (), outcome = a.outcome"
              " FROM unnest ($2::uuid[], $3::text[]) AS a (id, outcome)"
              " WHERE o.consumer = $1 AND o.msg_id = a.id AND o.delivered_at IS NULL", schema);
    snprintf (self->sql_done_seq, sizeof self->sql_done_seq,
              "UPDATE \"%s\".outbox o SET delivered_at = now (), outcome = a.outcome"
              " FROM unnest ($1::bigint[], $2::text[]) AS a (seq, outcome)"
              " WHERE o.seq = a.seq AND o.delivered_at IS NULL", schema);
    snprintf (self->sql_rejected, sizeof self->sql_rejected,
              "UPDATE \"%s\".outbox SET delivered_at = now (), outcome = 'rejected',"
              " reject_code = $3, reject_reason = $4"
              " WHERE msg_id = $1 AND consumer = $2 AND delivered_at IS NULL", schema);

    //  Connect to every service that consumes anything: the schema only holds rows for
    //  consumers of what this service emits, the others simply stay idle
    const char *const *names;
    size_t n = fs_routes_all_consumers (args->routes, &names);
    for (size_t i = 0; i < n && self->nconsumers < FS_RELAY_MAX_CONSUMERS; i++) {
        const char *endpoint = fs_service_bus (args->config, names [i]);
        char err [256];
        zsock_t *dealer = endpoint ? fs_zmq_dealer (endpoint, args->config, err, sizeof err) : NULL;
        if (!dealer) {
            fs_error ("relay cannot reach a consumer", "consumer", names [i], "reason", err);
            return -1;
        }
        s_consumer_t *consumer = &self->consumers [self->nconsumers++];
        consumer->name = names [i];
        consumer->dealer = dealer;
        consumer->inflight = zhashx_new ();
        zhashx_set_destructor (consumer->inflight, s_box_free);
    }
    self->pg = fs_pg_new (args->config->pg_url);
    return self->pg ? 0 : -1;
}

static void
s_relay_teardown (s_relay_t *self)
{
    for (size_t i = 0; i < self->nconsumers; i++) {
        zsock_destroy (&self->consumers [i].dealer);
        zhashx_destroy (&self->consumers [i].inflight);
    }
    //  Closing the connection releases the advisory lock for a replica to take over
    fs_pg_destroy (&self->pg);
}

void
fs_relay_actor (zsock_t *pipe, void *varg)
{
    s_relay_t self_data = { 0 };
    s_relay_t *self = &self_data;
    self->args = (fs_relay_args_t *) varg;
    self->pipe = pipe;
    if (s_relay_setup (self)) {
        s_relay_teardown (self);
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);

    const fs_config_t *config = self->args->config;
    int scan_ms = config->relay_retry_ms / 2 < 500 ? (int) config->relay_retry_ms / 2 : 500;
    bool terminated = false;
    while (!terminated) {
        s_try_lead (self);
        int64_t now = fs_mono_ms ();
        if (self->leader && now >= self->next_scan) {
            //  Periodic scan: picks up rows due for re-sending
            self->next_scan = now + scan_ms;
            for (size_t i = 0; i < self->nconsumers; i++)
                self->consumers [i].wanted = true;
        }
        bool busy = false;
        for (size_t i = 0; self->leader && i < self->nconsumers; i++)
            if (self->consumers [i].wanted) {
                s_send_round (self, &self->consumers [i]);
                busy |= self->consumers [i].wanted;
            }

        zmq_pollitem_t items [FS_RELAY_MAX_CONSUMERS + 2];
        int nitems = 0;
        items [nitems++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        for (size_t i = 0; i < self->nconsumers; i++)
            items [nitems++] = (zmq_pollitem_t) {
                zsock_resolve (self->consumers [i].dealer), 0, ZMQ_POLLIN, 0 };
        PGconn *conn = self->leader ? fs_pg_conn (self->pg) : NULL;
        int pg_item = -1;
        if (conn && PQsocket (conn) >= 0) {
            pg_item = nitems;
            items [nitems++] = (zmq_pollitem_t) { NULL, PQsocket (conn), ZMQ_POLLIN, 0 };
        }
        long timeout = busy ? 0 : self->leader ? scan_ms : FS_RELAY_LOCK_RETRY_MS;
        if (zmq_poll (items, nitems, timeout) < 0) {
            if (errno == EINTR)
                continue;               //  a signal: the parent decides when we stop
            break;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            terminated = !command || streq (command, "$TERM");
            zstr_free (&command);
        }
        for (size_t i = 0; i < self->nconsumers; i++)
            if (items [i + 1].revents & ZMQ_POLLIN)
                s_read_acks (self, &self->consumers [i]);
        if (pg_item >= 0 && (items [pg_item].revents & ZMQ_POLLIN))
            s_read_notifies (self);
    }
    s_relay_teardown (self);
}
