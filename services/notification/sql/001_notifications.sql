-- notification: what people and professionals must be told, and its delivery state.
CREATE TABLE notifications (
    id             uuid PRIMARY KEY,
    cause_id       uuid NOT NULL UNIQUE,            -- the envelope that asked for it
    recipient      text NOT NULL,                   -- person or professional reference
    topic          text NOT NULL,                   -- e.g. referral.status_changed
    channel        text NOT NULL CHECK (channel IN ('email', 'sms', 'letter', 'inbox')),
    status         text NOT NULL DEFAULT 'pending',
    subject_ref    text,                            -- what it is about (a referral id, ...)
    correlation_id uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
