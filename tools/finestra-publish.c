/*  finestra-publish - a retrying publisher for intake's ingest contract v1 (proto/INGEST.md):
    one event from a JSON file, the built-in example, or N generated events. */
#include "finestra.h"

static const char s_usage [] =
    "usage: finestra-publish [options] FILE.json|-     send one event written as JSON\n"
    "       finestra-publish [options] --example        send the built-in example event\n"
    "       finestra-publish [options] --generate N     send N events, ids PREFIX-1..PREFIX-N\n"
    "options:\n"
    "  --endpoint URL      intake's ingest endpoint (default $FINESTRA_INTAKE_ENDPOINT,\n"
    "                      else tcp://127.0.0.1:5555)\n"
    "  --timeout MS        wait this long for a receipt before re-sending (default 3000)\n"
    "  --attempts N        give an event up after N attempts (default 0: never)\n"
    "  --prefix P          ids of generated events (default gen)\n"
    "  --source S          source of generated events and of --example (default primary-care)\n"
    "  --server-key KEY    CURVE: intake's public key (40 Z85 characters, or its .key file)\n"
    "  --client-cert FILE  CURVE: this publisher's certificate (its .key_secret file)\n"
    "  --quiet             print only the final counts\n"
    "Every event is re-sent, the same bytes on a new socket, after a timeout or an\n"
    "`unavailable` receipt, until it is accepted, a duplicate, or rejected for good.\n"
    "Prints one line per receipt (JSON), then the counts. Exit 0 when every event was\n"
    "accepted or a duplicate, 1 when any was rejected or given up, 2 on a usage error.\n";

//  Settings from the command line
typedef struct {
    const char *endpoint;           /* intake's ingest endpoint */
    int timeout_ms;                 /* receipt timeout per attempt */
    long attempts;                  /* attempts per event, 0 = no limit */
    const char *prefix;             /* generated ids' prefix */
    const char *source;             /* generated events' source */
    char server_key [41];           /* CURVE: intake's public key, "" = plain */
    zcert_t *client;                /* CURVE: our certificate */
    bool quiet;                     /* counts only */
} s_opts_t;

//  What happened to the events
typedef struct {
    long accepted, duplicate, rejected, given_up;   /* final outcomes */
    long timeouts, unavailable;                     /* retries, and why */
} s_counts_t;

//  -------------------------------------------------------------------------
//  JSON to msgpack: objects, arrays, strings (with \u escapes), integers, floats,
//  true/false/null. Enough to write an event by hand; not a validating JSON parser.

typedef struct {
    const char *p;                  /* next character */
    const char *end;                /* end of the text */
    char error [128];               /* why it failed */
} s_json_t;

