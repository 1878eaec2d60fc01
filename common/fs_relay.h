/*  fs_relay - an actor that sends a service's outbox to its consumers and marks each row
    delivered only on that consumer's acknowledgement. One relay per schema is active at a
    time: it holds a PostgreSQL session advisory lock, released when its connection dies, so a
    replica's relay takes over. Consumers must be idempotent (fs_inbox): delivery is
    at-least-once on the wire, exactly-once in effect.

    When a row is sent again (R = FINESTRA_RELAY_RETRY_MS), per consumer. Rows in flight are
    those this relay sent and the consumer has not acknowledged (at most
    FINESTRA_RELAY_WINDOW). A consumer applies what it receives in order, so an ack for a row
    sent once proves that every row sent before it that reached the consumer was applied
    before it; an ack for a row sent twice may be either copy's and proves only life.
    - slow: while acks keep coming (one at least every R) a row in flight waits, however
      long: a consumer that is behind is not sent its window again;
    - lost: a row in flight for 3 R when a row sent once, after it, has been acknowledged
      (the consumer went on without it: dropped on a reconnect, or by a replica that died)
      is re-sent;
    - silent: no ack for R (dead, restarted, stalled, or everything lost): the oldest row in
      flight, when R old, is re-sent alone as a probe; again while silent, 2 R later, then
      4 R, ... up to 32 R apart (with one endpoint, probes queue for a consumer that is down);
    - answered probe: a re-sent row is acknowledged and then the consumer is silent for R
      again, with no ack meanwhile for a row sent before that re-send (which would show it is
      still working through them): every row in flight sent before it is lost and re-sent,
      once;
    - restart: a relay that starts leading (a restart, a replica taking over) knows nothing
      in flight: every unacknowledged row is sent again at once.
    Replicas of a consumer each apply in order; one lagging more than 3 R behind another may
    get rows re-sent (its inbox makes them duplicates). finestra_relay_resent_total counts
    re-sends (rows with attempts before a restart included); finestra_relay_sent_total first
    sends.

    What a round reads, per consumer: rows due again, by seq; then new rows past the highest
    seq sent (not a walk over the rows in flight), from lower while a transaction in progress
    at an earlier read may still commit a lower seq (seq order is not commit order), from the
    oldest undelivered row when leading starts and once every R. Acks: one UPDATE per wake.

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
