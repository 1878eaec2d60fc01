/*  fs_pg - a PostgreSQL connection that retries at start-up and reconnects after loss. */
#include "finestra.h"


struct fs_pg_s {
    char *url;                  /* libpq URI or key=value string, as configured */
    char appname [64];          /* fallback_application_name: the program's name */
    PGconn *conn;               /* NULL before the first attempt and after a failed one */
    bool in_tx;                 /* a transaction was open after the last statement */
    bool lost;                  /* the last failure was the connection, not the statement */
    char sqlstate [6];          /* of the last failed statement, "" when none */
    char error [1024];          /* last error, "" when none */
    char prepared [32][32];     /* names prepared on this connection (fs_pg_execp) */
    int nprepared;              /* how many; 0 again on every new connection */
};

//  Sets the error as one line: libpq's messages span several, with tabs
static void
s_set_error (fs_pg_t *self, const char *prefix, const char *text)
{
    char line [sizeof self->error];
    size_t size = sizeof line;
    if (snprintf (line, size, "%s%s%s", prefix ? prefix : "", prefix && text && *text ? ": " : "",
                  text ? text : "") >= (int) size)
        memcpy (line + size - 4, "...", 4);     //  cut: show it
    size_t len = 0;
    for (const char *p = line; *p; p++) {
        bool blank = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
        if (!blank)
            self->error [len++] = *p;
        else
        if (len > 0 && self->error [len - 1] != ' ')
            self->error [len++] = ' ';
    }
    while (len > 0 && self->error [len - 1] == ' ')
        len--;
    self->error [len] = 0;
}

static void
s_clear (fs_pg_t *self)
{
    self->error [0] = 0;
    self->sqlstate [0] = 0;
    self->lost = false;
}

//  Server notices ("schema already exists, skipping") would go to stderr, which holds
//  our JSON log lines: they become debug lines instead.
static void
s_notice (void *arg, const char *message)
{
    char text [512];
    snprintf (text, sizeof text, "%s", message);
    size_t len = strlen (text);
    while (len > 0 && text [len - 1] == '\n')
        text [--len] = 0;
    fs_debug ("postgres notice", "text", text);
}

//  Checks the URL without connecting: a bad one is a configuration error, not worth a
//  retry. Returns 0, or -1 with the error set.
static int
s_check_url (fs_pg_t *self)
{
    char *message = NULL;
    PQconninfoOption *options = PQconninfoParse (self->url, &message);
    if (!options) {
        //  libpq quotes the whole URL, password and all: the message goes to logs
        char text [sizeof self->error] = "out of memory";
        if (message) {
            const char *url = strstr (message, self->url);
            if (url)
                snprintf (text, sizeof text, "%.*s(the URL)%s", (int) (url - message), message,
                          url + strlen (self->url));
            else
                snprintf (text, sizeof text, "%s", message);
        }
        s_set_error (self, "bad PostgreSQL URL", text);
        PQfreemem (message);
        return -1;
    }
    int rc = 0;
    for (PQconninfoOption *option = options; option->keyword; option++) {
        //  libpq only finds a bad port when it connects; as a list, one per host
        if (streq (option->keyword, "port") && option->val
        &&  strspn (option->val, "0123456789,") != strlen (option->val)) {
            char text [128];
            snprintf (text, sizeof text, "port '%.64s' is not a number", option->val);
            s_set_error (self, "bad PostgreSQL URL", text);
            rc = -1;
        }
    }
    PQconninfoFree (options);
    return rc;
}

//  One connection attempt. 0, or -1 with the error set and lost true.
static int
s_try_connect (fs_pg_t *self)
{
    PQfinish (self->conn);
    self->in_tx = false;
    self->nprepared = 0;        //  prepared statements die with their session
    //  Keywords before dbname are defaults the URL (expanded from dbname) can override
    const char *const keywords [] = {
        "fallback_application_name", "connect_timeout", "dbname", NULL
    };
    const char *const values [] = { self->appname, "10", self->url, NULL };
    self->conn = PQconnectdbParams (keywords, values, 1);
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK) {
        PQsetNoticeProcessor (self->conn, s_notice, NULL);
        return 0;
    }
    s_set_error (self, "cannot connect to PostgreSQL",
                 self->conn ? PQerrorMessage (self->conn) : "out of memory");
    self->lost = true;
    PQfinish (self->conn);
    self->conn = NULL;
    return -1;
}

