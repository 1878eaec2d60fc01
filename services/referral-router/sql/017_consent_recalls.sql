-- referral-router: consent recalls (GDPR art. 7(3), 19). When a person withdraws a consent,
-- every target that already received a referral's data under it is told once
-- (referral.consent_withdrawn, router_consents.c). One row per referral and withdrawn
-- consent: its key makes the recall once, however often the withdrawal arrives.
CREATE TABLE consent_recalls (
    referral_id uuid NOT NULL REFERENCES referrals (id),
    consent_id  uuid NOT NULL,                      -- the consent withdrawn (consents)
    target      text NOT NULL,                      -- directory code told
    delivery    text NOT NULL CHECK (delivery IN ('internal', 'feed')),
    categories  text[] NOT NULL CHECK (cardinality (categories) > 0),  -- recalled
    sent_at     timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (referral_id, consent_id)
);

-- A withdrawal finds the person's referrals whose data went under consent.
CREATE INDEX referrals_person_consent ON referrals (person_id) WHERE legal_basis = 'consent';
