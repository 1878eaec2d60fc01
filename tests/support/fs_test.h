/*  fs_test - helpers shared by the unit and integration tests; one section per helper file. */
#ifndef FS_TEST_H_INCLUDED
#define FS_TEST_H_INCLUDED

#include "finestra.h"
#include <criterion/criterion.h>

/* -- fs_test_http.c: a minimal HTTP/1.1 client for the services' endpoints --------------- */

/* Sends `method path` to 127.0.0.1:port and reads the whole answer (Connection: close).
   Returns 0 and sets *status, and *headers / *body (malloc'd, NUL-terminated; caller frees)
   when those pointers are not NULL; -1 if the request failed (no connection, timeout after
   10 s, unreadable answer). */
int fs_test_http_request (int port, const char *method, const char *path, int *status,
                          char **headers, char **body);
/* GET path: fs_test_http_request without headers. */
int fs_test_http_get (int port, const char *path, int *status, char **body);

/* -- fs_test_db.c: the test stores (PostgreSQL and Redis started by tests/run) ----------
   Every char * returned here is malloc'd: the caller frees it. When the store's variable is
   unset the calling test fails with a message saying how to start the stores. */

/* FINESTRA_TEST_PG_URL: a superuser URL to the throwaway cluster of this test run. */
char *fs_test_pg_url (void);
/* A fresh, empty database named prefix_<pid>_<counter>_<random> on that cluster; its URL. */
char *fs_test_db_create (const char *prefix);
/* Drops the database of url (made by fs_test_db_create), closing its sessions first. */
void fs_test_db_drop (const char *url);
/* FINESTRA_TEST_REDIS_URL: the Redis of this test run. */
char *fs_test_redis_url (void);
/* A key prefix no other test uses: "test:<name>:<pid>:<random>:". */
char *fs_test_redis_prefix (const char *name);

/* -- fs_test_suite.c, fs_test_ingest.c: real service processes, a contract-v1 publisher -- */
#include "fs_test_suite.h"

/* -- fs_test_command.c: a service binary's command, run as an operator runs it ---------- */

/* `finestra-<service> ARGS...` with FINESTRA_PG_URL, _REDIS_URL, _REDIS_PREFIX, _LOG_LEVEL=warn
   and then settings. With capture, its stdout and stderr are read back into out and err
   (NUL-terminated, cut to the size) when it is waited for; without, stdout goes to /dev/null
   and stderr is the test's. */
typedef struct {
    const char *service;                /* "referral-router": <bin>/finestra-referral-router */
    const char *pg_url;
    const char *redis_url;              /* NULL: fs_test_redis_url () */
    const char *redis_prefix;
    const char *const *settings;        /* more NAME=value, NULL-ended; or NULL */
    bool capture;
    char *out;                          /* with capture: the last stdout waited for */
    size_t out_size;
    char *err;                          /* and stderr */
    size_t err_size;
} fs_test_command_t;

/* The designated initializers of a capturing command of service, its output into the arrays
   out and err: `fs_test_command_t cmd = { FS_TEST_COMMAND_CAPTURE ("intake", o, e) };` */
#define FS_TEST_COMMAND_CAPTURE(service_, out_, err_) \
    .service = (service_), .capture = true, .out = (out_), .out_size = sizeof (out_), \
    .err = (err_), .err_size = sizeof (err_)

/* Starts it with args (NULL-ended; the first 14 are passed); the pid. */
pid_t fs_test_command_spawn (const fs_test_command_t *self, const char *const *args);
/* The same with the arguments listed, NULL after the last. */
pid_t fs_test_command_spawnl (const fs_test_command_t *self, const char *first, ...)
    __attribute__ ((sentinel));
/* Waits for pid (spawned with self), reads its output when capturing, asserts it exited
   (not killed); its exit code. */
int fs_test_command_wait (const fs_test_command_t *self, pid_t pid);
/* Spawns and waits: the exit code. */
int fs_test_command_run (const fs_test_command_t *self, const char *const *args);
/* The same with the arguments listed, NULL after the last (self is evaluated twice). */
#define fs_test_command_runl(self, ...) \
    fs_test_command_wait ((self), fs_test_command_spawnl ((self), __VA_ARGS__))
/* Runs against the suite's database, Redis and key prefix. */
void fs_test_command_use_suite (fs_test_command_t *self, const fs_test_suite_t *suite);

/* -- fs_test_curve.c: CURVE keys in a temporary directory ------------------------------ */

