/*  test_intake_merge_race - the processor and `finestra-intake merge` at the same moment: the
    processor locks the file it resolves a person to (migration 009), so a merge cannot commit
    between its lookup and its writes. Here a transaction holds the row lock `merge` takes on
    both files (FOR UPDATE) while an event about the merged file is processed, then merges and
    commits: the event's case must land on the kept file, never on the merged one. */
#include "fs_test.h"

static fs_test_suite_t *
s_start (void)
{
    fs_test_suite_t *suite = fs_test_suite_new ("merge_race");
    fs_test_suite_setenv (suite, "FINESTRA_INTAKE_PROCESS_POLL_MS", "100");
    fs_test_suite_start (suite, "intake");
    return suite;
}

static void
s_exec (PGconn *conn, const char *sql)
{
    PGresult *result = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (result);
    cr_assert (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK, "%s: %s", sql,
               PQerrorMessage (conn));
    PQclear (result);
}

#define KEEP "aaaaaaaa-0000-4000-8000-00000000000a"
#define S_UNPROCESSED "SELECT count(*) FROM intake.events WHERE processed_at IS NULL"

Test (intake_merge_race, event_processed_during_merge_lands_on_kept_file)
{
    fs_test_suite_t *suite = s_start ();
    //  The merged-to-be file: made by a first event; the kept one: another person's file
    fs_test_publish_accepted (suite, "race-1");
    cr_assert (fs_test_pg_wait (suite->pg_url, S_UNPROCESSED, 0, 20000), "log in %s",
               suite->log_dir);
    PGconn *merger = PQconnectdb (suite->pg_url);
    cr_assert_eq (PQstatus (merger), CONNECTION_OK);
    s_exec (merger, "INSERT INTO intake.persons (id, given_name, family_name, name_key,"
                    " birth_date, created_by) SELECT '" KEEP "', 'Anna', 'Puig', 'puig anna',"
                    " '1980-04-01', ref FROM intake.events LIMIT 1");
    char merged [64];
    PGresult *result = PQexec (merger, "SELECT person_id::text FROM intake.person_documents"
                                       " WHERE doc_number = '12345678Z'");
    cr_assert_eq (PQntuples (result), 1);
    snprintf (merged, sizeof merged, "%s", PQgetvalue (result, 0, 0));
    PQclear (result);

    //  The merge's first step: both files locked FOR UPDATE, as intake_admin.c does
    s_exec (merger, "BEGIN");
    s_exec (merger, "SELECT id FROM intake.persons WHERE id IN ('" KEEP "', (SELECT person_id"
                    " FROM intake.person_documents WHERE doc_number = '12345678Z'))"
                    " ORDER BY id FOR UPDATE");
    //  An event about the merged file, processed now: the processor must wait for the lock
    fs_test_publish_accepted (suite, "race-2");
    cr_assert (fs_test_pg_wait (suite->pg_url,
                                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                                " 'Lock' AND query LIKE '%process_batch%'", 1, 20000),
               "the processor never waited for the merge's lock (log in %s)", suite->log_dir);
    cr_assert_eq (fs_test_pg_long (suite->pg_url, S_UNPROCESSED), 1);
    //  The rest of the merge: documents and the file move to KEEP; commit
    char sql [512];
    snprintf (sql, sizeof sql, "UPDATE intake.person_documents SET person_id = '" KEEP "'"
                               " WHERE person_id = '%s'", merged);
    s_exec (merger, sql);
    snprintf (sql, sizeof sql, "UPDATE intake.cases SET person_id = '" KEEP "'"
                               " WHERE person_id = '%s'", merged);
    s_exec (merger, sql);
    snprintf (sql, sizeof sql, "UPDATE intake.persons SET merged_into = '" KEEP "'"
                               " WHERE id = '%s'", merged);
    s_exec (merger, sql);
    s_exec (merger, "COMMIT");
    PQfinish (merger);

    cr_assert (fs_test_pg_wait (suite->pg_url, S_UNPROCESSED, 0, 20000), "log in %s",
               suite->log_dir);
    cr_assert_eq (fs_test_pg_long (suite->pg_url, "SELECT count(*) FROM intake.cases"
                                                  " WHERE person_id = '" KEEP "'"), 2,
                  "the case opened during the merge is not on the kept file");
    snprintf (sql, sizeof sql, "SELECT count(*) FROM intake.cases WHERE person_id = '%s'",
              merged);
    cr_assert_eq (fs_test_pg_long (suite->pg_url, sql), 0, "a case is on the merged file");
    fs_test_suite_destroy (&suite);
}
