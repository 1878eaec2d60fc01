/*  fs_messages - the descriptors of every definition in messages.def, and the catalogue. */
#include "finestra.h"

//  Pass 1: one field table per definition. offsetof into the generated struct
//  means a field the compiler does not know (or a wrong kind) fails the build.
#define FS_STRUCT(name, doc)             static const fs_field_t name##_fields [] = {
#define FS_MESSAGE(name, wire, doc)      static const fs_field_t name##_fields [] = {
#define FS_FIELD(st, f, kind, req, min, max, choices, doc) \
    { #f, FS_T_##kind, offsetof (st##_t, f), req, min, max, choices, NULL, doc },
#define FS_FIELD_MAP(st, f, req, sub, doc) \
    { #f, FS_T_MAP, offsetof (st##_t, f), req, 0, 0, NULL, &sub##_type, doc },
#define FS_FIELD_MAPLIST(st, f, req, min, max, sub, doc) \
    { #f, FS_T_MAPLIST, offsetof (st##_t, f), req, min, max, NULL, &sub##_type, doc },
#define FS_END(name)                     };
#include "messages.def"
#undef FS_STRUCT
#undef FS_MESSAGE
#undef FS_FIELD
#undef FS_FIELD_MAP
#undef FS_FIELD_MAPLIST
#undef FS_END

//  Pass 2: the descriptors. `present` is 64 bits, so a definition holds at most 64 fields.
#define S_NFIELDS(name) (sizeof (name##_fields) / sizeof (name##_fields [0]))
#define FS_STRUCT(name, doc) \
    _Static_assert (S_NFIELDS (name) <= 64, #name ": more than 64 fields"); \
    _Static_assert (S_NFIELDS (name) == name##_F__COUNT, #name ": field count"); \
    const fs_type_t name##_type = { #name, NULL, doc, sizeof (name##_t), \
                                    name##_fields, S_NFIELDS (name) };
#define FS_MESSAGE(name, wire, doc) \
    _Static_assert (S_NFIELDS (name) <= 64, #name ": more than 64 fields"); \
    _Static_assert (S_NFIELDS (name) == name##_F__COUNT, #name ": field count"); \
    const fs_type_t name##_type = { #name, wire, doc, sizeof (name##_t), \
                                    name##_fields, S_NFIELDS (name) };
#define FS_FIELD(st, f, kind, req, min, max, choices, doc)
#define FS_FIELD_MAP(st, f, req, sub, doc)
#define FS_FIELD_MAPLIST(st, f, req, min, max, sub, doc)
#define FS_END(name)
#include "messages.def"
#undef FS_STRUCT
#undef FS_MESSAGE

//  Pass 3: the catalogue, every FS_MESSAGE (nested structs travel in none by themselves).
#define FS_STRUCT(name, doc)
#define FS_MESSAGE(name, wire, doc)      &name##_type,
const fs_type_t *const fs_proto_messages [] = {
#include "messages.def"
    NULL
};
#undef FS_STRUCT
#undef FS_MESSAGE
#undef FS_FIELD
#undef FS_FIELD_MAP
#undef FS_FIELD_MAPLIST
#undef FS_END
#undef S_NFIELDS
