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

#endif
