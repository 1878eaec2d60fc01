/*  intake_server - intake's actor parts: the ingest ROUTER (contract v1) and storing events. */
#include "intake.h"

//  Intake's state, owned by the server actor
typedef struct {
    zsock_t *ingest;                /* ROUTER city systems publish to */
    fs_counter_t *receipts [4];     /* accepted, duplicate, rejected, unavailable */
    fs_histogram_t *latency;        /* receipt latency, receive to reply */
} intake_t;

static intake_t s_intake;           //  one service per process

enum { R_ACCEPTED, R_DUPLICATE, R_REJECTED, R_UNAVAILABLE };

//  Catalogue v1: the event types intake accepts, and their `data` definitions
static const fs_type_t *
s_catalogue (const char *type)
{
    static const fs_type_t *const types [] = {
        &fs_ev_attention_requested_type,
        &fs_ev_social_risk_detected_type,
        &fs_ev_eviction_scheduled_type,
        NULL
    };
    for (size_t i = 0; types [i]; i++)
        if (streq (types [i]->wire, type))
            return types [i];
    return NULL;
}

//  A receipt to fill and send
typedef struct {
    char id [129];                  /* the event's id, "" when unreadable */
    const char *status;             /* accepted | duplicate | rejected */
    char ref [FS_UUID_LEN + 1];     /* intake's id for the stored event */
    const char *code;               /* rejected: error code */
    char field [128];               /* rejected: offending field path */
    char message [400];             /* rejected: for a person */
} s_receipt_t;

static void
s_reject (s_receipt_t *receipt, const char *code, const char *field, const char *fmt, ...)
{
    receipt->status = "rejected";
    receipt->code = code;
    snprintf (receipt->field, sizeof receipt->field, "%s", field ? field : "");
    va_list args;
    va_start (args, fmt);
    vsnprintf (receipt->message, sizeof receipt->message, fmt, args);
    va_end (args);
}

static void
s_reject_proto (s_receipt_t *receipt, const fs_proto_error_t *err, const char *prefix)
{
    char field [192];       //  prefix + path; s_reject bounds it to the receipt's 128
    snprintf (field, sizeof field, "%s%s", err->field [0] ? prefix : "", err->field);
    s_reject (receipt, fs_proto_code_name (err->code), field, "%s", err->message);
}

