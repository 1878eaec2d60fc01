/*  intake_ingest - the ingest ROUTER (contract v1): frames, validation, group commit, receipts. */
#include "intake.h"

//  At most this many waiting events are taken per wake-up and stored in one transaction
#define S_BATCH_MAX 256

//  A receipt to fill and send
typedef struct {
    char id [129];                  /* the event's id, "" when unreadable */
    const char *status;             /* accepted | duplicate | rejected */
    char ref [FS_UUID_LEN + 1];     /* intake's id for the stored event */
    const char *code;               /* rejected: error code */
    char field [128];               /* rejected: offending field path */
    char message [400];             /* rejected: for a person */
} s_receipt_t;

//  One message of a batch, from receiving to its receipt
typedef struct {
    zmsg_t *route;                  /* routing frames and delimiter, to answer on */
    s_receipt_t receipt;            /* status set when decided without the database */
    int item;                       /* index in the batch's items, -1 when none */
    int64_t started;                /* when it was received (monotonic ms) */
} s_pending_t;

//  A store writer: stores one batch at a time on its own PostgreSQL connection, in its own
//  thread, so that the next batch is received and validated while earlier ones commit
typedef struct {
    zactor_t *actor;                /* its thread; a signal each way per batch */
    fs_server_t *server;            /* read only in the thread */
    fs_pg_t *pg;                    /* its connection, used only in its thread */
    bool busy;                      /* a batch is in the thread's hands */
    bool stored;                    /* out: outcomes set (else the database failed) */
    size_t n;                       /* messages in the batch */
    size_t nitems;                  /* valid events among them */
    s_pending_t pending [S_BATCH_MAX];  /* the batch */
    intake_item_t items [S_BATCH_MAX];  /* its valid events */
} s_writer_t;

//  Ingest's state, owned by the server actor
typedef struct {
    zsock_t *ingest;                /* ROUTER city systems publish to */
    bool reading;                   /* ingest is in the loop (some writer is free) */
    intake_curve_t *curve;          /* CURVE and the key -> source rule */
    fs_counter_t *receipts [4];     /* accepted, duplicate, rejected, unavailable */
    fs_histogram_t *latency;        /* receipt latency, receive to reply */
    fs_counter_t *batches;          /* group commits tried (events / batches = batch size) */
    size_t nwriters;                /* writers started */
    s_writer_t *writers;            /* FINESTRA_INTAKE_WRITERS of them */
} s_ingest_t;

static s_ingest_t s_self;           //  one ingest socket per process

enum { R_ACCEPTED, R_DUPLICATE, R_REJECTED, R_UNAVAILABLE };

//  Catalogue v1: the event types publishers may send (internal events are not among them)
static const fs_type_t *
s_catalogue (const char *type)
{
    static const fs_type_t *const types [] = {
        &fs_ev_attention_requested_type,
        &fs_ev_social_risk_detected_type,
        &fs_ev_eviction_scheduled_type,
        &fs_ev_emergency_intervention_type,
        &fs_ev_address_changed_type,
        &fs_ev_benefits_application_submitted_type,
        &fs_ev_consent_granted_type,
        &fs_ev_consent_revoked_type,
        NULL
    };
    for (size_t i = 0; types [i]; i++)
        if (streq (types [i]->wire, type))
            return types [i];
    return NULL;
}

