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

//  One definition as a table: key, type, required, rule, meaning
static void
s_table (const fs_type_t *t)
{
    printf ("| key | type | required | values | meaning |\n|---|---|---|---|---|\n");
    for (size_t k = 0; k < t->nfields; k++) {
        const fs_field_t *f = &t->fields [k];
        char rule [512];
        s_rule (f, rule, sizeof rule);
        const char *kind = s_kind_name (f->kind);
        //  What each kind is on the wire, for people writing clients in other languages
        const char *wire = f->kind == FS_T_STR || f->kind == FS_T_ENUM ? "string"
                         : f->kind == FS_T_TIME ? "string (RFC 3339 time)"
                         : f->kind == FS_T_DATE ? "string (YYYY-MM-DD)"
                         : f->kind == FS_T_UUID ? "string (UUID)"
                         : f->kind == FS_T_INT ? "integer"
                         : f->kind == FS_T_BOOL ? "boolean"
                         : f->kind == FS_T_MAP ? "map"
                         : f->kind == FS_T_STRLIST ? "array of strings (1..256 bytes each)"
                         : f->kind == FS_T_MAPLIST ? "array of maps"
                         : f->kind == FS_T_RAW ? "map (per `type`)" : kind;
        if (f->kind == FS_T_MAPLIST)
            snprintf (rule + strlen (rule), sizeof rule - strlen (rule), ", each a `%s`",
                      f->sub->name);
        else
        if (f->kind == FS_T_MAP)
            snprintf (rule, sizeof rule, "a `%s`", f->sub->name);
        printf ("| `%s` | %s | %s | %s | %s |\n", f->name, wire, f->required? "yes": "no",
                rule, f->doc);
    }
}

//  The ingest contract's definitions, for proto/INGEST.md: the event, its parts, the
//  receipt, then the data of every catalogue type (fs_ev_*)
static void
s_ingest (void)
{
    const fs_type_t *parts [] = {
        &fs_ingest_event_type, &fs_ingest_subject_type, &fs_ingest_address_type,
        &fs_ingest_household_member_type, &fs_ingest_receipt_type, &fs_ingest_error_type, NULL
    };
    for (size_t i = 0; parts [i]; i++) {
        printf ("#### `%s` — %s\n\n", parts [i]->name, parts [i]->doc);
        s_table (parts [i]);
        printf ("\n");
    }
    for (size_t i = 0; fs_proto_messages [i]; i++) {
        const fs_type_t *t = fs_proto_messages [i];
        if (strncmp (t->name, "fs_ev_", 6))
            continue;
        printf ("#### `%s` — %s\n\n`data` of this type:\n\n", t->wire, t->doc);
        s_table (t);
        printf ("\n");
    }
}

//  A definition's table, then those of the structs it nests (each once)
static void
s_table_nested (const fs_type_t *t, const fs_type_t **done, size_t *ndone)
{
    for (size_t i = 0; i < *ndone; i++)
        if (done [i] == t)
            return;
    done [(*ndone)++] = t;
    if (t->wire)
        printf ("#### `%s` — %s\n\n`data` of an item of this type (`%s`):\n\n", t->wire, t->doc,
                t->name);
    else
        printf ("#### `%s` — %s\n\n", t->name, t->doc);
    s_table (t);
    printf ("\n");
    for (size_t k = 0; k < t->nfields; k++)
        if ((t->fields [k].kind == FS_T_MAP || t->fields [k].kind == FS_T_MAPLIST)
        &&  *ndone < 32)
            s_table_nested (t->fields [k].sub, done, ndone);
}

//  The outbound feed's definitions, for proto/FEED.md: request, answer and its parts, then
//  the message each item type carries
static void
s_feed (void)
{
    const fs_type_t *done [32];
    size_t ndone = 0;
    s_table_nested (&fs_feed_request_type, done, &ndone);
    s_table_nested (&fs_feed_answer_type, done, &ndone);
    const char *items [] = { "referral.requested", "referral.status_changed",
                             "referral.overdue", "referral.consent_withdrawn", NULL };
    for (size_t i = 0; items [i]; i++) {
        const fs_type_t *t = fs_proto_lookup (items [i]);
        if (t)
            s_table_nested (t, done, &ndone);
    }
}

int
main (int argc, char *argv [])
{
    if (argc > 1 && strcmp (argv [1], "--ingest") == 0) {
        s_ingest ();
        return 0;
    }
    if (argc > 1 && strcmp (argv [1], "--feed") == 0) {
        s_feed ();
        return 0;
    }
    if (argc > 1) {
        fprintf (stderr, "usage: fs_proto_doc [--ingest | --feed] > table.md\n"
                         "Prints every message of the catalogue (proto/messages.def);\n"
                         "--ingest: the ingest contract's tables (proto/INGEST.md);\n"
                         "--feed: the outbound feed's tables (proto/FEED.md).\n");
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
