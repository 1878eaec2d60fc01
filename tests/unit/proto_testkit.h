/*  proto_testkit.h - test helpers for the proto tests: valid samples of any definition,
    deep comparison, and edits of encoded messages. Included by test_fs_proto.c and
    test_fs_envelope.c only (static functions, one copy per test binary). */
#ifndef PROTO_TESTKIT_H_INCLUDED
#define PROTO_TESTKIT_H_INCLUDED

#include "finestra.h"
#include <criterion/criterion.h>

//  Every definition in messages.def, messages and nested structs alike.
#define FS_STRUCT(name, doc)             &name##_type,
#define FS_MESSAGE(name, wire, doc)      &name##_type,
#define FS_FIELD(st, f, kind, req, min, max, choices, doc)
#define FS_FIELD_MAP(st, f, req, sub, doc)
#define FS_FIELD_MAPLIST(st, f, req, min, max, sub, doc)
#define FS_END(name)
static const fs_type_t *const tk_all_types [] = {
#include "messages.def"
    NULL
};
#undef FS_STRUCT
#undef FS_MESSAGE
#undef FS_FIELD
#undef FS_FIELD_MAP
#undef FS_FIELD_MAPLIST
#undef FS_END

typedef enum {
    TK_MIN,                     //  required fields only, every bound at its low end
    TK_MAX                      //  every field, every bound at its high end
} tk_variant_t;

static inline bool
tk_is_string_kind (fs_ftype_t kind)
{
    return kind == FS_T_STR || kind == FS_T_ENUM || kind == FS_T_TIME
        || kind == FS_T_DATE || kind == FS_T_UUID;
}

//  A malloc'd string of exactly len bytes of valid UTF-8 (starts with "é" when it fits).
static inline char *
tk_text (size_t len, bool multibyte)
{
    char *s = (char *) malloc (len + 1);
    cr_assert_not_null (s);
    for (size_t i = 0; i < len; i++)
        s [i] = (char) ('a' + i % 26);
    if (multibyte && len >= 2) {
        s [0] = (char) 0xc3;
        s [1] = (char) 0xa9;
    }
    s [len] = 0;
    return s;
}

//  The first (or last) choice of an enum, malloc'd.
static inline char *
tk_choice (const char *choices, bool last)
{
    const char *start = choices;
    if (last) {
        const char *bar = strrchr (choices, '|');
        if (bar)
            start = bar + 1;
    }
    const char *end = strchr (start, '|');
    size_t len = end? (size_t) (end - start): strlen (start);
    char *s = (char *) malloc (len + 1);
    cr_assert_not_null (s);
    memcpy (s, start, len);
    s [len] = 0;
    return s;
}

//  A msgpack value for RAW fields: a small map, or one using every msgpack type.
static inline void
tk_raw (fs_raw_t *raw, tk_variant_t variant)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    if (variant == TK_MIN) {
        msgpack_pack_map (&pk, 1);
        msgpack_pack_str_with_body (&pk, "k", 1);
        msgpack_pack_int (&pk, 1);
    }
    else {
        msgpack_pack_map (&pk, 4);
        msgpack_pack_str_with_body (&pk, "a", 1);
        msgpack_pack_array (&pk, 7);
        msgpack_pack_int (&pk, 1);
        msgpack_pack_int (&pk, -2);
        msgpack_pack_double (&pk, 1.5);
        msgpack_pack_true (&pk);
        msgpack_pack_nil (&pk);
        msgpack_pack_str_with_body (&pk, "s", 1);
        msgpack_pack_uint64 (&pk, UINT64_MAX);
        msgpack_pack_str_with_body (&pk, "b", 1);
        msgpack_pack_bin_with_body (&pk, "\x00\x01", 2);
        msgpack_pack_str_with_body (&pk, "c", 1);
        msgpack_pack_ext_with_body (&pk, "xy", 2, 5);
        msgpack_pack_str_with_body (&pk, "d", 1);
        msgpack_pack_map (&pk, 1);
        msgpack_pack_str_with_body (&pk, "e", 1);
        msgpack_pack_float (&pk, 0.25f);
    }
    raw->len = sbuf.size;
    raw->data = msgpack_sbuffer_release (&sbuf);
}

