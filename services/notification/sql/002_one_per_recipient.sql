-- notification: one envelope may ask to tell several recipients (referral.overdue tells the
-- target centre's management and the sender): one notification per envelope and recipient.
ALTER TABLE notifications DROP CONSTRAINT notifications_cause_id_key;
ALTER TABLE notifications ADD CONSTRAINT notifications_cause_recipient_key
    UNIQUE (cause_id, recipient);
