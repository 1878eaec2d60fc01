/*  fs_http - the /healthz, /readyz and /metrics endpoint on libmicrohttpd's own thread. */
#include "finestra.h"
#include <microhttpd.h>     //  only this class speaks HTTP, so it stays out of finestra.h

#define S_CONNECTION_LIMIT 64   /* probes and scrapers are few; more is a misbehaving client */
#define S_TIMEOUT_S        10   /* an idle or slow connection is closed after this long */
#define S_TEXT             "text/plain; charset=utf-8"
#define S_PROMETHEUS       "text/plain; version=0.0.4; charset=utf-8"

struct fs_http_s {
    struct MHD_Daemon *daemon;  /* the listening daemon and its thread */
    fs_metrics_t *metrics;      /* rendered by /metrics; read-only once serving */
    fs_readiness_t *readiness;  /* read by /readyz, through atomics only */
    int port;                   /* port actually bound */
    char error [256];           /* last libmicrohttpd message, reported when start fails */
};

//  libmicrohttpd's messages go to the log. They are also kept, because a failed start
//  explains itself only here (no thread runs then, so nothing races on error).
static void
s_log (void *cls, const char *format, va_list args)
{
    fs_http_t *self = (fs_http_t *) cls;
    char message [sizeof self->error];
    vsnprintf (message, sizeof message, format, args);
    message [strcspn (message, "\r\n")] = 0;
    memcpy (self->error, message, sizeof message);
    fs_warn ("http: libmicrohttpd", "error", message);
}

//  Queues a response; body is copied unless owned, in which case it is freed by MHD.
static enum MHD_Result
s_reply (struct MHD_Connection *connection, unsigned int status, const char *content_type,
         char *body, bool owned)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        strlen (body), body, owned? MHD_RESPMEM_MUST_FREE: MHD_RESPMEM_MUST_COPY);
    if (!response) {
        if (owned)
            free (body);
        return MHD_NO;          //  MHD closes the connection
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_readyz (fs_http_t *self, struct MHD_Connection *connection)
{
    fs_readiness_t *readiness = self->readiness;
    const char *reasons [4];
    size_t count = 0;
    if (!atomic_load (&readiness->pg))
        reasons [count++] = "postgresql down";
    if (!atomic_load (&readiness->redis))
        reasons [count++] = "redis down";
    if (!atomic_load (&readiness->sockets))
        reasons [count++] = "sockets not ready";
    if (atomic_load (&readiness->stopping))
        reasons [count++] = "stopping";
    if (count == 0)
        return s_reply (connection, MHD_HTTP_OK, S_TEXT, "ready\n", false);

    char text [128] = "not ready: ";
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            strcat (text, ", ");
        strcat (text, reasons [i]);      //  fits: the four reasons total under 64 bytes
    }
    strcat (text, "\n");
    return s_reply (connection, MHD_HTTP_SERVICE_UNAVAILABLE, S_TEXT, text, false);
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size,
          void **request_state)
{
    fs_http_t *self = (fs_http_t *) cls;
    //  Every answer is queued at once: no route reads a request body.
    if (!streq (method, MHD_HTTP_METHOD_GET) && !streq (method, MHD_HTTP_METHOD_HEAD))
        return s_reply (connection, MHD_HTTP_METHOD_NOT_ALLOWED, S_TEXT,
                        "method not allowed\n", false);
    if (streq (url, "/healthz"))
        return s_reply (connection, MHD_HTTP_OK, S_TEXT, "ok\n", false);
    if (streq (url, "/readyz"))
        return s_readyz (self, connection);
    if (streq (url, "/metrics")) {
        char *text = self->metrics? fs_metrics_render (self->metrics): strdup ("");
        if (!text)
            return s_reply (connection, MHD_HTTP_INTERNAL_SERVER_ERROR, S_TEXT,
                            "out of memory\n", false);
        return s_reply (connection, MHD_HTTP_OK, S_PROMETHEUS, text, true);
    }
    return s_reply (connection, MHD_HTTP_NOT_FOUND, S_TEXT, "not found\n", false);
}

fs_http_t *
fs_http_new (const char *address, int port, fs_metrics_t *metrics, fs_readiness_t *readiness,
             char *err, size_t errlen)
{
    assert (readiness);
    char ignored [8];
    if (!err || errlen == 0) {
        err = ignored;
        errlen = sizeof ignored;
    }
    *err = 0;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (!address || inet_pton (AF_INET, address, &addr.sin_addr) != 1) {
        snprintf (err, errlen, "HTTP bind address \"%s\": expected an IPv4 address such as "
                  "127.0.0.1", address? address: "");
        return NULL;
    }
    if (port < 0 || port > 65535) {
        snprintf (err, errlen, "HTTP port %d: expected 0..65535 (0 = any free port)", port);
        return NULL;
    }
    fs_http_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "HTTP endpoint: out of memory");
        return NULL;
    }
    self->metrics = metrics;
    self->readiness = readiness;
    self->daemon = MHD_start_daemon (
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t) port, NULL, NULL,
        s_answer, self,
        MHD_OPTION_EXTERNAL_LOGGER, s_log, self,        //  first, so it sees every message
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) S_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) S_TIMEOUT_S,
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (err, errlen, "HTTP endpoint: cannot listen on %s:%d: %s", address, port,
                  *self->error? self->error: "libmicrohttpd failed to start");
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    self->port = info? info->port: port;
    return self;
}

int
fs_http_port (fs_http_t *self)
{
    assert (self);
    return self->port;
}

void
fs_http_destroy (fs_http_t **self_p)
{
    assert (self_p);
    fs_http_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}
