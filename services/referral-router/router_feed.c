/*  router_feed - the durable outbound feed (proto/FEED.md): items appended inside the
    transaction of the change that causes them; city systems read them from their own cursor
    on the feed ROUTER (long poll through LISTEN/NOTIFY) and report their decisions on it. */
#include "router.h"

#define S_REQUEST_MAX   4096        //  bytes of a request; more is too_large
#define S_DEFAULT_MAX   100         //  items per answer when the reader does not say
#define S_CHECK_MS      1000        //  how often the LISTEN connection is checked
#define S_ITEM_OVERHEAD 160         //  an item's keys, seq, ids and time, in bytes at most

//  Feed names are directory delivery targets: lowercase letters, digits and dashes
bool
router_feed_name_valid (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > ROUTER_FEED_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower ((unsigned char) name [i]) && !isdigit ((unsigned char) name [i])
        &&  name [i] != '-')
            return false;
    return true;
}

int
router_feed_append (fs_pg_t *pg, const char *feed, const char *item_type,
                    const char *referral_id, const char *correlation_id, const char *payload,
                    size_t len)
{
    assert (pg && feed && item_type && (payload || len == 0));
    router_feed_item_t item = { feed, item_type, referral_id, correlation_id, payload, len };
    return router_feed_append_many (pg, &item, 1);
}

static int
s_name_cmp (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

void
router_json_str (zchunk_t *chunk, const char *value)
{
    if (!value) {
        zchunk_extend (chunk, "null", 4);
        return;
    }
    zchunk_extend (chunk, "\"", 1);
    for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
        if (*p == '"' || *p == '\\') {
            zchunk_extend (chunk, "\\", 1);
            zchunk_extend (chunk, p, 1);
        }
        else
        if (*p < 0x20) {
            char escaped [8];
            snprintf (escaped, sizeof escaped, "\\u%04x", *p);
            zchunk_extend (chunk, escaped, 6);
        }
        else
            zchunk_extend (chunk, p, 1);
    }
    zchunk_extend (chunk, "\"", 1);
}

void
router_json_hex (zchunk_t *chunk, const char *data, size_t len)
{
    zchunk_extend (chunk, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        char hex [3];
        snprintf (hex, sizeof hex, "%02x", (unsigned char) data [i]);
        zchunk_extend (chunk, hex, 2);
    }
    zchunk_extend (chunk, "\"", 1);
}

void
router_json_key (zchunk_t *chunk, const char *key, const char *value, bool first)
{
    if (!first)
        zchunk_extend (chunk, ",", 1);
    router_json_str (chunk, key);
    zchunk_extend (chunk, ":", 1);
    router_json_str (chunk, value);
}

int
router_feed_append_many (fs_pg_t *pg, const router_feed_item_t *items, size_t n)
{
    assert (pg && (items || n == 0));
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!router_feed_name_valid (items [i].feed) || !items [i].item_type
        ||  items [i].len == 0 || items [i].len > INT_MAX / 2 || !items [i].payload) {
            fs_pg_set_error (pg, "feed append: %s", router_feed_name_valid (items [i].feed)
                             ? "payload empty or too large" : "feed name invalid");
            return -1;
        }
    //  Appends to one feed wait for each other until commit: seq order is then commit
    //  order, so a reader that saw seq N never later finds a committed item below N. The
    //  feeds are locked in name order, each once
    const char **names = (const char **) zmalloc (n * sizeof (char *));
    for (size_t i = 0; i < n; i++)
        names [i] = items [i].feed;
    qsort (names, n, sizeof (char *), s_name_cmp);
    zchunk_t *feeds = zchunk_new ("[", 1);
    size_t nfeeds = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || !streq (names [i], names [i - 1])) {
            if (nfeeds++)
                zchunk_extend (feeds, ",", 1);
            router_json_str (feeds, names [i]);
        }
    zchunk_extend (feeds, "]", 2);
    free (names);
    const char *lock [1] = { (const char *) zchunk_data (feeds) };
    PGresult *result = fs_pg_execp (pg, "router_feed_lock",
                                    "SELECT pg_advisory_xact_lock (hashtext ('finestra.feed.'"
                                    " || f)) FROM jsonb_array_elements_text ($1::jsonb)"
                                    " WITH ORDINALITY AS u (f, o) ORDER BY o", 1, lock,
                                    NULL, NULL, 0);
    int rc = result ? 0 : -1;
    PQclear (result);
    //  The items, in one statement, in the order given; payloads in hex
    zchunk_t *json = zchunk_new ("[", 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char item_id [FS_UUID_LEN + 1];
        fs_uuid (item_id);
        //  A referral delivered by feed: that feed's reader is its target from now on
        bool target = items [i].referral_id && streq (items [i].item_type, "referral.requested");
        zchunk_extend (json, i ? ",{" : "{", i ? 2 : 1);
        router_json_key (json, "feed", items [i].feed, true);
        router_json_key (json, "item_id", item_id, false);
        router_json_key (json, "item_type", items [i].item_type, false);
        router_json_key (json, "referral_id", items [i].referral_id, false);
        router_json_key (json, "correlation_id", items [i].correlation_id, false);
        zchunk_extend (json, target ? ",\"target\":true" : ",\"target\":false",
                       target ? 14 : 15);
        zchunk_extend (json, ",\"payload\":", 11);
        router_json_hex (json, items [i].payload, items [i].len);
        zchunk_extend (json, "}", 1);
    }
    zchunk_extend (json, "]", 2);
    if (rc == 0) {
        const char *values [2] = { (const char *) zchunk_data (json), ROUTER_FEED_CHANNEL };
        //  The NOTIFYs reach the readers' long polls when this transaction commits
        result = fs_pg_execp (pg, "router_feed_append",
            "WITH u AS (SELECT * FROM ROWS FROM (jsonb_to_recordset ($1::jsonb) AS (feed text,"
            "  item_id uuid, item_type text, referral_id uuid, correlation_id uuid,"
            "  target boolean, payload text)) WITH ORDINALITY AS u (feed, item_id, item_type,"
            "  referral_id, correlation_id, target, payload, o)),"
            " i AS (INSERT INTO referral_router.feed_items (feed, item_id, item_type, referral_id,"
            "  correlation_id, payload) SELECT feed, item_id, item_type, referral_id,"
            "  correlation_id, decode (payload, 'hex') FROM u ORDER BY o RETURNING seq),"
            " t AS (INSERT INTO referral_router.referral_feeds (referral_id, feed)"
            "  SELECT DISTINCT referral_id, feed FROM u WHERE target ON CONFLICT DO NOTHING)"
            " SELECT (SELECT count(*) FROM i),"
            "  (SELECT count (pg_notify ($2, feed)) FROM (SELECT DISTINCT feed FROM u) f)",
            2, values, NULL, NULL, 0);
        rc = result ? 0 : -1;
        PQclear (result);
    }
    zchunk_destroy (&json);
    zchunk_destroy (&feeds);
    return rc;
}