static bool
s_tx_open (PGconn *conn)
{
    PGTransactionStatusType status = PQtransactionStatus (conn);
    return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

//  Makes sure there is a live connection for the next statement, reconnecting once if it
//  was lost, but never inside a transaction: what the transaction did is gone, and the
//  caller must know it before anything runs again. 0 or -1 (error set).
static int
s_ready (fs_pg_t *self)
{
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK)
        return 0;
    if (self->in_tx) {
        s_set_error (self, "PostgreSQL connection lost inside a transaction: roll back, "
                     "then run the transaction again", NULL);
        self->lost = true;
        return -1;
    }
    if (!self->conn && s_check_url (self))
        return -1;
    if (s_try_connect (self)) {
        fs_warn ("PostgreSQL unreachable", "reason", self->error);
        return -1;
    }
    fs_info ("PostgreSQL reconnected");
    return 0;
}

//  Keeps a good result; for a bad one stores the error and SQLSTATE, clears it, NULL.
//  sql is the statement text, never its values (they may hold personal data).
static PGresult *
s_check (fs_pg_t *self, PGresult *result, const char *sql)
{
    ExecStatusType status = result ? PQresultStatus (result) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        self->in_tx = s_tx_open (self->conn);
        return result;
    }
    //  The primary message only: DETAIL may quote the row's values (personal data), and
    //  this text ends up in logs
    const char *text = result ? PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!text || !*text)
        text = PQerrorMessage (self->conn);
    if (!*text)
        text = PQresStatus (status);    //  e.g. PGRES_EMPTY_QUERY, PGRES_COPY_IN
    char preview [121];
    snprintf (preview, sizeof preview, "%s", sql);

    if (PQstatus (self->conn) == CONNECTION_BAD) {
        //  in_tx keeps its value from before this statement: if it was true, the next
        //  calls refuse to run until the caller rolls back
        s_set_error (self, "PostgreSQL connection lost", text);
        self->lost = true;
        fs_warn ("PostgreSQL connection lost", "reason", self->error, "sql", preview);
    }
    else {
        const char *sqlstate = result ? PQresultErrorField (result, PG_DIAG_SQLSTATE) : NULL;
        snprintf (self->sqlstate, sizeof self->sqlstate, "%s", sqlstate ? sqlstate : "");
        s_set_error (self, NULL, text);
        self->in_tx = s_tx_open (self->conn);
        //  Unique violations and serialisation failures are outcomes callers expect and
        //  handle (duplicates, retries); everything else deserves a warning
        if (strncmp (self->sqlstate, "23", 2) == 0 || strncmp (self->sqlstate, "40", 2) == 0)
            fs_debug ("statement failed", "sqlstate", self->sqlstate, "reason", self->error,
                      "sql", preview);
        else
            fs_warn ("statement failed", "sqlstate", self->sqlstate, "reason", self->error,
                     "sql", preview);
    }
    PQclear (result);
    return NULL;
}

fs_pg_t *
fs_pg_new (const char *url)
{
    assert (url);
    fs_pg_t *self = (fs_pg_t *) calloc (1, sizeof (fs_pg_t));
    if (!self)
        return NULL;
    self->url = strdup (url);
    if (!self->url) {
        free (self);
        return NULL;
    }
    //  Shows up in pg_stat_activity, so an operator sees which service holds a connection
    snprintf (self->appname, sizeof self->appname, "finestra");
    FILE *file = fopen ("/proc/self/comm", "r");
    if (file) {
        char comm [32];
        if (fgets (comm, sizeof comm, file)) {
            comm [strcspn (comm, "\n")] = 0;
            if (*comm)
                snprintf (self->appname, sizeof self->appname, "%s", comm);
        }
        fclose (file);
    }
    return self;
}

