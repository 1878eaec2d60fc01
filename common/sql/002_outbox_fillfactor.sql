-- Outbox rows are updated twice after their insert (sent: attempts, last_sent_at; then
-- delivered). With pages packed full every update writes the new version on another page
-- and adds index entries for it; room left on each page lets the "sent" update be HOT (no
-- index entries: it changes no indexed column) and keeps new versions on their page.
-- Applies to pages written from now on.
ALTER TABLE outbox SET (fillfactor = 70);
