/*  test_fs_migrate - fs_migrate against the test PostgreSQL: once, in order, atomic,
    checksummed, and exactly once under concurrent runners. */
#include "fs_test.h"
#include <pthread.h>

static char *s_url;             /* this test's own database */
static fs_pg_t *s_pg;           /* connected to it */

static void
s_setup (void)
{
    s_url = fs_test_db_create ("fs_migrate");
    s_pg = fs_pg_new (s_url);
    cr_assert (s_pg);
    cr_assert_eq (fs_pg_connect (s_pg, 10000), 0, "%s", fs_pg_error (s_pg));
}

static void
s_teardown (void)
{
    fs_pg_destroy (&s_pg);
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = NULL;
}

TestSuite (fs_migrate, .init = s_setup, .fini = s_teardown, .timeout = 300);

//  Each migration notes its version in `log`, so order and repetition can be seen
static const fs_migration_t s_three [] = {
    { 1, "001_people",
      "CREATE TABLE people (id int PRIMARY KEY, name text);\n"
      "CREATE TABLE log (seq serial PRIMARY KEY, version int NOT NULL);\n"
      "INSERT INTO log (version) VALUES (1);\n" },
    { 2, "002_households",
      "-- needs 001\n"
      "CREATE TABLE households (id int PRIMARY KEY);\n"
      "ALTER TABLE people ADD COLUMN household int REFERENCES households;\n"
      "INSERT INTO log (version) VALUES (2);\n" },
    { 5, "005_index",
      "CREATE INDEX people_name ON people (name);\n"
      "INSERT INTO log (version) VALUES (5);\n" },
    { 0, NULL, NULL }
};

//  First column of the first row (malloc'd; "" for no row, "NULL" for SQL NULL)
static char *
s_value (const char *sql)
{
    PGresult *result = fs_pg_exec (s_pg, sql, 0, NULL);
    cr_assert (result, "%s: %s", sql, fs_pg_error (s_pg));
    char *value = strdup (PQntuples (result) == 0 ? ""
                         : PQgetisnull (result, 0, 0) ? "NULL" : PQgetvalue (result, 0, 0));
    PQclear (result);
    return value;
}

static void
s_expect (const char *sql, const char *expected)
{
    char *value = s_value (sql);
    cr_assert_str_eq (value, expected, "%s", sql);
    free (value);
}

Test (fs_migrate, applies_each_once_in_order_into_the_schema)
{
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", s_three), 3, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT string_agg (version::text, ',' ORDER BY seq) FROM svc.log", "1,2,5");
    s_expect ("SELECT string_agg (version || ':' || name, ',' ORDER BY version)"
              " FROM svc.schema_migrations WHERE track = 'svc'",
              "1:001_people,2:002_households,5:005_index");
    s_expect ("SELECT count(*) FROM svc.schema_migrations WHERE checksum ~ '^[0-9a-f]{64}$'", "3");
    //  Unqualified names landed in the schema, not in public
    s_expect ("SELECT to_regclass ('svc.people') IS NOT NULL", "t");
    s_expect ("SELECT to_regclass ('public.people') IS NULL", "t");
    s_expect ("SELECT to_regclass ('svc.people_name') IS NOT NULL", "t");
    //  The session's search_path is as before
    s_expect ("SELECT current_setting ('search_path')", "\"$user\", public");
}

Test (fs_migrate, rerun_applies_nothing)
{
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", s_three), 3, "%s", fs_pg_error (s_pg));
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", s_three), 0, "%s", fs_pg_error (s_pg));
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", s_three), 0, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT count(*) FROM svc.log", "3");
}

Test (fs_migrate, later_migrations_apply_later)
{
    fs_migration_t first_two [3] = { s_three [0], s_three [1], { 0, NULL, NULL } };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", first_two), 2, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT to_regclass ('svc.people_name') IS NULL", "t");
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", s_three), 1, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT string_agg (version::text, ',' ORDER BY seq) FROM svc.log", "1,2,5");
}

