/*  fs_http - each service's HTTP endpoint (libmicrohttpd, its own thread):
    /healthz  200 while the process runs
    /readyz   200 when PostgreSQL, Redis and sockets are ready, else 503 with the reason
    /metrics  Prometheus text
    The endpoint reads only atomics and the read-only metrics registry. */
#ifndef FS_HTTP_H_INCLUDED
#define FS_HTTP_H_INCLUDED

/* Readiness flags the server loop sets; the HTTP thread only reads them. */
typedef struct {
    atomic_bool pg;             /* PostgreSQL answered the last check */
    atomic_bool redis;          /* Redis answered the last check */
    atomic_bool sockets;        /* every socket is bound / connected */
    atomic_bool stopping;       /* shutdown began: not ready any more */
} fs_readiness_t;

typedef struct fs_http_s fs_http_t;

/* Listens on bind:port (port 0 = any free port). NULL (and err filled) on failure. */
fs_http_t *fs_http_new (const char *bind, int port, fs_metrics_t *metrics,
                        fs_readiness_t *readiness, char *err, size_t errlen);
/* The port actually bound. */
int fs_http_port (fs_http_t *self);
void fs_http_destroy (fs_http_t **self_p);

#endif
