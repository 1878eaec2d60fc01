/*  fs_test_command - runs a service binary's command (`finestra-<service> ARGS...`) as an
    operator would, with a test database, Redis and key prefix, and reads back its output. */
#include "fs_test.h"
#include <sys/wait.h>

extern const char *fs_test_bin_dir;

//  Where the child's stdout / stderr go; the child's pid tells concurrent runs apart
static void
s_output_path (char *path, size_t size, pid_t parent, pid_t child, const char *stream)
{
    snprintf (path, size, "/tmp/fs_test_command.%d.%d.%s", (int) parent, (int) child, stream);
}

static void
s_slurp (const char *path, char *buffer, size_t size)
{
    FILE *file = fopen (path, "r");
    cr_assert (file, "%s", path);
    size_t n = buffer && size ? fread (buffer, 1, size - 1, file) : 0;
    if (buffer && size)
        buffer [n] = 0;
    fclose (file);
    unlink (path);
}

//  In the child: the settings, the output, the binary. Never returns
static void
s_exec (const fs_test_command_t *self, const char *redis_url, pid_t parent, const char *path,
        char **argv)
{
    setenv ("FINESTRA_PG_URL", self->pg_url, 1);
    setenv ("FINESTRA_REDIS_URL", redis_url, 1);
    setenv ("FINESTRA_REDIS_PREFIX", self->redis_prefix, 1);
    setenv ("FINESTRA_LOG_LEVEL", "warn", 1);
    for (size_t i = 0; self->settings && self->settings [i]; i++) {
        char name [256];
        const char *equals = strchr (self->settings [i], '=');
        if (!equals || (size_t) (equals - self->settings [i]) >= sizeof name)
            _exit (125);
        memcpy (name, self->settings [i], (size_t) (equals - self->settings [i]));
        name [equals - self->settings [i]] = 0;
        setenv (name, equals + 1, 1);
    }
    if (self->capture) {
        char out [128], err [128];
        s_output_path (out, sizeof out, parent, getpid (), "out");
        s_output_path (err, sizeof err, parent, getpid (), "err");
        int fd = open (out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fd2 = open (err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || fd2 < 0)
            _exit (126);
        dup2 (fd, 1);
        dup2 (fd2, 2);
    }
    else {
        int null = open ("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2 (null, 1);
    }
    execv (path, argv);
    _exit (127);
}

pid_t
fs_test_command_spawn (const fs_test_command_t *self, const char *const *args)
{
    assert (self && self->service && self->pg_url && self->redis_prefix && args);
    char *argv [16];
    char path [512];
    snprintf (path, sizeof path, "%s/finestra-%s", fs_test_bin_dir, self->service);
    int argc = 0;
    argv [argc++] = path;
    for (size_t i = 0; args [i] && argc < 15; i++)
        argv [argc++] = (char *) args [i];
    argv [argc] = NULL;
    char *redis = self->redis_url ? NULL : fs_test_redis_url ();
    pid_t parent = getpid ();
    pid_t pid = fork ();
    cr_assert (pid >= 0);
    if (pid == 0)
        s_exec (self, redis ? redis : self->redis_url, parent, path, argv);
    free (redis);
    return pid;
}

pid_t
fs_test_command_spawnl (const fs_test_command_t *self, const char *first, ...)
{
    const char *args [16];
    int argc = 0;
    args [argc++] = first;
    va_list ap;
    va_start (ap, first);
    for (const char *arg; argc < 14 && (arg = va_arg (ap, const char *)); )
        args [argc++] = arg;
    va_end (ap);
    args [argc] = NULL;
    return fs_test_command_spawn (self, args);
}

int
fs_test_command_wait (const fs_test_command_t *self, pid_t pid)
{
    assert (self);
    int status = 0;
    cr_assert (waitpid (pid, &status, 0) == pid);
    if (self->capture) {
        char out [128], err [128];
        s_output_path (out, sizeof out, getpid (), pid, "out");
        s_output_path (err, sizeof err, getpid (), pid, "err");
        s_slurp (out, self->out, self->out_size);
        s_slurp (err, self->err, self->err_size);
    }
    cr_assert (WIFEXITED (status), "finestra-%s died: %s", self->service,
               self->capture && self->err ? self->err : "");
    return WEXITSTATUS (status);
}

int
fs_test_command_run (const fs_test_command_t *self, const char *const *args)
{
    return fs_test_command_wait (self, fs_test_command_spawn (self, args));
}

void
fs_test_command_use_suite (fs_test_command_t *self, const fs_test_suite_t *suite)
{
    self->pg_url = suite->pg_url;
    self->redis_url = suite->redis_url;
    self->redis_prefix = suite->redis_prefix;
}
