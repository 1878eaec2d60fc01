/*  fs_inbox - the receiving half of delivery. For each envelope arriving on a service's bus
    ROUTER: decode; in ONE transaction record its id in <schema>.inbox and apply it (the
    service's handler, which may emit further events through the outbox); commit; then
    acknowledge. An id already in the inbox is acknowledged `duplicate` and not applied
    again. An envelope that can never be applied (malformed, unknown type, invalid payload,
    or a handler's FS_HANDLER_REJECT) is recorded in <schema>.dead_letter and acknowledged
    `rejected` with the reason, so the sender stops re-sending it and nothing is silently lost. */
#ifndef FS_INBOX_H_INCLUDED
#define FS_INBOX_H_INCLUDED

typedef struct fs_server_s fs_server_t;

/* Handler results. */
#define FS_HANDLER_OK       0   /* applied: commit and ack */
#define FS_HANDLER_RETRY   -1   /* transient (e.g. database): roll back, no ack, sender re-sends */
#define FS_HANDLER_REJECT  -2   /* never applicable: roll back, dead-letter, ack rejected */

/* What a handler gets: the open transaction, and the envelope it is applying. */
typedef struct {
    fs_server_t *server;        /* the service (for its pg, redis, config, routes) */
    fs_pg_t *pg;                /* inside the inbox transaction */
    const fs_envelope_t *env;   /* the envelope being applied (payload decoded) */
    char reason[256];           /* set on FS_HANDLER_REJECT: why */
} fs_inbox_ctx_t;

typedef int (fs_handler_fn) (fs_inbox_ctx_t *ctx);

typedef struct {
    const char *type;           /* message type handled */
    fs_handler_fn *fn;          /* applies it */
} fs_handler_t;

/* Emits an event caused by the envelope being applied (same transaction). */
int fs_inbox_emit (fs_inbox_ctx_t *ctx, const fs_type_t *ptype, const void *payload);

/* Handles one message from the bus ROUTER (frames: identity, empty, envelope). Used by
   fs_server's loop; returns 0 (the loop goes on whatever happened to the message). */
int fs_inbox_handle (fs_server_t *server, zsock_t *router);

#endif