//  Fills msg (zeroed) with a valid instance of t, from its descriptor alone.
static inline void
tk_fill (const fs_type_t *t, void *msg, tk_variant_t variant)
{
    uint64_t *present = (uint64_t *) msg;
    bool max = variant == TK_MAX;
    for (size_t i = 0; i < t->nfields; i++) {
        const fs_field_t *f = &t->fields [i];
        if (!f->required && !max)
            continue;
        void *member = (char *) msg + f->offset;
        bool bounded = f->min || f->max;
        switch (f->kind) {
            case FS_T_STR:
                *(char **) member = tk_text (max? (bounded? (size_t) f->max: 40)
                                                 : (size_t) f->min, max);
                break;
            case FS_T_ENUM:
                *(char **) member = tk_choice (f->choices, max);
                break;
            case FS_T_TIME:
                *(char **) member = strdup (max? "2026-11-22T08:32:36.123456789+01:00"
                                               : "2026-11-22T07:32:36.123Z");
                break;
            case FS_T_DATE:
                *(char **) member = strdup (max? "1999-12-31": "2024-02-29");
                break;
            case FS_T_UUID:
                *(char **) member = strdup (max? "0E9B1A3C-5D7F-4A2B-8C6D-1F3E5A7B9C0D"
                                               : "0e9b1a3c-5d7f-4a2b-8c6d-1f3e5a7b9c0d");
                break;
            case FS_T_INT:
                *(int64_t *) member = bounded? (max? f->max: f->min): (max? INT64_MAX: -5);
                break;
            case FS_T_BOOL:
                *(bool *) member = max;
                break;
            case FS_T_MAP:
                tk_fill (f->sub, member, variant);
                break;
            case FS_T_STRLIST: {
                fs_strlist_t *list = (fs_strlist_t *) member;
                list->n = bounded? (size_t) (max? f->max: f->min): (max? 3: 0);
                list->items = (char **) calloc (list->n? list->n: 1, sizeof (char *));
                cr_assert_not_null (list->items);
                for (size_t k = 0; k < list->n; k++)
                    list->items [k] = tk_text (max? 256: 1, max);
                break;
            }
            case FS_T_MAPLIST: {
                fs_maplist_t *list = (fs_maplist_t *) member;
                list->n = bounded? (size_t) (max? f->max: f->min): (max? 3: 0);
                list->items = calloc (list->n? list->n: 1, f->sub->size);
                cr_assert_not_null (list->items);
                for (size_t k = 0; k < list->n; k++)
                    tk_fill (f->sub, (char *) list->items + k * f->sub->size, variant);
                break;
            }
            case FS_T_RAW:
                tk_raw ((fs_raw_t *) member, variant);
                break;
        }
        *present |= (uint64_t) 1 << i;
    }
}

//  Deep equality of two structs of type t.
static inline bool
tk_equal (const fs_type_t *t, const void *a, const void *b)
{
    if (*(const uint64_t *) a != *(const uint64_t *) b)
        return false;
    for (size_t i = 0; i < t->nfields; i++) {
        const fs_field_t *f = &t->fields [i];
        if (!((*(const uint64_t *) a >> i) & 1u))
            continue;
        const char *ma = (const char *) a + f->offset;
        const char *mb = (const char *) b + f->offset;
        switch (f->kind) {
            case FS_T_STR: case FS_T_ENUM: case FS_T_TIME: case FS_T_DATE: case FS_T_UUID:
                if (strcmp (*(char *const *) ma, *(char *const *) mb))
                    return false;
                break;
            case FS_T_INT:
                if (*(const int64_t *) ma != *(const int64_t *) mb)
                    return false;
                break;
            case FS_T_BOOL:
                if (*(const bool *) ma != *(const bool *) mb)
                    return false;
                break;
            case FS_T_MAP:
                if (!tk_equal (f->sub, ma, mb))
                    return false;
                break;
            case FS_T_STRLIST: {
                const fs_strlist_t *la = (const fs_strlist_t *) ma, *lb = (const fs_strlist_t *) mb;
                if (la->n != lb->n)
                    return false;
                for (size_t k = 0; k < la->n; k++)
                    if (strcmp (la->items [k], lb->items [k]))
                        return false;
                break;
            }
            case FS_T_MAPLIST: {
                const fs_maplist_t *la = (const fs_maplist_t *) ma, *lb = (const fs_maplist_t *) mb;
                if (la->n != lb->n)
                    return false;
                for (size_t k = 0; k < la->n; k++)
                    if (!tk_equal (f->sub, (const char *) la->items + k * f->sub->size,
                                           (const char *) lb->items + k * f->sub->size))
                        return false;
                break;
            }
            case FS_T_RAW: {
                const fs_raw_t *ra = (const fs_raw_t *) ma, *rb = (const fs_raw_t *) mb;
                if (ra->len != rb->len || memcmp (ra->data, rb->data, ra->len))
                    return false;
                break;
            }
        }
    }
    return true;
}

//  Encodes a fresh sample of t; the caller frees *data.
static inline void
tk_sample_bytes (const fs_type_t *t, tk_variant_t variant, char **data, size_t *len)
{
    void *msg = calloc (1, t->size);
    cr_assert_not_null (msg);
    tk_fill (t, msg, variant);
    fs_proto_error_t err;
    int rc = fs_proto_encode (t, msg, data, len, &err);
    cr_assert_eq (rc, 0, "%s: %s", t->name, err.message);
    fs_proto_clear (t, msg);
    free (msg);
}

//  ---- edits of encoded messages, by dotted path of map keys ----------------

