/*  router_feed.h - the referral-router's durable outbound feed (proto/FEED.md): a log per
    feed name in referral_router.feed_items, appended inside the transaction of the change
    that causes the item, read by city systems from their own cursor. */
#ifndef ROUTER_FEED_H_INCLUDED
#define ROUTER_FEED_H_INCLUDED

#define ROUTER_FEED_NAME_MAX 64         /* bytes of a feed name */
#define ROUTER_FEED_CHANNEL "finestra_feed"  /* NOTIFY channel; the payload is the feed */

/* A feed name: 1-64 of [a-z0-9-]. */
bool router_feed_name_valid (const char *name);

/* Appends one item to feed `feed` inside the caller's open transaction on pg. item_type:
   "referral.requested" (a referral for a target reached by that feed, payload = the data
   package allowed by the level and consent), "referral.status_changed" (for the sender's
   feed), "referral.overdue". payload: a msgpack map (bytes), already encoded by the caller
   from a messages.def type. referral_id and correlation_id are UUIDs or NULL. Returns 0 or
   -1 (database error, or a bad feed name / empty payload with fs_pg_error saying so: roll
   back). Also NOTIFYs readers waiting on the feed (delivered on commit). Appends to one feed
   are serialised until the caller commits: append last in the transaction, and when one
   transaction appends to several feeds, in the order of their names. */
int router_feed_append (fs_pg_t *pg, const char *feed, const char *item_type,
                        const char *referral_id, const char *correlation_id,
                        const char *payload, size_t len);

/* One item for router_feed_append_many (as router_feed_append's arguments). */
typedef struct {
    const char *feed;
    const char *item_type;
    const char *referral_id;            /* or NULL */
    const char *correlation_id;         /* or NULL */
    const char *payload;
    size_t len;
} router_feed_item_t;

/* As router_feed_append for n items in two statements: the feeds involved are locked once,
   in the order of their names (so transactions appending to several feeds never wait on
   each other in a cycle), then all items are inserted in the order given. 0 or -1. */
int router_feed_append_many (fs_pg_t *pg, const router_feed_item_t *items, size_t n);

/* A JSON string of value (null for NULL) appended to chunk; bytes as a JSON string of hex.
   For statements taking their rows as one jsonb parameter. */
void router_json_str (zchunk_t *chunk, const char *value);
void router_json_hex (zchunk_t *chunk, const char *data, size_t len);
/* "key":value (a JSON string or null), after a comma unless first. */
void router_json_key (zchunk_t *chunk, const char *key, const char *value, bool first);

/* Whom router_feed_tell tells. */
#define ROUTER_FEED_SENDER 1            /* the feed of the referral's source (sender_feeds) */
#define ROUTER_FEED_TARGET 2            /* the feeds it was delivered to (referral.requested) */

/* Inside the caller's transaction: encodes msg (of type, whose wire name is the item type)
   and appends it to the referral's sender feed and/or target feeds (whom), in the order of
   their names; none when the sender is inside the suite or the target is not reached by
   feed. The closed loop: router_referral_transition calls it for every status change.
   0, or -1 (database error or invalid msg, fs_pg_error says: roll back). */
int router_feed_tell (fs_pg_t *pg, const char *referral_id, const char *correlation_id,
                      int whom, const fs_type_t *type, const void *msg);

/* The feed endpoint (FINESTRA_ROUTER_FEED_ENDPOINT; empty = none on this replica): an actor
   with its own ROUTER and PostgreSQL connection. init registers its metrics (before HTTP);
   start binds (CURVE first when on) and returns 0, or -1 when it cannot; stop ends it. */
int router_feed_init (fs_server_t *server);
int router_feed_start (fs_server_t *server);
void router_feed_stop (fs_server_t *server);
/* `sender-feed SOURCE FEED|--none`, `sender-feed --list`: which feed an external source
   is told on. An exit code. */
int router_feed_command (fs_server_t *server, int argc, char **argv);

/* ---- router_deadline.c: deadlines to accept, escalation ------------------------------ */

/* Its counter (init hook); its timer in the server loop (start hook) and its end. */
int router_deadline_init (fs_server_t *server);
int router_deadline_start (fs_server_t *server);
void router_deadline_stop (fs_server_t *server);
/* One pass: every referral still `requested` past FINESTRA_ROUTER_DEADLINE_<URGENCY>_S is
   marked overdue, recorded in referral_escalations and told (referral.overdue on the bus,
   on the sender's and target's feeds), in transactions of up to 100, each exactly once.
   0 with *escalated set, or -1 (fs_pg_error). */
int router_deadline_scan (fs_server_t *server, fs_pg_t *pg, long *escalated);
/* `escalate-overdue`: one pass now. An exit code. */
int router_deadline_command (fs_server_t *server, int argc, char **argv);

#endif
