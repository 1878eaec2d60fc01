/*  fs_envelope - wraps and unwraps the envelope (fs_envelope_wire in messages.def).

    Both directions go through the generic codec; this file only adds what the envelope
    means: version first, type looked up in the catalogue, payload decoded by its type,
    and the correlation/causation chaining. */
#include "finestra.h"

static int
s_error (fs_proto_error_t *err, fs_proto_code_t code, const char *field,
         const char *format, ...) __attribute__ ((format (printf, 4, 5)));

static int
s_error (fs_proto_error_t *err, fs_proto_code_t code, const char *field,
         const char *format, ...)
{
    err->code = code;
    snprintf (err->field, sizeof err->field, "%s", field);
    va_list args;
    va_start (args, format);
    vsnprintf (err->message, sizeof err->message, format, args);
    va_end (args);
    return code;
}

//  Payload errors name the field from the envelope's root: "payload.<path>".
static void
s_prefix_payload (fs_proto_error_t *err)
{
    fs_proto_error_t inner = *err;
    if (inner.field [0]) {
        snprintf (err->field, sizeof err->field, "payload.%.*s",
                  (int) (sizeof err->field - 9), inner.field);
        snprintf (err->message, sizeof err->message, "payload.%.*s",
                  (int) (sizeof err->message - 9), inner.message);
    }
    else {
        snprintf (err->field, sizeof err->field, "payload");
        snprintf (err->message, sizeof err->message, "payload: %.*s",
                  (int) (sizeof err->message - 10), inner.message);
    }
}

int
fs_envelope_encode (const char *source, const fs_type_t *ptype, const void *payload,
                    const fs_envelope_t *cause, char **data, size_t *len,
                    char *id_out, fs_proto_error_t *err)
{
    assert (data);
    assert (len);
    assert (payload);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    *data = NULL;
    *len = 0;
    if (!ptype || !ptype->wire || fs_proto_lookup (ptype->wire) != ptype)
        return s_error (err, FS_PROTO_UNKNOWN_TYPE, "type",
                        "type: %s is not a message of the catalogue",
                        ptype? ptype->name: "(null)");

    fs_envelope_wire_t wire = { 0 };
    const fs_type_t *wt = &fs_envelope_wire_type;
    int rc = fs_proto_encode (ptype, payload, &wire.payload.data, &wire.payload.len, err);
    if (rc) {
        s_prefix_payload (err);
        return rc;
    }
    wire.present |= (uint64_t) 1 << fs_envelope_wire_F_payload;

    char id [FS_UUID_LEN + 1];
    fs_uuid (id);
    char now [25];
    fs_rfc3339 (fs_now_ms (), now);
    fs_proto_set_int (wt, &wire, "v", FS_ENVELOPE_VERSION);
    fs_proto_set_str (wt, &wire, "id", id);
    fs_proto_set_str (wt, &wire, "type", ptype->wire);
    fs_proto_set_str (wt, &wire, "time", now);
    fs_proto_set_str (wt, &wire, "source", source);
    //  A chain starts at an external event: its correlation is its own id.
    //  Everything it causes carries that correlation on, and names its direct cause.
    if (cause) {
        fs_proto_set_str (wt, &wire, "correlation_id", cause->hdr.correlation_id);
        fs_proto_set_str (wt, &wire, "causation_id", cause->hdr.id);
    }
    else
        fs_proto_set_str (wt, &wire, "correlation_id", id);

    rc = fs_proto_encode (wt, &wire, data, len, err);
    if (rc == 0 && id_out)
        memcpy (id_out, id, sizeof id);
    fs_proto_clear (wt, &wire);
    return rc;
}

//  The value of key `name` in map obj, or NULL.
static const msgpack_object *
s_map_get (const msgpack_object *obj, const char *name)
{
    size_t nlen = strlen (name);
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == nlen
        &&  memcmp (key->via.str.ptr, name, nlen) == 0)
            return &obj->via.map.ptr [i].val;
    }
    return NULL;
}

int
fs_envelope_decode (const void *data, size_t len, size_t max_len, fs_envelope_t *env,
                    fs_proto_error_t *err)
{
    assert (env);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    memset (env, 0, sizeof *env);
    s_error (err, FS_PROTO_OK, "", "%s", "");
    if (len > max_len)
        return s_error (err, FS_PROTO_TOO_LARGE, "",
                        "envelope of %zu bytes is over the limit of %zu", len, max_len);
    msgpack_unpacked unpacked;
    const msgpack_object *obj = &unpacked.data;
    int rc = fs_proto_unpack (data, len, &unpacked, err);
    if (rc)
        goto done;
    if (obj->type != MSGPACK_OBJECT_MAP) {
        rc = s_error (err, FS_PROTO_MALFORMED, "", "expected a map at the top level");
        goto done;
    }
    //  The version first: another version may lay out every other field differently
    const msgpack_object *v = s_map_get (obj, "v");
    if (v && ((v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 != FS_ENVELOPE_VERSION)
          ||  v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        rc = s_error (err, FS_PROTO_UNSUPPORTED_VERSION, "v",
                      "v: this build speaks envelope version %d only", FS_ENVELOPE_VERSION);
        goto done;
    }
    rc = fs_proto_decode_object (&fs_envelope_wire_type, obj, &env->hdr, "", err);
    if (rc)
        goto done;
    env->ptype = fs_proto_lookup (env->hdr.type);
    if (!env->ptype) {
        rc = s_error (err, FS_PROTO_UNKNOWN_TYPE, "type",
                      "type: \"%.64s\" is not in the catalogue", env->hdr.type);
        goto done;
    }
    env->payload = calloc (1, env->ptype->size);
    if (!env->payload) {
        rc = s_error (err, FS_PROTO_TOO_LARGE, "payload", "payload: out of memory");
        goto done;
    }
    const msgpack_object *payload = s_map_get (obj, "payload");
    assert (payload);           //  required, so decode_object has seen it
    rc = fs_proto_decode_object (env->ptype, payload, env->payload, "payload", err);
done:
    msgpack_unpacked_destroy (&unpacked);
    if (rc)
        fs_envelope_clear (env);
    return rc;
}

void
fs_envelope_clear (fs_envelope_t *env)
{
    if (!env)
        return;
    fs_proto_clear (&fs_envelope_wire_type, &env->hdr);
    if (env->payload && env->ptype)
        fs_proto_clear (env->ptype, env->payload);
    free (env->payload);
    memset (env, 0, sizeof *env);
}
