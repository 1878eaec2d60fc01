/*  fs_inbox - the receiving half of delivery. For each envelope arriving on a service's bus
    ROUTER: decode; in ONE transaction record its id in <schema>.inbox and apply it (the
    service's handler, which may emit further events through the outbox); commit; then
    acknowledge. Envelopes already waiting on the socket (up to 64) share that transaction,
    each under its own savepoint (one failing undoes only its own work), so one commit and
    one flush to disk serve them all; their acks go after that commit. An id already in the
    inbox is acknowledged `duplicate` and not applied again.
    A handler may also apply a run of envelopes at once (fs_inbox_batch_set): consecutive
    envelopes whose types have the same batch function form a run, whose inbox rows go in one
    statement and whose function is called once, all under one savepoint; if that fails, the
    run is undone and applied one at a time with fn (each under its own savepoint), so one
    bad envelope never holds back the others.
    An envelope that can never be applied (malformed, unknown type, invalid payload, or a
    handler's FS_HANDLER_REJECT) is recorded in <schema>.dead_letter and acknowledged
    `rejected` with the reason, so the sender stops re-sending it and nothing is silently lost. */
#ifndef FS_INBOX_H_INCLUDED
#define FS_INBOX_H_INCLUDED

typedef struct fs_server_s fs_server_t;

/* Handler results. */
#define FS_HANDLER_OK       0   /* applied: commit and ack */
#define FS_HANDLER_RETRY   -1   /* transient (e.g. database): roll back, no ack, sender re-sends */
#define FS_HANDLER_REJECT  -2   /* never applicable: roll back, dead-letter, ack rejected */

/* What a handler gets: the open transaction, and the envelope it is applying. */
typedef struct fs_inbox_ctx_s fs_inbox_ctx_t;
struct fs_inbox_ctx_s {
    fs_server_t *server;        /* the service (for its pg, redis, config, routes) */
    fs_pg_t *pg;                /* inside the inbox transaction */
    const fs_envelope_t *env;   /* the envelope being applied (payload decoded) */
    char reason[256];           /* set on FS_HANDLER_REJECT: why */
    uint64_t batch;             /* the batch (one transaction) it is applied in: unique in
                                   the process, never 0; what is read once per batch */
    /* Optional, set by a handler: runs after a successful commit (e.g. refresh a Redis
       cache from the committed value). Must not fail the message: it is applied already. */
    void (*after_commit) (fs_inbox_ctx_t *ctx);
    char after_data[256];       /* what after_commit needs, written by the handler */
    int result;                 /* batch: FS_HANDLER_OK, or FS_HANDLER_REJECT with reason */
};

typedef int (fs_handler_fn) (fs_inbox_ctx_t *ctx);

/* Applies n fresh envelopes together (of the types it was set for, in arrival order; their
   inbox rows are written; duplicates are not passed). Sets ctx[i]->result =
   FS_HANDLER_REJECT (and its reason) for one that can never be applied, before writing
   anything for it: it is dead-lettered, the others kept.
   Returns FS_HANDLER_OK when the others are applied; anything else (or a failed statement)
   undoes the whole run, which is then applied one at a time with fn. */
typedef int (fs_batch_fn) (fs_inbox_ctx_t **ctx, size_t n);

typedef struct {
    const char *type;           /* message type handled */
    fs_handler_fn *fn;          /* applies it */
} fs_handler_t;

/* Gives the handler of type a batch function (a service's init hook; the process's inbox
   then applies runs of the types sharing it with it, and fn stays the one-at-a-time path).
   One service per process: the setting is the process's. 0, or -1 when more than 32. */
int fs_inbox_batch_set (const char *type, fs_batch_fn *batch);

/* The inbox's counters, registered once by the server before HTTP starts. */
typedef struct {
    fs_counter_t *applied;          /* envelopes applied */
    fs_counter_t *duplicate;        /* envelopes already applied, acknowledged again */
    fs_counter_t *rejected;         /* envelopes dead-lettered */
    fs_counter_t *retried;          /* envelopes left for the sender to re-send */
    fs_histogram_t *apply_seconds;  /* time to apply one envelope, commit included */
} fs_inbox_metrics_t;

void fs_inbox_register (fs_inbox_metrics_t *counters, fs_metrics_t *metrics);

/* Emits an event caused by the envelope being applied (same transaction). */
int fs_inbox_emit (fs_inbox_ctx_t *ctx, const fs_type_t *ptype, const void *payload);

/* Handles one message from the bus ROUTER (frames: identity, envelope;
   the answer is identity, ack). Used by
   fs_server's loop; returns 0 (the loop goes on whatever happened to the message). */
int fs_inbox_handle (fs_server_t *server, zsock_t *router);

#endif
