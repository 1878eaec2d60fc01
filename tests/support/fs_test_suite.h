/*  fs_test_suite.h - real service processes for integration tests (fs_test_suite.c) and a
    contract-v1 publisher (fs_test_ingest.c). Included by fs_test.h. */
#ifndef FS_TEST_SUITE_H_INCLUDED
#define FS_TEST_SUITE_H_INCLUDED

#include <sys/types.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#define FS_TEST_SERVICES 5
#define FS_TEST_MAX_EXTRA 16

typedef struct {
    char *pg_url;                       /* a fresh database for this suite */
    char *redis_url;                    /* the test Redis */
    char *redis_prefix;                 /* unique key prefix for this suite */
    int bus_ports [FS_TEST_SERVICES];   /* bus ROUTER port per service (fs_services order) */
    int http_ports [FS_TEST_SERVICES];  /* HTTP port per service */
    int ingest_port;                    /* intake's ingest ROUTER */
    char ingest_endpoint [64];          /* tcp://127.0.0.1:<ingest_port> */
    pid_t pids [FS_TEST_SERVICES];      /* running processes, 0 when stopped */
    char log_dir [256];                 /* each service's log: <log_dir>/<name>.log */
    char extra [FS_TEST_MAX_EXTRA][256];/* more NAME=value settings for the children */
    int nextra;                         /* how many */
    char feed_endpoint [64];            /* the referral-router's feed ROUTER (a free port) */
} fs_test_suite_t;

/* A free TCP port on 127.0.0.1 (bound and released). */
int fs_test_free_port (void);
fs_test_suite_t *fs_test_suite_new (const char *name);
/* Adds a setting for services started afterwards. */
void fs_test_suite_setenv (fs_test_suite_t *self, const char *name, const char *value);
/* Starts one service and waits until its /readyz answers 200 (asserts otherwise). */
void fs_test_suite_start (fs_test_suite_t *self, const char *service);
void fs_test_suite_start_all (fs_test_suite_t *self);
/* Starts without waiting; returns the pid. */
pid_t fs_test_suite_spawn (fs_test_suite_t *self, const char *service);
/* Starts one more process of service (a replica, not tracked by the suite) with HTTP on
   http_port and settings (NAME=value strings that outlive it, NULL-ended) after the suite's;
   logs to <log_dir>/<label>.log; waits until ready (asserts otherwise). Stop it with
   fs_test_pid_stop. */
pid_t fs_test_suite_start_replica (fs_test_suite_t *self, const char *service, const char *label,
                                   int http_port, const char *const *settings);
/* fs_test_suite_stop for a pid of one's own. */
int fs_test_pid_stop (pid_t pid, int sig, int timeout_ms);
/* Sends sig and waits up to timeout_ms: the exit code, 128+signal, or -2 if it had to be
   SIGKILLed after the timeout, -1 if not running. */
int fs_test_suite_stop (fs_test_suite_t *self, const char *service, int sig, int timeout_ms);
/* Kills what runs, drops the database. */
void fs_test_suite_destroy (fs_test_suite_t **self_p);

/* First column of the first row as a long (-1 when no row or NULL). */
long fs_test_pg_long (const char *url, const char *sql);
/* Polls until the query gives expected or timeout_ms passes. */
bool fs_test_pg_wait (const char *url, const char *sql, long expected, int timeout_ms);

/* A valid health.social_risk_detected event (contract v1), msgpack-encoded by hand. */
zchunk_t *fs_test_event_social_risk (const char *id, const char *source, const char *urgency);
/* Sends one event frame over a REQ socket; decodes the receipt. 0, or -1 (no/bad answer). */
int fs_test_publish (const char *endpoint, const void *data, size_t len,
                     fs_ingest_receipt_t *receipt, int timeout_ms);
/* Publishes fs_test_event_social_risk (id, "primary-care", "urgent") to the suite's intake
   and asserts it is accepted (a receipt within 10 s). */
void fs_test_publish_accepted (fs_test_suite_t *suite, const char *id);

#endif
