/*  fs_proto - messages defined once (proto/messages.def), codecs derived from the definition.

    Each definition becomes a C struct `<name>_t` and a descriptor `<name>_type`; one generic
    codec walks the descriptor to encode, decode, validate and free. See proto/README.md. */
#ifndef FS_PROTO_H_INCLUDED
#define FS_PROTO_H_INCLUDED

/* Field kinds a definition may use. */
typedef enum {
    FS_T_STR,       /* char *, NUL-free UTF-8 bytes; min/max bound the length in bytes */
    FS_T_ENUM,      /* char *, one of `choices` ("a|b|c") */
    FS_T_TIME,      /* char *, RFC 3339 timestamp */
    FS_T_DATE,      /* char *, YYYY-MM-DD, a real calendar date */
    FS_T_UUID,      /* char *, canonical 36-character UUID */
    FS_T_INT,       /* int64_t; min/max bound the value */
    FS_T_BOOL,      /* bool */
    FS_T_MAP,       /* nested struct (by value), described by `sub` */
    FS_T_STRLIST,   /* fs_strlist_t; min/max bound the count, item length 1..256 */
    FS_T_MAPLIST,   /* fs_maplist_t of `sub` structs; min/max bound the count */
    FS_T_RAW        /* fs_raw_t: any msgpack value, kept as its encoded bytes (decoded later) */
} fs_ftype_t;

typedef struct { size_t n; char **items; } fs_strlist_t;    /* owned strings */
typedef struct { size_t n; void *items; } fs_maplist_t;     /* owned array of n sub structs */
typedef struct { size_t len; char *data; } fs_raw_t;        /* owned msgpack bytes */

typedef struct fs_type_s fs_type_t;

/* One field of a definition. */
typedef struct {
    const char *name;           /* key on the wire and member name in C */
    fs_ftype_t kind;            /* what it holds */
    size_t offset;              /* offsetof the member in the struct */
    bool required;              /* missing -> missing_field */
    int64_t min, max;           /* bounds, meaning per kind (see fs_ftype_t) */
    const char *choices;        /* FS_T_ENUM: '|'-separated allowed values */
    const fs_type_t *sub;       /* FS_T_MAP / FS_T_MAPLIST: the nested definition */
    const char *doc;            /* one line for people (README, INGEST.md) */
} fs_field_t;

/* One definition: a message, or a struct nested in messages. */
struct fs_type_s {
    const char *name;           /* C name, e.g. "fs_referral_requested" */
    const char *wire;           /* message type on the wire, NULL for nested structs */
    const char *doc;            /* one line for people */
    size_t size;                /* sizeof the struct */
    const fs_field_t *fields;   /* in definition order */
    size_t nfields;
};

/* Every struct starts with `present`: bit i set when field i was given.
   Members follow in definition order. */
#define FS_PRESENT(msg_p, idx)  (((msg_p)->present >> (idx)) & 1u)

/* ---- generated from messages.def: structs, descriptors, field indices ---- */
#define FS_PROTO_MEMBER_STR     char *
#define FS_PROTO_MEMBER_ENUM    char *
#define FS_PROTO_MEMBER_TIME    char *
#define FS_PROTO_MEMBER_DATE    char *
#define FS_PROTO_MEMBER_UUID    char *
#define FS_PROTO_MEMBER_INT     int64_t
#define FS_PROTO_MEMBER_BOOL    bool
#define FS_PROTO_MEMBER_STRLIST fs_strlist_t
#define FS_PROTO_MEMBER_RAW     fs_raw_t

#define FS_STRUCT(name, doc)             typedef struct { uint64_t present;
#define FS_MESSAGE(name, wire, doc)      typedef struct { uint64_t present;
#define FS_FIELD(st, f, kind, req, min, max, choices, doc) FS_PROTO_MEMBER_##kind f;
#define FS_FIELD_MAP(st, f, req, sub, doc)                 sub##_t f;
#define FS_FIELD_MAPLIST(st, f, req, min, max, sub, doc)   fs_maplist_t f;
#define FS_END(name)                     } name##_t; extern const fs_type_t name##_type;
#include "messages.def"
#undef FS_STRUCT
#undef FS_MESSAGE
#undef FS_FIELD
#undef FS_FIELD_MAP
#undef FS_FIELD_MAPLIST
#undef FS_END