static void
s_ws (s_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int s_json_value (s_json_t *j, msgpack_packer *pk, int depth);

//  A string into buf (malloc'd, *len bytes), escapes decoded to UTF-8
static int
s_json_string (s_json_t *j, char **buf, size_t *len)
{
    j->p++;                             //  the opening quote
    size_t cap = 64, n = 0;
    char *out = (char *) malloc (cap);
    if (!out)
        return -1;
    while (j->p < j->end && *j->p != '"') {
        if (n + 4 >= cap) {
            char *bigger = (char *) realloc (out, cap *= 2);
            if (!bigger) {
                free (out);
                return -1;
            }
            out = bigger;
        }
        char c = *j->p++;
        if (c != '\\') {
            out [n++] = c;
            continue;
        }
        if (j->p >= j->end)
            break;
        c = *j->p++;
        switch (c) {
            case 'n': out [n++] = '\n'; break;
            case 't': out [n++] = '\t'; break;
            case 'r': out [n++] = '\r'; break;
            case 'b': out [n++] = '\b'; break;
            case 'f': out [n++] = '\f'; break;
            case 'u': {
                unsigned code = 0;
                for (int i = 0; i < 4; i++) {
                    if (j->p >= j->end || !isxdigit ((unsigned char) *j->p)) {
                        snprintf (j->error, sizeof j->error, "bad \\u escape");
                        free (out);
                        return -1;
                    }
                    char h = *j->p++;
                    code = code * 16 + (unsigned) (isdigit ((unsigned char) h) ? h - '0'
                                                   : (tolower ((unsigned char) h) - 'a' + 10));
                }
                //  Basic plane only; enough for names and addresses
                if (code < 0x80)
                    out [n++] = (char) code;
                else
                if (code < 0x800) {
                    out [n++] = (char) (0xc0 | (code >> 6));
                    out [n++] = (char) (0x80 | (code & 0x3f));
                }
                else {
                    out [n++] = (char) (0xe0 | (code >> 12));
                    out [n++] = (char) (0x80 | ((code >> 6) & 0x3f));
                    out [n++] = (char) (0x80 | (code & 0x3f));
                }
                break;
            }
            default: out [n++] = c;     //  \" \\ \/
        }
    }
    if (j->p >= j->end) {
        snprintf (j->error, sizeof j->error, "unterminated string");
        free (out);
        return -1;
    }
    j->p++;                             //  the closing quote
    *buf = out;
    *len = n;
    return 0;
}

//  Counts the items of the array or object starting at j->p, without packing
static int
s_json_count (s_json_t *j, char close, uint32_t *count)
{
    msgpack_sbuffer sink;
    msgpack_sbuffer_init (&sink);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sink, msgpack_sbuffer_write);
    s_json_t copy = *j;
    copy.p++;
    *count = 0;
    s_ws (&copy);
    int rc = 0;
    if (copy.p < copy.end && *copy.p == close)
        goto done;
    for (;;) {
        if (close == '}') {
            s_ws (&copy);
            if (copy.p >= copy.end || *copy.p != '"') {
                snprintf (j->error, sizeof j->error, "expected a key");
                rc = -1;
                goto done;
            }
            char *key;
            size_t klen;
            if (s_json_string (&copy, &key, &klen)) {
                rc = -1;
                goto done;
            }
            free (key);
            s_ws (&copy);
            if (copy.p >= copy.end || *copy.p++ != ':') {
                snprintf (j->error, sizeof j->error, "expected ':'");
                rc = -1;
                goto done;
            }
        }
        if (s_json_value (&copy, &pk, 1)) {
            snprintf (j->error, sizeof j->error, "%s", copy.error);
            rc = -1;
            goto done;
        }
        (*count)++;
        s_ws (&copy);
        if (copy.p < copy.end && *copy.p == ',') {
            copy.p++;
            continue;
        }
        if (copy.p < copy.end && *copy.p == close)
            break;
        snprintf (j->error, sizeof j->error, "expected ',' or '%c'", close);
        rc = -1;
        goto done;
    }
done:
    msgpack_sbuffer_destroy (&sink);
    return rc;
}

static int
s_json_value (s_json_t *j, msgpack_packer *pk, int depth)
{
    s_ws (j);
    if (j->p >= j->end) {
        snprintf (j->error, sizeof j->error, "unexpected end");
        return -1;
    }
    if (depth > 32) {
        snprintf (j->error, sizeof j->error, "nested too deep");
        return -1;
    }
    char c = *j->p;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        uint32_t count;
        if (s_json_count (j, close, &count))
            return -1;
        if (c == '{')
            msgpack_pack_map (pk, count);
        else
            msgpack_pack_array (pk, count);
        j->p++;
        for (uint32_t i = 0; i < count; i++) {
            s_ws (j);
            if (c == '{') {
                char *key;
                size_t klen;
                if (s_json_string (j, &key, &klen))
                    return -1;
                msgpack_pack_str (pk, klen);
                msgpack_pack_str_body (pk, key, klen);
                free (key);
                s_ws (j);
                j->p++;                 //  ':' (checked by s_json_count)
            }
            if (s_json_value (j, pk, depth + 1))
                return -1;
            s_ws (j);
            j->p++;                     //  ',' or the closing bracket
        }
        if (count == 0) {
            s_ws (j);
            j->p++;
        }
        return 0;
    }
    if (c == '"') {
        char *text;
        size_t len;
        if (s_json_string (j, &text, &len))
            return -1;
        msgpack_pack_str (pk, len);
        msgpack_pack_str_body (pk, text, len);
        free (text);
        return 0;
    }
    const char *words [3] = { "true", "false", "null" };
    for (int w = 0; w < 3; w++) {
        size_t len = strlen (words [w]);
        if ((size_t) (j->end - j->p) >= len && memcmp (j->p, words [w], len) == 0) {
            j->p += len;
            if (w == 2)
                msgpack_pack_nil (pk);
            else
            if (w == 0)
                msgpack_pack_true (pk);
            else
                msgpack_pack_false (pk);
            return 0;
        }
    }
    if (c == '-' || isdigit ((unsigned char) c)) {
        char number [64];
        size_t n = 0;
        bool real = false;
        while (j->p < j->end && n + 1 < sizeof number
        &&    (isdigit ((unsigned char) *j->p) || strchr ("+-.eE", *j->p))) {
            real |= *j->p == '.' || *j->p == 'e' || *j->p == 'E';
            number [n++] = *j->p++;
        }
        number [n] = 0;
        if (real)
            msgpack_pack_double (pk, strtod (number, NULL));
        else
            msgpack_pack_int64 (pk, strtoll (number, NULL, 10));
        return 0;
    }
    snprintf (j->error, sizeof j->error, "unexpected '%c'", c);
    return -1;
}

