-- referral-router: which feeds a referral concerns, for the closed loop (proto/FEED.md).
-- An external sender is told through its own feed: sources (intake's `source` of the event
-- that began the referral) map to feed names here, operator data (`sender-feed`).
CREATE TABLE sender_feeds (
    source     text PRIMARY KEY,
    feed       text NOT NULL CHECK (feed ~ '^[a-z0-9-]{1,64}$'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The feeds a referral was delivered to (router_feed_append records it with each
-- referral.requested item): their readers act as the referral's target, and are told
-- what the requester changes. Kept past feed retention.
CREATE TABLE referral_feeds (
    referral_id uuid NOT NULL,
    feed        text NOT NULL,
    PRIMARY KEY (referral_id, feed)
);
