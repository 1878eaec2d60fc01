/*  fs_test_suite - runs the five real service processes against a fresh database, for
    integration tests: free ports, environment, start, wait ready, kill, restart. */
#include "fs_test.h"
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/prctl.h>

extern const char *fs_test_bin_dir;

//  Ports from 20000-32767, below Linux's ephemeral range (32768-60999): a port taken from
//  the ephemeral range could be used as the source port of any outgoing connection (to
//  PostgreSQL, Redis, a peer) between this check and the service's bind. A port once given is
//  not given again by this process (two suites in one test binary stay apart).
int
fs_test_free_port (void)
{
    static int given [512];
    static size_t ngiven = 0;
    static unsigned seed = 0;
    if (!seed)
        seed = (unsigned) getpid () ^ (unsigned) time (NULL);
    for (int attempt = 0; attempt < 10000; attempt++) {
        int port = 20000 + (int) (rand_r (&seed) % 12768);
        bool used = false;
        for (size_t i = 0; i < ngiven && i < 512 && !used; i++)
            used = given [i] == port;
        if (used)
            continue;
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        cr_assert (fd >= 0);
        struct sockaddr_in addr = { .sin_family = AF_INET,
                                    .sin_port = htons ((uint16_t) port),
                                    .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
        int rc = bind (fd, (struct sockaddr *) &addr, sizeof addr);
        close (fd);
        if (rc == 0) {
            given [ngiven++ % 512] = port;
            return port;
        }
    }
    cr_assert_fail ("no free port in 20000-32767");
    return -1;
}

static int
s_index (const char *service)
{
    for (int i = 0; fs_services [i].name; i++)
        if (streq (fs_services [i].name, service))
            return i;
    cr_assert_fail ("unknown service %s", service);
    return -1;
}

fs_test_suite_t *
fs_test_suite_new (const char *name)
{
    fs_test_suite_t *self = (fs_test_suite_t *) calloc (1, sizeof (fs_test_suite_t));
    cr_assert (self);
    self->pg_url = fs_test_db_create (name);
    self->redis_url = fs_test_redis_url ();
    self->redis_prefix = fs_test_redis_prefix (name);
    for (int i = 0; i < FS_TEST_SERVICES; i++) {
        self->bus_ports [i] = fs_test_free_port ();
        self->http_ports [i] = fs_test_free_port ();
    }
    self->ingest_port = fs_test_free_port ();
    snprintf (self->ingest_endpoint, sizeof self->ingest_endpoint, "tcp://127.0.0.1:%d",
              self->ingest_port);
    snprintf (self->feed_endpoint, sizeof self->feed_endpoint, "tcp://127.0.0.1:%d",
              fs_test_free_port ());
    snprintf (self->log_dir, sizeof self->log_dir, "/tmp/finestra-test-%s-%d", name, getpid ());
    mkdir (self->log_dir, 0755);
    return self;
}

void
fs_test_suite_setenv (fs_test_suite_t *self, const char *name, const char *value)
{
    cr_assert (self->nextra < FS_TEST_MAX_EXTRA);
    snprintf (self->extra [self->nextra++], sizeof self->extra [0], "%s=%s", name, value);
}

//  The child's environment: ours, then the suite's settings
static void
s_child_env (fs_test_suite_t *self, int index)
{
    char value [256];
    setenv ("FINESTRA_PG_URL", self->pg_url, 1);
    setenv ("FINESTRA_REDIS_URL", self->redis_url, 1);
    setenv ("FINESTRA_REDIS_PREFIX", self->redis_prefix, 1);
    const char *bus_vars [FS_TEST_SERVICES] = {
        "FINESTRA_BUS_INTAKE", "FINESTRA_BUS_REFERRAL_ROUTER", "FINESTRA_BUS_BENEFITS_OFFICE",
        "FINESTRA_BUS_NOTIFICATION", "FINESTRA_BUS_REPORTING" };
    for (int i = 0; i < FS_TEST_SERVICES; i++) {
        snprintf (value, sizeof value, "tcp://127.0.0.1:%d", self->bus_ports [i]);
        setenv (bus_vars [i], value, 1);
    }
    snprintf (value, sizeof value, "%d", self->http_ports [index]);
    setenv ("FINESTRA_HTTP_PORT", value, 1);
    setenv ("FINESTRA_INTAKE_ENDPOINT", self->ingest_endpoint, 1);
    setenv ("FINESTRA_ROUTER_FEED_ENDPOINT", self->feed_endpoint, 1);
    setenv ("FINESTRA_RELAY_RETRY_MS", "300", 1);       //  quick re-sends keep tests short
    setenv ("FINESTRA_PG_CONNECT_TIMEOUT_MS", "10000", 1);
    setenv ("FINESTRA_LOG_LEVEL", "debug", 1);
    for (int i = 0; i < self->nextra; i++)
        putenv (self->extra [i]);
}

//  Forks and execs one service; settings (NAME=value, NULL-ended) come after the suite's
static pid_t
s_spawn (fs_test_suite_t *self, const char *service, const char *label,
         const char *const *settings)
{
    int index = s_index (service);
    char path [512], log [512];
    snprintf (path, sizeof path, "%s/finestra-%s", fs_test_bin_dir, service);
    snprintf (log, sizeof log, "%s/%s.log", self->log_dir, label);
    pid_t pid = fork ();
    cr_assert (pid >= 0);
    if (pid == 0) {
        //  A failed assertion ends the test process: its services must not outlive it
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        s_child_env (self, index);
        for (size_t i = 0; settings && settings [i]; i++)
            putenv ((char *) settings [i]);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 2);
            dup2 (fd, 1);
            close (fd);
        }
        execl (path, path, (char *) NULL);
        _exit (127);
    }
    return pid;
}