//  JSON text to msgpack bytes (malloc'd). 0 or -1 with a message on stderr
static int
s_json_to_msgpack (const char *text, size_t len, char **data, size_t *size)
{
    s_json_t j = { .p = text, .end = text + len };
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    int rc = s_json_value (&j, &pk, 0);
    s_ws (&j);
    if (rc == 0 && j.p != j.end) {
        snprintf (j.error, sizeof j.error, "text after the value");
        rc = -1;
    }
    if (rc) {
        fprintf (stderr, "finestra-publish: not JSON: %s (at byte %zu)\n", j.error,
                 (size_t) (j.p - text));
        msgpack_sbuffer_destroy (&buffer);
        return -1;
    }
    *size = buffer.size;
    *data = msgpack_sbuffer_release (&buffer);
    return 0;
}

//  -------------------------------------------------------------------------
//  Events we build ourselves

static void
s_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

//  A health.social_risk_detected event. Fixed content for a given id, so running the
//  same command again re-sends the same events (duplicates, not conflicts)
static char *
s_example (const char *id, const char *source, size_t *size)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "v");            msgpack_pack_int (&pk, 1);
    s_str (&pk, "id");           s_str (&pk, id);
    s_str (&pk, "source");       s_str (&pk, source);
    s_str (&pk, "type");         s_str (&pk, "health.social_risk_detected");
    s_str (&pk, "occurred_at");  s_str (&pk, "2026-03-02T09:30:00+01:00");
    s_str (&pk, "subject");
    msgpack_pack_map (&pk, 7);
    s_str (&pk, "doc_type");     s_str (&pk, "NIE");
    s_str (&pk, "doc_number");   s_str (&pk, "X1234567L");
    s_str (&pk, "given_name");   s_str (&pk, "Fatima");
    s_str (&pk, "family_name");  s_str (&pk, "El Amrani");
    s_str (&pk, "birth_date");   s_str (&pk, "1987-11-23");
    s_str (&pk, "address");
    msgpack_pack_map (&pk, 4);
    s_str (&pk, "street");       s_str (&pk, "Carrer de Sant Pau");
    s_str (&pk, "number");       s_str (&pk, "58, 3r 2a");
    s_str (&pk, "postcode");     s_str (&pk, "08001");
    s_str (&pk, "neighbourhood"); s_str (&pk, "el Raval");
    s_str (&pk, "language");     s_str (&pk, "ca");
    s_str (&pk, "data");
    msgpack_pack_map (&pk, 4);
    s_str (&pk, "icd10_codes");
    msgpack_pack_array (&pk, 2);
    s_str (&pk, "Z59.0");
    s_str (&pk, "Z60.2");
    s_str (&pk, "suggested_level"); s_str (&pk, "complementation");
    s_str (&pk, "urgency");      s_str (&pk, "preferent");
    s_str (&pk, "consent_ref");  s_str (&pk, "CAP-RAVAL-2026-000117");
    *size = buffer.size;
    return msgpack_sbuffer_release (&buffer);
}

//  -------------------------------------------------------------------------
//  Sending with retries