/* Field indices, for FS_PRESENT: <struct>_F_<field>, and <struct>_F__COUNT. */
#define FS_STRUCT(name, doc)             enum {
#define FS_MESSAGE(name, wire, doc)      enum {
#define FS_FIELD(st, f, kind, req, min, max, choices, doc) st##_F_##f,
#define FS_FIELD_MAP(st, f, req, sub, doc)                 st##_F_##f,
#define FS_FIELD_MAPLIST(st, f, req, min, max, sub, doc)   st##_F_##f,
#define FS_END(name)                     name##_F__COUNT };
#include "messages.def"
#undef FS_STRUCT
#undef FS_MESSAGE
#undef FS_FIELD
#undef FS_FIELD_MAP
#undef FS_FIELD_MAPLIST
#undef FS_END

/* ---- errors: stable snake_case codes (the ingest contract names them) ---- */
typedef enum {
    FS_PROTO_OK = 0,
    FS_PROTO_MALFORMED,             /* not msgpack, truncated, trailing bytes, not a map */
    FS_PROTO_UNSUPPORTED_VERSION,   /* `v` is not one this build speaks */
    FS_PROTO_MISSING_FIELD,         /* a required field is absent */
    FS_PROTO_INVALID_FIELD,         /* wrong type, out of bounds, bad format */
    FS_PROTO_UNKNOWN_TYPE,          /* message type not in the catalogue */
    FS_PROTO_TOO_LARGE,             /* over the byte limit */
    FS_PROTO_TOO_DEEP               /* nesting deeper than FS_PROTO_MAX_DEPTH */
} fs_proto_code_t;

#define FS_PROTO_MAX_DEPTH 16

typedef struct {
    fs_proto_code_t code;           /* FS_PROTO_OK when no error */
    char field[128];                /* dotted path of the offending field, "" when none */
    char message[256];              /* for a person, e.g. "birth_date: expected YYYY-MM-DD" */
} fs_proto_error_t;

/* "malformed", "unsupported_version", ... ("ok" for FS_PROTO_OK). */
const char *fs_proto_code_name (fs_proto_code_t code);

/* Checks that data[0..len) is exactly one well-formed msgpack value no deeper than
   max_depth, whose every declared length fits in the bytes present (so a 5-byte
   "array of 4 billion" cannot make anyone allocate). No allocation. 0 or a code.
   Depth counts containers (a top-level map is 1); max_depth is clamped to 0..256. */
int fs_proto_scan (const void *data, size_t len, int max_depth, fs_proto_error_t *err);

/* Scans (max depth FS_PROTO_MAX_DEPTH), then unpacks the one value into *unpacked, which
   the caller destroys (msgpack_unpacked_destroy) whatever the result. 0 or a code. For
   callers that look at a key before decoding (e.g. a version), then fs_proto_decode_object. */
int fs_proto_unpack (const void *data, size_t len, msgpack_unpacked *unpacked,
                     fs_proto_error_t *err);
/* Decodes msgpack bytes into *out (a zeroed struct of type t): scan, unpack, then
   fs_proto_decode_object. Keys the definition does not know are ignored (a newer sender
   may add fields). On error nothing is left allocated and *out is zeroed. */
int fs_proto_decode (const fs_type_t *t, const void *data, size_t len, void *out,
                     fs_proto_error_t *err);
/* Decodes an already unpacked msgpack map; path prefixes field names in errors. */
int fs_proto_decode_object (const fs_type_t *t, const msgpack_object *obj, void *out,
                            const char *path, fs_proto_error_t *err);
/* Checks a struct against its definition (required fields, bounds, formats). */
int fs_proto_validate (const fs_type_t *t, const void *msg, fs_proto_error_t *err);
/* Packs a struct as a msgpack map (present fields only). Call validate first. */
void fs_proto_pack (const fs_type_t *t, const void *msg, msgpack_packer *pk);
/* Validates, then encodes into a malloc'd buffer. 0, or a code with *data NULL. */
int fs_proto_encode (const fs_type_t *t, const void *msg, char **data, size_t *len,
                     fs_proto_error_t *err);
/* Frees every owned member and zeroes the struct (the struct itself is the caller's). */
void fs_proto_clear (const fs_type_t *t, void *msg);

/* Setters that mark the field present (by member name; a wrong name or kind aborts,
   even under NDEBUG). set_str with NULL unsets the field. */
void fs_proto_set_str (const fs_type_t *t, void *msg, const char *field, const char *value);
void fs_proto_set_int (const fs_type_t *t, void *msg, const char *field, int64_t value);
void fs_proto_set_bool (const fs_type_t *t, void *msg, const char *field, bool value);
/* Index of a field by name, or -1. */
int fs_proto_field_index (const fs_type_t *t, const char *field);

/* The message catalogue: every FS_MESSAGE, looked up by wire type (NULL if unknown). */
const fs_type_t *fs_proto_lookup (const char *wire);
extern const fs_type_t *const fs_proto_messages[];   /* NULL-terminated */

#endif
