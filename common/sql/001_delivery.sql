-- Delivery tables every service schema holds (applied with search_path = that schema).
-- Outbox: events this service emitted, one row per consumer, written in the same
-- transaction as the state change; the relay sends them and marks them on acknowledgement.
CREATE TABLE outbox (
    seq           bigserial PRIMARY KEY,              -- emission order
    msg_id        uuid NOT NULL,                      -- envelope id
    consumer      text NOT NULL,                      -- service it goes to
    type          text NOT NULL,                      -- message type
    correlation_id uuid NOT NULL,                     -- chain it belongs to
    envelope      bytea NOT NULL,                     -- the encoded envelope, sent as is
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,         -- sends so far
    last_sent_at  timestamptz,                        -- last send; re-sent after the retry time
    delivered_at  timestamptz,                        -- acknowledged
    outcome       text CHECK (outcome IN ('applied', 'duplicate', 'rejected')),
    reject_code   text,                               -- consumer's reason, when rejected
    reject_reason text,
    UNIQUE (msg_id, consumer)
);
CREATE INDEX outbox_pending ON outbox (consumer, seq) WHERE delivered_at IS NULL;

-- Inbox: ids of envelopes this service has applied (or rejected), recorded in the same
-- transaction as their effect, so a re-sent envelope is never applied twice.
CREATE TABLE inbox (
    msg_id         uuid PRIMARY KEY,
    type           text NOT NULL,
    source         text NOT NULL,
    correlation_id uuid,
    outcome        text NOT NULL CHECK (outcome IN ('applied', 'rejected')),
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- Dead letters: envelopes that can never be applied, kept with the reason, for people to see.
CREATE TABLE dead_letter (
    id          bigserial PRIMARY KEY,
    msg_id      uuid UNIQUE,                          -- NULL when the id itself was unreadable
    source      text,
    type        text,
    code        text NOT NULL,                        -- proto error code or handler's
    reason      text NOT NULL,
    envelope    bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