int
router_feed_tell (fs_pg_t *pg, const char *referral_id, const char *correlation_id,
                  int whom, const fs_type_t *type, const void *msg)
{
    assert (pg && referral_id && type && type->wire && msg);
    const char *values [3] = { referral_id, whom & ROUTER_FEED_SENDER ? "t" : NULL,
                               whom & ROUTER_FEED_TARGET ? "t" : NULL };
    //  Sorted by name: one transaction locks several feeds always in the same order
    PGresult *result = fs_pg_execp (pg, "router_feed_tell",
        "SELECT feed FROM (SELECT s.feed FROM referral_router.referrals r"
        " JOIN referral_router.sender_feeds s ON s.source = r.source"
        " WHERE r.id = $1::uuid AND $2::text IS NOT NULL"
        " UNION SELECT feed FROM referral_router.referral_feeds"
        " WHERE referral_id = $1::uuid AND $3::text IS NOT NULL) f ORDER BY feed", 3, values,
        NULL, NULL, 0);
    if (!result)
        return -1;
    int rc = 0;
    if (PQntuples (result) > 0) {
        char *data = NULL;
        size_t len = 0;
        fs_proto_error_t err;
        if (fs_proto_encode (type, msg, &data, &len, &err)) {
            fs_pg_set_error (pg, "feed item %s: %s", type->wire, err.message);
            rc = -1;
        }
        for (int i = 0; rc == 0 && i < PQntuples (result); i++)
            rc = router_feed_append (pg, PQgetvalue (result, i, 0), type->wire, referral_id,
                                     correlation_id, data, len);
        free (data);
    }
    PQclear (result);
    return rc;
}

//  ---------------------------------------------------------------------------------------
//  The feed endpoint: an actor with its own ROUTER and PostgreSQL connection

//  A read waiting for an item (long poll)
typedef struct {
    zmsg_t *route;                  /* routing frames and delimiter, to answer on */
    char feed [ROUTER_FEED_NAME_MAX + 1];
    int64_t after;                  /* the reader's cursor */
    int64_t max;                    /* items at most */
    int timer;                      /* zloop timer of its deadline */
} s_waiter_t;

static int s_expired (zloop_t *loop, int timer_id, void *arg);

//  An error answer being built
typedef struct {
    const char *code;               /* NULL: none */
    char field [128];
    char message [512];
    int64_t oldest, next;           /* cursor_expired */
} s_error_t;

//  The endpoint's state, owned by its actor
typedef struct {
    fs_server_t *server;            /* settings, names, routes: read only */
    const fs_config_t *config;
    zloop_t *loop;
    zsock_t *router;                /* readers connect here */
    fs_curve_t *curve;              /* CURVE and key -> feed */
    fs_pg_t *pg;                    /* own connection: reads, LISTENs */
    int listen_fd;                  /* the polled socket of a LISTENing connection, -1 none */
    zlistx_t *waiters;              /* s_waiter_t *, waiting for items */
    int purge_timer;                /* retention */
} s_feed_t;

//  Counters, registered before HTTP starts (router_feed_init)
static struct {
    fs_counter_t *answers [3];      /* ok, error, unavailable */
    fs_counter_t *items;            /* items sent (re-sends included) */
    fs_counter_t *purged;           /* items removed by retention */
    zactor_t *actor;                /* the endpoint, NULL when off */
    bool listening;                 /* set by the actor before its first signal */
} s_feed;