static void
s_reject (s_receipt_t *receipt, const char *code, const char *field, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

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

//  ICD-10 chapter XXI social codes Z55-Z65, with an optional .digit: Z59, Z59.0
static bool
s_icd10_social (const char *code)
{
    if (code [0] != 'Z'
    ||  !isdigit ((unsigned char) code [1]) || !isdigit ((unsigned char) code [2]))
        return false;
    int n = (code [1] - '0') * 10 + (code [2] - '0');
    if (n < 55 || n > 65)
        return false;
    if (code [3] == 0)
        return true;
    return code [3] == '.' && isdigit ((unsigned char) code [4]) && code [5] == 0;
}

//  Rules the descriptors cannot say: between fields, or formats of one type. 0 or -1.
static int
s_check_rules (const intake_item_t *item, s_receipt_t *receipt)
{
    const fs_ingest_subject_t *subject = &item->event.subject;
    bool none = streq (subject->doc_type, "NONE");
    if (none == (bool) FS_PRESENT (subject, fs_ingest_subject_F_doc_number)) {
        s_reject (receipt, "invalid_field", "subject.doc_number", "%s",
                  none ? "doc_number must be absent when doc_type is NONE"
                       : "doc_number is required unless doc_type is NONE");
        return -1;
    }
    //  Nobody is born after today: a day's slack for the city's time zone (UTC+1/+2)
    char tomorrow [16];
    time_t now = time (NULL) + 24 * 3600;
    struct tm tm;
    gmtime_r (&now, &tm);
    strftime (tomorrow, sizeof tomorrow, "%Y-%m-%d", &tm);
    if (strcmp (subject->birth_date, tomorrow) > 0) {
        s_reject (receipt, "invalid_field", "subject.birth_date",
                  "birth date %s is in the future", subject->birth_date);
        return -1;
    }
    if (item->dtype == &fs_ev_benefits_application_submitted_type) {
        const fs_ev_benefits_application_submitted_t *application =
            (const fs_ev_benefits_application_submitted_t *) item->data;
        const fs_ingest_household_member_t *members =
            (const fs_ingest_household_member_t *) application->household_members.items;
        for (size_t i = 0; i < application->household_members.n; i++) {
            const fs_ingest_household_member_t *member = &members [i];
            bool numbered = FS_PRESENT (member, fs_ingest_household_member_F_doc_number);
            bool typed = FS_PRESENT (member, fs_ingest_household_member_F_doc_type)
                      && !streq (member->doc_type, "NONE");
            if (numbered != typed) {
                char field [80];
                snprintf (field, sizeof field, "data.household_members[%zu].doc_number", i);
                s_reject (receipt, "invalid_field", field, "%s",
                          numbered ? "doc_number needs a doc_type other than NONE"
                                   : "doc_number is required with this doc_type");
                return -1;
            }
        }
    }
    if (item->dtype == &fs_ev_social_risk_detected_type) {
        const fs_ev_social_risk_detected_t *risk =
            (const fs_ev_social_risk_detected_t *) item->data;
        for (size_t i = 0; i < risk->icd10_codes.n; i++)
            if (!s_icd10_social (risk->icd10_codes.items [i])) {
                char field [64];
                snprintf (field, sizeof field, "data.icd10_codes[%zu]", i);
                s_reject (receipt, "invalid_field", field,
                          "'%.40s' is not an ICD-10 social code Z55-Z65 (e.g. Z59 or Z59.0)",
                          risk->icd10_codes.items [i]);
                return -1;
            }
    }
    return 0;
}

//  Validates one event frame into item. 0 when valid (item ready to store), -1 with the
//  receipt rejected (item cleared)
static int
s_validate (fs_server_t *server, zframe_t *body, intake_item_t *item, s_receipt_t *receipt)
{
    const fs_config_t *config = fs_server_config (server);
    const char *bytes = (const char *) zframe_data (body);
    size_t size = zframe_size (body);
    fs_proto_error_t err;
    if ((long) size > config->intake_max_bytes) {
        s_reject (receipt, "too_large", NULL, "event is %zu bytes; the limit is %ld", size,
                  config->intake_max_bytes);
        return -1;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    if (fs_proto_unpack (bytes, size, &unpacked, &err)) {
        msgpack_unpacked_destroy (&unpacked);
        s_reject_proto (receipt, &err, "");
        return -1;
    }
    const msgpack_object *root = &unpacked.data;
    if (root->type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy (&unpacked);
        s_reject (receipt, "malformed", NULL, "an event must be one msgpack map");
        return -1;
    }
    const msgpack_object *id = s_map_get (root, "id");
    if (id && id->type == MSGPACK_OBJECT_STR && id->via.str.size < sizeof receipt->id
    &&  !memchr (id->via.str.ptr, 0, id->via.str.size))
        snprintf (receipt->id, sizeof receipt->id, "%.*s", (int) id->via.str.size, id->via.str.ptr);
    //  The version first: a future version may change every other field
    const msgpack_object *v = s_map_get (root, "v");
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        s_reject (receipt, "missing_field", "v", "v (the contract version) is required");
    else
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
        s_reject (receipt, "invalid_field", "v", "v must be an integer");
    else
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || v->via.u64 != 1)
        s_reject (receipt, "unsupported_version", "v",
                  "this intake speaks version 1 of the contract");
    if (receipt->status) {
        msgpack_unpacked_destroy (&unpacked);
        return -1;
    }
    int rc = fs_proto_decode_object (&fs_ingest_event_type, root, &item->event, "", &err);
    msgpack_unpacked_destroy (&unpacked);
    if (rc) {
        s_reject_proto (receipt, &err, "");
        return -1;
    }
    item->dtype = s_catalogue (item->event.type);
    if (!item->dtype) {
        s_reject (receipt, "unknown_type", "type", "'%s' is not in the event catalogue (v1)",
                  item->event.type);
        goto rejected;
    }
    item->data = calloc (1, item->dtype->size);
    if (!item->data) {
        s_reject (receipt, "unavailable", NULL, "intake is out of memory; send it again later");
        goto rejected;
    }
    if (fs_proto_decode (item->dtype, item->event.data.data, item->event.data.len, item->data,
                         &err)) {
        s_reject_proto (receipt, &err, "data.");
        goto rejected;
    }
    if (s_check_rules (item, receipt))
        goto rejected;
    //  With CURVE, a key publishes only as the source its certificate names
    if (intake_curve_check_source (s_self.curve, body, item->event.source)) {
        s_reject (receipt, "source_mismatch", "source",
                  "this client's key may not publish as source '%s'", item->event.source);
        goto rejected;
    }
    if (intake_store_prepare (item, &err)) {
        s_reject_proto (receipt, &err, "");
        goto rejected;
    }
    return 0;

rejected:
    intake_item_clear (item);
    return -1;
}

//  Splits a message into its route (routing frames + delimiter) and validates the one body
//  frame into items[*nitems] when there is exactly one
static void
s_take (fs_server_t *server, zmsg_t *msg, s_pending_t *pending, intake_item_t *items,
        size_t *nitems)
{
    zframe_t *frame;
    bool delimited = false;
    pending->route = zmsg_new ();
    pending->item = -1;
    while ((frame = zmsg_pop (msg))) {
        zmsg_append (pending->route, &frame);
        if (zframe_size (zmsg_last (pending->route)) == 0 && zmsg_size (pending->route) > 1) {
            delimited = true;
            break;
        }
    }
    if (!delimited || zmsg_size (msg) != 1) {
        if (!delimited && zmsg_size (pending->route) == 2) {
            //  A DEALER without the delimiter: answer in the same shape
            zframe_t *body = zmsg_last (pending->route);
            zmsg_remove (pending->route, body);
            zframe_destroy (&body);
        }
        s_reject (&pending->receipt, "malformed", NULL,
                  "send one frame (after the empty delimiter): a msgpack map, the event");
        return;
    }
    zframe_t *body = zmsg_pop (msg);
    intake_item_t *item = &items [*nitems];
    if (s_validate (server, body, item, &pending->receipt) == 0)
        pending->item = (int) (*nitems)++;
    zframe_destroy (&body);
}

//  A receipt packed by hand (the bulk of them: accepted, duplicate)
typedef struct {
    char data [256];                /* id (<= 128 bytes), status, ref and the keys fit */
    size_t len;
    bool failed;                    /* did not fit (cannot happen with a valid id) */
} s_packed_t;

static int
s_packed_write (void *arg, const char *buf, size_t len)
{
    s_packed_t *self = (s_packed_t *) arg;
    if (self->failed || self->len + len > sizeof self->data) {
        self->failed = true;
        return -1;
    }
    memcpy (self->data + self->len, buf, len);
    self->len += len;
    return 0;
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

//  An accepted or duplicate receipt of a stored event, byte for byte what fs_proto_encode
//  makes of it (definition order: id, status, ref), without a struct to fill, validate and
//  free per event. Its id was validated with the event. 0, or -1 when it does not apply.
static int
s_pack_stored (const s_receipt_t *receipt, s_packed_t *packed)
{
    if (receipt->code || !receipt->id [0] || !receipt->ref [0])
        return -1;
    msgpack_packer pk;
    msgpack_packer_init (&pk, packed, s_packed_write);
    packed->len = 0;
    packed->failed = false;
    msgpack_pack_map (&pk, 3);
    s_pack_str (&pk, "id");
    s_pack_str (&pk, receipt->id);
    s_pack_str (&pk, "status");
    s_pack_str (&pk, receipt->status);
    s_pack_str (&pk, "ref");
    s_pack_str (&pk, receipt->ref);
    return packed->failed ? -1 : 0;
}

static void
s_send_receipt (zsock_t *router, zmsg_t **route_p, const s_receipt_t *receipt, bool stored)
{
    s_packed_t packed;
    if (stored && s_pack_stored (receipt, &packed) == 0) {
        zmsg_addmem (*route_p, packed.data, packed.len);
        if (zmsg_send (route_p, router))
            fs_debug ("receipt not delivered: publisher gone", "id", receipt->id);
        zmsg_destroy (route_p);
        return;
    }
    fs_ingest_receipt_t out = { 0 };
    if (receipt->id [0])
        fs_proto_set_str (&fs_ingest_receipt_type, &out, "id", receipt->id);
    fs_proto_set_str (&fs_ingest_receipt_type, &out, "status", receipt->status);
    if (receipt->ref [0])
        fs_proto_set_str (&fs_ingest_receipt_type, &out, "ref", receipt->ref);
    if (receipt->code) {
        out.present |= 1u << fs_ingest_receipt_F_error;
        fs_proto_set_str (&fs_ingest_error_type, &out.error, "code", receipt->code);
        fs_proto_set_str (&fs_ingest_error_type, &out.error, "message", receipt->message);
        if (receipt->field [0])
            fs_proto_set_str (&fs_ingest_error_type, &out.error, "field", receipt->field);
    }
    char *data = NULL;
    size_t len = 0;
    fs_proto_error_t err;
    int rc = fs_proto_encode (&fs_ingest_receipt_type, &out, &data, &len, &err);
    if (rc && receipt->id [0]) {
        //  An id that is not UTF-8 cannot be echoed: answer without it
        fs_proto_set_str (&fs_ingest_receipt_type, &out, "id", NULL);
        rc = fs_proto_encode (&fs_ingest_receipt_type, &out, &data, &len, &err);
    }
    if (rc == 0) {
        zmsg_addmem (*route_p, data, len);
        //  ROUTER_MANDATORY: a publisher gone before its receipt is logged, not fatal;
        //  it re-sends and gets `duplicate`
        if (zmsg_send (route_p, router))
            fs_debug ("receipt not delivered: publisher gone", "id", receipt->id);
    }
    else
        fs_error ("cannot encode receipt", "reason", err.message);
    zmsg_destroy (route_p);
    free (data);
    fs_proto_clear (&fs_ingest_receipt_type, &out);
}

//  Fills the receipts of a batch's valid events from their store outcomes
static void
s_outcomes (s_pending_t *pending, size_t n, const intake_item_t *items, bool stored)
{
    for (size_t i = 0; i < n; i++) {
        s_pending_t *p = &pending [i];
        if (p->item < 0)
            continue;
        const intake_item_t *item = &items [p->item];
        //  Not stored: the whole batch failed, or (one by one) this event's own transaction
        if (!stored || item->outcome == INTAKE_PENDING)
            s_reject (&p->receipt, "unavailable", NULL,
                      "intake cannot store events right now; send the same event again later");
        else
        if (item->outcome == INTAKE_CONFLICT)
            s_reject (&p->receipt, "id_conflict", "id",
                      "event %s from %s was already received with different content",
                      item->event.id, item->event.source);
        else {
            p->receipt.status = item->outcome == INTAKE_ACCEPTED ? "accepted" : "duplicate";
            memcpy (p->receipt.ref, item->ref, sizeof p->receipt.ref);
        }
    }
}

//  In the writer's thread: stores its batch's valid events in one transaction
static void
s_writer_store (s_writer_t *self)
{
    fs_server_t *server = self->server;
    self->stored = intake_store_batch (server, self->pg, self->items, self->nitems) == 0;
    if (!self->stored && self->nitems > 1 && !fs_pg_lost (self->pg)) {
        //  A statement error, not the connection: one event may be at fault; store them
        //  one by one so the others are not held back with it
        fs_warn ("batch not stored; storing one by one", "reason", fs_pg_error (self->pg));
        for (size_t i = 0; i < self->nitems; i++)
            intake_store_batch (server, self->pg, &self->items [i], 1);
        self->stored = true;
    }
    if (!self->stored)
        fs_warn ("events not stored", "reason", fs_pg_error (self->pg));
    else
        intake_process_wake ();         //  instead of a NOTIFY, which serialises commits
}

//  The writer's thread: one STORE at a time, answered with a signal when done
static void
s_writer_actor (zsock_t *pipe, void *arg)
{
    s_writer_t *self = (s_writer_t *) arg;
    zsock_signal (pipe, 0);
    while (true) {
        char *command = zstr_recv (pipe);
        if (!command)
            break;              //  interrupted
        bool store = streq (command, "STORE");
        zstr_free (&command);
        if (!store)
            break;              //  $TERM
        s_writer_store (self);
        zsock_signal (pipe, 0);
    }
}

//  Answers every message of the writer's batch (its store outcomes are in) and frees it
static void
s_answer (s_writer_t *writer)
{
    s_outcomes (writer->pending, writer->n, writer->items, writer->stored);
    if (writer->nitems)
        fs_counter_add (s_self.batches, 1);
    for (size_t i = 0; i < writer->n; i++) {
        s_pending_t *p = &writer->pending [i];
        s_receipt_t *receipt = &p->receipt;
        int kind = streq (receipt->status, "accepted") ? R_ACCEPTED
                 : streq (receipt->status, "duplicate") ? R_DUPLICATE
                 : receipt->code && streq (receipt->code, "unavailable") ? R_UNAVAILABLE
                 : R_REJECTED;
        fs_counter_add (s_self.receipts [kind], 1);
        if (kind == R_REJECTED)
            fs_info ("event rejected", "id", receipt->id, "code", receipt->code,
                     "field", receipt->field, "reason", receipt->message);
        s_send_receipt (s_self.ingest, &p->route, receipt, p->item >= 0);
        fs_histogram_observe (s_self.latency, (double) (fs_mono_ms () - p->started) / 1000.0);
    }
    for (size_t i = 0; i < writer->nitems; i++)
        intake_item_clear (&writer->items [i]);
    writer->n = writer->nitems = 0;
}

static int s_on_ingest (zloop_t *loop, zsock_t *router, void *arg);

//  Reads ingest only while some writer can take a batch; what waits meanwhile queues in
//  the socket and makes the next batch bigger
static void
s_reading (zloop_t *loop, fs_server_t *server, bool reading)
{
    if (reading == s_self.reading)
        return;
    if (reading)
        zloop_reader (loop, s_self.ingest, s_on_ingest, server);
    else
        zloop_reader_end (loop, s_self.ingest);
    s_self.reading = reading;
}

static s_writer_t *
s_free_writer (void)
{
    for (size_t w = 0; w < s_self.nwriters; w++)
        if (!s_self.writers [w].busy)
            return &s_self.writers [w];
    return NULL;
}

//  Every waiting message (up to S_BATCH_MAX) into a free writer's batch: validates each,
//  hands the valid ones to the writer (receipts when it is done), answers the rest now
static int
s_on_ingest (zloop_t *loop, zsock_t *router, void *arg)
{
    fs_server_t *server = (fs_server_t *) arg;
    s_writer_t *writer = s_free_writer ();
    if (!writer) {
        s_reading (loop, server, false);
        return 0;
    }
    size_t n = 0, nitems = 0;
    while (n < S_BATCH_MAX) {
        //  The first is known to be there; the rest only if already waiting (the socket's
        //  receive timeout is 0: NULL when none, without asking ZMQ_EVENTS per message)
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        s_pending_t *pending = &writer->pending [n++];
        memset (pending, 0, sizeof *pending);
        pending->started = fs_mono_ms ();
        s_take (server, msg, pending, writer->items, &nitems);
        zmsg_destroy (&msg);
    }
    writer->n = n;
    writer->nitems = nitems;
    if (nitems == 0) {
        writer->stored = true;
        s_answer (writer);      //  nothing to store: all rejected
        return 0;
    }
    writer->busy = true;
    zstr_send (writer->actor, "STORE");
    if (!s_free_writer ())
        s_reading (loop, server, false);
    return 0;
}

//  A writer is done: answer its batch, and read again
static int
s_on_stored (zloop_t *loop, zsock_t *pipe, void *arg)
{
    s_writer_t *writer = (s_writer_t *) arg;
    zsock_wait (pipe);
    writer->busy = false;
    s_answer (writer);
    s_reading (loop, writer->server, true);
    return 0;
}

int
intake_ingest_init (fs_server_t *server)
{
    fs_metrics_t *metrics = fs_server_metrics (server);
    const char *labels [4] = { "status=\"accepted\"", "status=\"duplicate\"",
                               "status=\"rejected\"", "status=\"unavailable\"" };
    for (int i = 0; i < 4; i++)
        s_self.receipts [i] = fs_metrics_counter (metrics, "finestra_intake_receipts_total",
                                                  "Receipts sent to publishers, by status",
                                                  labels [i]);
    s_self.latency = fs_metrics_histogram (metrics, "finestra_intake_receipt_seconds",
                                           "Time from receiving an event to its receipt", NULL);
    s_self.batches = fs_metrics_counter (metrics, "finestra_intake_batches_total",
                                         "Transactions storing events (group commits)", NULL);
    return 0;
}

int
intake_ingest_start (fs_server_t *server)
{
    const fs_config_t *config = fs_server_config (server);
    char err [256] = "";
    s_self.ingest = zsock_new (ZMQ_ROUTER);
    if (!s_self.ingest) {
        fs_error ("cannot create the ingest socket");
        return -1;
    }
    fs_zmq_tune (s_self.ingest, config);
    zsock_set_router_mandatory (s_self.ingest, 1);
    zsock_set_rcvtimeo (s_self.ingest, 0);
    //  Far larger than the limit is dropped by libzmq (peer disconnected) before we
    //  allocate it; up to twice the limit gets a `too_large` receipt
    zsock_set_maxmsgsize (s_self.ingest, (int) (config->intake_max_bytes * 2));
    //  CURVE must be set up before the socket binds
    s_self.curve = intake_curve_new (s_self.ingest, config, err, sizeof err);
    if (!s_self.curve) {
        fs_error ("cannot set up CURVE on the ingest socket", "reason", err);
        zsock_destroy (&s_self.ingest);
        return -1;
    }
    if (zsock_bind (s_self.ingest, "%s", config->intake_endpoint) == -1) {
        fs_error ("cannot bind the ingest endpoint", "endpoint", config->intake_endpoint,
                  "reason", zmq_strerror (zmq_errno ()));
        intake_curve_destroy (&s_self.curve);
        zsock_destroy (&s_self.ingest);
        return -1;
    }
    //  The writers, each with its own connection (made on first use, in its thread)
    zloop_t *loop = fs_server_loop (server);
    size_t nwriters = (size_t) config->intake_writers;
    s_self.writers = (s_writer_t *) calloc (nwriters, sizeof *s_self.writers);
    for (size_t w = 0; s_self.writers && w < nwriters; w++) {
        s_writer_t *writer = &s_self.writers [w];
        writer->server = server;
        writer->pg = fs_pg_new (config->pg_url);
        writer->actor = writer->pg ? zactor_new (s_writer_actor, writer) : NULL;
        if (!writer->actor) {
            fs_pg_destroy (&writer->pg);
            break;
        }
        zloop_reader (loop, zactor_sock (writer->actor), s_on_stored, writer);
        s_self.nwriters++;
    }
    if (s_self.nwriters < nwriters) {
        fs_error ("cannot start the ingest writers");
        intake_ingest_stop (server);
        return -1;
    }
    s_reading (loop, server, true);
    fs_info ("ingest listening", "endpoint", config->intake_endpoint);
    return 0;
}

void
intake_ingest_stop (fs_server_t *server)
{
    zloop_t *loop = fs_server_loop (server);
    s_reading (loop, server, false);
    //  Batches in the writers' hands are finished and answered: they may be committed
    for (size_t w = 0; w < s_self.nwriters; w++) {
        s_writer_t *writer = &s_self.writers [w];
        zloop_reader_end (loop, zactor_sock (writer->actor));
        if (writer->busy) {
            zsock_wait (writer->actor);
            writer->busy = false;
            s_answer (writer);
        }
        zactor_destroy (&writer->actor);
        fs_pg_destroy (&writer->pg);
    }
    free (s_self.writers);
    s_self.writers = NULL;
    s_self.nwriters = 0;
    zsock_destroy (&s_self.ingest);
    intake_curve_destroy (&s_self.curve);
}
