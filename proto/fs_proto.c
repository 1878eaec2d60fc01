/*  fs_proto - the one generic codec: every definition in messages.def goes through here.

    Decoding is three steps, so hostile bytes never reach an allocator unchecked:
    fs_proto_scan walks the raw bytes (bounded, no allocation), msgpack-c unpacks, and the
    descriptor walk copies each known field into the struct, checking kind and bounds.
    Unknown keys are ignored on purpose: a sender one version ahead may add fields and an
    older receiver still understands the rest. Validation after decoding and before
    encoding share the same checks (s_check_*), so both directions agree on what is valid. */
#include "finestra.h"

//  The scanner keeps one counter per open container; deeper requests are clamped.
#define S_SCAN_STACK        256
//  Longest item of an FS_T_STRLIST, in bytes.
#define S_STRLIST_ITEM_MAX  256

static const char *const s_code_names [] = {
    "ok", "malformed", "unsupported_version", "missing_field",
    "invalid_field", "unknown_type", "too_large", "too_deep"
};

const char *
fs_proto_code_name (fs_proto_code_t code)
{
    if ((size_t) code < sizeof s_code_names / sizeof s_code_names [0])
        return s_code_names [code];
    return "unknown";
}

//  --------------------------------------------------------------------------
//  Errors: the message always starts with the field's path, when there is one.

static void
s_ok (fs_proto_error_t *err)
{
    err->code = FS_PROTO_OK;
    err->field [0] = 0;
    err->message [0] = 0;
}

