-- referral-router: referrals and their lifecycle (FHIR Task statuses).
CREATE TABLE referrals (
    id             uuid PRIMARY KEY,
    event_ref      text NOT NULL UNIQUE,            -- intake's event that asked for it
    source         text NOT NULL,                   -- external system that started it
    event_type     text NOT NULL,
    urgency        text NOT NULL CHECK (urgency IN ('urgent', 'preferent', 'ordinary')),
    status         text NOT NULL,
    correlation_id uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