enum { A_OK, A_ERROR, A_UNAVAILABLE };

static void
s_error (s_error_t *error, const char *code, const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_error (s_error_t *error, const char *code, const char *field, const char *fmt, ...)
{
    error->code = code;
    snprintf (error->field, sizeof error->field, "%s", field ? field : "");
    va_list args;
    va_start (args, fmt);
    vsnprintf (error->message, sizeof error->message, fmt, args);
    va_end (args);
}

//  Sends answer on route (consumed), counting it
static void
s_send (s_feed_t *self, zmsg_t **route_p, fs_feed_answer_t *answer, int kind)
{
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    if (fs_proto_encode (&fs_feed_answer_type, answer, &data, &len, &err) == 0) {
        zmsg_addmem (*route_p, data, len);
        //  ROUTER_MANDATORY: a reader gone before its answer asks again later
        if (zmsg_send (route_p, self->router))
            fs_debug ("feed answer not delivered: reader gone");
        fs_counter_add (s_feed.answers [kind], 1);
    }
    else
        fs_error ("cannot encode feed answer", "reason", err.message);
    zmsg_destroy (route_p);
    free (data);
}

static void
s_send_error (s_feed_t *self, zmsg_t **route_p, const char *feed, const s_error_t *error)
{
    fs_feed_answer_t answer = { 0 };
    const fs_type_t *type = &fs_feed_answer_type;
    fs_proto_set_int (type, &answer, "v", 1);
    if (feed && router_feed_name_valid (feed))
        fs_proto_set_str (type, &answer, "feed", feed);
    fs_proto_set_str (type, &answer, "status", "error");
    answer.present |= 1u << fs_feed_answer_F_error;
    fs_proto_set_str (&fs_feed_error_type, &answer.error, "code", error->code);
    fs_proto_set_str (&fs_feed_error_type, &answer.error, "message", error->message);
    if (error->field [0])
        fs_proto_set_str (&fs_feed_error_type, &answer.error, "field", error->field);
    if (streq (error->code, "cursor_expired")) {
        fs_proto_set_int (type, &answer, "oldest", error->oldest);
        fs_proto_set_int (type, &answer, "next", error->next);
    }
    bool unavailable = streq (error->code, "unavailable");
    if (!unavailable)
        fs_info ("feed request refused", "feed", feed ? feed : "", "code", error->code,
                 "reason", error->message);
    s_send (self, route_p, &answer, unavailable ? A_UNAVAILABLE : A_ERROR);
    fs_proto_clear (type, &answer);
}

//  After a failed statement: a lost connection is LISTENed again by the check timer
static void
s_db_failed (s_feed_t *self, s_error_t *error)
{
    fs_warn ("feed database error", "reason", fs_pg_error (self->pg));
    if (fs_pg_lost (self->pg) && self->listen_fd >= 0) {
        zmq_pollitem_t item = { NULL, self->listen_fd, ZMQ_POLLIN, 0 };
        zloop_poller_end (self->loop, &item);
        self->listen_fd = -1;
    }
    s_error (error, "unavailable", NULL, "the feed cannot be read right now; ask again later");
}

//  Reads up to max items after `after` into answer. Returns the number of items, or -1
//  with error filled (unknown feed, expired cursor, database)
static int
s_read (s_feed_t *self, const char *feed, int64_t after, int64_t max, fs_feed_answer_t *answer,
        s_error_t *error)
{
    char after_text [24], limit_text [24];
    snprintf (after_text, sizeof after_text, "%" PRId64, after);
    snprintf (limit_text, sizeof limit_text, "%" PRId64, max + 1);
    const char *key [2] = { feed, after_text };
    //  Known: the directory delivers to it, a sender is told on it, or it holds items
    PGresult *result = fs_pg_exec (self->pg,
        "SELECT EXISTS (SELECT 1 FROM referral_router.services WHERE delivery = 'feed'"
        "   AND delivery_target = $1)"
        " OR EXISTS (SELECT 1 FROM referral_router.sender_feeds WHERE feed = $1)"
        " OR EXISTS (SELECT 1 FROM referral_router.feed_items WHERE feed = $1),"
        " (SELECT purged_through FROM referral_router.feed_horizons WHERE feed = $1),"
        " (SELECT coalesce (min (seq), 0) FROM referral_router.feed_items WHERE feed = $1)",
        1, key);
    if (!result) {
        s_db_failed (self, error);
        return -1;
    }
    bool known = streq (PQgetvalue (result, 0, 0), "t");
    int64_t purged = PQgetisnull (result, 0, 1) ? 0 : atoll (PQgetvalue (result, 0, 1));
    int64_t oldest = atoll (PQgetvalue (result, 0, 2));
    PQclear (result);
    if (!known) {
        s_error (error, "unknown_feed", "feed", "there is no feed '%s'", feed);
        return -1;
    }
    if (after > 0 && after < purged) {
        s_error (error, "cursor_expired", "after", "items after %" PRId64 " up to %" PRId64
                 " are past retention and gone; the oldest kept is %" PRId64, after, purged,
                 oldest);
        error->oldest = oldest;
        error->next = purged;
        return -1;
    }
    const char *values [3] = { feed, after_text, limit_text };
    result = fs_pg_exec (self->pg,
        "SELECT seq, item_id, item_type, (extract (epoch FROM created_at) * 1000)::bigint,"
        " referral_id, payload FROM referral_router.feed_items"
        " WHERE feed = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3::bigint", 3, values);
    if (!result) {
        s_db_failed (self, error);
        return -1;
    }
    int rows = PQntuples (result);
    int n = rows > max ? (int) max : rows;
    fs_feed_item_t *items = n ? (fs_feed_item_t *) calloc ((size_t) n, sizeof *items) : NULL;
    if (n && !items) {
        PQclear (result);
        s_error (error, "unavailable", NULL, "the router is out of memory; ask again later");
        return -1;
    }
    //  As many as fit the answer's byte limit, at least one (else a reader could not pass)
    size_t budget = (size_t) self->config->router_feed_max_bytes, used = 64;
    int taken = 0;
    int64_t next = after;
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *bytes = PQunescapeBytea ((const unsigned char *) PQgetvalue (result, i, 5),
                                                &len);
        if (!bytes)
            break;
        if (taken > 0 && used + len + S_ITEM_OVERHEAD > budget) {
            PQfreemem (bytes);
            break;
        }
        fs_feed_item_t *item = &items [taken];
        const fs_type_t *type = &fs_feed_item_type;
        item->data.data = (char *) malloc (len);
        if (!item->data.data) {
            PQfreemem (bytes);
            break;
        }
        memcpy (item->data.data, bytes, len);
        item->data.len = len;
        item->present |= 1u << fs_feed_item_F_data;
        PQfreemem (bytes);
        char time [40];
        fs_rfc3339 (atoll (PQgetvalue (result, i, 3)), time);
        next = atoll (PQgetvalue (result, i, 0));
        fs_proto_set_int (type, item, "seq", next);
        fs_proto_set_str (type, item, "item_id", PQgetvalue (result, i, 1));
        fs_proto_set_str (type, item, "type", PQgetvalue (result, i, 2));
        fs_proto_set_str (type, item, "time", time);
        if (!PQgetisnull (result, i, 4))
            fs_proto_set_str (type, item, "referral_id", PQgetvalue (result, i, 4));
        used += len + S_ITEM_OVERHEAD;
        taken++;
    }
    PQclear (result);
    const fs_type_t *type = &fs_feed_answer_type;
    answer->items.items = items;
    answer->items.n = (size_t) taken;
    answer->present |= 1u << fs_feed_answer_F_items;
    fs_proto_set_int (type, answer, "next", next);
    fs_proto_set_bool (type, answer, "more", rows > taken);
    fs_counter_add (s_feed.items, (uint64_t) taken);
    return taken;
}