void
fs_pg_destroy (fs_pg_t **self_p)
{
    assert (self_p);
    fs_pg_t *self = *self_p;
    if (!self)
        return;
    PQfinish (self->conn);
    free (self->url);
    free (self);
    *self_p = NULL;
}

//  fs_retry's view of a connection attempt
static int
s_attempt (void *self)
{
    return s_try_connect ((fs_pg_t *) self);
}

static const char *
s_why (void *self)
{
    return ((fs_pg_t *) self)->error;
}

int
fs_pg_connect (fs_pg_t *self, int timeout_ms)
{
    assert (self);
    s_clear (self);
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK)
        return 0;
    if (s_check_url (self)) {
        fs_error ("cannot connect to PostgreSQL", "reason", self->error);
        return -1;
    }
    bool interrupted;
    if (fs_retry ("PostgreSQL", timeout_ms, s_attempt, s_why, self, &interrupted) == 0)
        return 0;
    if (interrupted) {
        char text [sizeof self->error];
        snprintf (text, sizeof text, "%.900s", self->error);    //  room for the prefix
        s_set_error (self, "interrupted while connecting to PostgreSQL", text);
    }
    fs_warn ("cannot connect to PostgreSQL", "reason", self->error);
    return -1;
}

bool
fs_pg_ok (fs_pg_t *self)
{
    assert (self);
    return self->conn && PQstatus (self->conn) == CONNECTION_OK;
}

PGconn *
fs_pg_conn (fs_pg_t *self)
{
    assert (self);
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK)
        return self->conn;
    s_clear (self);
    return s_ready (self) == 0 ? self->conn : NULL;
}

const char *
fs_pg_error (fs_pg_t *self)
{
    assert (self);
    return self->error;
}

bool
fs_pg_lost (fs_pg_t *self)
{
    assert (self);
    return self->lost;
}

const char *
fs_pg_sqlstate (fs_pg_t *self)
{
    assert (self);
    return self->sqlstate;
}

PGresult *
fs_pg_execb (fs_pg_t *self, const char *sql, int nparams, const char *const *values,
             const int *lengths, const int *formats, int result_format)
{
    assert (self);
    assert (sql);
    assert (nparams >= 0 && (nparams == 0 || values));
    s_clear (self);
    if (s_ready (self))
        return NULL;
    PGresult *result = PQexecParams (self->conn, sql, nparams, NULL, values, lengths, formats,
                                     result_format);
    return s_check (self, result, sql);
}

PGresult *
fs_pg_execp (fs_pg_t *self, const char *name, const char *sql, int nparams,
             const char *const *values, const int *lengths, const int *formats,
             int result_format)
{
    assert (self);
    assert (name && *name && strlen (name) < sizeof self->prepared [0]);
    assert (sql);
    assert (nparams >= 0 && (nparams == 0 || values));
    s_clear (self);
    if (s_ready (self))
        return NULL;
    int known = 0;
    while (known < self->nprepared && !streq (self->prepared [known], name))
        known++;
    if (known == self->nprepared) {
        //  Past the table's size: plain PQexecParams, parsed every time but correct
        if (self->nprepared == (int) (sizeof self->prepared / sizeof self->prepared [0]))
            return s_check (self, PQexecParams (self->conn, sql, nparams, NULL, values,
                                                lengths, formats, result_format), sql);
        PGresult *result = s_check (self, PQprepare (self->conn, name, sql, nparams, NULL),
                                    sql);
        if (!result)
            return NULL;
        PQclear (result);
        snprintf (self->prepared [self->nprepared++], sizeof self->prepared [0], "%s", name);
    }
    return s_check (self, PQexecPrepared (self->conn, name, nparams, values, lengths, formats,
                                          result_format), sql);
}

PGresult *
fs_pg_exec (fs_pg_t *self, const char *sql, int nparams, const char *const *values)
{
    return fs_pg_execb (self, sql, nparams, values, NULL, NULL, 0);
}

int
fs_pg_run (fs_pg_t *self, const char *sql, int nparams, const char *const *values)
{
    PGresult *result = fs_pg_exec (self, sql, nparams, values);
    PQclear (result);
    return result ? 0 : -1;
}

