/*  fs_test_db - the test stores: throwaway databases and Redis key prefixes for one test. */
#include "fs_test.h"
#include <sodium.h>         /* randombytes_random: names no other run can pick */
#include <unistd.h>

#define S_HINT "start the test stores with tests/run, or: deploy/local/stores.sh start DIR " \
               "PG_PORT REDIS_PORT and export FINESTRA_TEST_PG_URL / FINESTRA_TEST_REDIS_URL"

static atomic_int s_counter;    /* databases made by this process so far */

//  The variable's value (malloc'd), or the test fails: a test without its store must
//  never pass by skipping.
static char *
s_env (const char *name)
{
    const char *value = getenv (name);
    if (!value || !*value)
        cr_assert_fail ("%s is not set: %s", name, S_HINT);
    char *copy = strdup (value);
    cr_assert (copy);
    return copy;
}

static PGconn *
s_admin (void)
{
    char *url = fs_test_pg_url ();
    PGconn *conn = PQconnectdb (url);
    free (url);
    cr_assert (conn);
    if (PQstatus (conn) != CONNECTION_OK) {
        char text [512];
        snprintf (text, sizeof text, "%s", PQerrorMessage (conn));
        PQfinish (conn);
        cr_assert_fail ("cannot reach the test PostgreSQL (FINESTRA_TEST_PG_URL): %s", text);
    }
    return conn;
}

//  Runs one statement on the admin connection; fails the test when it fails.
static void
s_admin_run (PGconn *conn, const char *sql)
{
    PGresult *result = PQexecParams (conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (PQresultStatus (result) != PGRES_COMMAND_OK) {
        char text [512];
        snprintf (text, sizeof text, "%s", PQerrorMessage (conn));
        PQclear (result);
        PQfinish (conn);
        cr_assert_fail ("%s: %s", sql, text);
    }
    PQclear (result);
}

//  The URL of the admin cluster with its database replaced by name; malloc'd.
static char *
s_url_for (const char *admin, const char *name)
{
    const char *schemes [] = { "postgresql://", "postgres://" };
    for (size_t i = 0; i < 2; i++) {
        size_t len = strlen (schemes [i]);
        if (strncmp (admin, schemes [i], len) != 0)
            continue;
        //  postgresql://authority[/dbname][?params]
        const char *authority_end = admin + len + strcspn (admin + len, "/?");
        const char *query = strchr (authority_end, '?');
        char *url = zsys_sprintf ("%.*s/%s%s", (int) (authority_end - admin), admin, name,
                                  query ? query : "");
        cr_assert (url);
        return url;
    }
    //  key=value form: a later keyword wins
    char *url = zsys_sprintf ("%s dbname=%s", admin, name);
    cr_assert (url);
    return url;
}

char *
fs_test_pg_url (void)
{
    return s_env ("FINESTRA_TEST_PG_URL");
}

char *
fs_test_redis_url (void)
{
    return s_env ("FINESTRA_TEST_REDIS_URL");
}

char *
fs_test_db_create (const char *prefix)
{
    cr_assert (prefix);
    cr_assert (sodium_init () >= 0);
    //  Letters, digits and _ only, so the name needs no care in URLs or logs
    char clean [31];
    size_t len = 0;
    for (const char *p = prefix; *p && len < sizeof clean - 1; p++)
        clean [len++] = isalnum ((unsigned char) *p) ? (char) tolower ((unsigned char) *p) : '_';
    clean [len] = 0;
    char name [64];
    snprintf (name, sizeof name, "%s_%d_%d_%08x", len ? clean : "test", (int) getpid (),
              atomic_fetch_add (&s_counter, 1), randombytes_random ());

    PGconn *conn = s_admin ();
    char *quoted = PQescapeIdentifier (conn, name, strlen (name));
    cr_assert (quoted, "%s", PQerrorMessage (conn));
    char sql [128];
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", quoted);
    PQfreemem (quoted);
    s_admin_run (conn, sql);
    PQfinish (conn);

    char *admin = fs_test_pg_url ();
    char *url = s_url_for (admin, name);
    free (admin);
    return url;
}

void
fs_test_db_drop (const char *url)
{
    if (!url)
        return;
    char *message = NULL;
    PQconninfoOption *options = PQconninfoParse (url, &message);
    cr_assert (options, "bad database URL: %s", message ? message : "out of memory");
    char name [64] = "";
    for (PQconninfoOption *option = options; option->keyword; option++)
        if (streq (option->keyword, "dbname") && option->val)
            snprintf (name, sizeof name, "%s", option->val);
    PQconninfoFree (options);
    //  Only what fs_test_db_create made: name_<pid>_<counter>_<8 hex>
    size_t len = strlen (name);
    if (len < 12 || name [len - 9] != '_' || strspn (name + len - 8, "0123456789abcdef") != 8) {
        cr_expect_fail ("fs_test_db_drop: '%s' was not made by fs_test_db_create", name);
        return;
    }
    PGconn *conn = s_admin ();
    char *quoted = PQescapeIdentifier (conn, name, len);
    cr_assert (quoted, "%s", PQerrorMessage (conn));
    char sql [128];
    //  FORCE: a service process the test killed may still hold a session
    snprintf (sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", quoted);
    PQfreemem (quoted);
    s_admin_run (conn, sql);
    PQfinish (conn);
}

char *
fs_test_redis_prefix (const char *name)
{
    cr_assert (name);
    cr_assert (sodium_init () >= 0);
    char *prefix = zsys_sprintf ("test:%s:%d:%08x:", name, (int) getpid (), randombytes_random ());
    cr_assert (prefix);
    return prefix;
}