//  Answers a read now, or parks it when it may wait and nothing is newer. wait_ms 0: answer
static void
s_serve_read (s_feed_t *self, zmsg_t **route_p, const char *feed, int64_t after, int64_t max,
              int64_t wait_ms)
{
    fs_feed_answer_t answer = { 0 };
    const fs_type_t *type = &fs_feed_answer_type;
    fs_proto_set_int (type, &answer, "v", 1);
    fs_proto_set_str (type, &answer, "feed", feed);
    fs_proto_set_str (type, &answer, "status", "ok");
    s_error_t error = { 0 };
    int n = s_read (self, feed, after, max, &answer, &error);
    if (n < 0) {
        fs_proto_clear (type, &answer);
        s_send_error (self, route_p, feed, &error);
        return;
    }
    if (n > 0 || wait_ms <= 0) {
        s_send (self, route_p, &answer, A_OK);
        fs_proto_clear (type, &answer);
        return;
    }
    fs_proto_clear (type, &answer);
    s_waiter_t *waiter = (s_waiter_t *) calloc (1, sizeof *waiter);
    if (!waiter) {
        s_error (&error, "unavailable", NULL, "the router is out of memory; ask again later");
        s_send_error (self, route_p, feed, &error);
        return;
    }
    waiter->route = *route_p;
    *route_p = NULL;
    snprintf (waiter->feed, sizeof waiter->feed, "%s", feed);
    waiter->after = after;
    waiter->max = max;
    waiter->timer = -1;
    zlistx_add_end (self->waiters, waiter);
    waiter->timer = zloop_timer (self->loop, (size_t) wait_ms, 1, s_expired, self);
}

static void
s_waiter_free (s_waiter_t **waiter_p)
{
    s_waiter_t *waiter = *waiter_p;
    if (!waiter)
        return;
    zmsg_destroy (&waiter->route);
    free (waiter);
    *waiter_p = NULL;
}

