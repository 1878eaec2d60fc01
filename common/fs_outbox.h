/*  fs_outbox - the sending half of delivery. An event is written into the emitting
    service's <schema>.outbox, one row per consumer from the routing table, in the SAME
    transaction as the state change that caused it. The relay (fs_relay) sends it. */
#ifndef FS_OUTBOX_H_INCLUDED
#define FS_OUTBOX_H_INCLUDED

/* Inside the caller's open transaction: encodes payload in a fresh envelope (correlation
   and causation from `cause`, which may be NULL) and inserts it for every consumer, then
   NOTIFY finestra_outbox_<schema> so the relay wakes at commit. Writes the new id into
   id_out[FS_UUID_LEN + 1] when not NULL. 0, or -1 (invalid payload: err filled; database
   error: fs_pg_error). A type nobody consumes is logged and inserts nothing. */
int fs_outbox_emit (fs_pg_t *pg, const char *schema, const char *source, fs_routes_t *routes,
                    const fs_type_t *ptype, const void *payload, const fs_envelope_t *cause,
                    char *id_out, fs_proto_error_t *err);

/* One event of a batch for fs_outbox_emit_many. */
typedef struct {
    const fs_type_t *ptype;             /* its definition */
    const void *payload;                /* the message */
    const fs_envelope_t *cause;         /* correlation and causation, may be NULL */
} fs_outbox_item_t;

/* As fs_outbox_emit for n events in ONE statement (rows in the given order, one NOTIFY):
   for a caller emitting many events per transaction. 0, or -1 (an invalid payload: err
   filled, nothing inserted; database error: fs_pg_error). */
int fs_outbox_emit_many (fs_pg_t *pg, const char *schema, const char *source,
                         fs_routes_t *routes, const fs_outbox_item_t *items, size_t n,
                         fs_proto_error_t *err);

#endif
