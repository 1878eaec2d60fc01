/*  fs_test_pg - one statement on a test database, its first value as text, and the
    expectation tests write most often on it. */
#include "fs_test.h"

char *
fs_test_pg_text (const char *url, const char *sql, int n, const char *const *values)
{
    PGconn *conn = PQconnectdb (url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    PGresult *result = PQexecParams (conn, sql, n, NULL, values, NULL, NULL, 0);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK
            || PQresultStatus (result) == PGRES_COMMAND_OK, "%s: %s", sql,
               PQerrorMessage (conn));
    char *text = strdup (PQntuples (result) && PQnfields (result)
                         ? PQgetvalue (result, 0, 0) : "");
    PQclear (result);
    PQfinish (conn);
    return text;
}

void
fs_test_pg_expect_text (const char *url, const char *sql, const char *id, const char *expected)
{
    const char *values [1] = { id };
    char *text = fs_test_pg_text (url, sql, id ? 1 : 0, values);
    cr_expect_str_eq (text, expected, "%s (%s)\n  got: %s\n  expected: %s", sql,
                      id ? id : "", text, expected);
    free (text);
}

char *
fs_test_pg_one (const char *url, const char *sql)
{
    PGconn *conn = PQconnectdb (url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    PGresult *result = PQexec (conn, sql);
    cr_assert (PQresultStatus (result) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage (conn));
    cr_assert (PQntuples (result) == 1, "%s: %d rows", sql, PQntuples (result));
    char *text = strdup (PQgetvalue (result, 0, 0));
    PQclear (result);
    PQfinish (conn);
    return text;
}

void
fs_test_pg_expect_one (const char *url, const char *sql, const char *expected)
{
    char *text = fs_test_pg_one (url, sql);
    cr_expect_str_eq (text, expected, "%s\n  got: %s\n  expected: %s", sql, text, expected);
    free (text);
}
