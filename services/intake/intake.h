/*  intake.h - the intake service's internal header. */
#ifndef INTAKE_H_INCLUDED
#define INTAKE_H_INCLUDED

#include "finestra.h"

extern const fs_service_t intake_service;
extern const fs_migration_t intake_migrations[];

/* intake_ingest.c: the ingest ROUTER (contract v1, proto/INGEST.md): frames, validation,
   receipts. init registers its metrics; start binds FINESTRA_INTAKE_ENDPOINT into the loop. */
int intake_ingest_init (fs_server_t *server);
int intake_ingest_start (fs_server_t *server);
void intake_ingest_stop (fs_server_t *server);

/* intake_store.c: storing validated events, many per transaction. */
typedef enum {
    INTAKE_PENDING,                 /* not stored yet */
    INTAKE_ACCEPTED,                /* stored now, ref is new */
    INTAKE_DUPLICATE,               /* stored before with the same content, ref is the old one */
    INTAKE_CONFLICT                 /* stored before with other content */
} intake_outcome_t;

/* One validated event on its way to PostgreSQL. */
typedef struct {
    fs_ingest_event_t event;        /* the decoded event (data still as raw bytes) */
    const fs_type_t *dtype;         /* its data's definition, from the catalogue */
    void *data;                     /* its decoded data (owned) */
    char *bytes;                    /* canonical encoding (owned), what is stored and hashed */
    size_t len;                     /* its length */
    char hash [65];                 /* sha256 of bytes, hex */
    char ref [FS_UUID_LEN + 1];     /* out: intake's id for the stored event */
    intake_outcome_t outcome;       /* out */
} intake_item_t;

/* Fills bytes and hash: the same content gives the same hash whatever the key order.
   0, or -1 with err filled. */
int intake_store_prepare (intake_item_t *item, fs_proto_error_t *err);
/* Stores n prepared items in ONE transaction on pg (an ingest writer's own connection) and
   sets every outcome. 0, or -1 when the database failed: then nothing was stored and
   outcomes stay INTAKE_PENDING. Safe in several threads at once, each with its own pg. */
int intake_store_batch (fs_server_t *server, fs_pg_t *pg, intake_item_t *items, size_t n);
/* Frees what an item owns and zeroes it. */
void intake_item_clear (intake_item_t *item);

/* intake_curve.c: CURVE security on the ingest socket (FINESTRA_CURVE=on), with a ZAP
   handler (czmq zauth) that allows only the certificates in FINESTRA_CURVE_CLIENTS_DIR.
   Each certificate's `name` metadata is the `source` that key may publish as. */
typedef struct intake_curve_s intake_curve_t;
/* Sets sock up as a CURVE server (call BEFORE binding it) and starts the ZAP handler.
   With FINESTRA_CURVE=off: returns an object that allows everything (NULL sockets stay
   plain). NULL with err filled on failure (bad certificate, missing directory). */
intake_curve_t *intake_curve_new (zsock_t *sock, const fs_config_t *config, char *err, size_t errlen);
void intake_curve_destroy (intake_curve_t **self_p);
/* 0 when the peer that sent `frame` may publish as `source` (always 0 with CURVE off);
   -1 otherwise (then the receipt is `source_mismatch`). */
int intake_curve_check_source (intake_curve_t *self, zframe_t *frame, const char *source);

/* intake_process.c: what intake does with an accepted event, after the receipt.
   FINESTRA_INTAKE_PROCESS_WORKERS actors, each with its own PostgreSQL connection, claim
   unprocessed events in seq order (FOR UPDATE SKIP LOCKED), apply each (registry,
   households, consent, triage, assignment, cases), mark them processed and emit the internal
   events, in ONE transaction per batch. They wake when this process's ingest stored a batch
   (intake_process_wake) and on a poll timer (other replicas' events). FINESTRA_INTAKE_PROCESS=off: not run. docs/ARCHITECTURE.md has the design. */
typedef struct {
    const fs_config_t *config;      /* settings (not owned) */
    fs_routes_t *routes;            /* who consumes what we emit (not owned) */
    fs_counter_t *processed;        /* events processed (applied or marked with an error) */
    fs_counter_t *batches;          /* transactions committed */
    fs_counter_t *errors;           /* events that could not be applied */
    fs_counter_t *failures;         /* transactions rolled back (retried) */
    fs_histogram_t *lag;            /* age of the oldest event of a batch when claimed */
    int wake_fd;                    /* the starting worker's eventfd (-1: timer only) */
} intake_process_args_t;

int intake_process_init (fs_server_t *server);
int intake_process_start (fs_server_t *server);
void intake_process_stop (fs_server_t *server);
/* Wakes this process's workers: a batch of events was committed. Any thread, cheap (a write
   to an eventfd per worker); nothing happens when the processor is off or stopped. */
void intake_process_wake (void);
/* The actor itself (zactor_new (intake_process_actor, args)): args outlive it. */
void intake_process_actor (zsock_t *pipe, void *args);

/* `load-territory TERRITORY_CSV CENTRES_CSV [POSTCODES_CSV]`: upserts the territory. */
int intake_territory_load (fs_server_t *server, int argc, char **argv);

/* intake_admin.c: the registry tools (candidates, merge, unmerge, dismiss, unplaced, place).
   An exit code, or -1 when argv[0] is none of them. */
int intake_admin_command (fs_server_t *server, int argc, char **argv);

#endif