//  snprintf through a va_list: cutting long paths short is intended here.
static void
s_format (char *out, size_t size, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_format (char *out, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (out, size, format, args);
    va_end (args);
}

static int
s_fail (fs_proto_error_t *err, fs_proto_code_t code, const char *field,
        const char *format, ...) __attribute__ ((format (printf, 4, 5)));

static int
s_fail (fs_proto_error_t *err, fs_proto_code_t code, const char *field,
        const char *format, ...)
{
    char text [sizeof err->message];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    err->code = code;
    s_format (err->field, sizeof err->field, "%s", field? field: "");
    if (err->field [0])
        s_format (err->message, sizeof err->message, "%s: %s", err->field, text);
    else
        s_format (err->message, sizeof err->message, "%s", text);
    return code;
}

//  "path.name", or name at the top, cut short to size. Runs for every field decoded and
//  validated (intake: each event, twice), so no printf: that was ~10% of intake's CPU
static void
s_path (char *out, size_t size, const char *path, const char *name)
{
    assert (size > 0);
    size_t len = 0;
    if (path && *path) {
        for (; *path && len < size - 1; path++)
            out [len++] = *path;
        if (len < size - 1)
            out [len++] = '.';
    }
    for (; *name && len < size - 1; name++)
        out [len++] = *name;
    out [len] = 0;
}

static void
s_path_index (char *out, size_t size, const char *path, size_t index)
{
    s_format (out, size, "%s[%zu]", path, index);
}

//  --------------------------------------------------------------------------
//  fs_proto_scan

static uint64_t
s_be (const uint8_t *p, size_t n)
{
    uint64_t value = 0;
    for (size_t i = 0; i < n; i++)
        value = (value << 8) | p [i];
    return value;
}

int
fs_proto_scan (const void *data, size_t len, int max_depth, fs_proto_error_t *err)
{
    fs_proto_error_t local;
    if (!err)
        err = &local;
    s_ok (err);
    if (!data || len == 0)
        return s_fail (err, FS_PROTO_MALFORMED, "", "empty input");
    if (max_depth < 0)
        max_depth = 0;
    if (max_depth > S_SCAN_STACK)
        max_depth = S_SCAN_STACK;

    const uint8_t *p = (const uint8_t *) data;
    size_t left [S_SCAN_STACK];         //  elements still expected, per open container
    int depth = 0;
    size_t pos = 0;
    for (;;) {
        if (pos >= len)
            return s_fail (err, FS_PROTO_MALFORMED, "",
                           "truncated: input ends inside a value (%zu bytes)", len);
        size_t at = pos;
        uint8_t b = p [pos++];
        size_t hdr = 0;                 //  bytes of the length field after the type byte
        size_t extra = 0;               //  fixed bytes after the length field (ext type)
        size_t body = 0;                //  payload bytes, when not a container
        int per_item = 0;               //  1 array, 2 map (key and value); 0 not a container
        uint64_t count = 0;

        if (b <= 0x7f || b >= 0xe0)
            ;                                   //  fixint
        else
        if (b <= 0x8f) {
            per_item = 2;
            count = b & 0x0f;
        }
        else
        if (b <= 0x9f) {
            per_item = 1;
            count = b & 0x0f;
        }
        else
        if (b <= 0xbf)
            body = b & 0x1f;                    //  fixstr
        else
        switch (b) {
            case 0xc0: case 0xc2: case 0xc3:    //  nil, false, true
                break;
            case 0xc4: case 0xd9: hdr = 1; break;   //  bin8, str8
            case 0xc5: case 0xda: hdr = 2; break;   //  bin16, str16
            case 0xc6: case 0xdb: hdr = 4; break;   //  bin32, str32
            case 0xc7: hdr = 1; extra = 1; break;   //  ext8
            case 0xc8: hdr = 2; extra = 1; break;   //  ext16
            case 0xc9: hdr = 4; extra = 1; break;   //  ext32
            case 0xca: body = 4; break;             //  float32
            case 0xcb: body = 8; break;             //  float64
            case 0xcc: case 0xd0: body = 1; break;  //  uint8, int8
            case 0xcd: case 0xd1: body = 2; break;
            case 0xce: case 0xd2: body = 4; break;
            case 0xcf: case 0xd3: body = 8; break;
            case 0xd4: body = 2; break;             //  fixext1: type + 1
            case 0xd5: body = 3; break;
            case 0xd6: body = 5; break;
            case 0xd7: body = 9; break;
            case 0xd8: body = 17; break;
            case 0xdc: hdr = 2; per_item = 1; break;    //  array16
            case 0xdd: hdr = 4; per_item = 1; break;    //  array32
            case 0xde: hdr = 2; per_item = 2; break;    //  map16
            case 0xdf: hdr = 4; per_item = 2; break;    //  map32
            default:                                    //  0xc1, never used
                return s_fail (err, FS_PROTO_MALFORMED, "",
                               "not msgpack: byte 0x%02x at offset %zu", b, at);
        }
        if (hdr) {
            if (len - pos < hdr)
                return s_fail (err, FS_PROTO_MALFORMED, "",
                               "truncated: length field at offset %zu", at);
            uint64_t declared = s_be (p + pos, hdr);
            pos += hdr;
            if (per_item)
                count = declared;
            else
                body = (size_t) declared + extra;
        }
        if (per_item) {
            //  Every element takes at least one byte, so a count larger than the
            //  bytes left is a lie, refused before anyone sizes an array by it
            uint64_t elements = count * (uint64_t) per_item;
            if (elements > len - pos)
                return s_fail (err, FS_PROTO_MALFORMED, "",
                               "not msgpack: container at offset %zu declares %llu elements "
                               "but only %zu bytes follow", at,
                               (unsigned long long) count, len - pos);
            if (depth + 1 > max_depth)
                return s_fail (err, FS_PROTO_TOO_DEEP, "",
                               "nested deeper than %d levels", max_depth);
            if (elements > 0) {
                left [depth++] = (size_t) elements;
                continue;
            }
        }
        else {
            if (body > len - pos)
                return s_fail (err, FS_PROTO_MALFORMED, "",
                               "truncated: value at offset %zu declares %zu bytes, %zu follow",
                               at, body, len - pos);
            pos += body;
        }
        //  One value is complete: close every container it completes
        while (depth > 0 && --left [depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    if (pos != len)
        return s_fail (err, FS_PROTO_MALFORMED, "",
                       "trailing bytes: %zu after the value", len - pos);
    return 0;
}

//  --------------------------------------------------------------------------
//  Checks shared by decode and validate

static bool
s_is_string_kind (fs_ftype_t kind)
{
    return kind == FS_T_STR || kind == FS_T_ENUM || kind == FS_T_TIME
        || kind == FS_T_DATE || kind == FS_T_UUID;
}

//  Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
static bool
s_utf8_valid (const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s [i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1f;
        }
        else
        if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0f;
        }
        else
        if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07;
        }
        else
            return false;
        if (len - i - 1 < more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s [i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s [i + k] & 0x3f);
        }
        if (more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
            return false;
        if (more == 3 && (cp < 0x10000 || cp > 0x10ffff))
            return false;
        i += more + 1;
    }
    return true;
}

static bool
s_enum_match (const char *choices, const char *s, size_t len)
{
    const char *choice = choices;
    while (choice && *choice) {
        const char *bar = strchr (choice, '|');
        size_t clen = bar? (size_t) (bar - choice): strlen (choice);
        if (clen == len && memcmp (choice, s, len) == 0)
            return true;
        choice = bar? bar + 1: NULL;
    }
    return false;
}

static bool
s_is_hex (char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
s_uuid_valid (const char *s, size_t len)
{
    if (len != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s [i] != '-')
                return false;
        }
        else
        if (!s_is_hex (s [i]))
            return false;
    }
    return true;
}

//  YYYY-MM-DD in shape only; the calendar check is fs_rfc3339_parse's.
static bool
s_date_shape (const char *s, size_t len)
{
    if (len != 10 || s [4] != '-' || s [7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s [i] < '0' || s [i] > '9'))
            return false;
    return true;
}

//  Whether a kind's (min, max) pair bounds anything: (0, 0) means unbounded.
static bool
s_bounded (const fs_field_t *f)
{
    return f->min != 0 || f->max != 0;
}

//  A readable list of an enum's choices: "a, b or c".
static void
s_choices_text (const char *choices, char *out, size_t size)
{
    size_t pos = 0;
    const char *c = choices? choices: "";
    for (; *c && pos + 1 < size; c++) {
        if (*c == '|') {
            if (pos + 2 >= size)
                break;
            out [pos++] = ',';
            out [pos++] = ' ';
        }
        else
            out [pos++] = *c;
    }
    out [pos] = 0;
}

//  s is NUL-terminated, len == strlen (s).
static int
s_check_str (const fs_field_t *f, const char *s, size_t len, const char *path,
             fs_proto_error_t *err)
{
    if (!s_utf8_valid ((const uint8_t *) s, len))
        return s_fail (err, FS_PROTO_INVALID_FIELD, path, "must be valid UTF-8");
    switch (f->kind) {
        case FS_T_STR:
            if (s_bounded (f) && ((int64_t) len < f->min || (int64_t) len > f->max)) {
                if (f->min == f->max)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, path,
                                   "must be exactly %lld bytes long", (long long) f->min);
                if (len == 0)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, path, "must not be empty");
                return s_fail (err, FS_PROTO_INVALID_FIELD, path,
                               "must be between %lld and %lld bytes long",
                               (long long) f->min, (long long) f->max);
            }
            return 0;
        case FS_T_ENUM:
            if (!s_enum_match (f->choices, s, len)) {
                char choices [200];
                s_choices_text (f->choices, choices, sizeof choices);
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "must be one of: %s", choices);
            }
            return 0;
        case FS_T_TIME:
            if (len > 64 || fs_rfc3339_parse (s, NULL) != 0)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path,
                               "expected an RFC 3339 time, e.g. 2026-11-22T07:32:36Z");
            return 0;
        case FS_T_DATE: {
            if (!s_date_shape (s, len))
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "expected a date YYYY-MM-DD");
            char stamp [32];
            snprintf (stamp, sizeof stamp, "%.10sT00:00:00Z", s);
            if (fs_rfc3339_parse (stamp, NULL) != 0)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path,
                               "%.10s is not a calendar date", s);
            return 0;
        }
        case FS_T_UUID:
            if (!s_uuid_valid (s, len))
                return s_fail (err, FS_PROTO_INVALID_FIELD, path,
                               "expected a UUID (8-4-4-4-12 hex digits)");
            return 0;
        default:
            return s_fail (err, FS_PROTO_INVALID_FIELD, path, "is not a string field");
    }
}