//  Serves the waiters of feed (NULL: all): those with items now are answered; with
//  `expired_timer` >= 0 the waiter of that timer is answered whatever it finds
static void
s_wake (s_feed_t *self, const char *feed, int expired_timer)
{
    for (s_waiter_t *waiter = (s_waiter_t *) zlistx_first (self->waiters); waiter;
         waiter = (s_waiter_t *) zlistx_next (self->waiters)) {
        bool expired = waiter->timer == expired_timer;
        if (!expired && feed && !streq (feed, waiter->feed))
            continue;
        //  Re-read: answered when there are items, or the wait is over
        fs_feed_answer_t answer = { 0 };
        const fs_type_t *type = &fs_feed_answer_type;
        fs_proto_set_int (type, &answer, "v", 1);
        fs_proto_set_str (type, &answer, "feed", waiter->feed);
        fs_proto_set_str (type, &answer, "status", "ok");
        s_error_t error = { 0 };
        int n = s_read (self, waiter->feed, waiter->after, waiter->max, &answer, &error);
        if (n != 0 || expired) {
            if (n < 0)
                s_send_error (self, &waiter->route, waiter->feed, &error);
            else
                s_send (self, &waiter->route, &answer, A_OK);
            if (!expired)
                zloop_timer_end (self->loop, waiter->timer);
            //  The cursor moves back one: the loop goes on with the next waiter
            zlistx_detach_cur (self->waiters);
            s_waiter_free (&waiter);
        }
        fs_proto_clear (type, &answer);
    }
}

static int
s_expired (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    s_wake ((s_feed_t *) arg, "", timer_id);
    return 0;
}