int
fs_pg_script (fs_pg_t *self, const char *sql)
{
    assert (self);
    assert (sql);
    s_clear (self);
    if (s_ready (self))
        return -1;
    //  The simple protocol is the only one that takes several statements; the text is
    //  the program's own (a migration), never built from input
    PGresult *result = PQexec (self->conn, sql);
    if (PQresultStatus (result) == PGRES_EMPTY_QUERY) {
        PQclear (result);           //  only comments: nothing to do
        return 0;
    }
    result = s_check (self, result, sql);
    PQclear (result);
    return result ? 0 : -1;
}

void
fs_pg_set_error (fs_pg_t *self, const char *format, ...)
{
    assert (self);
    assert (format);
    char text [sizeof self->error];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);    //  may read self->error: copy first
    va_end (args);
    s_set_error (self, text, NULL);
}

int
fs_pg_begin (fs_pg_t *self)
{
    return fs_pg_run (self, "BEGIN", 0, NULL);
}

int
fs_pg_commit (fs_pg_t *self)
{
    assert (self);
    s_clear (self);
    if (s_ready (self)) {
        if (self->in_tx)
            s_set_error (self, "PostgreSQL connection lost inside a transaction: "
                         "nothing was committed", NULL);
        self->in_tx = false;        //  the server rolled it back when the connection went
        return -1;
    }
    bool was_open = self->in_tx;
    PGresult *result = s_check (self, PQexecParams (self->conn, "COMMIT", 0, NULL, NULL, NULL,
                                                    NULL, 0), "COMMIT");
    if (!result) {
        if (self->lost && was_open)
            //  COMMIT may have reached the server before the connection broke
            fs_pg_set_error (self, "%s (the transaction may or may not have committed)",
                             self->error);
        self->in_tx = false;
        return -1;
    }
    //  COMMIT of a transaction that failed earlier succeeds, but only rolls back
    bool rolled_back = streq (PQcmdStatus (result), "ROLLBACK");
    PQclear (result);
    self->in_tx = false;
    if (rolled_back) {
        s_set_error (self, "transaction failed earlier: COMMIT rolled it back", NULL);
        snprintf (self->sqlstate, sizeof self->sqlstate, "25P02");
        return -1;
    }
    return 0;
}

void
fs_pg_rollback (fs_pg_t *self)
{
    assert (self);
    //  Keeps the error of the failure that made the caller roll back
    if (self->conn && PQstatus (self->conn) == CONNECTION_OK
    &&  PQtransactionStatus (self->conn) != PQTRANS_IDLE) {
        PGresult *result = PQexecParams (self->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0);
        if (PQresultStatus (result) != PGRES_COMMAND_OK)
            fs_warn ("ROLLBACK failed", "reason", PQerrorMessage (self->conn));
        PQclear (result);
    }
    self->in_tx = false;
}

void
fs_pg_array_add (zchunk_t *chunk, const char *value)
{
    zchunk_extend (chunk, zchunk_size (chunk) ? "," : "{", 1);
    if (!value) {
        zchunk_extend (chunk, "NULL", 4);
        return;
    }
    zchunk_extend (chunk, "\"", 1);
    //  The runs between characters to escape go in at once (envelopes in hex are long)
    for (const char *p = value; *p; ) {
        size_t run = strcspn (p, "\"\\");
        zchunk_extend (chunk, p, run);
        p += run;
        if (*p) {
            zchunk_extend (chunk, "\\", 1);
            zchunk_extend (chunk, p++, 1);
        }
    }
    zchunk_extend (chunk, "\"", 1);
}

const char *
fs_pg_array_end (zchunk_t *chunk)
{
    if (zchunk_size (chunk) == 0)
        zchunk_extend (chunk, "{", 1);
    zchunk_extend (chunk, "}", 2);          //  with the NUL
    return (const char *) zchunk_data (chunk);
}

const char *
fs_pg_array (zchunk_t *chunk, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fs_pg_array_add (chunk, list [i]);
    return fs_pg_array_end (chunk);
}