static zsock_t *
s_socket (const s_opts_t *opts)
{
    zsock_t *req = zsock_new (ZMQ_REQ);
    if (!req)
        return NULL;
    zsock_set_linger (req, 0);
    if (opts->client) {
        zcert_apply (opts->client, req);
        zsock_set_curve_serverkey (req, opts->server_key);
    }
    if (zsock_connect (req, "%s", opts->endpoint)) {
        fprintf (stderr, "finestra-publish: cannot connect to %s\n", opts->endpoint);
        zsock_destroy (&req);
    }
    return req;
}

static void
s_print_receipt (const fs_ingest_receipt_t *r)
{
    printf ("{\"id\":\"%s\",\"status\":\"%s\"", r->id ? r->id : "", r->status);
    if (r->ref)
        printf (",\"ref\":\"%s\"", r->ref);
    if (FS_PRESENT (r, fs_ingest_receipt_F_error)) {
        //  The message is intake's own text: quotes and backslashes escaped for JSON
        printf (",\"error\":{\"code\":\"%s\",\"field\":\"%s\",\"message\":\"", r->error.code,
                r->error.field ? r->error.field : "");
        for (const char *c = r->error.message; *c; c++)
            printf (*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        printf ("\"}");
    }
    printf ("}\n");
}

//  Sends one event until it is settled. The REQ socket is replaced after a timeout (a REQ
//  that lost its reply can neither send nor receive again) and the SAME bytes re-sent:
//  intake answers `duplicate` if the first copy was stored. 0 settled, -1 interrupted
static int
s_publish (const s_opts_t *opts, zsock_t **req_p, const char *data, size_t size, s_counts_t *counts)
{
    int backoff_ms = 100;
    for (long attempt = 1; !zsys_interrupted; attempt++) {
        if (opts->attempts && attempt > opts->attempts) {
            counts->given_up++;
            if (!opts->quiet)
                fprintf (stderr, "finestra-publish: given up after %ld attempts\n", opts->attempts);
            return 0;
        }
        if (!*req_p && !(*req_p = s_socket (opts)))
            return -1;
        zframe_t *frame = zframe_new (data, size);
        zpoller_t *poller = zpoller_new (*req_p, NULL);
        fs_ingest_receipt_t receipt = { 0 };
        bool answered = false;
        if (zframe_send (&frame, *req_p, ZFRAME_DONTWAIT) == 0
        &&  zpoller_wait (poller, opts->timeout_ms) == *req_p) {
            zframe_t *answer = zframe_recv (*req_p);
            fs_proto_error_t err;
            answered = answer && fs_proto_decode (&fs_ingest_receipt_type, zframe_data (answer),
                                                  zframe_size (answer), &receipt, &err) == 0;
            zframe_destroy (&answer);
        }
        zframe_destroy (&frame);
        zpoller_destroy (&poller);
        if (!answered) {
            counts->timeouts++;
            zsock_destroy (req_p);          //  the next attempt gets a fresh socket
            continue;
        }
        bool unavailable = FS_PRESENT (&receipt, fs_ingest_receipt_F_error)
                        && streq (receipt.error.code, "unavailable");
        if (!opts->quiet)
            s_print_receipt (&receipt);
        if (unavailable) {
            counts->unavailable++;
            fs_proto_clear (&fs_ingest_receipt_type, &receipt);
            zclock_sleep (backoff_ms);
            backoff_ms = backoff_ms < 3200 ? backoff_ms * 2 : 5000;
            continue;
        }
        if (streq (receipt.status, "accepted"))
            counts->accepted++;
        else
        if (streq (receipt.status, "duplicate"))
            counts->duplicate++;
        else
            counts->rejected++;
        fs_proto_clear (&fs_ingest_receipt_type, &receipt);
        return 0;
    }
    return -1;
}

static char *
s_read_all (const char *path, size_t *len)
{
    FILE *file = streq (path, "-") ? stdin : fopen (path, "rb");
    if (!file)
        return NULL;
    size_t cap = 4096, n = 0;
    char *text = (char *) malloc (cap);
    size_t got;
    while (text && (got = fread (text + n, 1, cap - n, file)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = (char *) realloc (text, cap *= 2);
            if (!bigger)
                free (text);
            text = bigger;
        }
    }
    if (file != stdin)
        fclose (file);
    *len = n;
    return text;
}

int
main (int argc, char *argv [])
{
    s_opts_t opts = { .timeout_ms = 3000, .prefix = "gen", .source = "primary-care" };
    opts.endpoint = getenv ("FINESTRA_INTAKE_ENDPOINT");
    if (!opts.endpoint || !*opts.endpoint)
        opts.endpoint = "tcp://127.0.0.1:5555";
    const char *file = NULL, *client_cert = NULL, *server_key = NULL;
    long generate = -1;
    bool example = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        bool takes = true;
        if (streq (arg, "--help") || streq (arg, "-h")) {
            fputs (s_usage, stdout);
            return 0;
        }
        else
        if (streq (arg, "--example"))
            example = true, takes = false;
        else
        if (streq (arg, "--quiet"))
            opts.quiet = true, takes = false;
        else
        if (arg [0] == '-' && arg [1] == '-' && !value) {
            fprintf (stderr, "finestra-publish: %s needs a value\n%s", arg, s_usage);
            return 2;
        }
        else
        if (streq (arg, "--endpoint"))
            opts.endpoint = value;
        else
        if (streq (arg, "--timeout"))
            opts.timeout_ms = atoi (value);
        else
        if (streq (arg, "--attempts"))
            opts.attempts = atol (value);
        else
        if (streq (arg, "--generate"))
            generate = atol (value);
        else
        if (streq (arg, "--prefix"))
            opts.prefix = value;
        else
        if (streq (arg, "--source"))
            opts.source = value;
        else
        if (streq (arg, "--server-key"))
            server_key = value;
        else
        if (streq (arg, "--client-cert"))
            client_cert = value;
        else
        if (arg [0] == '-' && arg [1] != 0) {
            fprintf (stderr, "finestra-publish: unknown option %s\n%s", arg, s_usage);
            return 2;
        }
        else
            file = arg, takes = false;
        if (takes)
            i++;
    }
    if ((file != NULL) + example + (generate >= 0) != 1 || opts.timeout_ms <= 0
    ||  opts.attempts < 0 || (!server_key != !client_cert)) {
        fputs (s_usage, stderr);
        return 2;
    }
    if (server_key) {
        if (strlen (server_key) == 40)
            snprintf (opts.server_key, sizeof opts.server_key, "%s", server_key);
        else {
            zcert_t *server = zcert_load (server_key);
            if (!server) {
                fprintf (stderr, "finestra-publish: %s: not a key or certificate\n", server_key);
                return 2;
            }
            snprintf (opts.server_key, sizeof opts.server_key, "%s", zcert_public_txt (server));
            zcert_destroy (&server);
        }
        opts.client = zcert_load (client_cert);
        if (!opts.client) {
            fprintf (stderr, "finestra-publish: %s: not a certificate\n", client_cert);
            return 2;
        }
    }
    zsys_init ();                       //  SIGINT sets zsys_interrupted: we stop retrying
    s_counts_t counts = { 0 };
    zsock_t *req = NULL;
    int rc = 0;
    if (generate >= 0) {
        for (long n = 1; n <= generate && rc == 0; n++) {
            char id [160];
            snprintf (id, sizeof id, "%s-%ld", opts.prefix, n);
            size_t size;
            char *data = s_example (id, opts.source, &size);
            rc = s_publish (&opts, &req, data, size, &counts);
            free (data);
        }
    }
    else {
        size_t size = 0;
        char *data = NULL;
        if (example)
            data = s_example ("example-1", opts.source, &size);
        else {
            size_t len;
            char *text = s_read_all (file, &len);
            if (!text) {
                fprintf (stderr, "finestra-publish: cannot read %s\n", file);
                return 2;
            }
            rc = s_json_to_msgpack (text, len, &data, &size);
            free (text);
            if (rc)
                return 2;
        }
        rc = s_publish (&opts, &req, data, size, &counts);
        free (data);
    }
    zsock_destroy (&req);
    zcert_destroy (&opts.client);
    printf ("accepted=%ld duplicate=%ld rejected=%ld given_up=%ld timeouts=%ld unavailable=%ld\n",
            counts.accepted, counts.duplicate, counts.rejected, counts.given_up, counts.timeouts,
            counts.unavailable);
    if (rc)
        return 1;
    return counts.rejected || counts.given_up ? 1 : 0;
}
