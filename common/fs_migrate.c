/*  fs_migrate - applies a track's SQL migrations to a schema, once each, in order. */
#include "finestra.h"
#include <sodium.h>         /* crypto_hash_sha256, for the migration checksums */

//  First half of the two-int advisory lock key ('FsMg'): the two-int key space never meets
//  the one-bigint space the relays lock in, so the two cannot collide.
#define S_LOCK_CLASS "1182092647"

//  Hex SHA-256 of text into out[65]
static void
s_checksum (const char *text, char *out)
{
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, (const unsigned char *) text, strlen (text));
    sodium_bin2hex (out, crypto_hash_sha256_BYTES * 2 + 1, hash, sizeof hash);
}

//  Second half of the lock key, from the schema name: runners of one schema queue up,
//  runners of different schemas do not wait for each other.
static void
s_lock_key (const char *schema, char *out, size_t size)
{
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, (const unsigned char *) schema, strlen (schema));
    int32_t key;
    memcpy (&key, hash, sizeof key);
    snprintf (out, size, "%d", key);
}

//  Opens a transaction holding the schema's migration lock; the lock goes with the
//  transaction, so a runner that dies never leaves it behind. 0 or -1 (rolled back).
static int
s_begin_locked (fs_pg_t *pg, const char *lock_key)
{
    const char *values [] = { S_LOCK_CLASS, lock_key };
    if (fs_pg_begin (pg)
    ||  fs_pg_run (pg, "SELECT pg_advisory_xact_lock ($1::int, $2::int)", 2, values)) {
        fs_pg_rollback (pg);
        return -1;
    }
    return 0;
}

//  Inside the locked transaction: applies the migration unless its track and version are
//  recorded. 1 applied (not yet committed), 0 recorded with the same text, -1 statement
//  failed, -2 recorded with another text.
static int
s_apply_locked (fs_pg_t *pg, const char *quoted, const char *track,
                const fs_migration_t *migration, const char *version, const char *checksum)
{
    char sql [512];
    snprintf (sql, sizeof sql, "SET LOCAL search_path TO %s", quoted);
    if (fs_pg_run (pg, sql, 0, NULL))
        return -1;
    snprintf (sql, sizeof sql,
              "SELECT checksum FROM %s.schema_migrations WHERE track = $1 AND version = $2",
              quoted);
    const char *key [] = { track, version };
    PGresult *result = fs_pg_exec (pg, sql, 2, key);
    if (!result)
        return -1;
    int recorded = 1;                   //  not yet
    if (PQntuples (result) == 1)
        recorded = streq (PQgetvalue (result, 0, 0), checksum) ? 0 : -2;
    PQclear (result);
    if (recorded <= 0)
        return recorded;

    if (fs_pg_script (pg, migration->sql))
        return -1;
    //  A migration that ends the transaction itself would escape the lock and the record
    PGconn *conn = fs_pg_conn (pg);
    if (!conn || PQtransactionStatus (conn) != PQTRANS_INTRANS) {
        fs_pg_set_error (pg, "it must not hold COMMIT or ROLLBACK");
        return -1;
    }
    snprintf (sql, sizeof sql,
              "INSERT INTO %s.schema_migrations (track, version, name, checksum)"
              " VALUES ($1, $2, $3, $4)", quoted);
    const char *row [] = { track, version, migration->name, checksum };
    return fs_pg_run (pg, sql, 4, row) ? -1 : 1;
}