static int
s_check_int (const fs_field_t *f, int64_t value, const char *path, fs_proto_error_t *err)
{
    if (s_bounded (f) && (value < f->min || value > f->max))
        return s_fail (err, FS_PROTO_INVALID_FIELD, path, "must be between %lld and %lld",
                       (long long) f->min, (long long) f->max);
    return 0;
}

static int
s_check_count (const fs_field_t *f, size_t n, const char *path, fs_proto_error_t *err)
{
    if (s_bounded (f) && ((uint64_t) n < (uint64_t) f->min || (uint64_t) n > (uint64_t) f->max))
        return s_fail (err, FS_PROTO_INVALID_FIELD, path, "must have between %lld and %lld items",
                       (long long) f->min, (long long) f->max);
    return 0;
}

static int
s_check_item (const char *s, size_t len, const char *path, fs_proto_error_t *err)
{
    if (len < 1 || len > S_STRLIST_ITEM_MAX || !s_utf8_valid ((const uint8_t *) s, len))
        return s_fail (err, FS_PROTO_INVALID_FIELD, path,
                       "must be 1 to %d bytes of UTF-8", S_STRLIST_ITEM_MAX);
    return 0;
}

//  What a field of this kind should have been, for "wrong type" errors.
static const char *
s_expected (const fs_field_t *f)
{
    switch (f->kind) {
        case FS_T_STR:     return "expected a string";
        case FS_T_ENUM:    return "expected a string (one of the allowed values)";
        case FS_T_TIME:    return "expected an RFC 3339 time, e.g. 2026-11-22T07:32:36Z";
        case FS_T_DATE:    return "expected a date YYYY-MM-DD";
        case FS_T_UUID:    return "expected a UUID (8-4-4-4-12 hex digits)";
        case FS_T_INT:     return "expected an integer";
        case FS_T_BOOL:    return "expected true or false";
        case FS_T_MAP:     return "expected a map";
        case FS_T_STRLIST: return "expected a list of strings";
        case FS_T_MAPLIST: return "expected a list of maps";
        case FS_T_RAW:     return "expected a value";
    }
    return "unexpected type";
}

