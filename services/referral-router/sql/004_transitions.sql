-- referral-router: every status change of a referral with who made it and its structured
-- reason (router_lifecycle.c's table and vocabulary), so inappropriate referrals can be
-- measured. The referral row keeps its latest status and reason.
ALTER TABLE referrals ADD COLUMN reason_code text, ADD COLUMN reason_text text;

CREATE TABLE referral_transitions (
    id            bigserial PRIMARY KEY,
    referral_id   uuid NOT NULL REFERENCES referrals (id),
    from_status   text NOT NULL,
    to_status     text NOT NULL,
    actor         text NOT NULL CHECK (actor IN ('requester', 'target')),
    reason_code   text,                             -- NULL: none given
    reason_text   text,
    inappropriate boolean NOT NULL DEFAULT false,   -- the reason's flag when it was given
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX referral_transitions_referral ON referral_transitions (referral_id, id);

-- Rejections by reason and month: the "inappropriate referrals" figure and its causes.
CREATE VIEW rejections AS
    SELECT date_trunc ('month', at) AS month, reason_code, inappropriate, count(*) AS referrals
    FROM referral_transitions WHERE to_status = 'rejected'
    GROUP BY 1, 2, 3;
