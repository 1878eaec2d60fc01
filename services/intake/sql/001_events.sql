-- intake: external events as received (the ingest contract), one row per source + id.
CREATE TABLE events (
    ref          uuid PRIMARY KEY,                 -- intake's id, given in the receipt
    source       text NOT NULL,                    -- publishing system
    external_id  text NOT NULL,                    -- the event's id, unique per source
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    content_hash text NOT NULL,                    -- sha256 of the canonical encoding
    event        bytea NOT NULL,                   -- the canonical encoding itself
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, external_id)
);