typedef struct {
    char dir [64];                      /* /tmp/finestra-<tag>-XXXXXX */
    char server_cert [128];             /* <dir>/<server_file>.key (and its _secret) */
    char clients [128];                 /* <dir>/<clients>: the listed clients' public keys */
    zcert_t *server;                    /* the server's pair, name server_name */
    zcert_t *allowed;                   /* listed: <clients>/<allowed>.key, name allowed */
    zcert_t *unknown;                   /* not listed, name unknown */
} fs_test_curve_keys_t;

void fs_test_curve_keys_make (fs_test_curve_keys_t *keys, const char *tag,
                              const char *server_file, const char *server_name,
                              const char *clients, const char *allowed, const char *unknown);
/* Destroys the certificates and removes the directory. */
void fs_test_curve_keys_destroy (fs_test_curve_keys_t *keys);

/* -- fs_test_pg.c: one statement's first value --------------------------------------------- */

/* Runs sql with n text parameters on url (asserts it succeeds); the first column of the first
   row, "" when none or NULL (malloc'd). */
char *fs_test_pg_text (const char *url, const char *sql, int n, const char *const *values);
/* Expects (cr_expect) that value of sql, with id as $1 (no parameter when id is NULL), to be
   expected. */
void fs_test_pg_expect_text (const char *url, const char *sql, const char *id,
                             const char *expected);
/* sql (no parameters) must give exactly one row (asserted): its first value, "" for NULL
   (malloc'd). */
char *fs_test_pg_one (const char *url, const char *sql);
/* Expects (cr_expect) that value to be expected. */
void fs_test_pg_expect_one (const char *url, const char *sql, const char *expected);

/* -- fs_test_envelope.c: bus envelopes ---------------------------------------------------- */

/* An encoded notification.queued envelope from notification (a fresh notification_id,
   recipient "someone", topic "x", channel); its length in *len, its envelope id into id_out
   when not NULL. Malloc'd. */
char *fs_test_envelope_queued (const char *channel, size_t *len, char *id_out);

/* -- fs_test_router.c: the referral-router's directory and intake's messages to it -------- */

/* The header line of a services CSV (load-directory's services.csv). */
#define FS_TEST_ROUTER_SERVICES_HEADER \
    "code,kind,name,territory_scope,territory_codes,age_min,age_max,residency,needs,conditions," \
    "criteria_text,capacity,delivery,delivery_target,demo\n"

/* Writes services_csv and territory_csv to /tmp/test_<tag>.<pid>.*.csv and runs
   `load-directory` with them and the demo needs.csv and zcodes.csv (router: a capturing
   fs_test_command_t); asserts it succeeds. */
void fs_test_router_load (const fs_test_command_t *router, const char *tag,
                          const char *services_csv, const char *territory_csv);
/* A suite named tag with settings ("NAME=VALUE", NULL-terminated; NULL: none) that runs
   services (space-separated, started in that order), router set to it, the directory loaded
   from the CSVs (fs_test_router_load). */
fs_test_suite_t *fs_test_router_suite (fs_test_command_t *router, const char *tag,
                                       const char *const *settings, const char *services,
                                       const char *services_csv, const char *territory_csv);
/* Sends payload of type from intake on the suite's referral-router bus; asserts `applied`. */
void fs_test_router_send (fs_test_suite_t *suite, const fs_type_t *type, const void *payload);

/* What an intake.referral_requested carries beyond the fixed person (Laia Puig Serra, DNI
   12345678Z, Carrer Nou 3, 08001, from primary-care, centre CSS01). */
typedef struct {
    const char *event_type;             /* default health.social_risk_detected */
    const char *level;                  /* suggested_level */
    const char *codes [4];              /* icd10_codes */
    const char *needs [4];
    const char *birth;                  /* default 1985-03-02 */
    const char *hood;                   /* default 01 */
    const char *residency;              /* default lives_in_city */
    int minors;                         /* -1: absent */
    const char *urgency;                /* default preferent */
} fs_test_router_req_t;

/* Sends intake.referral_requested for person about event_ref (a fresh case id). */
void fs_test_router_request (fs_test_suite_t *suite, const char *event_ref, const char *person,
                             const fs_test_router_req_t *r);
/* The same request encoded as intake's envelope, not sent (to send several at once): its
   length in *len, its envelope id into id_out when not NULL. Malloc'd. */
char *fs_test_router_request_encode (const char *event_ref, const char *person,
                                     const fs_test_router_req_t *r, size_t *len, char *id_out);
