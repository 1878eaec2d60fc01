/*  test_fs_log - JSON lines on stderr: exact layout, escaping, UTF-8 repair, levels, limits. */
#include "fs_test.h"
#include <pthread.h>

/* -- capturing stderr ------------------------------------------------------------------- */

static int s_saved_stderr = -1;
static FILE *s_capture_file;

static void
s_capture_begin (void)
{
    fflush (stderr);
    s_capture_file = tmpfile ();
    cr_assert_not_null (s_capture_file);
    s_saved_stderr = dup (STDERR_FILENO);
    cr_assert (s_saved_stderr >= 0);
    cr_assert (dup2 (fileno (s_capture_file), STDERR_FILENO) >= 0);
}

//  Everything written to stderr since s_capture_begin; caller frees.
static char *
s_capture_end (void)
{
    fflush (stderr);
    cr_assert (dup2 (s_saved_stderr, STDERR_FILENO) >= 0);
    close (s_saved_stderr);
    //  fd 2 shared the file's offset, so its end is where the writes stopped
    off_t size = lseek (fileno (s_capture_file), 0, SEEK_END);
    cr_assert (size >= 0);
    char *text = malloc ((size_t) size + 1);
    cr_assert_not_null (text);
    cr_assert_eq (pread (fileno (s_capture_file), text, (size_t) size, 0), size);
    text [size] = 0;
    fclose (s_capture_file);
    return text;
}

/* -- a strict little JSON reader for one flat object of string/null/true members -------- */

#define S_MEMBERS_MAX 32

typedef struct {
    int count;                          /* members read */
    char *keys [S_MEMBERS_MAX];         /* decoded keys */
    char *values [S_MEMBERS_MAX];       /* decoded values; NULL for null */
    bool literal [S_MEMBERS_MAX];       /* value was null or true, not a string */
} s_object_t;

static void
s_object_free (s_object_t *object)
{
    for (int i = 0; i < object->count; i++) {
        free (object->keys [i]);
        free (object->values [i]);
    }
    object->count = 0;
}

static void
s_put_utf8 (char **out, unsigned code)
{
    unsigned char *o = (unsigned char *) *out;
    if (code < 0x80)
        *o++ = (unsigned char) code;
    else
    if (code < 0x800) {
        *o++ = (unsigned char) (0xC0 | (code >> 6));
        *o++ = (unsigned char) (0x80 | (code & 0x3F));
    }
    else {
        *o++ = (unsigned char) (0xE0 | (code >> 12));
        *o++ = (unsigned char) (0x80 | ((code >> 6) & 0x3F));
        *o++ = (unsigned char) (0x80 | (code & 0x3F));
    }
    *out = (char *) o;
}

