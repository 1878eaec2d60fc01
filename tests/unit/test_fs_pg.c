/*  test_fs_pg - fs_pg against the test PostgreSQL: connect, retry, parameters, errors,
    loss and reconnection. */
#include "fs_test.h"
#include <sys/socket.h>
#include <netinet/in.h>

static char *s_url;             /* this test's own database */

static void
s_setup (void)
{
    s_url = fs_test_db_create ("fs_pg");
}

static void
s_teardown (void)
{
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = NULL;
}

TestSuite (fs_pg, .init = s_setup, .fini = s_teardown, .timeout = 120);

static fs_pg_t *
s_connected (void)
{
    fs_pg_t *pg = fs_pg_new (s_url);
    cr_assert (pg);
    cr_assert_eq (fs_pg_connect (pg, 10000), 0, "%s", fs_pg_error (pg));
    return pg;
}

//  First column of the first row, as a malloc'd string (NULL for SQL NULL)
static char *
s_value (fs_pg_t *pg, const char *sql, int nparams, const char *const *values)
{
    PGresult *result = fs_pg_exec (pg, sql, nparams, values);
    cr_assert (result, "%s: %s", sql, fs_pg_error (pg));
    cr_assert_eq (PQntuples (result), 1);
    char *value = PQgetisnull (result, 0, 0) ? NULL : strdup (PQgetvalue (result, 0, 0));
    PQclear (result);
    return value;
}

