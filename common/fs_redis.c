/*  fs_redis - a Redis connection from a redis:// URL, rebuilt after any I/O error. */
#include "finestra.h"

#define S_IO_TIMEOUT_MS     2000    /* connect, and each command's send and receive */
#define S_DB_MAX            1000000 /* above any `databases` setting anyone uses */

struct fs_redis_s {
    char *host;                 /* name or address, without IPv6 brackets */
    int port;                   /* TCP port */
    char *password;             /* for AUTH; NULL when the URL has none */
    int db;                     /* for SELECT; 0 needs none */
    redisContext *ctx;          /* NULL when down; dropped, never reused, after an I/O error */
    char error [512];           /* last error, "" when none */
};

static void
s_set_error (fs_redis_t *self, const char *prefix, const char *text)
{
    size_t size = sizeof self->error;
    if (snprintf (self->error, size, "%s%s%s", prefix, text ? ": " : "", text ? text : "")
        >= (int) size)
        memcpy (self->error + size - 4, "...", 4);     //  cut: show it
}

//  hiredis write()s without MSG_NOSIGNAL: writing to a connection the server closed
//  raises SIGPIPE, which kills the process unless the program ignores it. Like libpq, we
//  block it around our calls and swallow one that we caused.
typedef struct {
    sigset_t old;               /* the thread's mask before */
    bool was_pending;           /* a SIGPIPE was already pending: not ours to swallow */
} s_sigpipe_t;

static void
s_sigpipe_block (s_sigpipe_t *state)
{
    sigset_t pipe_set, pending;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, &state->old);
    sigpending (&pending);
    state->was_pending = sigismember (&pending, SIGPIPE) == 1;
}

static void
s_sigpipe_restore (s_sigpipe_t *state)
{
    if (!state->was_pending) {
        sigset_t pipe_set, pending;
        sigemptyset (&pipe_set);
        sigaddset (&pipe_set, SIGPIPE);
        sigpending (&pending);
        if (sigismember (&pending, SIGPIPE) == 1) {
            struct timespec zero = { 0, 0 };
            sigtimedwait (&pipe_set, NULL, &zero);
        }
    }
    pthread_sigmask (SIG_SETMASK, &state->old, NULL);
}

static void
s_drop (fs_redis_t *self)
{
    redisFree (self->ctx);
    self->ctx = NULL;
}

//  ------------------------------------------------------------------ URL