//  Length of a valid UTF-8 sequence at s, or 0 (independent of the code under test:
//  decodes the code point and checks its range).
static int
s_utf8_valid (const unsigned char *s)
{
    int len;
    unsigned code;
    if (s [0] < 0x80)
        return 1;
    if ((s [0] & 0xE0) == 0xC0) { len = 2; code = s [0] & 0x1F; }
    else if ((s [0] & 0xF0) == 0xE0) { len = 3; code = s [0] & 0x0F; }
    else if ((s [0] & 0xF8) == 0xF0) { len = 4; code = s [0] & 0x07; }
    else return 0;
    for (int i = 1; i < len; i++) {
        if ((s [i] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (s [i] & 0x3F);
    }
    static const unsigned least [] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (code < least [len] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return len;
}

//  Reads a JSON string at *p; returns the decoded text or NULL if it is not valid JSON.
static char *
s_read_string (const char **p)
{
    const char *s = *p;
    if (*s++ != '"')
        return NULL;
    char *text = malloc (strlen (s) + 1), *out = text;
    while (*s != '"') {
        unsigned char c = (unsigned char) *s;
        if (c < 0x20)
            goto bad;           //  includes the end of the line
        if (c == '\\') {
            s++;
            switch (*s) {
                case '"': *out++ = '"'; break;
                case '\\': *out++ = '\\'; break;
                case '/': *out++ = '/'; break;
                case 'b': *out++ = '\b'; break;
                case 'f': *out++ = '\f'; break;
                case 'n': *out++ = '\n'; break;
                case 'r': *out++ = '\r'; break;
                case 't': *out++ = '\t'; break;
                case 'u': {
                    unsigned code;
                    if (!isxdigit (s [1]) || !isxdigit (s [2]) || !isxdigit (s [3])
                    ||  !isxdigit (s [4]) || sscanf (s + 1, "%4x", &code) != 1
                    ||  (code >= 0xD800 && code <= 0xDFFF))
                        goto bad;
                    s_put_utf8 (&out, code);
                    s += 4;
                    break;
                }
                default: goto bad;
            }
            s++;
        }
        else {
            int len = s_utf8_valid ((const unsigned char *) s);
            if (len == 0)
                goto bad;
            memcpy (out, s, (size_t) len);
            out += len;
            s += len;
        }
    }
    *out = 0;
    *p = s + 1;
    return text;
bad:
    free (text);
    return NULL;
}

//  Parses line (without its newline) as one object; false if it is not valid JSON.
static bool
s_parse (const char *line, s_object_t *object)
{
    memset (object, 0, sizeof *object);
    const char *p = line;
    if (*p++ != '{')
        return false;
    while (true) {
        if (object->count == S_MEMBERS_MAX)
            goto bad;
        char *key = s_read_string (&p);
        if (!key)
            goto bad;
        int i = object->count++;
        object->keys [i] = key;
        if (*p++ != ':')
            goto bad;
        if (strncmp (p, "null", 4) == 0) {
            object->literal [i] = true;
            p += 4;
        }
        else
        if (strncmp (p, "true", 4) == 0) {
            object->literal [i] = true;
            object->values [i] = strdup ("true");
            p += 4;
        }
        else
        if (!(object->values [i] = s_read_string (&p)))
            goto bad;
        if (*p == '}')
            break;
        if (*p++ != ',')
            goto bad;
    }
    if (p [1] != 0)
        goto bad;
    return true;
bad:
    s_object_free (object);
    return false;
}

static const char *
s_get (s_object_t *object, const char *key)
{
    for (int i = 0; i < object->count; i++)
        if (streq (object->keys [i], key))
            return object->values [i];
    return NULL;
}

static bool
s_has (s_object_t *object, const char *key)
{
    for (int i = 0; i < object->count; i++)
        if (streq (object->keys [i], key))
            return true;
    return false;
}

//  Checks the captured text is exactly one line and parses it.
static void
s_one_line (const char *text, s_object_t *object)
{
    size_t len = strlen (text);
    cr_assert (len > 0 && text [len - 1] == '\n', "no complete line in: %s", text);
    cr_assert_eq (strchr (text, '\n'), text + len - 1, "more than one line: %s", text);
    char *line = strndup (text, len - 1);
    cr_assert (s_parse (line, object), "not valid JSON: %s", line);
    free (line);
}

//  Replaces the 24-character timestamp after "ts":" with TS, checking its shape.
static void
s_mask_ts (char *text)
{
    cr_assert (strncmp (text, "{\"ts\":\"", 7) == 0, "%s", text);
    char *ts = text + 7;
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++)
        cr_assert (shape [i] == 'd'? isdigit ((unsigned char) ts [i]): ts [i] == shape [i],
                   "bad timestamp in %s", text);
    cr_assert_eq (ts [24], '"');
    memmove (ts + 2, ts + 24, strlen (ts + 24) + 1);
    ts [0] = 'T';
    ts [1] = 'S';
}

/* -- tests ------------------------------------------------------------------------------- */

Test (fs_log, exact_line_layout)
{
    fs_log_init ("intake", FS_LOG_DEBUG);
    s_capture_begin ();
    fs_info ("case stored", "case", "C-1", "count", "12");
    char *text = s_capture_end ();
    s_mask_ts (text);
    cr_assert_str_eq (text, "{\"ts\":\"TS\",\"level\":\"info\",\"service\":\"intake\","
                      "\"msg\":\"case stored\",\"case\":\"C-1\",\"count\":\"12\"}\n");
    free (text);
}

Test (fs_log, every_level_named)
{
    fs_log_init ("reporting", FS_LOG_DEBUG);
    s_capture_begin ();
    fs_debug ("a");
    fs_info ("b");
    fs_warn ("c");
    fs_error ("d");
    char *text = s_capture_end ();
    const char *expected [] = { "debug", "info", "warn", "error" };
    char *line = text;
    for (int i = 0; i < 4; i++) {
        char *end = strchr (line, '\n');
        cr_assert_not_null (end);
        *end = 0;
        s_object_t object;
        cr_assert (s_parse (line, &object), "%s", line);
        cr_assert_str_eq (s_get (&object, "level"), expected [i]);
        cr_assert_str_eq (s_get (&object, "service"), "reporting");
        s_object_free (&object);
        line = end + 1;
    }
    cr_assert_str_eq (line, "");
    free (text);
}

Test (fs_log, service_is_finestra_before_init)
{
    s_capture_begin ();
    fs_info ("starting");
    char *text = s_capture_end ();
    s_object_t object;
    s_one_line (text, &object);
    cr_assert_str_eq (s_get (&object, "service"), "finestra");
    cr_assert_str_eq (s_get (&object, "msg"), "starting");
    s_object_free (&object);
    free (text);
}

Test (fs_log, escapes_quotes_backslashes_and_controls)
{
    s_capture_begin ();
    fs_info ("say \"hi\" \\ now", "ctl", "a\nb\tc\rd\be\ff\x01g\x1fh\x7f", "k\"ey", "v");
    char *text = s_capture_end ();
    s_mask_ts (text);
    cr_assert_str_eq (text, "{\"ts\":\"TS\",\"level\":\"info\",\"service\":\"finestra\","
                      "\"msg\":\"say \\\"hi\\\" \\\\ now\","
                      "\"ctl\":\"a\\nb\\tc\\rd\\be\\ff\\u0001g\\u001fh\x7f\","
                      "\"k\\\"ey\":\"v\"}\n");
    free (text);
}

Test (fs_log, invalid_utf8_is_replaced_and_valid_utf8_kept)
{
    s_capture_begin ();
    fs_info ("utf8",
             "lone", "a\xff" "b",
             "cut", "x\xc3",
             "overlong", "\xc0\xaf",
             "surrogate", "\xed\xa0\x80",
             "beyond", "\xf4\x90\x80\x80",
             "valid", "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    char *text = s_capture_end ();
    s_object_t object;
    s_one_line (text, &object);         //  s_parse rejects any invalid UTF-8
    #define R "\xef\xbf\xbd"
    cr_assert_str_eq (s_get (&object, "lone"), "a" R "b");
    cr_assert_str_eq (s_get (&object, "cut"), "x" R);
    cr_assert_str_eq (s_get (&object, "overlong"), R R);
    cr_assert_str_eq (s_get (&object, "surrogate"), R R R);
    cr_assert_str_eq (s_get (&object, "beyond"), R R R R);
    cr_assert_str_eq (s_get (&object, "valid"), "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    #undef R
    s_object_free (&object);
    free (text);
}

Test (fs_log, null_values_are_json_null)
{
    s_capture_begin ();
    fs_log_write (FS_LOG_WARN, NULL, "k", NULL, "after", "x", NULL);
    char *text = s_capture_end ();
    s_mask_ts (text);
    cr_assert_str_eq (text, "{\"ts\":\"TS\",\"level\":\"warn\",\"service\":\"finestra\","
                      "\"msg\":null,\"k\":null,\"after\":\"x\"}\n");
    free (text);
}

static int s_evaluations;

static const char *
s_expensive (void)
{
    s_evaluations++;
    return "value";
}

Test (fs_log, below_threshold_writes_nothing_and_formats_nothing)
{
    fs_log_init ("intake", FS_LOG_WARN);
    cr_assert_eq (fs_log_threshold, FS_LOG_WARN);
    s_capture_begin ();
    fs_debug ("hidden", "k", s_expensive ());
    fs_info ("hidden", "k", s_expensive ());
    char *text = s_capture_end ();
    cr_assert_str_eq (text, "");
    cr_assert_eq (s_evaluations, 0, "arguments were evaluated below the threshold");
    free (text);

    s_capture_begin ();
    fs_warn ("shown", "k", s_expensive ());
    fs_error ("shown too");
    text = s_capture_end ();
    cr_assert_eq (s_evaluations, 1);
    cr_assert_not_null (strstr (text, "\"level\":\"warn\""));
    cr_assert_not_null (strstr (text, "\"level\":\"error\""));
    free (text);
}

Test (fs_log, line_longer_than_the_stack_buffer_is_whole)
{
    char *big = malloc (5001);
    memset (big, 'x', 5000);
    big [5000] = 0;
    s_capture_begin ();
    fs_info ("big", "value", big, "next", "y");
    char *text = s_capture_end ();
    s_object_t object;
    s_one_line (text, &object);
    cr_assert_str_eq (s_get (&object, "value"), big);
    cr_assert_str_eq (s_get (&object, "next"), "y");
    cr_assert (!s_has (&object, "truncated"));
    s_object_free (&object);
    free (text);
    free (big);
}

Test (fs_log, absurd_line_is_cut_at_16k_and_stays_valid)
{
    size_t size = 100000;
    char *huge = malloc (size + 1);
    memset (huge, 'y', size);
    huge [size] = 0;
    s_capture_begin ();
    fs_info ("huge", "value", huge, "never", "written");
    char *text = s_capture_end ();
    cr_assert_leq (strlen (text), 16384);
    s_object_t object;
    s_one_line (text, &object);
    const char *value = s_get (&object, "value");
    cr_assert_not_null (value);
    cr_assert_gt (strlen (value), 16000);
    size_t len = strlen (value);
    cr_assert_str_eq (value + len - 12, " [truncated]");
    cr_assert_eq (strspn (value, "y"), len - 12);
    cr_assert_str_eq (s_get (&object, "truncated"), "true");
    cr_assert (!s_has (&object, "never"));
    s_object_free (&object);
    free (text);
    free (huge);
}

//  Cuts at every position near the limit, with 1-, 2-, 3- and 6-byte units and with
//  members of empty strings: every line is valid JSON within the limit.
Test (fs_log, every_cut_position_leaves_valid_json)
{
    const char *units [] = { "z", "\xc3\xa9", "\xe2\x82\xac", "\x01" };
    for (size_t u = 0; u < 4; u++) {
        size_t unit = strlen (units [u]);
        for (size_t fill = 16100; fill < 16400; fill += 7) {
            size_t count = fill / (u == 3? 6: unit);
            char *msg = malloc (count * unit + 1);
            for (size_t i = 0; i < count; i++)
                memcpy (msg + i * unit, units [u], unit);
            msg [count * unit] = 0;
            for (int shape = 0; shape < 3; shape++) {
                s_capture_begin ();
                if (shape == 0)
                    fs_info (msg);
                else
                if (shape == 1)
                    fs_info ("m", "k", msg, "", "", "", NULL, "", "");
                else
                    fs_info ("m", msg, "v", "", "", "a", "b");
                char *text = s_capture_end ();
                cr_assert_leq (strlen (text), 16384);
                s_object_t object;
                s_one_line (text, &object);
                s_object_free (&object);
                free (text);
            }
            free (msg);
        }
    }
}

Test (fs_log, errno_is_preserved)
{
    s_capture_begin ();
    errno = EAGAIN;
    fs_info ("x");
    int after = errno;
    free (s_capture_end ());
    cr_assert_eq (after, EAGAIN);
}

Test (fs_log, level_names_parse)
{
    cr_assert_eq (fs_log_level_parse ("debug"), FS_LOG_DEBUG);
    cr_assert_eq (fs_log_level_parse ("info"), FS_LOG_INFO);
    cr_assert_eq (fs_log_level_parse ("warn"), FS_LOG_WARN);
    cr_assert_eq (fs_log_level_parse ("error"), FS_LOG_ERROR);
    cr_assert_eq (fs_log_level_parse ("INFO"), -1);
    cr_assert_eq (fs_log_level_parse ("warning"), -1);
    cr_assert_eq (fs_log_level_parse (""), -1);
    cr_assert_eq (fs_log_level_parse (NULL), -1);
}

/* -- lines from several threads never interleave ----------------------------------------- */

#define S_THREADS 4
#define S_LINES   200
#define S_PAYLOAD 3000          /* past the stack buffer: the heap path, one write still */

static void *
s_writer (void *arg)
{
    char id [2] = { (char) ('A' + (intptr_t) arg), 0 };
    char payload [S_PAYLOAD + 1];
    memset (payload, id [0], S_PAYLOAD);
    payload [S_PAYLOAD] = 0;
    for (int i = 0; i < S_LINES; i++)
        fs_info ("thread line", "thread", id, "payload", payload);
    return NULL;
}

Test (fs_log, threads_write_whole_lines)
{
    s_capture_begin ();
    pthread_t threads [S_THREADS];
    for (intptr_t i = 0; i < S_THREADS; i++)
        cr_assert_eq (pthread_create (&threads [i], NULL, s_writer, (void *) i), 0);
    for (int i = 0; i < S_THREADS; i++)
        pthread_join (threads [i], NULL);
    char *text = s_capture_end ();

    int lines [S_THREADS] = { 0 };
    char *line = text;
    char *end;
    while ((end = strchr (line, '\n'))) {
        *end = 0;
        s_object_t object;
        cr_assert (s_parse (line, &object), "interleaved or invalid line");
        const char *id = s_get (&object, "thread");
        cr_assert_not_null (id);
        int index = id [0] - 'A';
        cr_assert (index >= 0 && index < S_THREADS);
        const char *payload = s_get (&object, "payload");
        cr_assert_eq (strlen (payload), S_PAYLOAD);
        cr_assert_eq (strspn (payload, id), S_PAYLOAD);
        lines [index]++;
        s_object_free (&object);
        line = end + 1;
    }
    cr_assert_str_eq (line, "");
    for (int i = 0; i < S_THREADS; i++)
        cr_assert_eq (lines [i], S_LINES);
    free (text);
}
