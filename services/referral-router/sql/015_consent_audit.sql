-- referral-router: what allowed a referral's data to leave, for audit. consent_ids: the
-- person's consents (consents.consent_id) that allowed the categories sent, when the basis
-- is consent; consent_ref: the publisher's own consent reference as intake passed it on
-- (intake.referral_requested consent_ref), kept as given.
ALTER TABLE referrals
    ADD COLUMN consent_ids uuid[] NOT NULL DEFAULT '{}',
    ADD COLUMN consent_ref text;