//  Takes the notifications libpq holds and wakes the waiters of their feeds
static void
s_notified (s_feed_t *self)
{
    PGconn *conn = self->listen_fd >= 0 ? fs_pg_conn (self->pg) : NULL;
    if (!conn)
        return;
    zlistx_t *feeds = zlistx_new ();
    zlistx_set_destructor (feeds, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (feeds, (zlistx_comparator_fn *) strcmp);
    PGnotify *notify;
    while ((notify = PQnotifies (conn))) {
        if (!zlistx_find (feeds, notify->extra))
            zlistx_add_end (feeds, strdup (notify->extra));
        PQfreemem (notify);
    }
    for (char *feed = (char *) zlistx_first (feeds); feed; feed = (char *) zlistx_next (feeds))
        s_wake (self, feed, -1);
    zlistx_destroy (&feeds);
}

static int
s_on_notify (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    s_feed_t *self = (s_feed_t *) arg;
    PGconn *conn = fs_pg_conn (self->pg);
    if (!conn || !PQconsumeInput (conn)) {
        //  The server went away: stop polling its socket; the check timer listens again
        zloop_poller_end (loop, item);
        self->listen_fd = -1;
        return 0;
    }
    s_notified (self);
    return 0;
}

//  (Re)connects and LISTENs when not listening; then everyone waiting looks again, since
//  what was appended meanwhile notified nobody
static int
s_check (zloop_t *loop, int timer_id, void *arg)
{
    (void) timer_id;
    s_feed_t *self = (s_feed_t *) arg;
    if (self->listen_fd >= 0)
        return 0;
    PGconn *conn = fs_pg_conn (self->pg);
    if (!conn || fs_pg_run (self->pg, "LISTEN " ROUTER_FEED_CHANNEL, 0, NULL))
        return 0;
    self->listen_fd = PQsocket (conn);
    zmq_pollitem_t item = { NULL, self->listen_fd, ZMQ_POLLIN, 0 };
    if (zloop_poller (loop, &item, s_on_notify, self)) {
        self->listen_fd = -1;
        return 0;
    }
    s_wake (self, NULL, -1);
    return 0;
}

//  Retention: items older than FINESTRA_ROUTER_FEED_RETENTION_DAYS go, and each feed
//  remembers the highest seq it lost (cursors below it are expired). Replicas may run it
//  at once: the horizon only grows
static int
s_purge (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop, (void) timer_id;
    s_feed_t *self = (s_feed_t *) arg;
    char days [16];
    snprintf (days, sizeof days, "%ld", self->config->router_feed_retention_days);
    const char *values [1] = { days };
    PGresult *result = fs_pg_exec (self->pg,
        "WITH d AS (DELETE FROM referral_router.feed_items"
        "   WHERE created_at < now () - make_interval (days => $1::int) RETURNING feed, seq),"
        " h AS (INSERT INTO referral_router.feed_horizons (feed, purged_through)"
        "   SELECT feed, max (seq) FROM d GROUP BY feed ON CONFLICT (feed) DO UPDATE"
        "   SET purged_through = greatest (feed_horizons.purged_through,"
        "                                  excluded.purged_through))"
        " SELECT count (*) FROM d", 1, values);
    if (!result) {
        s_error_t error;
        s_db_failed (self, &error);
        return 0;
    }
    long purged = atol (PQgetvalue (result, 0, 0));
    PQclear (result);
    if (purged > 0) {
        fs_counter_add (s_feed.purged, (uint64_t) purged);
        char count [24];
        snprintf (count, sizeof count, "%ld", purged);
        fs_info ("feed items past retention removed", "items", count, "days", days);
    }
    return 0;
}

//  A reader reports a decision on a referral of its feed: the target of a referral
//  delivered on it, or the requester of one its system sent
static void
s_transition (s_feed_t *self, zmsg_t **route_p, const fs_feed_request_t *request)
{
    s_error_t error = { 0 };
    const char *feed = request->feed;
    if (!FS_PRESENT (request, fs_feed_request_F_referral_id)
    ||  !FS_PRESENT (request, fs_feed_request_F_status)) {
        bool id = FS_PRESENT (request, fs_feed_request_F_referral_id);
        s_error (&error, "missing_field", id ? "status" : "referral_id",
                 "a transition needs %s", id ? "the new status" : "the referral_id");
        s_send_error (self, route_p, feed, &error);
        return;
    }
    const char *values [2] = { request->referral_id, feed };
    PGresult *result = fs_pg_exec (self->pg,
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM referral_router.referral_feeds"
        "   WHERE referral_id = $1::uuid AND feed = $2) THEN 'target'"
        " WHEN EXISTS (SELECT 1 FROM referral_router.referrals r"
        "   JOIN referral_router.sender_feeds s ON s.source = r.source"
        "   WHERE r.id = $1::uuid AND s.feed = $2) THEN 'requester' END", 2, values);
    if (!result) {
        s_db_failed (self, &error);
        s_send_error (self, route_p, feed, &error);
        return;
    }
    int actor = PQgetisnull (result, 0, 0) ? -1 : router_actor_parse (PQgetvalue (result, 0, 0));
    PQclear (result);
    if (actor < 0) {
        s_error (&error, "not_your_referral", "referral_id",
                 "referral %s was neither delivered on nor sent by feed '%s'",
                 request->referral_id, feed);
        s_send_error (self, route_p, feed, &error);
        return;
    }
    char err [ROUTER_ERR_MAX] = "";
    int to = router_status_parse (request->status);
    const char *code = FS_PRESENT (request, fs_feed_request_F_reason_code)
                     ? request->reason_code : NULL;
    const char *text = FS_PRESENT (request, fs_feed_request_F_reason) ? request->reason : NULL;
    int rc = fs_pg_begin (self->pg) ? -1
           : router_referral_transition_on (self->server, self->pg, request->referral_id,
                                            (router_status_t) to, (router_actor_t) actor, code,
                                            text, err, sizeof err);
    if (rc == ROUTER_TX_OK && fs_pg_commit (self->pg))
        rc = -1;
    if (rc != ROUTER_TX_OK)
        fs_pg_rollback (self->pg);
    if (rc == -1) {
        s_db_failed (self, &error);
        s_send_error (self, route_p, feed, &error);
        return;
    }
    if (rc != ROUTER_TX_OK) {
        bool reason = rc >= ROUTER_TX_REASON_MISSING;
        s_error (&error, reason ? "invalid_reason" : "transition_refused",
                 reason ? "reason_code" : "status", "%s", err);
        s_send_error (self, route_p, feed, &error);
        return;
    }
    fs_feed_answer_t answer = { 0 };
    const fs_type_t *type = &fs_feed_answer_type;
    fs_proto_set_int (type, &answer, "v", 1);
    fs_proto_set_str (type, &answer, "feed", feed);
    fs_proto_set_str (type, &answer, "status", "ok");
    fs_proto_set_str (type, &answer, "referral_status", request->status);
    s_send (self, route_p, &answer, A_OK);
    fs_proto_clear (type, &answer);
}

//  Finds key in a msgpack map, NULL if absent
static const msgpack_object *
s_map_get (const msgpack_object *map, const char *key)
{
    size_t len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len
        &&  memcmp (k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

//  Decodes one request frame; 0, or -1 with error filled
static int
s_decode (zframe_t *body, fs_feed_request_t *request, s_error_t *error)
{
    size_t size = zframe_size (body);
    if (size > S_REQUEST_MAX) {
        s_error (error, "too_large", NULL, "a request is at most %d bytes; this one is %zu",
                 S_REQUEST_MAX, size);
        return -1;
    }
    fs_proto_error_t err;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    if (fs_proto_unpack (zframe_data (body), size, &unpacked, &err)
    ||  unpacked.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy (&unpacked);
        s_error (error, "malformed", NULL, "a request is one msgpack map");
        return -1;
    }
    //  The version first: another version may change every other key
    const msgpack_object *v = s_map_get (&unpacked.data, "v");
    if (!v)
        s_error (error, "missing_field", "v", "v (the feed contract version) is required");
    else
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1)
        s_error (error, "unsupported_version", "v", "this router speaks version 1 of the feed");
    int rc = error->code ? -1
           : fs_proto_decode_object (&fs_feed_request_type, &unpacked.data, request, "", &err);
    msgpack_unpacked_destroy (&unpacked);
    if (rc > 0)
        s_error (error, fs_proto_code_name (err.code), err.field, "%s", err.message);
    return error->code ? -1 : 0;
}

//  One request: route frames, the delimiter, one body frame
static int
s_on_request (zloop_t *loop, zsock_t *router, void *arg)
{
    (void) loop;
    s_feed_t *self = (s_feed_t *) arg;
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return 0;
    zmsg_t *route = zmsg_new ();
    zframe_t *frame;
    bool delimited = false;
    while ((frame = zmsg_pop (msg))) {
        zmsg_append (route, &frame);
        if (zframe_size (zmsg_last (route)) == 0 && zmsg_size (route) > 1) {
            delimited = true;
            break;
        }
    }
    s_error_t error = { 0 };
    fs_feed_request_t request = { 0 };
    zframe_t *body = delimited && zmsg_size (msg) == 1 ? zmsg_pop (msg) : NULL;
    zmsg_destroy (&msg);
    if (!body) {
        if (!delimited && zmsg_size (route) == 2) {
            //  A DEALER without the delimiter: answer in the same shape
            zframe_t *last = zmsg_last (route);
            zmsg_remove (route, last);
            zframe_destroy (&last);
        }
        s_error (&error, "malformed", NULL,
                 "send one frame (after the empty delimiter): a msgpack map, the request");
        s_send_error (self, &route, NULL, &error);
        return 0;
    }
    if (s_decode (body, &request, &error) == 0) {
        //  With CURVE, a key reads (and answers on) only the feed its certificate names
        if (!router_feed_name_valid (request.feed))
            s_error (&error, "invalid_field", "feed", "a feed name is 1-%d of a-z, 0-9 and -",
                     ROUTER_FEED_NAME_MAX);
        else
        if (fs_curve_check_name (self->curve, body, request.feed))
            s_error (&error, "not_your_feed", "feed",
                     "this client's key may not use feed '%s'", request.feed);
    }
    zframe_destroy (&body);
    bool transition = !error.code && FS_PRESENT (&request, fs_feed_request_F_op)
                   && streq (request.op, "transition");
    if (error.code)
        s_send_error (self, &route, request.feed, &error);
    else
    if (transition)
        s_transition (self, &route, &request);
    else
    if (!FS_PRESENT (&request, fs_feed_request_F_after)) {
        s_error (&error, "missing_field", "after",
                 "after (the last seq processed, 0 the first time) is required");
        s_send_error (self, &route, request.feed, &error);
    }
    else {
        int64_t max = FS_PRESENT (&request, fs_feed_request_F_max) ? request.max : S_DEFAULT_MAX;
        int64_t wait = FS_PRESENT (&request, fs_feed_request_F_wait_ms) ? request.wait_ms : 0;
        //  For monitoring only: how far behind each reader is (never read back here)
        char after [24];
        snprintf (after, sizeof after, "%" PRId64, request.after);
        const char *values [2] = { request.feed, after };
        if (fs_pg_run (self->pg, "INSERT INTO referral_router.feed_readers (feed, last_after)"
                                 " VALUES ($1, $2::bigint) ON CONFLICT (feed) DO UPDATE"
                                 " SET last_after = excluded.last_after, last_read_at = now (),"
                                 " reads = feed_readers.reads + 1", 2, values))
            s_db_failed (self, &error);     //  a lost connection is listened again; read on
        s_serve_read (self, &route, request.feed, request.after, max, wait);
    }
    zmsg_destroy (&route);
    fs_proto_clear (&fs_feed_request_type, &request);
    //  Items appended by this request's own transition, or notified during its queries
    s_notified (self);
    return 0;
}

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    (void) loop, (void) arg;
    char *command = zstr_recv (pipe);
    bool term = !command || streq (command, "$TERM");
    zstr_free (&command);
    return term ? -1 : 0;
}

//  The endpoint's thread. Sets s_feed.listening, then signals (zactor_new waits for that)
static void
s_feed_actor (zsock_t *pipe, void *arg)
{
    s_feed_t self = { 0 };
    self.server = (fs_server_t *) arg;
    self.config = fs_server_config (self.server);
    self.listen_fd = -1;
    const fs_config_t *config = self.config;
    char err [256] = "";
    self.router = zsock_new (ZMQ_ROUTER);
    self.waiters = zlistx_new ();
    self.pg = fs_pg_new (config->pg_url);
    self.loop = zloop_new ();
    if (!self.router || !self.waiters || !self.pg || !self.loop) {
        fs_error ("cannot start the feed endpoint: out of memory");
        goto failed;
    }
    fs_zmq_tune (self.router, config);
    zsock_set_router_mandatory (self.router, 1);
    //  Far larger than a request is dropped by libzmq before we allocate it
    zsock_set_maxmsgsize (self.router, S_REQUEST_MAX * 4);
    self.curve = fs_curve_new (self.router, streq (config->router_feed_curve, "on"),
                               config->router_feed_curve_server_cert,
                               "FINESTRA_ROUTER_FEED_CURVE_SERVER_CERT",
                               config->router_feed_curve_clients_dir,
                               "FINESTRA_ROUTER_FEED_CURVE_CLIENTS_DIR", err, sizeof err);
    if (!self.curve) {
        fs_error ("cannot set up CURVE on the feed endpoint", "reason", err);
        goto failed;
    }
    if (zsock_bind (self.router, "%s", config->router_feed_endpoint) == -1) {
        fs_error ("cannot bind the feed endpoint", "endpoint", config->router_feed_endpoint,
                  "reason", zmq_strerror (zmq_errno ()));
        goto failed;
    }
    if (fs_pg_connect (self.pg, (int) config->pg_connect_timeout_ms)) {
        fs_error ("feed endpoint cannot reach PostgreSQL", "reason", fs_pg_error (self.pg));
        goto failed;
    }
    zloop_reader (self.loop, self.router, s_on_request, &self);
    zloop_reader (self.loop, pipe, s_on_pipe, &self);
    zloop_timer (self.loop, S_CHECK_MS, 0, s_check, &self);
    zloop_timer (self.loop, (size_t) config->router_feed_purge_ms, 0, s_purge, &self);
    s_check (self.loop, 0, &self);
    fs_info ("feed listening", "endpoint", config->router_feed_endpoint);
    s_feed.listening = true;
    zsock_signal (pipe, 0);
    zloop_start (self.loop);
    //  Waiting readers are dropped: they ask again
    s_waiter_t *waiter = (s_waiter_t *) zlistx_first (self.waiters);
    while (waiter) {
        s_waiter_free (&waiter);
        waiter = (s_waiter_t *) zlistx_next (self.waiters);
    }
    zlistx_destroy (&self.waiters);
    zloop_destroy (&self.loop);
    zsock_destroy (&self.router);
    fs_curve_destroy (&self.curve);
    fs_pg_destroy (&self.pg);
    return;

failed:
    zloop_destroy (&self.loop);
    zsock_destroy (&self.router);
    fs_curve_destroy (&self.curve);
    fs_pg_destroy (&self.pg);
    zlistx_destroy (&self.waiters);
    s_feed.listening = false;
    zsock_signal (pipe, 1);
    //  Wait for $TERM so zactor_destroy finds us
    char *command = zstr_recv (pipe);
    zstr_free (&command);
}

int
router_feed_init (fs_server_t *server)
{
    fs_metrics_t *metrics = fs_server_metrics (server);
    const char *labels [3] = { "status=\"ok\"", "status=\"error\"", "status=\"unavailable\"" };
    for (int i = 0; i < 3; i++)
        s_feed.answers [i] = fs_metrics_counter (metrics, "finestra_router_feed_answers_total",
                                                 "Answers on the feed endpoint, by status",
                                                 labels [i]);
    s_feed.items = fs_metrics_counter (metrics, "finestra_router_feed_items_sent_total",
                                       "Feed items sent to readers (re-reads included)", NULL);
    s_feed.purged = fs_metrics_counter (metrics, "finestra_router_feed_items_purged_total",
                                        "Feed items removed past retention", NULL);
    return 0;
}

int
router_feed_start (fs_server_t *server)
{
    const char *endpoint = fs_server_config (server)->router_feed_endpoint;
    if (!endpoint || !*endpoint) {
        fs_info ("feed endpoint off (FINESTRA_ROUTER_FEED_ENDPOINT is empty)");
        return 0;
    }
    s_feed.listening = false;
    s_feed.actor = zactor_new (s_feed_actor, server);
    if (!s_feed.actor)
        return -1;
    if (!s_feed.listening) {
        zactor_destroy (&s_feed.actor);
        return -1;
    }
    return 0;
}

void
router_feed_stop (fs_server_t *server)
{
    (void) server;
    zactor_destroy (&s_feed.actor);
}

//  `sender-feed SOURCE FEED` | `sender-feed SOURCE --none` | `sender-feed --list`
int
router_feed_command (fs_server_t *server, int argc, char **argv)
{
    fs_pg_t *pg = fs_server_pg (server);
    if (argc == 2 && streq (argv [1], "--list")) {
        PGresult *result = fs_pg_exec (pg, "SELECT source, feed FROM referral_router.sender_feeds"
                                           " ORDER BY source", 0, NULL);
        if (!result) {
            fprintf (stderr, "cannot read: %s\n", fs_pg_error (pg));
            return 1;
        }
        for (int i = 0; i < PQntuples (result); i++)
            printf ("%s\t%s\n", PQgetvalue (result, i, 0), PQgetvalue (result, i, 1));
        PQclear (result);
        return 0;
    }
    if (argc != 3 || !*argv [1] || strlen (argv [1]) > 64) {
        fprintf (stderr, "usage: finestra-referral-router sender-feed SOURCE FEED|--none\n"
                         "       finestra-referral-router sender-feed --list\n"
                         "Status changes of referrals that SOURCE (an ingest source) began are"
                         " appended to FEED.\n");
        return 2;
    }
    bool none = streq (argv [2], "--none");
    if (!none && !router_feed_name_valid (argv [2])) {
        fprintf (stderr, "sender-feed: a feed name is 1-%d of a-z, 0-9 and -\n",
                 ROUTER_FEED_NAME_MAX);
        return 2;
    }
    const char *values [2] = { argv [1], argv [2] };
    int rc = none
           ? fs_pg_run (pg, "DELETE FROM referral_router.sender_feeds WHERE source = $1", 1,
                        values)
           : fs_pg_run (pg, "INSERT INTO referral_router.sender_feeds (source, feed)"
                            " VALUES ($1, $2) ON CONFLICT (source) DO UPDATE"
                            " SET feed = excluded.feed, updated_at = now ()", 2, values);
    if (rc) {
        fprintf (stderr, "sender-feed: %s\n", fs_pg_error (pg));
        return 1;
    }
    printf ("%s: %s\n", argv [1], none ? "told inside the suite only" : argv [2]);
    return 0;
}
