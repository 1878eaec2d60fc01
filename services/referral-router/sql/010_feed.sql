-- referral-router: the durable outbound feed (proto/FEED.md). One log per feed name; an item
-- is appended in the same transaction as the change that causes it (router_feed_append).
-- seq comes from one sequence shared by all feeds (gaps within a feed are normal); appends to
-- one feed are serialised by a transaction advisory lock, so seq order is commit order and a
-- reader's cursor never skips an item committed later with a smaller seq.
CREATE TABLE feed_items (
    seq            bigserial PRIMARY KEY,
    feed           text NOT NULL,
    item_id        uuid NOT NULL UNIQUE,            -- for the reader's de-duplication
    item_type      text NOT NULL,                   -- referral.requested, ...status_changed ...
    referral_id    uuid,
    correlation_id uuid,
    payload        bytea NOT NULL,                  -- a msgpack map (messages.def type)
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feed_items_feed_seq ON feed_items (feed, seq);
CREATE INDEX feed_items_created ON feed_items (created_at);

-- Per feed: the highest seq removed by retention; a cursor below it has missed items and
-- is answered cursor_expired.
CREATE TABLE feed_horizons (
    feed           text PRIMARY KEY,
    purged_through bigint NOT NULL
);

-- Monitoring only (how far behind is a reader?): the last cursor each feed was read from.
-- Nothing a reader depends on is kept here.
CREATE TABLE feed_readers (
    feed         text PRIMARY KEY,
    last_after   bigint NOT NULL,
    last_read_at timestamptz NOT NULL DEFAULT now(),
    reads        bigint NOT NULL DEFAULT 1
);
