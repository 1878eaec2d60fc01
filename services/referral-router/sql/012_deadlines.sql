-- referral-router: deadlines to accept (router_deadline.c). A referral still `requested`
-- past its urgency's deadline (FINESTRA_ROUTER_DEADLINE_*_S after created_at) is marked
-- overdue once and escalated once; the escalation row is its history and, by its key,
-- what makes it exactly once per referral and deadline across replicas.
ALTER TABLE referrals ADD COLUMN overdue_at timestamptz;

CREATE TABLE referral_escalations (
    referral_id  uuid NOT NULL REFERENCES referrals (id),
    deadline     text NOT NULL CHECK (deadline IN ('acceptance')),
    due_at       timestamptz NOT NULL,
    escalated_at timestamptz NOT NULL DEFAULT now(),
    escalate_to  text[] NOT NULL,                  -- who was told
    PRIMARY KEY (referral_id, deadline)
);

-- The deadline scan walks only referrals still waiting to be accepted
CREATE INDEX referrals_awaiting ON referrals (created_at)
    WHERE status = 'requested' AND overdue_at IS NULL;
