-- intake: the processor is woken in-process by ingest's writers (intake_process_wake) and by
-- its poll timer, no longer by NOTIFY. A transaction that sent NOTIFY takes a database-wide
-- lock at commit, held through its WAL flush: with 004's trigger on every stored batch, the
-- ingest writers' commits went one at a time.
DROP TRIGGER events_notify ON events;
DROP FUNCTION notify_events ();