typedef enum {
    TK_REMOVE,                  //  delete the key
    TK_SET,                     //  replace (or add) the key's value
    TK_DUP                      //  append a second copy of the key and its value
} tk_op_t;

static inline msgpack_object tk_nil (void) { msgpack_object o = { .type = MSGPACK_OBJECT_NIL }; return o; }
static inline msgpack_object tk_bool (bool b) { msgpack_object o = { .type = MSGPACK_OBJECT_BOOLEAN, .via.boolean = b }; return o; }
static inline msgpack_object
tk_int (int64_t v)
{
    msgpack_object o;
    if (v >= 0) {
        o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o.via.u64 = (uint64_t) v;
    }
    else {
        o.type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o.via.i64 = v;
    }
    return o;
}
static inline msgpack_object tk_uint (uint64_t v) { msgpack_object o = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER, .via.u64 = v }; return o; }
static inline msgpack_object tk_float (double v) { msgpack_object o = { .type = MSGPACK_OBJECT_FLOAT64, .via.f64 = v }; return o; }
static inline msgpack_object
tk_strn (const char *s, size_t len)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_STR };
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t) len;
    return o;
}
static inline msgpack_object tk_str (const char *s) { return tk_strn (s, strlen (s)); }
static inline msgpack_object
tk_bin (const char *s, size_t len)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_BIN };
    o.via.bin.ptr = s;
    o.via.bin.size = (uint32_t) len;
    return o;
}
static inline msgpack_object tk_empty_array (void) { msgpack_object o = { .type = MSGPACK_OBJECT_ARRAY }; return o; }
static inline msgpack_object tk_empty_map (void) { msgpack_object o = { .type = MSGPACK_OBJECT_MAP }; return o; }
static inline msgpack_object
tk_array (msgpack_object *items, size_t n)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_ARRAY };
    o.via.array.ptr = items;
    o.via.array.size = (uint32_t) n;
    return o;
}
static inline msgpack_object
tk_ext (void)
{
    msgpack_object o = { .type = MSGPACK_OBJECT_EXT };
    o.via.ext.type = 7;
    o.via.ext.ptr = "z";
    o.via.ext.size = 1;
    return o;
}

//  Returns the encoded message with one edit at `path` ("subject.address.postcode"),
//  malloc'd; *out_len its length.
static inline char *
tk_edit (const char *data, size_t len, const char *path, tk_op_t op, msgpack_object val,
         size_t *out_len)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    cr_assert_eq (msgpack_unpack_next (&unpacked, data, len, &offset), MSGPACK_UNPACK_SUCCESS);
    char segments [256];
    snprintf (segments, sizeof segments, "%s", path);
    msgpack_object *obj = &unpacked.data;
    msgpack_object_kv *grown = NULL;        //  a longer kv array when adding a key
    char *seg = segments;
    for (;;) {
        char *dot = strchr (seg, '.');
        if (dot)
            *dot = 0;
        cr_assert_eq (obj->type, MSGPACK_OBJECT_MAP, "%s: not a map at %s", path, seg);
        msgpack_object_kv *kv = NULL;
        for (uint32_t i = 0; i < obj->via.map.size; i++) {
            msgpack_object_kv *candidate = &obj->via.map.ptr [i];
            if (candidate->key.type == MSGPACK_OBJECT_STR
            &&  candidate->key.via.str.size == strlen (seg)
            &&  memcmp (candidate->key.via.str.ptr, seg, strlen (seg)) == 0)
                kv = candidate;
        }
        if (dot) {
            cr_assert_not_null (kv, "%s: no key %s", path, seg);
            obj = &kv->val;
            seg = dot + 1;
            continue;
        }
        if (op == TK_REMOVE) {
            cr_assert_not_null (kv, "%s: no key %s", path, seg);
            size_t index = (size_t) (kv - obj->via.map.ptr);
            memmove (kv, kv + 1, (obj->via.map.size - index - 1) * sizeof *kv);
            obj->via.map.size--;
        }
        else
        if (op == TK_SET && kv)
            kv->val = val;
        else {
            size_t n = obj->via.map.size;
            grown = (msgpack_object_kv *) calloc (n + 1, sizeof *grown);
            cr_assert_not_null (grown);
            if (n)
                memcpy (grown, obj->via.map.ptr, n * sizeof *grown);
            if (op == TK_DUP) {
                cr_assert_not_null (kv, "%s: no key %s", path, seg);
                grown [n] = *kv;
            }
            else {
                grown [n].key = tk_str (seg);
                grown [n].val = val;
            }
            obj->via.map.ptr = grown;
            obj->via.map.size = (uint32_t) n + 1;
        }
        break;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    cr_assert_eq (msgpack_pack_object (&pk, unpacked.data), 0);
    free (grown);
    msgpack_unpacked_destroy (&unpacked);
    *out_len = sbuf.size;
    return msgpack_sbuffer_release (&sbuf);
}

//  Deterministic pseudo-random numbers (xorshift64*), so failures replay.
static inline uint64_t
tk_rand (uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