//  A TCP port on 127.0.0.1 where nothing listens (bound, then released)
static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    cr_assert (fd >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    cr_assert_eq (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    close (fd);
    return ntohs (addr.sin_port);
}

//  Ends pg's server session from another connection, as an operator or a crash would
static void
s_kill_backend (fs_pg_t *pg)
{
    char *pid = s_value (pg, "SELECT pg_backend_pid ()", 0, NULL);
    fs_pg_t *killer = s_connected ();
    const char *values [] = { pid };
    //  The timeout form waits until the backend has gone
    char *done = s_value (killer, "SELECT pg_terminate_backend ($1::int, 10000)", 1, values);
    cr_assert_str_eq (done, "t");
    free (done);
    free (pid);
    fs_pg_destroy (&killer);
}

Test (fs_pg, connects_and_names_itself)
{
    fs_pg_t *pg = s_connected ();
    cr_assert (fs_pg_ok (pg));
    cr_assert_str_eq (fs_pg_error (pg), "");
    cr_assert_not (fs_pg_lost (pg));
    cr_assert (fs_pg_conn (pg));
    char *app = s_value (pg, "SELECT current_setting ('application_name')", 0, NULL);
    cr_assert (app && *app, "application_name is empty");
    free (app);
    //  Connecting again when connected changes nothing
    PGconn *conn = fs_pg_conn (pg);
    cr_assert_eq (fs_pg_connect (pg, 0), 0);
    cr_assert_eq (fs_pg_conn (pg), conn);
    fs_pg_destroy (&pg);
    cr_assert_null (pg);
    fs_pg_destroy (&pg);            //  idempotent
}

Test (fs_pg, url_sets_application_name)
{
    char *url = zsys_sprintf ("%s?application_name=from_url", s_url);
    fs_pg_t *pg = fs_pg_new (url);
    cr_assert_eq (fs_pg_connect (pg, 10000), 0, "%s", fs_pg_error (pg));
    char *app = s_value (pg, "SELECT current_setting ('application_name')", 0, NULL);
    cr_assert_str_eq (app, "from_url");
    free (app);
    fs_pg_destroy (&pg);
    zstr_free (&url);
}

Test (fs_pg, bad_url_fails_at_once_with_message)
{
    struct { const char *url; const char *says; } cases [] = {
        { "postgresql://[::1/db", "bad PostgreSQL URL" },
        { "postgresql://127.0.0.1:notaport/db", "port 'notaport' is not a number" },
        { "nosuchoption=1", "bad PostgreSQL URL" },
        { "postgresql://127.0.0.1/db?nosuch=1", "bad PostgreSQL URL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        fs_pg_t *pg = fs_pg_new (cases [i].url);
        cr_assert (pg);
        //  A long timeout: a bad URL must not be retried (the message would then differ)
        cr_assert_eq (fs_pg_connect (pg, 600000), -1);
        cr_assert (strstr (fs_pg_error (pg), cases [i].says),
                   "%s: got '%s'", cases [i].url, fs_pg_error (pg));
        cr_assert_not (fs_pg_lost (pg), "a bad URL is not a lost connection");
        cr_assert_not (fs_pg_ok (pg));
        cr_assert_null (fs_pg_exec (pg, "SELECT 1", 0, NULL));
        cr_assert (strstr (fs_pg_error (pg), cases [i].says));
        fs_pg_destroy (&pg);
    }
    //  The password in a bad URL stays out of the message (and so out of the logs)
    fs_pg_t *pg = fs_pg_new ("postgresql://finestra:hunter2@[::1/finestra");
    cr_assert_eq (fs_pg_connect (pg, 0), -1);
    cr_assert (strstr (fs_pg_error (pg), "bad PostgreSQL URL"), "%s", fs_pg_error (pg));
    cr_assert_null (strstr (fs_pg_error (pg), "hunter2"), "%s", fs_pg_error (pg));
    fs_pg_destroy (&pg);
}

Test (fs_pg, retry_gives_up_after_timeout)
{
    char *url = zsys_sprintf ("postgresql://finestra@127.0.0.1:%d/finestra", s_closed_port ());
    fs_pg_t *pg = fs_pg_new (url);
    cr_assert_eq (fs_pg_connect (pg, 700), -1);
    cr_assert (strstr (fs_pg_error (pg), "cannot connect to PostgreSQL"), "%s", fs_pg_error (pg));
    cr_assert (fs_pg_lost (pg));
    cr_assert_not (fs_pg_ok (pg));
    //  Statements fail the same way, and say so
    cr_assert_null (fs_pg_exec (pg, "SELECT 1", 0, NULL));
    cr_assert (fs_pg_lost (pg));
    cr_assert_null (fs_pg_conn (pg));
    fs_pg_destroy (&pg);
    zstr_free (&url);
}

Test (fs_pg, retry_stops_when_interrupted)
{
    char *url = zsys_sprintf ("postgresql://finestra@127.0.0.1:%d/finestra", s_closed_port ());
    fs_pg_t *pg = fs_pg_new (url);
    zsys_interrupted = 1;
    //  Ten minutes of retries unless the interrupt ends them
    int rc = fs_pg_connect (pg, 600000);
    zsys_interrupted = 0;
    cr_assert_eq (rc, -1);
    cr_assert (strstr (fs_pg_error (pg), "interrupted"), "%s", fs_pg_error (pg));
    fs_pg_destroy (&pg);
    zstr_free (&url);
}

Test (fs_pg, parameters_are_stored_verbatim)
{
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_run (pg, "CREATE TABLE notes (id serial PRIMARY KEY, body text)",
                             0, NULL), 0);
    const char *bodies [] = {
        "Robert'); DROP TABLE notes;--",
        "' OR '1'='1",
        "$1 $2 \\' \\\\ %s %n",
        "\"; DELETE FROM notes; --",
        "Núria Puig i Català — «l'Eixample»",
        "",
        NULL,
    };
    size_t count = sizeof bodies / sizeof bodies [0];
    for (size_t i = 0; i < count; i++) {
        const char *values [] = { bodies [i] };
        cr_assert_eq (fs_pg_run (pg, "INSERT INTO notes (body) VALUES ($1)", 1, values), 0,
                      "%s", fs_pg_error (pg));
    }
    PGresult *result = fs_pg_exec (pg, "SELECT body FROM notes ORDER BY id", 0, NULL);
    cr_assert (result);
    cr_assert_eq ((size_t) PQntuples (result), count);
    for (size_t i = 0; i < count; i++) {
        if (bodies [i])
            cr_assert_str_eq (PQgetvalue (result, (int) i, 0), bodies [i]);
        else
            cr_assert (PQgetisnull (result, (int) i, 0), "NULL parameter must be SQL NULL");
    }
    PQclear (result);
    char *tables = s_value (pg, "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'",
                            0, NULL);
    cr_assert_str_eq (tables, "1");
    free (tables);
    fs_pg_destroy (&pg);
}

Test (fs_pg, binary_parameters_and_results)
{
    fs_pg_t *pg = s_connected ();
    const char blob [] = { 'a', 0, (char) 0xff, '\'', 0, 'z' };
    const char *values [] = { blob };
    int lengths [] = { (int) sizeof blob };
    int formats [] = { 1 };
    PGresult *result = fs_pg_execb (pg, "SELECT $1::bytea", 1, values, lengths, formats, 1);
    cr_assert (result, "%s", fs_pg_error (pg));
    cr_assert_eq (PQgetlength (result, 0, 0), (int) sizeof blob);
    cr_assert_eq (memcmp (PQgetvalue (result, 0, 0), blob, sizeof blob), 0);
    PQclear (result);
    fs_pg_destroy (&pg);
}

Test (fs_pg, statement_errors_carry_sqlstate)
{
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_run (pg, "CREATE TABLE people (id int PRIMARY KEY)", 0, NULL), 0);
    const char *one [] = { "1" };
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO people VALUES ($1)", 1, one), 0);
    cr_assert_null (fs_pg_exec (pg, "INSERT INTO people VALUES ($1)", 1, one));
    cr_assert_str_eq (fs_pg_sqlstate (pg), "23505");
    cr_assert (strstr (fs_pg_error (pg), "duplicate key"), "%s", fs_pg_error (pg));
    cr_assert_not (fs_pg_lost (pg), "a statement error is not a lost connection");
    cr_assert (fs_pg_ok (pg));

    cr_assert_eq (fs_pg_run (pg, "SELEC 1", 0, NULL), -1);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "42601");
    cr_assert_eq (fs_pg_run (pg, "SELECT * FROM nobody", 0, NULL), -1);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "42P01");
    const char *bad [] = { "not a number" };
    cr_assert_eq (fs_pg_run (pg, "SELECT $1::int", 1, bad), -1);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "22P02");

    //  The next good statement clears the error
    cr_assert_eq (fs_pg_run (pg, "SELECT 1", 0, NULL), 0);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "");
    cr_assert_str_eq (fs_pg_error (pg), "");
    fs_pg_destroy (&pg);
}