/* Sends intake.consent_changed; recipients and categories space-separated (up to 4 each). */
void fs_test_router_consent (fs_test_suite_t *suite, const char *consent_id, const char *person,
                             const char *status, const char *recipients, const char *categories,
                             const char *expires_at);

/* -- fs_test_relay.c: a real relay actor on a fresh outbox, and a bus consumer ------------ */

#define FS_TEST_CONSUMER_MAX 400        /* envelopes a test's consumer takes at most */

/* The consumer: a bound ROUTER; what arrived, in order, and how often each envelope. */
typedef struct {
    zsock_t *router;                    /* the consumer's bus ROUTER */
    zframe_t *peer;                     /* the relay's identity (last seen) */
    char ids [FS_TEST_CONSUMER_MAX][FS_UUID_LEN + 1];   /* ids in order of first arrival */
    int counts [FS_TEST_CONSUMER_MAX];  /* receipts of each */
    int nids;                           /* distinct ids */
    int receipts;                       /* all receipts */
} fs_test_consumer_t;

/* The relay under test (notification's outbox, routed to reporting: the consumer) and what
   it runs on. */
typedef struct {
    char *pg_url;                       /* a fresh database */
    fs_pg_t *pg;                        /* the test's own connection (emitting) */
    fs_config_t *config;
    fs_routes_t *routes;
    fs_metrics_t *metrics;
    fs_relay_args_t args;               /* outlives the actor */
    zactor_t *relay;
    fs_test_consumer_t consumer;
} fs_test_relay_t;

/* A fresh database with the outbox, the consumer bound, the settings in the environment
   (FINESTRA_RELAY_RETRY_MS = retry_ms); the relay not started. */
fs_test_relay_t *fs_test_relay_new (const char *retry_ms);
/* Stops the relay if running, drops the database. */
void fs_test_relay_destroy (fs_test_relay_t **self_p);
void fs_test_relay_start (fs_test_relay_t *self);
void fs_test_relay_stop (fs_test_relay_t *self);
/* One notification.queued event into the outbox on pg, in the transaction open there. */
void fs_test_relay_emit_on (fs_test_relay_t *self, fs_pg_t *pg);
/* Receives one envelope within timeout_ms: its index in the consumer's ids, -1 when none. */
int fs_test_consumer_receive (fs_test_consumer_t *self, int timeout_ms);
/* Acknowledges envelope index (`applied`), as fs_inbox does. */
void fs_test_consumer_ack (fs_test_consumer_t *self, int index);
/* Receives and acknowledges at once whatever comes within ms (a prompt consumer). */
void fs_test_consumer_drain (fs_test_consumer_t *self, int ms);

/* -- fs_test_person.c: events about one person, through intake's ingest socket ----------- */

/* The subject of the events (sex NULL: not given); the address is where the person lives. */
typedef struct {
    const char *dni, *given, *family, *birth, *sex;
    const char *street, *number, *postcode;
} fs_test_person_t;

/* Where the events go and what they share: ids <id_prefix>-<n>, occurred_at at. */
typedef struct {
    fs_test_suite_t *suite;             /* its intake takes the events */
    const char *id_prefix;
    const char *at;
    int counter;
} fs_test_publisher_t;

/* The encoded event of type dt about who (data cleared), for tests that alter bytes. */
char *fs_test_person_encode (fs_test_publisher_t *self, const fs_test_person_t *who,
                             const fs_type_t *dt, void *data, size_t *len);
/* Publishes an event of type dt about who (data cleared); asserts `accepted`; intake's ref
   into ref (FS_UUID_LEN + 1). */
void fs_test_person_publish (fs_test_publisher_t *self, const fs_test_person_t *who,
                             const fs_type_t *dt, void *data, char *ref);
/* Waits (asserts, 20 s) until intake processed the event of ref without error. */
void fs_test_person_processed (fs_test_publisher_t *self, const char *ref);
/* emergency.intervention of kind gender_violence (need gender_violence), urgent, no minors. */
void fs_test_person_gender_violence (fs_test_publisher_t *self, const fs_test_person_t *who,
                                     char *ref);
/* housing.eviction_scheduled (need housing) of a household of size, no minors. */
void fs_test_person_eviction (fs_test_publisher_t *self, const fs_test_person_t *who, int size,
                              char *ref);
/* register.address_changed: the padró registers who at who's address. */
void fs_test_person_registered (fs_test_publisher_t *self, const fs_test_person_t *who,
                                char *ref);

/* Other sections follow. */

#endif
