-- referral-router: its own copy of intake's consent records (intake.consent_changed), to check
-- before any data leaves. One row per intake consent; the latest change wins.
CREATE TABLE consents (
    consent_id      uuid PRIMARY KEY,                -- intake's consent record
    person_id       uuid NOT NULL,
    status          text NOT NULL CHECK (status IN ('granted', 'withdrawn')),
    purpose         text NOT NULL,
    recipients      text[] NOT NULL DEFAULT '{}',
    data_categories text[] NOT NULL DEFAULT '{}',
    expires_at      timestamptz,
    updated         timestamptz NOT NULL            -- when intake emitted the change
);
CREATE INDEX consents_person ON consents (person_id);