Test (fs_pg, transactions_commit_and_roll_back)
{
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_run (pg, "CREATE TABLE t (v int UNIQUE)", 0, NULL), 0);
    const char *one [] = { "1" }, *two [] = { "2" };

    cr_assert_eq (fs_pg_begin (pg), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    cr_assert_eq (fs_pg_commit (pg), 0, "%s", fs_pg_error (pg));

    cr_assert_eq (fs_pg_begin (pg), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, two), 0);
    fs_pg_rollback (pg);

    //  A failed statement aborts the transaction: COMMIT must not report success
    cr_assert_eq (fs_pg_begin (pg), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, two), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), -1);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "23505");
    cr_assert_eq (fs_pg_commit (pg), -1);
    cr_assert (strstr (fs_pg_error (pg), "rolled"), "%s", fs_pg_error (pg));

    //  Rollback keeps the error that made the caller roll back
    cr_assert_eq (fs_pg_begin (pg), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), -1);
    fs_pg_rollback (pg);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "23505");
    fs_pg_rollback (pg);            //  none open: harmless

    char *rows = s_value (pg, "SELECT string_agg (v::text, ',' ORDER BY v) FROM t", 0, NULL);
    cr_assert_str_eq (rows, "1");
    free (rows);
    fs_pg_destroy (&pg);
}

Test (fs_pg, script_runs_several_statements)
{
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_script (pg, "-- two tables\nCREATE TABLE a (x int);\n"
                                    "CREATE TABLE b (y int);\nINSERT INTO a VALUES (7);\n"), 0,
                  "%s", fs_pg_error (pg));
    char *x = s_value (pg, "SELECT x FROM a", 0, NULL);
    cr_assert_str_eq (x, "7");
    free (x);
    cr_assert_eq (fs_pg_script (pg, "-- only a comment\n"), 0);
    cr_assert_eq (fs_pg_script (pg, "INSERT INTO a VALUES (8); SELECT * FROM nothing;"), -1);
    cr_assert_str_eq (fs_pg_sqlstate (pg), "42P01");
    fs_pg_set_error (pg, "step two: %s", fs_pg_error (pg));
    cr_assert (strncmp (fs_pg_error (pg), "step two: ", 10) == 0);
    cr_assert (strstr (fs_pg_error (pg), "nothing"), "%s", fs_pg_error (pg));
    cr_assert_str_eq (fs_pg_sqlstate (pg), "42P01", "set_error keeps the SQLSTATE");
    fs_pg_destroy (&pg);
}

Test (fs_pg, reconnects_after_backend_killed)
{
    fs_pg_t *pg = s_connected ();
    char *before = s_value (pg, "SELECT pg_backend_pid ()", 0, NULL);
    s_kill_backend (pg);

    //  The next call fails and says the connection went ...
    cr_assert_null (fs_pg_exec (pg, "SELECT 1", 0, NULL));
    cr_assert (fs_pg_lost (pg), "loss not reported: %s", fs_pg_error (pg));
    cr_assert (strstr (fs_pg_error (pg), "connection lost"), "%s", fs_pg_error (pg));
    cr_assert_not (fs_pg_ok (pg));

    //  ... and the one after works on a new session
    char *after = s_value (pg, "SELECT pg_backend_pid ()", 0, NULL);
    cr_assert_not (fs_pg_lost (pg));
    cr_assert (fs_pg_ok (pg));
    cr_assert_str_neq (before, after);
    free (before);
    free (after);
    fs_pg_destroy (&pg);
}