static int
s_hex (char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

//  Parses a decimal in [min, max] from the whole of text[0..len). 0 or -1.
static int
s_number (const char *text, size_t len, long min, long max, int *value)
{
    if (len == 0 || len > 9 || strspn (text, "0123456789") < len)
        return -1;
    long number = 0;
    for (size_t i = 0; i < len; i++)
        number = number * 10 + (text [i] - '0');
    if (number < min || number > max)
        return -1;
    *value = (int) number;
    return 0;
}

//  Fills host, port, password, db from redis://[:password@]host[:port][/db]. Messages never
//  repeat the URL or the password: they end up in logs.
static int
s_parse (fs_redis_t *self, const char *url, char *err, size_t errlen)
{
    #define S_BAD(...) \
        do { snprintf (err, errlen, "bad Redis URL: " __VA_ARGS__); return -1; } while (0)
    if (strncasecmp (url, "rediss://", 9) == 0)
        S_BAD ("TLS (rediss://) is not supported");
    if (strncasecmp (url, "unix://", 7) == 0)
        S_BAD ("unix sockets are not supported, use redis://host:port");
    if (strncasecmp (url, "redis://", 8) != 0)
        S_BAD ("must start with redis://");
    const char *rest = url + 8;
    if (strpbrk (rest, "?#"))
        S_BAD ("query parameters and fragments are not supported");
    if (strpbrk (rest, " \t\r\n"))
        S_BAD ("contains white space");
    size_t authority_len = strcspn (rest, "/");
    const char *path = rest + authority_len;

    //  [:password@]
    const char *hostport = rest;
    const char *at = NULL;
    for (const char *p = rest; p < path; p++)
        if (*p == '@')
            at = p;
    if (at) {
        if (*rest != ':')
            S_BAD ("user names are not supported, write redis://:password@host");
        const char *from = rest + 1;
        if (from == at)
            S_BAD ("empty password");
        //  Zeroed: a refusal half-way still leaves a terminated string for destroy
        self->password = (char *) calloc (1, (size_t) (at - from) + 1);
        if (!self->password)
            S_BAD ("out of memory");
        size_t len = 0;
        for (const char *p = from; p < at; p++) {
            if (*p == '%') {
                int high = p + 2 < at ? s_hex (p [1]) : -1;
                int low = high >= 0 ? s_hex (p [2]) : -1;
                if (low < 0)
                    S_BAD ("bad percent-encoding in the password");
                self->password [len++] = (char) (high * 16 + low);
                p += 2;
            }
            else
                self->password [len++] = *p;
        }
        self->password [len] = 0;
        if (strlen (self->password) != len)
            S_BAD ("the password holds a NUL byte");
        hostport = at + 1;
    }

    //  host[:port], host possibly [IPv6]
    const char *host = hostport, *host_end, *port = NULL;
    if (*hostport == '[') {
        host = hostport + 1;
        host_end = memchr (host, ']', (size_t) (path - host));
        if (!host_end)
            S_BAD ("unclosed [ in the host");
        if (host_end + 1 < path && host_end [1] != ':')
            S_BAD ("unexpected text after ]");
        if (host_end + 1 < path)
            port = host_end + 2;
        if (strspn (host, "0123456789abcdefABCDEF:.") < (size_t) (host_end - host))
            S_BAD ("bad IPv6 address");
    }
    else {
        host_end = memchr (host, ':', (size_t) (path - host));
        if (host_end) {
            port = host_end + 1;
            if (memchr (port, ':', (size_t) (path - port)))
                S_BAD ("IPv6 addresses must be in brackets, e.g. redis://[::1]:6379");
        }
        else
            host_end = path;
        for (const char *p = host; p < host_end; p++)
            if (!isalnum ((unsigned char) *p) && *p != '.' && *p != '-' && *p != '_')
                S_BAD ("bad character in the host name");
    }
    if (host_end == host)
        S_BAD ("missing host");
    self->host = strndup (host, (size_t) (host_end - host));
    if (!self->host)
        S_BAD ("out of memory");
    self->port = 6379;
    if (port && s_number (port, (size_t) (path - port), 1, 65535, &self->port))
        S_BAD ("the port must be a number from 1 to 65535");

    //  [/db]
    self->db = 0;
    if (*path == '/' && path [1]
    &&  s_number (path + 1, strlen (path + 1), 0, S_DB_MAX, &self->db))
        S_BAD ("the database must be a number (redis://host:port/0)");
    return 0;
    #undef S_BAD
}

//  ------------------------------------------------------------------ connection

//  Runs a command during set-up; 0, or -1 with the error set (context not yet dropped)
static int
s_setup_command (fs_redis_t *self, const char *what, redisReply *reply)
{
    if (!reply) {
        s_set_error (self, what, self->ctx->errstr [0] ? self->ctx->errstr : "I/O error");
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        s_set_error (self, what, reply->str);
        rc = -1;
    }
    freeReplyObject (reply);
    return rc;
}

//  One attempt: connect, AUTH, SELECT. 0, or -1 with the error set and no context.
static int
s_try_connect (fs_redis_t *self)
{
    s_drop (self);
    struct timeval timeout = { S_IO_TIMEOUT_MS / 1000, (S_IO_TIMEOUT_MS % 1000) * 1000 };
    self->ctx = redisConnectWithTimeout (self->host, self->port, timeout);
    if (!self->ctx) {
        s_set_error (self, "cannot connect to Redis", "out of memory");
        return -1;
    }
    if (self->ctx->err) {
        char text [256];
        snprintf (text, sizeof text, "%s:%d: %s", self->host, self->port, self->ctx->errstr);
        s_set_error (self, "cannot connect to Redis", text);
        s_drop (self);
        return -1;
    }
    //  Without a command timeout a server that stops answering would block us forever
    if (redisSetTimeout (self->ctx, timeout) != REDIS_OK) {
        s_set_error (self, "cannot set the Redis timeout", self->ctx->errstr);
        s_drop (self);
        return -1;
    }
    redisEnableKeepAlive (self->ctx);
    s_sigpipe_t sigpipe;
    s_sigpipe_block (&sigpipe);
    int rc = 0;
    if (self->password)
        rc = s_setup_command (self, "Redis AUTH failed",
                              (redisReply *) redisCommand (self->ctx, "AUTH %s", self->password));
    if (rc == 0 && self->db != 0)
        rc = s_setup_command (self, "Redis SELECT failed",
                              (redisReply *) redisCommand (self->ctx, "SELECT %d", self->db));
    s_sigpipe_restore (&sigpipe);
    if (rc)
        s_drop (self);
    return rc;
}

fs_redis_t *
fs_redis_new (const char *url, char *err, size_t errlen)
{
    assert (url);
    assert (err && errlen > 0);
    err [0] = 0;
    fs_redis_t *self = (fs_redis_t *) calloc (1, sizeof (fs_redis_t));
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (s_parse (self, url, err, errlen)) {
        fs_redis_destroy (&self);
        return NULL;
    }
    return self;
}

void
fs_redis_destroy (fs_redis_t **self_p)
{
    assert (self_p);
    fs_redis_t *self = *self_p;
    if (!self)
        return;
    s_drop (self);
    free (self->host);
    if (self->password)
        memset (self->password, 0, strlen (self->password));
    free (self->password);
    free (self);
    *self_p = NULL;
}

//  fs_retry's view of a connection attempt
static int
s_attempt (void *self)
{
    return s_try_connect ((fs_redis_t *) self);
}

static const char *
s_why (void *self)
{
    return ((fs_redis_t *) self)->error;
}

int
fs_redis_connect (fs_redis_t *self, int timeout_ms)
{
    assert (self);
    self->error [0] = 0;
    if (self->ctx)
        return 0;
    bool interrupted;
    if (fs_retry ("Redis", timeout_ms, s_attempt, s_why, self, &interrupted) == 0)
        return 0;
    if (interrupted) {
        char text [sizeof self->error];
        snprintf (text, sizeof text, "%.400s", self->error);    //  room for the prefix
        s_set_error (self, "interrupted while connecting to Redis", text);
    }
    fs_warn ("cannot connect to Redis", "reason", self->error);
    return -1;
}

redisReply *
fs_redis_command (fs_redis_t *self, const char *fmt, ...)
{
    assert (self);
    assert (fmt);
    self->error [0] = 0;
    if (!self->ctx) {
        if (s_try_connect (self)) {
            fs_warn ("Redis unreachable", "reason", self->error);
            return NULL;
        }
        fs_info ("Redis reconnected");
    }
    s_sigpipe_t sigpipe;
    s_sigpipe_block (&sigpipe);
    va_list args;
    va_start (args, fmt);
    redisReply *reply = (redisReply *) redisvCommand (self->ctx, fmt, args);
    va_end (args);
    s_sigpipe_restore (&sigpipe);
    if (!reply) {
        //  The context is unusable (a reply may be half read): the next call rebuilds it
        s_set_error (self, "Redis connection lost",
                     self->ctx->errstr [0] ? self->ctx->errstr : "I/O error");
        s_drop (self);
        fs_warn ("Redis command failed", "reason", self->error);
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        s_set_error (self, "Redis error", reply->str);
        freeReplyObject (reply);
        fs_warn ("Redis command failed", "reason", self->error);
        return NULL;
    }
    return reply;
}

int
fs_redis_ping (fs_redis_t *self)
{
    redisReply *reply = fs_redis_command (self, "PING");
    if (!reply)
        return -1;
    bool pong = reply->type == REDIS_REPLY_STATUS && reply->str && streq (reply->str, "PONG");
    if (!pong)
        s_set_error (self, "unexpected answer to PING", reply->str);
    freeReplyObject (reply);
    return pong ? 0 : -1;
}

const char *
fs_redis_error (fs_redis_t *self)
{
    assert (self);
    return self->error;
}
