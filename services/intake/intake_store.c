/*  intake_store - stores validated external events in PostgreSQL, a batch per transaction. */
#include "intake.h"
//  SHA256_Init/Update/Final: deprecated in OpenSSL 3 but allocation-free (the EVP one-shot
//  keeps per-thread state that LeakSanitizer reports at exit), and they use the SHA extensions
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

//  A PostgreSQL array literal being built: {"a","b",...}
typedef struct {
    char *buf;                      /* NUL-terminated text */
    size_t len;                     /* bytes used, without the NUL */
    size_t cap;                     /* bytes allocated */
} s_array_t;

static int
s_array_reserve (s_array_t *self, size_t more)
{
    if (self->len + more + 2 <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 1024;
    while (cap < self->len + more + 2)
        cap *= 2;
    char *buf = (char *) realloc (self->buf, cap);
    if (!buf)
        return -1;
    self->buf = buf;
    self->cap = cap;
    return 0;
}

//  Appends one element, quoted: only `"` and `\` need a backslash inside quotes
static int
s_array_add (s_array_t *self, const char *value, size_t len)
{
    if (s_array_reserve (self, len * 2 + 4))
        return -1;
    char sep = self->len ? ',' : '{';
    self->buf [self->len++] = sep;
    self->buf [self->len++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (value [i] == '"' || value [i] == '\\')
            self->buf [self->len++] = '\\';
        self->buf [self->len++] = value [i];
    }
    self->buf [self->len++] = '"';
    self->buf [self->len] = 0;
    return 0;
}

//  Appends a number as one element (no quoting needed)
static int
s_array_add_int (s_array_t *self, int64_t value)
{
    if (s_array_reserve (self, 24))
        return -1;
    char sep = self->len ? ',' : '{';
    self->buf [self->len++] = sep;
    self->len += (size_t) snprintf (self->buf + self->len, 22, "%lld", (long long) value);
    return 0;
}

//  Appends raw bytes (the events, sent as one binary parameter)
static int
s_array_add_bytes (s_array_t *self, const char *bytes, size_t len)
{
    if (s_array_reserve (self, len))
        return -1;
    memcpy (self->buf + self->len, bytes, len);
    self->len += len;
    return 0;
}

//  Closes the literal; an empty array is "{}"
static const char *
s_array_end (s_array_t *self)
{
    if (s_array_reserve (self, 2))
        return NULL;
    if (self->len == 0)
        self->buf [self->len++] = '{';
    self->buf [self->len++] = '}';
    self->buf [self->len] = 0;
    return self->buf;
}

int
intake_store_prepare (intake_item_t *item, fs_proto_error_t *err)
{
    assert (item && item->dtype && item->data);
    //  Canonical bytes: known fields only, definition order, data re-encoded, so the same
    //  content sent twice hashes the same whatever the publisher's key order
    char *dbytes = NULL;
    size_t dlen = 0;
    if (fs_proto_encode (item->dtype, item->data, &dbytes, &dlen, err))
        return -1;
    fs_raw_t original = item->event.data;
    item->event.data.data = dbytes;
    item->event.data.len = dlen;
    int rc = fs_proto_encode (&fs_ingest_event_type, &item->event, &item->bytes, &item->len, err);
    item->event.data = original;
    free (dbytes);
    if (rc)
        return -1;
    //  OpenSSL's SHA-256 uses the CPU's SHA extensions: ~3x libsodium's (which was ~8% of
    //  intake's CPU in perf). The same digest.
    unsigned char digest [SHA256_DIGEST_LENGTH];
    SHA256_CTX context;
    SHA256_Init (&context);
    SHA256_Update (&context, item->bytes, item->len);
    SHA256_Final (digest, &context);
    sodium_bin2hex (item->hash, sizeof item->hash, digest, sizeof digest);
    return 0;
}

void
intake_item_clear (intake_item_t *item)
{
    assert (item);
    if (item->data) {
        fs_proto_clear (item->dtype, item->data);
        free (item->data);
    }
    fs_proto_clear (&fs_ingest_event_type, &item->event);
    free (item->bytes);
    memset (item, 0, sizeof *item);
}

//  INSERT every item; those not inserted are looked up after. The events' bytes come as ONE
//  binary parameter ($7, all of them end to end) cut by position and length: no hex
//  encoding here nor decoding in PostgreSQL
#define S_INSERT \
    "INSERT INTO intake.events (ref, source, external_id, type, occurred_at, content_hash, event)" \
    " SELECT r::uuid, s, x, t, timestamptz 'epoch' + o * interval '1 millisecond', h," \
    "        substring ($7::bytea FROM p FOR l)" \
    " FROM unnest ($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]," \
    "              $8::int[], $9::int[]) AS u (r, s, x, t, o, h, p, l)"
static const char s_insert_sql [] =
    S_INSERT " ON CONFLICT (source, external_id) DO NOTHING RETURNING ref::text";

//  The common case, every event new: a plain INSERT, cheaper for PostgreSQL than ON CONFLICT
//  (no speculative insertion: no extra index probe and confirm record per row) and nothing
//  to return. Any event already there fails it whole (unique violation): then the batch
//  is stored again with s_insert_sql, and the next S_CAREFUL batches of this writer too
static const char s_insert_new_sql [] = S_INSERT;
#define S_CAREFUL 16
static __thread int s_careful;      //  batches this thread stores with s_insert_sql first

//  The rows that were there already (or came earlier in the same batch)
static const char s_lookup_sql [] =
    "SELECT u.i, e.ref::text, e.content_hash"
    " FROM unnest ($1::text[], $2::text[]) WITH ORDINALITY AS u (s, x, i)"
    " JOIN intake.events e ON e.source = u.s AND e.external_id = u.x";

//  Looks up the items still pending: same hash is a duplicate, other content a conflict.
//  0, or -1 on a database error
static int
s_resolve (fs_pg_t *pg, intake_item_t *items, size_t n)
{
    s_array_t sources = { 0 }, ids = { 0 };
    intake_item_t **asked = (intake_item_t **) calloc (n, sizeof *asked);
    size_t nasked = 0;
    int rc = -1;
    if (!asked)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (items [i].outcome == INTAKE_PENDING) {
            if (s_array_add (&sources, items [i].event.source, strlen (items [i].event.source))
            ||  s_array_add (&ids, items [i].event.id, strlen (items [i].event.id)))
                goto done;
            asked [nasked++] = &items [i];
        }
    if (nasked == 0) {
        rc = 0;
        goto done;
    }
    const char *values [2] = { s_array_end (&sources), s_array_end (&ids) };
    if (!values [0] || !values [1])
        goto done;
    PGresult *result = fs_pg_exec (pg, s_lookup_sql, 2, values);
    if (!result)
        goto done;
    for (int row = 0; row < PQntuples (result); row++) {
        long i = atol (PQgetvalue (result, row, 0)) - 1;
        if (i < 0 || (size_t) i >= nasked)
            continue;
        intake_item_t *item = asked [i];
        if (streq (PQgetvalue (result, row, 2), item->hash)) {
            item->outcome = INTAKE_DUPLICATE;
            snprintf (item->ref, sizeof item->ref, "%s", PQgetvalue (result, row, 1));
        }
        else {
            item->outcome = INTAKE_CONFLICT;
            item->ref [0] = 0;
        }
    }
    PQclear (result);
    //  Not inserted yet not found: cannot happen under the unique key; refuse to guess
    rc = 0;
    for (size_t i = 0; i < nasked; i++)
        if (asked [i]->outcome == INTAKE_PENDING) {
            fs_pg_set_error (pg, "event %s from %s neither inserted nor found",
                             asked [i]->event.id, asked [i]->event.source);
            rc = -1;
        }
done:
    free (asked);
    free (sources.buf);
    free (ids.buf);
    return rc;
}

//  Rows go in (source, id) order: concurrent batches (intake_ingest's writers) then take
//  their unique-key locks in one order and cannot deadlock on a re-sent event
static int
s_compare_keys (const void *a, const void *b)
{
    const intake_item_t *x = *(intake_item_t *const *) a, *y = *(intake_item_t *const *) b;
    int rc = strcmp (x->event.source, y->event.source);
    return rc ? rc : strcmp (x->event.id, y->event.id);
}

int
intake_store_batch (fs_server_t *server, fs_pg_t *pg, intake_item_t *items, size_t n)
{
    assert (server);
    assert (pg);
    assert (items || n == 0);
    if (n == 0)
        return 0;
    //  Columns as array literals, but the events' bytes raw, with their positions and lengths
    enum { C_EVENTS = 6, C_COLUMNS = 9 };
    s_array_t columns [C_COLUMNS] = { { 0 } };
    zhash_t *by_ref = zhash_new ();
    intake_item_t **order = (intake_item_t **) malloc (n * sizeof *order);
    int rc = -1;
    bool open = false;
    if (!by_ref || !order)
        goto done;
    for (size_t i = 0; i < n; i++)
        order [i] = &items [i];
    qsort (order, n, sizeof *order, s_compare_keys);
    for (size_t i = 0; i < n; i++) {
        intake_item_t *item = order [i];
        assert (item->bytes);
        item->outcome = INTAKE_PENDING;
        fs_uuid (item->ref);
        //  As milliseconds since the epoch: PostgreSQL's own parser refuses some times
        //  RFC 3339 allows (year 0000, offsets past 15:59), which would fail the batch
        int64_t ms = 0;
        if (fs_rfc3339_parse (item->event.occurred_at, &ms))
            goto done;          //  validated before: cannot happen
        const char *text [4] = { item->ref, item->event.source, item->event.id, item->event.type };
        for (int c = 0; c < 4; c++)
            if (s_array_add (&columns [c], text [c], strlen (text [c])))
                goto done;
        if (s_array_add_int (&columns [4], ms)
        ||  s_array_add (&columns [5], item->hash, strlen (item->hash))
        ||  s_array_add_int (&columns [7], (int64_t) columns [C_EVENTS].len + 1)
        ||  s_array_add_int (&columns [8], (int64_t) item->len)
        ||  s_array_add_bytes (&columns [C_EVENTS], item->bytes, item->len))
            goto done;
    }
    const char *values [C_COLUMNS];
    int lengths [C_COLUMNS] = { 0 }, formats [C_COLUMNS] = { 0 };
    for (int c = 0; c < C_COLUMNS; c++)
        if (c != C_EVENTS && !(values [c] = s_array_end (&columns [c])))
            goto done;
    values [C_EVENTS] = columns [C_EVENTS].buf;
    lengths [C_EVENTS] = (int) columns [C_EVENTS].len;
    formats [C_EVENTS] = 1;

    if (fs_pg_begin (pg))
        goto done;
    open = true;
    PGresult *result = NULL;
    if (s_careful == 0) {
        result = fs_pg_execp (pg, "intake_store_insert_new", s_insert_new_sql, C_COLUMNS,
                              values, lengths, formats, 0);
        if (result) {
            PQclear (result);
            for (size_t i = 0; i < n; i++)
                items [i].outcome = INTAKE_ACCEPTED;
            if (fs_pg_commit (pg))
                goto done;
            open = false;
            rc = 0;
            goto done;
        }
        if (fs_pg_lost (pg) || !streq (fs_pg_sqlstate (pg), "23505"))
            goto done;
        //  Some event is there already (a re-send, or twice in this batch): again, carefully
        fs_pg_rollback (pg);
        open = false;
        s_careful = S_CAREFUL;
        if (fs_pg_begin (pg))
            goto done;
        open = true;
    }
    else
        s_careful--;
    for (size_t i = 0; i < n; i++)
        if (zhash_insert (by_ref, items [i].ref, &items [i]))
            goto done;
    result = fs_pg_execp (pg, "intake_store_insert", s_insert_sql, C_COLUMNS, values,
                          lengths, formats, 0);
    if (!result)
        goto done;
    for (int row = 0; row < PQntuples (result); row++) {
        intake_item_t *item = (intake_item_t *) zhash_lookup (by_ref, PQgetvalue (result, row, 0));
        if (item)
            item->outcome = INTAKE_ACCEPTED;
    }
    PQclear (result);
    if (s_resolve (pg, items, n))
        goto done;
    if (fs_pg_commit (pg))
        goto done;
    open = false;
    rc = 0;
done:
    if (open)
        fs_pg_rollback (pg);
    if (rc)
        for (size_t i = 0; i < n; i++) {
            items [i].outcome = INTAKE_PENDING;
            items [i].ref [0] = 0;
        }
    for (int c = 0; c < C_COLUMNS; c++)
        free (columns [c].buf);
    zhash_destroy (&by_ref);
    free (order);
    return rc;
}