pid_t
fs_test_suite_spawn (fs_test_suite_t *self, const char *service)
{
    pid_t pid = s_spawn (self, service, service, NULL);
    self->pids [s_index (service)] = pid;
    return pid;
}

//  Waits until pid's /readyz on port answers 200 (asserts otherwise)
static void
s_wait_ready (fs_test_suite_t *self, pid_t pid, int port, const char *label)
{
    //  Ready means PostgreSQL, Redis and sockets are up (the service's own /readyz)
    for (int tries = 0; tries < 600; tries++) {
        int status = 0;
        char *body = NULL;
        if (fs_test_http_get (port, "/readyz", &status, &body) == 0
        &&  status == 200) {
            free (body);
            return;
        }
        free (body);
        int wstatus;
        cr_assert (waitpid (pid, &wstatus, WNOHANG) == 0,
                   "%s exited during start-up; see %s/%s.log", label, self->log_dir, label);
        usleep (50 * 1000);
    }
    cr_assert_fail ("%s not ready after 30 s; see %s/%s.log", label, self->log_dir, label);
}

pid_t
fs_test_suite_start_replica (fs_test_suite_t *self, const char *service, const char *label,
                             int http_port, const char *const *settings)
{
    char port [48];
    snprintf (port, sizeof port, "FINESTRA_HTTP_PORT=%d", http_port);
    const char *all [16] = { port };
    size_t n = 1;
    for (size_t i = 0; settings && settings [i]; i++) {
        cr_assert (n < 15);
        all [n++] = settings [i];
    }
    pid_t pid = s_spawn (self, service, label, all);
    s_wait_ready (self, pid, http_port, label);
    return pid;
}

int
fs_test_pid_stop (pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill (pid, sig);
    int wstatus = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (waitpid (pid, &wstatus, WNOHANG) == pid)
            return WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : 128 + WTERMSIG (wstatus);
        usleep (10 * 1000);
    }
    kill (pid, SIGKILL);
    waitpid (pid, &wstatus, 0);
    return -2;
}

void
fs_test_suite_start (fs_test_suite_t *self, const char *service)
{
    int index = s_index (service);
    pid_t pid = fs_test_suite_spawn (self, service);
    s_wait_ready (self, pid, self->http_ports [index], service);
}

void
fs_test_suite_start_all (fs_test_suite_t *self)
{
    for (int i = 0; i < FS_TEST_SERVICES; i++)
        fs_test_suite_start (self, fs_services [i].name);
}

int
fs_test_suite_stop (fs_test_suite_t *self, const char *service, int sig, int timeout_ms)
{
    int index = s_index (service);
    pid_t pid = self->pids [index];
    if (pid <= 0)
        return -1;
    kill (pid, sig);
    int wstatus = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t done = waitpid (pid, &wstatus, WNOHANG);
        if (done == pid) {
            self->pids [index] = 0;
            return WIFEXITED (wstatus) ? WEXITSTATUS (wstatus) : 128 + WTERMSIG (wstatus);
        }
        usleep (10 * 1000);
    }
    //  Did not stop in time: kill it so the test run does not hang, and say so
    kill (pid, SIGKILL);
    waitpid (pid, &wstatus, 0);
    self->pids [index] = 0;
    return -2;
}

void
fs_test_suite_destroy (fs_test_suite_t **self_p)
{
    fs_test_suite_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < FS_TEST_SERVICES; i++)
        if (self->pids [i] > 0)
            fs_test_suite_stop (self, fs_services [i].name, SIGKILL, 5000);
    fs_test_db_drop (self->pg_url);
    free (self->pg_url);
    free (self->redis_url);
    free (self->redis_prefix);
    free (self);
    *self_p = NULL;
}

long
fs_test_pg_long (const char *url, const char *sql)
{
    PGconn *conn = PQconnectdb (url);
    cr_assert (PQstatus (conn) == CONNECTION_OK, "%s", PQerrorMessage (conn));
    PGresult *result = PQexec (conn, sql);
    long value = -1;
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1
    &&  !PQgetisnull (result, 0, 0))
        value = atol (PQgetvalue (result, 0, 0));
    else
    if (PQresultStatus (result) != PGRES_TUPLES_OK)
        cr_log_warn ("%s: %s", sql, PQerrorMessage (conn));
    PQclear (result);
    PQfinish (conn);
    return value;
}

bool
fs_test_pg_wait (const char *url, const char *sql, long expected, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (fs_test_pg_long (url, sql) == expected)
            return true;
        usleep (50 * 1000);
    }
    return false;
}