//  --------------------------------------------------------------------------
//  Decode

static int
s_decode_map (const fs_type_t *t, const msgpack_object *obj, void *out, const char *path,
              fs_proto_error_t *err);

static int
s_find_field (const fs_type_t *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->nfields; i++)
        if (strlen (t->fields [i].name) == len && memcmp (t->fields [i].name, name, len) == 0)
            return (int) i;
    return -1;
}

//  A msgpack str copied out as a C string; NULL and *rc set on error.
static char *
s_dup_str (const msgpack_object *o, const char *path, fs_proto_error_t *err, int *rc)
{
    if (memchr (o->via.str.ptr, 0, o->via.str.size)) {
        *rc = s_fail (err, FS_PROTO_INVALID_FIELD, path, "must not contain a NUL byte");
        return NULL;
    }
    char *s = (char *) malloc (o->via.str.size + 1);
    if (!s) {
        *rc = s_fail (err, FS_PROTO_TOO_LARGE, path, "out of memory");
        return NULL;
    }
    if (o->via.str.size)
        memcpy (s, o->via.str.ptr, o->via.str.size);
    s [o->via.str.size] = 0;
    *rc = 0;
    return s;
}

static int
s_decode_value (const fs_field_t *f, const msgpack_object *o, void *member, const char *path,
                fs_proto_error_t *err)
{
    int rc = 0;
    switch (f->kind) {
        case FS_T_STR: case FS_T_ENUM: case FS_T_TIME: case FS_T_DATE: case FS_T_UUID: {
            if (o->type != MSGPACK_OBJECT_STR)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "%s", s_expected (f));
            char **slot = (char **) member;
            *slot = s_dup_str (o, path, err, &rc);
            if (rc)
                return rc;
            return s_check_str (f, *slot, o->via.str.size, path, err);
        }
        case FS_T_INT: {
            int64_t value;
            if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                if (o->via.u64 > (uint64_t) INT64_MAX)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, path, "is too large");
                value = (int64_t) o->via.u64;
            }
            else
            if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                value = o->via.i64;
            else
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "%s", s_expected (f));
            *(int64_t *) member = value;
            return s_check_int (f, value, path, err);
        }
        case FS_T_BOOL:
            if (o->type != MSGPACK_OBJECT_BOOLEAN)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "%s", s_expected (f));
            *(bool *) member = o->via.boolean;
            return 0;
        case FS_T_MAP:
            if (o->type != MSGPACK_OBJECT_MAP)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "%s", s_expected (f));
            return s_decode_map (f->sub, o, member, path, err);
        case FS_T_STRLIST: {
            if (o->type != MSGPACK_OBJECT_ARRAY)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "%s", s_expected (f));
            size_t n = o->via.array.size;
            if ((rc = s_check_count (f, n, path, err)))
                return rc;
            fs_strlist_t *list = (fs_strlist_t *) member;
            if (n == 0)
                return 0;
            list->items = (char **) calloc (n, sizeof (char *));
            if (!list->items)
                return s_fail (err, FS_PROTO_TOO_LARGE, path, "out of memory");
            list->n = n;
            for (size_t i = 0; i < n; i++) {
                char ipath [sizeof err->field];
                s_path_index (ipath, sizeof ipath, path, i);
                const msgpack_object *item = &o->via.array.ptr [i];
                if (item->type != MSGPACK_OBJECT_STR)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, ipath, "expected a string");
                list->items [i] = s_dup_str (item, ipath, err, &rc);
                if (rc)
                    return rc;
                if ((rc = s_check_item (list->items [i], item->via.str.size, ipath, err)))
                    return rc;
            }
            return 0;
        }
        case FS_T_MAPLIST: {
            if (o->type != MSGPACK_OBJECT_ARRAY)
                return s_fail (err, FS_PROTO_INVALID_FIELD, path, "%s", s_expected (f));
            size_t n = o->via.array.size;
            if ((rc = s_check_count (f, n, path, err)))
                return rc;
            fs_maplist_t *list = (fs_maplist_t *) member;
            if (n == 0)
                return 0;
            list->items = calloc (n, f->sub->size);
            if (!list->items)
                return s_fail (err, FS_PROTO_TOO_LARGE, path, "out of memory");
            list->n = n;
            for (size_t i = 0; i < n; i++) {
                char ipath [sizeof err->field];
                s_path_index (ipath, sizeof ipath, path, i);
                const msgpack_object *item = &o->via.array.ptr [i];
                if (item->type != MSGPACK_OBJECT_MAP)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, ipath, "expected a map");
                void *slot = (char *) list->items + i * f->sub->size;
                if ((rc = s_decode_map (f->sub, item, slot, ipath, err)))
                    return rc;
            }
            return 0;
        }
        case FS_T_RAW: {
            //  Kept as its own bytes: whoever knows its shape decodes it later
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init (&sbuf);
            msgpack_packer pk;
            msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
            if (msgpack_pack_object (&pk, *o) != 0 || !sbuf.data) {
                msgpack_sbuffer_destroy (&sbuf);
                return s_fail (err, FS_PROTO_TOO_LARGE, path, "out of memory");
            }
            fs_raw_t *raw = (fs_raw_t *) member;
            raw->len = sbuf.size;
            raw->data = msgpack_sbuffer_release (&sbuf);
            return 0;
        }
    }
    return s_fail (err, FS_PROTO_INVALID_FIELD, path, "unknown field kind");
}