Test (fs_pg, prepared_statements_are_reused_and_survive_reconnection)
{
    fs_pg_t *pg = s_connected ();
    const char *sql = "SELECT $1::int + 1";
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++) {
            char param [8];
            snprintf (param, sizeof param, "%d", i * 10);
            const char *values [1] = { param };
            PGresult *result = fs_pg_execp (pg, "plus_one", sql, 1, values, NULL, NULL, 0);
            cr_assert (result, "%s", fs_pg_error (pg));
            cr_assert_eq (atoi (PQgetvalue (result, 0, 0)), i * 10 + 1);
            PQclear (result);
        }
        //  Prepared once on this session, not per call
        char *count = s_value (pg, "SELECT count(*) FROM pg_prepared_statements"
                                   " WHERE name = 'plus_one'", 0, NULL);
        cr_assert_str_eq (count, "1");
        free (count);
        if (round == 0) {
            //  A new session has no prepared statements: the loss is reported, then the
            //  statement is prepared again
            s_kill_backend (pg);
            cr_assert_null (fs_pg_execp (pg, "plus_one", sql, 1, (const char *[]) { "1" },
                                         NULL, NULL, 0));
            cr_assert (fs_pg_lost (pg), "%s", fs_pg_error (pg));
        }
    }
    //  A statement error is reported like fs_pg_exec's, SQLSTATE and all
    cr_assert_null (fs_pg_execp (pg, "bad", "SELECT 1/$1::int", 1, (const char *[]) { "0" },
                                 NULL, NULL, 0));
    cr_assert_str_eq (fs_pg_sqlstate (pg), "22012");
    fs_pg_destroy (&pg);
}

Test (fs_pg, loss_inside_transaction_is_never_hidden)
{
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_run (pg, "CREATE TABLE t (v int)", 0, NULL), 0);
    const char *one [] = { "1" }, *two [] = { "2" };
    cr_assert_eq (fs_pg_begin (pg), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    s_kill_backend (pg);

    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, two), -1);
    cr_assert (fs_pg_lost (pg));
    //  No silent reconnect while the caller believes its transaction is open: the rest of
    //  it would run in autocommit
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, two), -1);
    cr_assert (fs_pg_lost (pg));
    cr_assert (strstr (fs_pg_error (pg), "inside a transaction"), "%s", fs_pg_error (pg));
    cr_assert_null (fs_pg_conn (pg));
    cr_assert_not (fs_pg_ok (pg));

    fs_pg_rollback (pg);            //  safe on a lost connection
    cr_assert (fs_pg_lost (pg), "rollback keeps the error");
    char *count = s_value (pg, "SELECT count(*) FROM t", 0, NULL);
    cr_assert_str_eq (count, "0", "the lost transaction's rows must be gone");
    free (count);
    fs_pg_destroy (&pg);
}

Test (fs_pg, commit_after_loss_fails)
{
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_run (pg, "CREATE TABLE t (v int)", 0, NULL), 0);
    const char *one [] = { "1" };
    cr_assert_eq (fs_pg_begin (pg), 0);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    s_kill_backend (pg);
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), -1);

    //  The loss is known: COMMIT says nothing was committed, and ends the transaction
    cr_assert_eq (fs_pg_commit (pg), -1);
    cr_assert (fs_pg_lost (pg));
    cr_assert (strstr (fs_pg_error (pg), "nothing was committed"), "%s", fs_pg_error (pg));
    char *count = s_value (pg, "SELECT count(*) FROM t", 0, NULL);
    cr_assert_str_eq (count, "0");
    free (count);
    fs_pg_destroy (&pg);
}

Test (fs_pg, commit_on_lost_connection_reports_it)
{
    //  The loss is only found by COMMIT itself (no statement ran after the kill)
    fs_pg_t *pg = s_connected ();
    cr_assert_eq (fs_pg_run (pg, "CREATE TABLE t (v int)", 0, NULL), 0);
    cr_assert_eq (fs_pg_begin (pg), 0);
    const char *one [] = { "1" };
    cr_assert_eq (fs_pg_run (pg, "INSERT INTO t VALUES ($1)", 1, one), 0);
    s_kill_backend (pg);
    cr_assert_eq (fs_pg_commit (pg), -1);
    cr_assert (fs_pg_lost (pg));
    cr_assert (strstr (fs_pg_error (pg), "may or may not have committed"), "%s",
               fs_pg_error (pg));
    //  The transaction is over either way: the next call reconnects
    cr_assert_eq (fs_pg_run (pg, "SELECT 1", 0, NULL), 0, "%s", fs_pg_error (pg));
    fs_pg_destroy (&pg);
}