//  Applies one migration, in its own transaction, or checks the checksum of one already
//  recorded. 1 applied, 0 already there, -1 failed (rolled back, error names it).
static int
s_apply (fs_pg_t *pg, const char *quoted, const char *lock_key, const char *track,
         const fs_migration_t *migration)
{
    char version [16], checksum [crypto_hash_sha256_BYTES * 2 + 1];
    snprintf (version, sizeof version, "%d", migration->version);
    s_checksum (migration->sql, checksum);

    int rc = s_begin_locked (pg, lock_key);
    if (rc == 0)
        rc = s_apply_locked (pg, quoted, track, migration, version, checksum);
    if (rc == 1 && fs_pg_commit (pg))
        rc = -1;
    if (rc == 1) {
        fs_info ("migration applied", "track", track, "migration", migration->name);
        return 1;
    }
    fs_pg_rollback (pg);        //  also ends the read-only transaction of rc == 0
    if (rc == 0)
        return 0;
    if (rc == -2)
        fs_pg_set_error (pg, "migration %s/%s was changed after it was applied (checksum "
                         "differs): add a new migration instead", track, migration->name);
    else
        fs_pg_set_error (pg, "migration %s/%s failed: %s", track, migration->name,
                         fs_pg_error (pg));
    fs_error ("migration failed", "reason", fs_pg_error (pg));
    return -1;
}

int
fs_migrate_run (fs_pg_t *pg, const char *schema, const char *track,
                const fs_migration_t *migrations)
{
    assert (pg);
    assert (schema && *schema);
    assert (track && *track);
    assert (migrations);
    //  The list is the program's own (embedded at build time), so a bad one is a bug; it is
    //  checked in every build (assertions may be off) and nothing is applied from it
    for (const fs_migration_t *m = migrations; m->sql; m++) {
        if (!m->name || m->version <= 0 || (m != migrations && m->version <= m [-1].version)) {
            fs_pg_set_error (pg, "migrations of track %s are not numbered 1.. in strictly "
                             "increasing order (at %s): a bug in the build", track,
                             m->name ? m->name : "a migration without a name");
            fs_error ("migrations refused", "reason", fs_pg_error (pg));
            return -1;
        }
    }
    if (sodium_init () < 0) {
        fs_pg_set_error (pg, "libsodium cannot initialise");
        return -1;
    }
    PGconn *conn = fs_pg_conn (pg);
    if (!conn)
        return -1;
    //  Identifiers cannot be parameters: quoted by libpq instead
    char *escaped = PQescapeIdentifier (conn, schema, strlen (schema));
    if (!escaped) {
        fs_pg_set_error (pg, "bad schema name: %s", PQerrorMessage (conn));
        return -1;
    }
    char quoted [256];
    int length = snprintf (quoted, sizeof quoted, "%s", escaped);
    PQfreemem (escaped);
    if (length < 0 || (size_t) length >= sizeof quoted) {
        fs_pg_set_error (pg, "schema name too long");
        return -1;
    }
    char lock_key [16];
    s_lock_key (schema, lock_key, sizeof lock_key);

    //  Schema and ledger under the lock too: CREATE ... IF NOT EXISTS is no guard against
    //  a runner doing the same at the same moment (it fails on the unique catalog index)
    char create_schema [320], create_table [512];
    snprintf (create_schema, sizeof create_schema, "CREATE SCHEMA IF NOT EXISTS %s", quoted);
    snprintf (create_table, sizeof create_table,
              "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
              " track text NOT NULL,"
              " version integer NOT NULL,"
              " name text NOT NULL,"
              " checksum text NOT NULL,"
              " applied_at timestamptz NOT NULL DEFAULT now(),"
              " PRIMARY KEY (track, version))", quoted);
    if (s_begin_locked (pg, lock_key)
    ||  fs_pg_run (pg, create_schema, 0, NULL)
    ||  fs_pg_run (pg, create_table, 0, NULL)
    ||  fs_pg_commit (pg)) {
        fs_pg_rollback (pg);
        fs_pg_set_error (pg, "cannot create schema %s: %s", schema, fs_pg_error (pg));
        fs_error ("migrations failed", "reason", fs_pg_error (pg));
        return -1;
    }

    int applied = 0;
    for (const fs_migration_t *m = migrations; m->sql; m++) {
        int rc = s_apply (pg, quoted, lock_key, track, m);
        if (rc < 0)
            return -1;
        applied += rc;
    }
    return applied;
}