Test (fs_migrate, empty_list_makes_schema_and_ledger)
{
    const fs_migration_t none [] = { { 0, NULL, NULL } };
    cr_assert_eq (fs_migrate_run (s_pg, "empty", "empty", none), 0, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT count(*) FROM empty.schema_migrations", "0");
}

Test (fs_migrate, failing_migration_rolls_back_and_is_not_recorded)
{
    const fs_migration_t broken [] = {
        s_three [0],
        { 2, "002_broken",
          "CREATE TABLE half (id int);\n"
          "INSERT INTO log (version) VALUES (2);\n"
          "SELECT * FROM no_such_table;\n" },
        { 3, "003_after", "INSERT INTO log (version) VALUES (3);\n" },
        { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", broken), -1);
    const char *error = fs_pg_error (s_pg);
    cr_assert (strstr (error, "svc/002_broken") && strstr (error, "no_such_table"), "%s", error);
    cr_assert_str_eq (fs_pg_sqlstate (s_pg), "42P01");
    cr_assert_not (fs_pg_lost (s_pg));
    //  001 stays (its own transaction); nothing of 002 remains; 003 was not tried
    s_expect ("SELECT string_agg (version::text, ',' ORDER BY version)"
              " FROM svc.schema_migrations", "1");
    s_expect ("SELECT to_regclass ('svc.half') IS NULL", "t");
    s_expect ("SELECT string_agg (version::text, ',' ORDER BY seq) FROM svc.log", "1");

    //  Fixed, it applies with the ones after it
    const fs_migration_t fixed [] = {
        s_three [0],
        { 2, "002_broken", "CREATE TABLE half (id int);\nINSERT INTO log (version) VALUES (2);\n" },
        broken [2],
        { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", fixed), 2, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT string_agg (version::text, ',' ORDER BY seq) FROM svc.log", "1,2,3");
}

Test (fs_migrate, changed_migration_is_refused)
{
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", s_three), 3, "%s", fs_pg_error (s_pg));
    const fs_migration_t changed [] = {
        s_three [0],
        { 2, "002_households", "CREATE TABLE households (id bigint PRIMARY KEY);\n" },
        s_three [2],
        { 7, "007_new", "INSERT INTO log (version) VALUES (7);\n" },
        { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", changed), -1);
    const char *error = fs_pg_error (s_pg);
    cr_assert (strstr (error, "svc/002_households") && strstr (error, "changed"), "%s", error);
    //  Nothing after the refused one ran
    s_expect ("SELECT count(*) FROM svc.log WHERE version = 7", "0");
    s_expect ("SELECT count(*) FROM svc.schema_migrations", "3");
}

Test (fs_migrate, tracks_and_schemas_are_independent)
{
    const fs_migration_t common [] = {
        { 1, "001_shared", "CREATE TABLE shared (x int);\n" }, { 0, NULL, NULL }
    };
    const fs_migration_t own [] = {
        { 1, "001_own", "CREATE TABLE own (y int);\n" }, { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "alpha", "common", common), 1, "%s", fs_pg_error (s_pg));
    cr_assert_eq (fs_migrate_run (s_pg, "alpha", "alpha", own), 1, "%s", fs_pg_error (s_pg));
    cr_assert_eq (fs_migrate_run (s_pg, "beta", "common", common), 1, "%s", fs_pg_error (s_pg));
    cr_assert_eq (fs_migrate_run (s_pg, "alpha", "common", common), 0, "%s", fs_pg_error (s_pg));
    s_expect ("SELECT to_regclass ('alpha.shared') IS NOT NULL AND to_regclass ('alpha.own')"
              " IS NOT NULL AND to_regclass ('beta.shared') IS NOT NULL", "t");
    s_expect ("SELECT string_agg (track, ',' ORDER BY track) FROM alpha.schema_migrations",
              "alpha,common");
}

Test (fs_migrate, schema_name_is_quoted)
{
    const char *schema = "Odd \"name\"; DROP SCHEMA public; --";
    const fs_migration_t one [] = {
        { 1, "001_t", "CREATE TABLE t (x int);\n" }, { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, schema, "odd", one), 1, "%s", fs_pg_error (s_pg));
    const char *values [] = { schema };
    PGresult *result = fs_pg_exec (s_pg, "SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                                   " ON n.oid = c.relnamespace WHERE n.nspname = $1"
                                   " AND c.relname = 't'", 1, values);
    cr_assert (result, "%s", fs_pg_error (s_pg));
    cr_assert_str_eq (PQgetvalue (result, 0, 0), "1");
    PQclear (result);
    s_expect ("SELECT count(*) FROM pg_namespace WHERE nspname = 'public'", "1");
}

Test (fs_migrate, transaction_control_in_a_migration_is_refused)
{
    const fs_migration_t bad [] = {
        { 1, "001_commits", "CREATE TABLE a (x int);\nCOMMIT;\n" }, { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", bad), -1);
    cr_assert (strstr (fs_pg_error (s_pg), "svc/001_commits")
            && strstr (fs_pg_error (s_pg), "COMMIT"), "%s", fs_pg_error (s_pg));
    s_expect ("SELECT count(*) FROM svc.schema_migrations", "0");
}

Test (fs_migrate, unreachable_database_fails_cleanly)
{
    fs_pg_t *pg = fs_pg_new ("postgresql://finestra@127.0.0.1:1/finestra?connect_timeout=2");
    cr_assert_eq (fs_migrate_run (pg, "svc", "svc", s_three), -1);
    cr_assert (fs_pg_lost (pg));
    cr_assert (*fs_pg_error (pg));
    fs_pg_destroy (&pg);
}

Test (fs_migrate, versions_out_of_order_are_refused)
{
    const fs_migration_t unordered [] = {
        { 2, "002_b", "CREATE TABLE b (x int);\n" },
        { 1, "001_a", "CREATE TABLE a (x int);\n" },
        { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", unordered), -1);
    cr_assert (strstr (fs_pg_error (s_pg), "increasing order (at 001_a)"), "%s",
               fs_pg_error (s_pg));
    const fs_migration_t repeated [] = {
        { 1, "001_a", "CREATE TABLE a (x int);\n" },
        { 1, "001_b", "CREATE TABLE b (x int);\n" },
        { 0, NULL, NULL }
    };
    cr_assert_eq (fs_migrate_run (s_pg, "svc", "svc", repeated), -1);
    //  Refused before anything ran
    s_expect ("SELECT to_regnamespace ('svc') IS NULL", "t");
}

//  ---------------------------------------------------------------- concurrent runners

#define S_RUNNERS 4

typedef struct {
    const char *schema;         /* where all runners migrate */
    pthread_barrier_t *start;   /* released when every runner is connected */
    int applied;                /* what fs_migrate_run returned */
    char error [256];           /* its error, if any */
} s_runner_t;

static void *
s_runner (void *arg)
{
    s_runner_t *runner = (s_runner_t *) arg;
    fs_pg_t *pg = fs_pg_new (s_url);        //  each thread its own connection
    int rc = pg ? fs_pg_connect (pg, 10000) : -1;
    pthread_barrier_wait (runner->start);
    runner->applied = rc == 0 ? fs_migrate_run (pg, runner->schema, "svc", s_three) : -1;
    snprintf (runner->error, sizeof runner->error, "%s", pg ? fs_pg_error (pg) : "oom");
    fs_pg_destroy (&pg);
    return NULL;
}

Test (fs_migrate, concurrent_runners_apply_each_exactly_once)
{
    //  Several rounds: in the first ones the schema does not exist yet, so the runners also
    //  race to create it and the ledger; in the others only the migrations are raced
    const fs_migration_t none [] = { { 0, NULL, NULL } };
    for (int round = 0; round < 6; round++) {
        char schema [32];
        snprintf (schema, sizeof schema, "race_%d", round);
        if (round >= 3)
            cr_assert_eq (fs_migrate_run (s_pg, schema, "svc", none), 0, "%s", fs_pg_error (s_pg));
        pthread_barrier_t start;
        pthread_barrier_init (&start, NULL, S_RUNNERS);
        s_runner_t runners [S_RUNNERS];
        pthread_t threads [S_RUNNERS];
        for (int i = 0; i < S_RUNNERS; i++) {
            runners [i] = (s_runner_t) { .schema = schema, .start = &start };
            cr_assert_eq (pthread_create (&threads [i], NULL, s_runner, &runners [i]), 0);
        }
        //  Every thread joined before any assertion: a failing one must not leave threads
        //  writing into this frame
        for (int i = 0; i < S_RUNNERS; i++)
            pthread_join (threads [i], NULL);
        pthread_barrier_destroy (&start);
        int total = 0;
        for (int i = 0; i < S_RUNNERS; i++) {
            cr_assert_geq (runners [i].applied, 0, "runner %d: %s", i, runners [i].error);
            total += runners [i].applied;
        }
        cr_assert_eq (total, 3, "round %d: %d applications of 3 migrations", round, total);

        char sql [160];
        snprintf (sql, sizeof sql,
                  "SELECT string_agg (version::text, ',' ORDER BY seq) FROM %s.log", schema);
        s_expect (sql, "1,2,5");
        snprintf (sql, sizeof sql, "SELECT count(*) FROM %s.schema_migrations", schema);
        s_expect (sql, "3");
    }
}