//  obj is a map. On error returns the code and leaves what it allocated in out,
//  for the caller's one cleanup (fs_proto_clear on the top-level struct).
static int
s_decode_map (const fs_type_t *t, const msgpack_object *obj, void *out, const char *path,
              fs_proto_error_t *err)
{
    uint64_t *present = (uint64_t *) out;
    char fpath [sizeof err->field];
    uint64_t seen = 0;                  //  keys given, nil or not
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object_kv *kv = &obj->via.map.ptr [i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            if (path [0] == 0)
                return s_fail (err, FS_PROTO_MALFORMED, "", "map keys must be strings");
            return s_fail (err, FS_PROTO_INVALID_FIELD, path, "map keys must be strings");
        }
        int index = s_find_field (t, kv->key.via.str.ptr, kv->key.via.str.size);
        if (index < 0)
            continue;                   //  unknown key: ignored (forward compatibility)
        const fs_field_t *f = &t->fields [index];
        s_path (fpath, sizeof fpath, path, f->name);
        if ((seen >> index) & 1u)
            return s_fail (err, FS_PROTO_INVALID_FIELD, fpath, "given more than once");
        seen |= (uint64_t) 1 << index;
        //  nil is how Python's None and JavaScript's null arrive: "no value", so an
        //  optional field is absent and a required one missing
        if (kv->val.type == MSGPACK_OBJECT_NIL) {
            if (f->required)
                return s_fail (err, FS_PROTO_MISSING_FIELD, fpath, "is required (nil given)");
            continue;
        }
        *present |= (uint64_t) 1 << index;
        int rc = s_decode_value (f, &kv->val, (char *) out + f->offset, fpath, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < t->nfields; i++)
        if (t->fields [i].required && !((*present >> i) & 1u)) {
            s_path (fpath, sizeof fpath, path, t->fields [i].name);
            return s_fail (err, FS_PROTO_MISSING_FIELD, fpath, "is required");
        }
    return 0;
}

