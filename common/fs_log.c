/*  fs_log - JSON log lines on stderr, each built whole and written with one write(2). */
#include "finestra.h"

#define S_STACK_SIZE  2048          /* most lines fit here: no allocation per line */
#define S_LINE_MAX    16384         /* longer lines are cut, so one call cannot flood stderr */
#define S_SERVICE_MAX 64            /* service names are short, fixed identifiers */
/* Room kept back past the last content byte: the punctuation of one member plus what
   closes a cut line (marker, quote, ":null", the truncated flag, "}\n"). */
#define S_TAIL        64
#define S_MARKER      " [truncated]"

fs_log_level_t fs_log_threshold = FS_LOG_INFO;
static char s_service [S_SERVICE_MAX] = "finestra";

static const char *s_level_names [] = { "debug", "info", "warn", "error" };

/* A line being built: starts in a stack buffer, moves to the heap when it outgrows it. */
typedef struct {
    char *data;                 /* stack or heap storage */
    size_t size;                /* bytes written */
    size_t capacity;            /* bytes available in data */
    bool on_heap;               /* data was malloc'd and must be freed */
    bool truncated;             /* content was cut at S_LINE_MAX */
} s_line_t;

void
fs_log_init (const char *service, fs_log_level_t level)
{
    snprintf (s_service, sizeof s_service, "%s", service && *service? service: "finestra");
    fs_log_threshold = level;
}

int
fs_log_level_parse (const char *name)
{
    if (!name)
        return -1;
    for (int level = FS_LOG_DEBUG; level <= FS_LOG_ERROR; level++)
        if (streq (name, s_level_names [level]))
            return level;
    return -1;
}

//  True when len more content bytes fit with S_TAIL to spare, moving the line to the heap
//  if it must; otherwise marks the line truncated.
static bool
s_fits (s_line_t *line, size_t len)
{
    if (line->truncated)
        return false;
    size_t needed = line->size + len + S_TAIL;
    if (needed <= line->capacity)
        return true;
    if (!line->on_heap && needed <= S_LINE_MAX) {
        char *heap = malloc (S_LINE_MAX);
        if (heap) {             //  without memory, cut at the stack size rather than lose the line
            memcpy (heap, line->data, line->size);
            line->data = heap;
            line->capacity = S_LINE_MAX;
            line->on_heap = true;
            return true;
        }
    }
    line->truncated = true;
    return false;
}

//  Appends punctuation. Content checks (s_fits) leave S_TAIL free, and at most S_TAIL bytes
//  of punctuation follow the last check, so this always fits.
static void
s_put (s_line_t *line, const char *bytes, size_t len)
{
    assert (line->size + len <= line->capacity);
    memcpy (line->data + line->size, bytes, len);
    line->size += len;
}

//  Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one.
static size_t
s_utf8_length (const unsigned char *s, size_t avail)
{
    unsigned char lead = s [0];
    size_t len;
    unsigned char low = 0x80, high = 0xBF;      //  allowed range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF)
        len = 2;
    else
    if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3;
        if (lead == 0xE0)
            low = 0xA0;         //  overlong
        if (lead == 0xED)
            high = 0x9F;        //  UTF-16 surrogates
    }
    else
    if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4;
        if (lead == 0xF0)
            low = 0x90;         //  overlong
        if (lead == 0xF4)
            high = 0x8F;        //  beyond U+10FFFF
    }
    else
        return 0;
    if (avail < len || s [1] < low || s [1] > high)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s [i] < 0x80 || s [i] > 0xBF)
            return 0;
    return len;
}

//  Appends text as a quoted JSON string, or null. A string that does not fit is cut
//  on a character boundary and ends with the marker.
static void
s_put_string (s_line_t *line, const char *text)
{
    if (!text) {
        s_put (line, "null", 4);
        return;
    }
    s_put (line, "\"", 1);
    const unsigned char *s = (const unsigned char *) text;
    while (*s) {
        char escape [8];
        const char *bytes = (const char *) s;
        size_t len = 1, consumed = 1;
        if (*s == '"' || *s == '\\') {
            escape [0] = '\\';
            escape [1] = (char) *s;
            bytes = escape;
            len = 2;
        }
        else
        if (*s < 0x20) {
            const char *shortcut = NULL;
            switch (*s) {
                case '\n': shortcut = "\\n"; break;
                case '\r': shortcut = "\\r"; break;
                case '\t': shortcut = "\\t"; break;
                case '\b': shortcut = "\\b"; break;
                case '\f': shortcut = "\\f"; break;
            }
            if (shortcut) {
                bytes = shortcut;
                len = 2;
            }
            else {
                snprintf (escape, sizeof escape, "\\u%04x", *s);
                bytes = escape;
                len = 6;
            }
        }
        else
        if (*s >= 0x80) {
            len = consumed = s_utf8_length (s, strnlen ((const char *) s, 4));
            if (len == 0) {
                bytes = "\xEF\xBF\xBD";     //  U+FFFD keeps the line valid UTF-8
                len = 3;
                consumed = 1;
            }
        }
        if (!s_fits (line, len)) {
            s_put (line, S_MARKER, strlen (S_MARKER));
            break;
        }
        s_put (line, bytes, len);
        s += consumed;
    }
    s_put (line, "\"", 1);
}

static void
s_write_all (const char *data, size_t size)
{
    while (size > 0) {
        ssize_t rc = write (STDERR_FILENO, data, size);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return;             //  nowhere to report a failing stderr
        data += rc;
        size -= (size_t) rc;
    }
}

void
fs_log_write (fs_log_level_t level, const char *msg, ...)
{
    assert (level >= FS_LOG_DEBUG && level <= FS_LOG_ERROR);
    if (level < FS_LOG_DEBUG || level > FS_LOG_ERROR)
        level = FS_LOG_ERROR;   //  without assertions: still a line, never a read out of bounds
    int saved_errno = errno;    //  callers often log and then inspect errno
    char stack [S_STACK_SIZE];
    s_line_t line = { .data = stack, .capacity = sizeof stack };

    char ts [32];
    fs_rfc3339 (fs_now_ms (), ts);
    //  The fixed start is far smaller than the stack buffer.
    s_put (&line, "{\"ts\":\"", 7);
    s_put (&line, ts, strnlen (ts, sizeof ts));
    s_put (&line, "\",\"level\":\"", 11);
    s_put (&line, s_level_names [level], strlen (s_level_names [level]));
    s_put (&line, "\",\"service\":", 12);
    s_put_string (&line, s_service);
    s_put (&line, ",\"msg\":", 7);
    s_put_string (&line, msg);

    va_list args;
    va_start (args, msg);
    const char *key;
    //  Each member starts with a check, so members of empty strings cannot run past S_TAIL.
    while (!line.truncated && (key = va_arg (args, const char *)) && s_fits (&line, 1)) {
        const char *value = va_arg (args, const char *);
        s_put (&line, ",", 1);
        s_put_string (&line, key);
        if (line.truncated) {
            s_put (&line, ":null", 5);      //  the key was cut: keep the object well-formed
            break;
        }
        s_put (&line, ":", 1);
        s_put_string (&line, value);
    }
    va_end (args);
    if (line.truncated)
        s_put (&line, ",\"truncated\":true", 17);
    s_put (&line, "}\n", 2);

    s_write_all (line.data, line.size);
    if (line.on_heap)
        free (line.data);
    errno = saved_errno;
}