//  Finds key in a msgpack map, NULL if absent
static const msgpack_object *
s_map_get (const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len
        &&  memcmp (k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

//  Canonical bytes of an event: known fields only, definition order, data re-encoded,
//  so the same content sent twice hashes the same whatever the publisher's key order
static int
s_canonical (fs_ingest_event_t *event, const fs_type_t *dtype, void *data,
             char **bytes, size_t *len, fs_proto_error_t *err)
{
    char *dbytes = NULL;
    size_t dlen = 0;
    if (fs_proto_encode (dtype, data, &dbytes, &dlen, err))
        return -1;
    fs_raw_t original = event->data;
    event->data.data = dbytes;
    event->data.len = dlen;
    int rc = fs_proto_encode (&fs_ingest_event_type, event, bytes, len, err);
    event->data = original;
    free (dbytes);
    return rc;
}

//  Stores an event and what it causes, in one transaction. 0 ok (receipt filled),
//  -1 the database is unavailable
static int
s_store (fs_server_t *server, fs_ingest_event_t *event, const fs_type_t *dtype, void *data,
         s_receipt_t *receipt)
{
    fs_proto_error_t err;
    char *bytes = NULL;
    size_t len = 0;
    if (s_canonical (event, dtype, data, &bytes, &len, &err)) {
        s_reject_proto (receipt, &err, "");
        return 0;
    }
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (unsigned char *) bytes, len);
    char hash [crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex (hash, sizeof hash, digest, sizeof digest);

    fs_pg_t *pg = fs_server_pg (server);
    char ref [FS_UUID_LEN + 1];
    fs_uuid (ref);
    if (fs_pg_begin (pg))
        goto unavailable;
    const char *values [7] = { ref, event->source, event->id, event->type, event->occurred_at,
                               hash, bytes };
    int lengths [7] = { 0, 0, 0, 0, 0, 0, (int) len };
    int formats [7] = { 0, 0, 0, 0, 0, 0, 1 };
    PGresult *result = fs_pg_execb (pg,
        "INSERT INTO intake.events (ref, source, external_id, type, occurred_at, content_hash, event)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source, external_id) DO NOTHING",
        7, values, lengths, formats, 0);
    if (!result)
        goto unavailable;
    bool fresh = atoi (PQcmdTuples (result)) == 1;
    PQclear (result);
    if (!fresh) {
        //  Seen before: the same content is a duplicate, other content a conflict
        const char *key [2] = { event->source, event->id };
        result = fs_pg_exec (pg, "SELECT ref, content_hash FROM intake.events"
                                 " WHERE source = $1 AND external_id = $2", 2, key);
        if (!result || PQntuples (result) != 1) {
            PQclear (result);
            goto unavailable;
        }
        if (streq (PQgetvalue (result, 0, 1), hash)) {
            receipt->status = "duplicate";
            snprintf (receipt->ref, sizeof receipt->ref, "%s", PQgetvalue (result, 0, 0));
        }
        else
            s_reject (receipt, "id_conflict", "id",
                      "event %s from %s was already received with different content",
                      event->id, event->source);
        PQclear (result);
        fs_pg_rollback (pg);
        free (bytes);
        return 0;
    }
    //  What the event causes: a referral to route, for the types that need one
    if (dtype == &fs_ev_social_risk_detected_type || dtype == &fs_ev_eviction_scheduled_type) {
        fs_referral_requested_t request = { 0 };
        fs_proto_set_str (&fs_referral_requested_type, &request, "event_ref", ref);
        fs_proto_set_str (&fs_referral_requested_type, &request, "source", event->source);
        fs_proto_set_str (&fs_referral_requested_type, &request, "event_type", event->type);
        const char *urgency = dtype == &fs_ev_social_risk_detected_type
                            ? ((fs_ev_social_risk_detected_t *) data)->urgency : "urgent";
        fs_proto_set_str (&fs_referral_requested_type, &request, "urgency", urgency);
        //  The stored event starts the chain: its ref is the correlation id of all that follows
        fs_envelope_t cause = { 0 };
        cause.hdr.id = ref;
        cause.hdr.correlation_id = ref;
        int rc = fs_outbox_emit (pg, "intake", "intake", fs_server_routes (server),
                                 &fs_referral_requested_type, &request, &cause, NULL, &err);
        fs_proto_clear (&fs_referral_requested_type, &request);
        if (rc)
            goto unavailable;
    }
    if (fs_pg_commit (pg))
        goto unavailable;
    receipt->status = "accepted";
    memcpy (receipt->ref, ref, sizeof ref);
    free (bytes);
    return 0;

unavailable:
    fs_pg_rollback (pg);
    free (bytes);
    return -1;
}

//  Validates one event frame and stores it; fills the receipt
static void
s_process (fs_server_t *server, zframe_t *body, s_receipt_t *receipt)
{
    const fs_config_t *config = fs_server_config (server);
    const char *bytes = (const char *) zframe_data (body);
    size_t size = zframe_size (body);
    fs_proto_error_t err;
    if ((long) size > config->intake_max_bytes) {
        s_reject (receipt, "too_large", NULL, "event is %zu bytes; the limit is %ld", size,
                  config->intake_max_bytes);
        return;
    }
    if (fs_proto_scan (bytes, size, FS_PROTO_MAX_DEPTH, &err)) {
        s_reject_proto (receipt, &err, "");
        return;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    if (msgpack_unpack_next (&unpacked, bytes, size, NULL) != MSGPACK_UNPACK_SUCCESS
    ||  unpacked.data.type != MSGPACK_OBJECT_MAP) {
        s_reject (receipt, "malformed", NULL, "an event must be one msgpack map");
        msgpack_unpacked_destroy (&unpacked);
        return;
    }
    const msgpack_object *root = &unpacked.data;
    const msgpack_object *id = s_map_get (root, "id");
    if (id && id->type == MSGPACK_OBJECT_STR && id->via.str.size < sizeof receipt->id
    &&  !memchr (id->via.str.ptr, 0, id->via.str.size))
        snprintf (receipt->id, sizeof receipt->id, "%.*s", (int) id->via.str.size, id->via.str.ptr);
    //  The version first: a future version may change every other field
    const msgpack_object *v = s_map_get (root, "v");
    if (!v)
        s_reject (receipt, "missing_field", "v", "v (the contract version) is required");
    else
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        s_reject (receipt, "invalid_field", "v", "v must be an integer");
    else
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || v->via.u64 != 1)
        s_reject (receipt, "unsupported_version", "v", "this intake speaks version 1 of the contract");
    if (receipt->status) {
        msgpack_unpacked_destroy (&unpacked);
        return;
    }
    fs_ingest_event_t event = { 0 };
    if (fs_proto_decode_object (&fs_ingest_event_type, root, &event, "", &err)) {
        msgpack_unpacked_destroy (&unpacked);
        s_reject_proto (receipt, &err, "");
        return;
    }
    msgpack_unpacked_destroy (&unpacked);
    const fs_type_t *dtype = s_catalogue (event.type);
    void *data = NULL;
    if (!dtype)
        s_reject (receipt, "unknown_type", "type", "'%s' is not in the event catalogue (v1)", event.type);
    else
    if (streq (event.subject.doc_type, "NONE")
    ==  FS_PRESENT (&event.subject, fs_proto_field_index (&fs_ingest_subject_type, "doc_number")))
        s_reject (receipt, "invalid_field", "subject.doc_number",
                  streq (event.subject.doc_type, "NONE")
                  ? "doc_number must be absent when doc_type is NONE"
                  : "doc_number is required unless doc_type is NONE");
    else {
        data = calloc (1, dtype->size);
        if (fs_proto_decode (dtype, event.data.data, event.data.len, data, &err))
            s_reject_proto (receipt, &err, "data.");
        else
        if (s_store (server, &event, dtype, data, receipt)) {
            s_reject (receipt, "unavailable", NULL,
                      "intake cannot store events right now; send it again later");
        }
        fs_proto_clear (dtype, data);
        free (data);
    }
    fs_proto_clear (&fs_ingest_event_type, &event);
}

static void
s_send_receipt (zsock_t *router, zmsg_t *route, const s_receipt_t *receipt)
{
    fs_ingest_receipt_t out = { 0 };
    if (receipt->id [0])
        fs_proto_set_str (&fs_ingest_receipt_type, &out, "id", receipt->id);
    fs_proto_set_str (&fs_ingest_receipt_type, &out, "status", receipt->status);
    if (receipt->ref [0])
        fs_proto_set_str (&fs_ingest_receipt_type, &out, "ref", receipt->ref);
    if (receipt->code) {
        out.present |= 1u << fs_proto_field_index (&fs_ingest_receipt_type, "error");
        fs_proto_set_str (&fs_ingest_error_type, &out.error, "code", receipt->code);
        fs_proto_set_str (&fs_ingest_error_type, &out.error, "message", receipt->message);
        if (receipt->field [0])
            fs_proto_set_str (&fs_ingest_error_type, &out.error, "field", receipt->field);
    }
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    if (fs_proto_encode (&fs_ingest_receipt_type, &out, &data, &len, &err) == 0) {
        zmsg_addmem (route, data, len);
        //  ROUTER_MANDATORY: a publisher gone before its receipt is logged, not fatal;
        //  it re-sends and gets `duplicate`
        if (zmsg_send (&route, router))
            fs_debug ("receipt not delivered: publisher gone", "id", receipt->id);
    }
    else
        fs_error ("cannot encode receipt", "reason", err.message);
    zmsg_destroy (&route);
    free (data);
    fs_proto_clear (&fs_ingest_receipt_type, &out);
}

//  One message from a publisher: routing frames, empty delimiter, one event frame
static int
s_on_ingest (zloop_t *loop, zsock_t *router, void *arg)
{
    fs_server_t *server = (fs_server_t *) arg;
    int64_t started = fs_mono_ms ();
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return 0;
    //  Routing frames up to the empty delimiter go back unchanged
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
    s_receipt_t receipt = { 0 };
    if (!delimited || zmsg_size (msg) != 1) {
        if (!delimited && zmsg_size (route) == 2) {
            //  A DEALER without the delimiter: answer in the same shape
            zframe_t *body = zmsg_last (route);
            zmsg_remove (route, body);
            zframe_destroy (&body);
        }
        s_reject (&receipt, "malformed", NULL,
                  "send one frame (after the empty delimiter): a msgpack map, the event");
    }
    else {
        zframe_t *body = zmsg_pop (msg);
        s_process (server, body, &receipt);
        zframe_destroy (&body);
    }
    zmsg_destroy (&msg);
    int kind = streq (receipt.status, "accepted") ? R_ACCEPTED
             : streq (receipt.status, "duplicate") ? R_DUPLICATE
             : receipt.code && streq (receipt.code, "unavailable") ? R_UNAVAILABLE : R_REJECTED;
    fs_counter_add (s_intake.receipts [kind], 1);
    if (kind == R_REJECTED)
        fs_info ("event rejected", "id", receipt.id, "code", receipt.code, "field", receipt.field,
                 "reason", receipt.message);
    s_send_receipt (router, route, &receipt);
    fs_histogram_observe (s_intake.latency, (double) (fs_mono_ms () - started) / 1000.0);
    return 0;
}

static int
s_init (fs_server_t *server)
{
    fs_metrics_t *metrics = fs_server_metrics (server);
    const char *labels [4] = { "status=\"accepted\"", "status=\"duplicate\"",
                               "status=\"rejected\"", "status=\"unavailable\"" };
    for (int i = 0; i < 4; i++)
        s_intake.receipts [i] = fs_metrics_counter (metrics, "finestra_intake_receipts_total",
                                                    "Receipts sent to publishers, by status",
                                                    labels [i]);
    s_intake.latency = fs_metrics_histogram (metrics, "finestra_intake_receipt_seconds",
                                             "Time from receiving an event to its receipt", NULL);
    fs_server_set_state (server, &s_intake);
    return 0;
}

int
intake_ingest_start (fs_server_t *server)
{
    const fs_config_t *config = fs_server_config (server);
    char err [256];
    s_intake.ingest = fs_zmq_router (config->intake_endpoint, config, err, sizeof err);
    if (!s_intake.ingest) {
        fs_error ("cannot bind the ingest endpoint", "endpoint", config->intake_endpoint,
                  "reason", err);
        return -1;
    }
    //  Far larger than the limit is dropped by libzmq (peer disconnected) before we
    //  allocate it; up to twice the limit gets a `too_large` receipt
    zsock_set_maxmsgsize (s_intake.ingest, (int) (config->intake_max_bytes * 2));
    zloop_reader (fs_server_loop (server), s_intake.ingest, s_on_ingest, server);
    fs_info ("ingest listening", "endpoint", config->intake_endpoint);
    return 0;
}

void
intake_ingest_stop (fs_server_t *server)
{
    zloop_reader_end (fs_server_loop (server), s_intake.ingest);
    zsock_destroy (&s_intake.ingest);
}

static int
s_command (fs_server_t *server, int argc, char **argv)
{
    if (streq (argv [0], "load-territory"))
        return intake_territory_load (server, argc, argv);
    return -1;
}

static const fs_handler_t s_handlers [] = { { NULL, NULL } };

const fs_service_t intake_service = {
    .name = "intake",
    .migrations = intake_migrations,
    .handlers = s_handlers,
    .init = s_init,
    .start = intake_ingest_start,
    .stop = intake_ingest_stop,
    .command = s_command,
};