int
fs_proto_decode_object (const fs_type_t *t, const msgpack_object *obj, void *out,
                        const char *path, fs_proto_error_t *err)
{
    assert (t);
    assert (obj);
    assert (out);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    s_ok (err);
    if (!path)
        path = "";
    memset (out, 0, t->size);
    if (obj->type != MSGPACK_OBJECT_MAP) {
        if (path [0] == 0)
            return s_fail (err, FS_PROTO_MALFORMED, "", "expected a map at the top level");
        return s_fail (err, FS_PROTO_INVALID_FIELD, path, "expected a map");
    }
    int rc = s_decode_map (t, obj, out, path, err);
    if (rc)
        fs_proto_clear (t, out);
    return rc;
}

int
fs_proto_unpack (const void *data, size_t len, msgpack_unpacked *unpacked, fs_proto_error_t *err)
{
    assert (unpacked);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    msgpack_unpacked_init (unpacked);
    int rc = fs_proto_scan (data, len, FS_PROTO_MAX_DEPTH, err);
    if (rc)
        return rc;
    size_t offset = 0;
    msgpack_unpack_return ret = msgpack_unpack_next (unpacked, (const char *) data, len, &offset);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return s_fail (err, FS_PROTO_TOO_LARGE, "", "out of memory");
    if (ret != MSGPACK_UNPACK_SUCCESS || offset != len)
        return s_fail (err, FS_PROTO_MALFORMED, "", "not msgpack");
    return 0;
}

int
fs_proto_decode (const fs_type_t *t, const void *data, size_t len, void *out,
                 fs_proto_error_t *err)
{
    assert (t);
    assert (out);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    memset (out, 0, t->size);
    msgpack_unpacked unpacked;
    int rc = fs_proto_unpack (data, len, &unpacked, err);
    if (rc == 0)
        rc = fs_proto_decode_object (t, &unpacked.data, out, "", err);
    msgpack_unpacked_destroy (&unpacked);
    return rc;
}

//  --------------------------------------------------------------------------
//  Validate

