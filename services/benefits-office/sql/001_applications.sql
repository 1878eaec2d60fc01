-- benefits-office: applications intake received (intake.benefit_application_received).
-- Minimal: the record that one arrived; assessing it is a later issue.
CREATE TABLE applications (
    event_ref      text PRIMARY KEY,                -- intake's stored application event
    person_id      uuid NOT NULL,
    case_id        uuid NOT NULL,
    source         text NOT NULL,
    correlation_id uuid NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);
