-- referral-router: the acceptance deadline runs from when the referral became `requested`,
-- not from when it was created: one held for consent (on-hold) or left a draft and released
-- hours later must get its whole time to be accepted. Kept by a trigger so that every path
-- into `requested` (routing, release after consent or override, a transition) sets it.
ALTER TABLE referrals ADD COLUMN requested_at timestamptz;
UPDATE referrals SET requested_at = created_at WHERE status = 'requested';

CREATE FUNCTION referrals_requested_at () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'requested' THEN
        IF TG_OP = 'INSERT' THEN
            NEW.requested_at := coalesce (NEW.requested_at, NEW.created_at, now ());
        ELSIF OLD.status IS DISTINCT FROM 'requested' THEN
            NEW.requested_at := now ();
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER referrals_requested_at BEFORE INSERT OR UPDATE OF status ON referrals
    FOR EACH ROW EXECUTE FUNCTION referrals_requested_at ();

DROP INDEX referrals_awaiting;
CREATE INDEX referrals_awaiting ON referrals (requested_at)
    WHERE status = 'requested' AND overdue_at IS NULL;