//  depth: containers already open around msg's map, counting the map itself.
static int
s_validate_map (const fs_type_t *t, const void *msg, const char *path, int depth,
                fs_proto_error_t *err)
{
    uint64_t present = *(const uint64_t *) msg;
    char fpath [sizeof err->field];
    for (size_t i = 0; i < t->nfields; i++) {
        const fs_field_t *f = &t->fields [i];
        s_path (fpath, sizeof fpath, path, f->name);
        if (!((present >> i) & 1u)) {
            if (f->required)
                return s_fail (err, FS_PROTO_MISSING_FIELD, fpath, "is required");
            continue;
        }
        const void *member = (const char *) msg + f->offset;
        int rc = 0;
        switch (f->kind) {
            case FS_T_STR: case FS_T_ENUM: case FS_T_TIME: case FS_T_DATE: case FS_T_UUID: {
                const char *s = *(char *const *) member;
                if (!s)
                    return s_fail (err, FS_PROTO_MISSING_FIELD, fpath, "is marked present but NULL");
                rc = s_check_str (f, s, strlen (s), fpath, err);
                break;
            }
            case FS_T_INT:
                rc = s_check_int (f, *(const int64_t *) member, fpath, err);
                break;
            case FS_T_BOOL:
                break;
            case FS_T_MAP:
                rc = s_validate_map (f->sub, member, fpath, depth + 1, err);
                break;
            case FS_T_STRLIST: {
                const fs_strlist_t *list = (const fs_strlist_t *) member;
                if ((rc = s_check_count (f, list->n, fpath, err)))
                    break;
                if (list->n && !list->items)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, fpath, "has items but no array");
                for (size_t k = 0; k < list->n && rc == 0; k++) {
                    char ipath [sizeof err->field];
                    s_path_index (ipath, sizeof ipath, fpath, k);
                    const char *item = list->items [k];
                    if (!item)
                        return s_fail (err, FS_PROTO_INVALID_FIELD, ipath, "is NULL");
                    rc = s_check_item (item, strlen (item), ipath, err);
                }
                break;
            }
            case FS_T_MAPLIST: {
                const fs_maplist_t *list = (const fs_maplist_t *) member;
                if ((rc = s_check_count (f, list->n, fpath, err)))
                    break;
                if (list->n && !list->items)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, fpath, "has items but no array");
                for (size_t k = 0; k < list->n && rc == 0; k++) {
                    char ipath [sizeof err->field];
                    s_path_index (ipath, sizeof ipath, fpath, k);
                    rc = s_validate_map (f->sub, (const char *) list->items + k * f->sub->size,
                                         ipath, depth + 2, err);
                }
                break;
            }
            case FS_T_RAW: {
                const fs_raw_t *raw = (const fs_raw_t *) member;
                if (!raw->data || raw->len == 0)
                    return s_fail (err, FS_PROTO_MISSING_FIELD, fpath, "is marked present but empty");
                //  Exactly one msgpack value, shallow enough that the whole message
                //  still passes the receiver's depth limit
                fs_proto_error_t inner;
                int room = FS_PROTO_MAX_DEPTH - depth;
                if (fs_proto_scan (raw->data, raw->len, room < 0? 0: room, &inner) != 0)
                    return s_fail (err, FS_PROTO_INVALID_FIELD, fpath, "%s", inner.message);
                break;
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

int
fs_proto_validate (const fs_type_t *t, const void *msg, fs_proto_error_t *err)
{
    assert (t);
    assert (msg);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    s_ok (err);
    return s_validate_map (t, msg, "", 1, err);
}

//  --------------------------------------------------------------------------
//  Pack and encode

static int
s_pack_str (msgpack_packer *pk, const char *s)
{
    if (!s)
        return msgpack_pack_nil (pk);      //  only reachable when validate was skipped
    size_t len = strlen (s);
    int rc = msgpack_pack_str (pk, len);
    return rc? rc: msgpack_pack_str_body (pk, s, len);
}

static int
s_pack_map (const fs_type_t *t, const void *msg, msgpack_packer *pk)
{
    uint64_t present = *(const uint64_t *) msg;
    size_t count = 0;
    for (size_t i = 0; i < t->nfields; i++)
        count += (present >> i) & 1u;
    int rc = msgpack_pack_map (pk, count);
    for (size_t i = 0; i < t->nfields && rc == 0; i++) {
        if (!((present >> i) & 1u))
            continue;
        const fs_field_t *f = &t->fields [i];
        const void *member = (const char *) msg + f->offset;
        rc = s_pack_str (pk, f->name);
        if (rc)
            break;
        switch (f->kind) {
            case FS_T_STR: case FS_T_ENUM: case FS_T_TIME: case FS_T_DATE: case FS_T_UUID:
                rc = s_pack_str (pk, *(char *const *) member);
                break;
            case FS_T_INT:
                rc = msgpack_pack_int64 (pk, *(const int64_t *) member);
                break;
            case FS_T_BOOL:
                rc = *(const bool *) member? msgpack_pack_true (pk): msgpack_pack_false (pk);
                break;
            case FS_T_MAP:
                rc = s_pack_map (f->sub, member, pk);
                break;
            case FS_T_STRLIST: {
                const fs_strlist_t *list = (const fs_strlist_t *) member;
                rc = msgpack_pack_array (pk, list->n);
                for (size_t k = 0; k < list->n && rc == 0; k++)
                    rc = s_pack_str (pk, list->items [k]);
                break;
            }
            case FS_T_MAPLIST: {
                const fs_maplist_t *list = (const fs_maplist_t *) member;
                rc = msgpack_pack_array (pk, list->n);
                for (size_t k = 0; k < list->n && rc == 0; k++)
                    rc = s_pack_map (f->sub, (const char *) list->items + k * f->sub->size, pk);
                break;
            }
            case FS_T_RAW: {
                const fs_raw_t *raw = (const fs_raw_t *) member;
                if (raw->data && raw->len)
                    //  Already msgpack: appended verbatim (bin_body adds no header)
                    rc = msgpack_pack_bin_body (pk, raw->data, raw->len);
                else
                    rc = msgpack_pack_nil (pk);
                break;
            }
        }
    }
    return rc;
}

void
fs_proto_pack (const fs_type_t *t, const void *msg, msgpack_packer *pk)
{
    assert (t);
    assert (msg);
    assert (pk);
    s_pack_map (t, msg, pk);
}

int
fs_proto_encode (const fs_type_t *t, const void *msg, char **data, size_t *len,
                 fs_proto_error_t *err)
{
    assert (data);
    assert (len);
    fs_proto_error_t local;
    if (!err)
        err = &local;
    *data = NULL;
    *len = 0;
    int rc = fs_proto_validate (t, msg, err);
    if (rc)
        return rc;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (s_pack_map (t, msg, &pk) != 0 || !sbuf.data) {
        msgpack_sbuffer_destroy (&sbuf);
        return s_fail (err, FS_PROTO_TOO_LARGE, "", "out of memory");
    }
    *len = sbuf.size;
    *data = msgpack_sbuffer_release (&sbuf);
    return 0;
}

//  --------------------------------------------------------------------------
//  Clear: frees by pointer, not by `present`, so half-decoded structs are freed too

static void
s_clear_members (const fs_type_t *t, void *msg)
{
    for (size_t i = 0; i < t->nfields; i++) {
        const fs_field_t *f = &t->fields [i];
        void *member = (char *) msg + f->offset;
        switch (f->kind) {
            case FS_T_STR: case FS_T_ENUM: case FS_T_TIME: case FS_T_DATE: case FS_T_UUID:
                fs_free (member);
                break;
            case FS_T_INT: case FS_T_BOOL:
                break;
            case FS_T_MAP:
                s_clear_members (f->sub, member);
                break;
            case FS_T_STRLIST: {
                fs_strlist_t *list = (fs_strlist_t *) member;
                for (size_t k = 0; list->items && k < list->n; k++)
                    free (list->items [k]);
                fs_free (&list->items);
                break;
            }
            case FS_T_MAPLIST: {
                fs_maplist_t *list = (fs_maplist_t *) member;
                for (size_t k = 0; list->items && k < list->n; k++)
                    s_clear_members (f->sub, (char *) list->items + k * f->sub->size);
                fs_free (&list->items);
                break;
            }
            case FS_T_RAW:
                fs_free (&((fs_raw_t *) member)->data);
                break;
        }
    }
}

void
fs_proto_clear (const fs_type_t *t, void *msg)
{
    assert (t);
    if (!msg)
        return;
    s_clear_members (t, msg);
    memset (msg, 0, t->size);
}

//  --------------------------------------------------------------------------
//  Setters and look-ups

//  A wrong name or kind in a setter is a programmer error; it stops the process even
//  where NDEBUG removes assertions, because writing to a guessed member would be worse.
static const fs_field_t *
s_field_for_set (const fs_type_t *t, const char *field, int *index, bool want_string,
                 fs_ftype_t kind)
{
    *index = fs_proto_field_index (t, field);
    const fs_field_t *f = *index >= 0? &t->fields [*index]: NULL;
    if (!f || (want_string? !s_is_string_kind (f->kind): f->kind != kind)) {
        fprintf (stderr, "fs_proto: %s has no %s field named '%s'\n",
                 t? t->name: "(null)", want_string? "string": "such", field? field: "(null)");
        abort ();
    }
    return f;
}

void
fs_proto_set_str (const fs_type_t *t, void *msg, const char *field, const char *value)
{
    int index;
    const fs_field_t *f = s_field_for_set (t, field, &index, true, FS_T_STR);
    char **slot = (char **) ((char *) msg + f->offset);
    free (*slot);
    *slot = fs_strdup (value);
    uint64_t *present = (uint64_t *) msg;
    //  NULL unsets the field; a failed copy stays present and NULL, which validate refuses
    if (value)
        *present |= (uint64_t) 1 << index;
    else
        *present &= ~((uint64_t) 1 << index);
}

void
fs_proto_set_int (const fs_type_t *t, void *msg, const char *field, int64_t value)
{
    int index;
    const fs_field_t *f = s_field_for_set (t, field, &index, false, FS_T_INT);
    *(int64_t *) ((char *) msg + f->offset) = value;
    *(uint64_t *) msg |= (uint64_t) 1 << index;
}

void
fs_proto_set_bool (const fs_type_t *t, void *msg, const char *field, bool value)
{
    int index;
    const fs_field_t *f = s_field_for_set (t, field, &index, false, FS_T_BOOL);
    *(bool *) ((char *) msg + f->offset) = value;
    *(uint64_t *) msg |= (uint64_t) 1 << index;
}

int
fs_proto_field_index (const fs_type_t *t, const char *field)
{
    if (!t || !field)
        return -1;
    for (size_t i = 0; i < t->nfields; i++)
        if (streq (t->fields [i].name, field))
            return (int) i;
    return -1;
}

const fs_type_t *
fs_proto_lookup (const char *wire)
{
    if (!wire)
        return NULL;
    for (size_t i = 0; fs_proto_messages [i]; i++)
        if (streq (fs_proto_messages [i]->wire, wire))
            return fs_proto_messages [i];
    return NULL;
}
