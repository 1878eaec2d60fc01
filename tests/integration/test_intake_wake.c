/*  test_intake_wake - the processor is woken in-process by ingest's writers (an eventfd per
    worker), not by NOTIFY or its poll: with the poll set to ten minutes, a published event is
    still processed at once; and no NOTIFY trigger is left on intake.events (migration 008). */
#include "fs_test.h"

Test (intake_wake, stored_batch_wakes_processor_without_poll)
{
    fs_test_suite_t *suite = fs_test_suite_new ("intake_wake");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_POLL_MS", "600000");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_WORKERS", "3");
    fs_test_suite_start (suite, "intake");
    cr_assert_eq (fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM pg_trigger t"
                                   " JOIN pg_class c ON c.oid = t.tgrelid"
                                   " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                   " WHERE n.nspname = 'intake' AND c.relname = 'events'"
                                   " AND NOT t.tgisinternal"), 0, "a trigger on intake.events");
    //  The workers' first rounds (at start) found nothing: from here only a wake-up helps
    for (int i = 0; i < 3; i++) {
        char id [32];
        snprintf (id, sizeof id, "wake-%d", i);
        fs_test_publish_accepted (suite, id);
        cr_assert (fs_test_pg_wait (suite->pg_url, "SELECT count(*) FROM intake.events"
                                    " WHERE processed_at IS NULL", 0, 30000),
                   "event %d not processed: no wake-up (log in %s)", i, suite->log_dir);
    }
    cr_assert_eq (fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM intake.cases"), 3);
    fs_test_suite_destroy (&suite);
}
