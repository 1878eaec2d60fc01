/*  fs_relay - an actor that sends a service's outbox to its consumers and marks each row
    delivered only on that consumer's acknowledgement. Unacknowledged rows are re-sent after
    FINESTRA_RELAY_RETRY_MS and after any restart. One relay per schema is active at a time:
    it holds a PostgreSQL session advisory lock, released when its connection dies, so a
    replica's relay takes over. Consumers must be idempotent (fs_inbox): delivery is
    at-least-once on the wire, exactly-once in effect.

    zactor_new (fs_relay_actor, args) with args an fs_relay_args_t* that must outlive the
    actor. It signals once started; $TERM stops it. */
#ifndef FS_RELAY_H_INCLUDED
#define FS_RELAY_H_INCLUDED

typedef struct {
    const fs_config_t *config;  /* settings (PG URL, endpoints, timings) */
    const char *service;        /* emitting service, e.g. "intake" */
    const char *schema;         /* its schema, e.g. "intake" */
    fs_routes_t *routes;        /* who consumes what (read-only) */
    fs_counter_t *sent;         /* envelopes sent (first time) */
    fs_counter_t *resent;       /* envelopes re-sent after the retry time */
    fs_counter_t *delivered;    /* acknowledged applied or duplicate */
    fs_counter_t *rejected;     /* acknowledged rejected (dead-lettered by the consumer) */
} fs_relay_args_t;

/* Registers the relay's counters in metrics and stores them in args (before HTTP starts). */
void fs_relay_register (fs_relay_args_t *args, fs_metrics_t *metrics);

void fs_relay_actor (zsock_t *pipe, void *args);

#endif
