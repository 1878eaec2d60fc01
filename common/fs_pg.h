/*  fs_pg - a PostgreSQL connection that reconnects: retry with back-off at start-up,
    reconnect after loss. Parameters only through PQexecParams; every result checked. */
#ifndef FS_PG_H_INCLUDED
#define FS_PG_H_INCLUDED

typedef struct fs_pg_s fs_pg_t;

/* Creates the object; does not connect. NULL only on out-of-memory. */
fs_pg_t *fs_pg_new (const char *url);
void fs_pg_destroy (fs_pg_t **self_p);

/* Connects, retrying with exponential back-off (100 ms doubling to 2 s) until
   timeout_ms has passed (0 = try once). 0 on success, -1 with fs_pg_error set.
   Stops early, returning -1, when zsys_interrupted is set. */
int fs_pg_connect (fs_pg_t *self, int timeout_ms);
/* True when the connection is up (CONNECTION_OK). */
bool fs_pg_ok (fs_pg_t *self);
/* The live connection, reconnecting once (no retry loop) if it was lost. NULL if down. */
PGconn *fs_pg_conn (fs_pg_t *self);
/* Last error, for logs; never NULL. */
const char *fs_pg_error (fs_pg_t *self);
/* True when the last failure was the connection (not the statement): worth retrying later. */
bool fs_pg_lost (fs_pg_t *self);

/* Runs sql with text parameters (values[i] NULL = SQL NULL). Returns the result when its
   status is PGRES_COMMAND_OK or PGRES_TUPLES_OK (caller PQclears it); otherwise NULL with
   the error stored (SQLSTATE in fs_pg_sqlstate). A lost connection is reconnected on the
   next call, never silently mid-transaction: the failing call reports the loss. */
PGresult *fs_pg_exec (fs_pg_t *self, const char *sql, int nparams, const char *const *values);
/* As fs_pg_exec with lengths and formats (1 = binary) per parameter, e.g. for bytea. */
PGresult *fs_pg_execb (fs_pg_t *self, const char *sql, int nparams, const char *const *values,
                       const int *lengths, const int *formats, int result_format);
/* As fs_pg_execb, through a statement prepared once per session under `name` (always the
   same program-owned sql for a name): parsed and planned once, not every call. Prepared
   again after a reconnection; up to 32 names per connection (more run unprepared). */
PGresult *fs_pg_execp (fs_pg_t *self, const char *name, const char *sql, int nparams,
                       const char *const *values, const int *lengths, const int *formats,
                       int result_format);
/* fs_pg_exec, result cleared: 0 or -1. */
int fs_pg_run (fs_pg_t *self, const char *sql, int nparams, const char *const *values);
/* SQLSTATE of the last failed statement ("" when none), e.g. "23505" unique violation. */
const char *fs_pg_sqlstate (fs_pg_t *self);

/* Runs trusted SQL text holding several statements and no parameters (a migration file)
   through the simple query protocol; never for anything built from input. 0 or -1 as
   fs_pg_run. */
int fs_pg_script (fs_pg_t *self, const char *sql);
/* Replaces the text of the last error, keeping fs_pg_sqlstate and fs_pg_lost: lets a caller
   say what failed ("migration 002_x: ..."); the format may use fs_pg_error itself. */
void fs_pg_set_error (fs_pg_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

int fs_pg_begin (fs_pg_t *self);
int fs_pg_commit (fs_pg_t *self);
/* Rolls back; safe to call when no transaction is open or the connection is lost. */
void fs_pg_rollback (fs_pg_t *self);

/* PostgreSQL array literals built in a zchunk: one parameter carries a whole column of a
   multi-row statement (unnest). Start from an empty chunk; each element is quoted (`"` and
   `\` escaped), a NULL pointer gives NULL; fs_pg_array_end closes it ("{}" when empty),
   NUL-terminated, and returns the text. fs_pg_array does it for a list of n strings. */
void fs_pg_array_add (zchunk_t *chunk, const char *value);
const char *fs_pg_array_end (zchunk_t *chunk);
const char *fs_pg_array (zchunk_t *chunk, const char *const *list, size_t n);

#endif
