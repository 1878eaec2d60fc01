/*  fs_proto_doc - prints the message catalogue as Markdown, from the descriptors themselves
    (proto/README.md's table is this output, so the documentation cannot drift by hand). */
#include "finestra.h"

static const char *
s_kind_name (fs_ftype_t kind)
{
    switch (kind) {
        case FS_T_STR:     return "str";
        case FS_T_ENUM:    return "enum";
        case FS_T_TIME:    return "time";
        case FS_T_DATE:    return "date";
        case FS_T_UUID:    return "uuid";
        case FS_T_INT:     return "int";
        case FS_T_BOOL:    return "bool";
        case FS_T_MAP:     return "map";
        case FS_T_STRLIST: return "strlist";
        case FS_T_MAPLIST: return "maplist";
        case FS_T_RAW:     return "raw";
    }
    return "?";
}

//  The rule a field's value follows, in a few words.
static void
s_rule (const fs_field_t *f, char *out, size_t size)
{
    bool bounded = f->min || f->max;
    switch (f->kind) {
        case FS_T_STR:
            if (bounded)
                snprintf (out, size, "%lld..%lld bytes", (long long) f->min, (long long) f->max);
            else
                snprintf (out, size, "any length");
            break;
        case FS_T_INT:
            if (bounded)
                snprintf (out, size, "%lld..%lld", (long long) f->min, (long long) f->max);
            else
                snprintf (out, size, "any");
            break;
        case FS_T_STRLIST: case FS_T_MAPLIST:
            if (bounded)
                snprintf (out, size, "%lld..%lld items", (long long) f->min, (long long) f->max);
            else
                snprintf (out, size, "any count");
            break;
        case FS_T_ENUM: {
            //  '|' would split a Markdown table cell
            size_t pos = 0;
            for (const char *c = f->choices; *c && pos + 3 < size; c++) {
                if (*c == '|') {
                    out [pos++] = ',';
                    out [pos++] = ' ';
                }
                else
                    out [pos++] = *c;
            }
            out [pos] = 0;
            break;
        }
        case FS_T_MAP:
            snprintf (out, size, "%s", f->sub->name);
            break;
        default:
            out [0] = 0;
    }
}

int
main (int argc, char *argv [])
{
    if (argc > 1) {
        fprintf (stderr, "usage: fs_proto_doc > table.md\n"
                         "Prints every message of the catalogue (proto/messages.def).\n");
        return strcmp (argv [1], "--help") == 0? 0: 2;
    }
    printf ("| type | fields (`*` required) |\n|---|---|\n");
    for (size_t i = 0; fs_proto_messages [i]; i++) {
        const fs_type_t *t = fs_proto_messages [i];
        printf ("| `%s` — %s |", t->wire, t->doc);
        for (size_t k = 0; k < t->nfields; k++) {
            const fs_field_t *f = &t->fields [k];
            char rule [256];
            s_rule (f, rule, sizeof rule);
            printf ("%s`%s`%s %s%s%s%s", k? "<br>": " ", f->name, f->required? "*": "",
                    s_kind_name (f->kind), rule [0]? " (": "", rule, rule [0]? ")": "");
        }
        printf (" |\n");
    }
    return 0;
}
