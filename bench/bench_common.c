/*  bench_common - helpers the benchmarks share; see bench_common.h. */
#include "bench_common.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <dirent.h>
#include <unistd.h>

double
fs_bench_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
fs_bench_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

double
fs_bench_median (const double *values, int n)
{
    double sorted [64];
    assert (n > 0 && n <= 64);
    memcpy (sorted, values, (size_t) n * sizeof *values);
    qsort (sorted, (size_t) n, sizeof *sorted, fs_bench_cmp_double);
    return n % 2 ? sorted [n / 2] : (sorted [n / 2 - 1] + sorted [n / 2]) / 2;
}

double
fs_bench_percentile_sorted (const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t) (p * (double) n + 0.999999);
    return sorted [rank ? rank - 1 : 0];
}

double
fs_bench_percentile (double *values, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort (values, n, sizeof *values, fs_bench_cmp_double);
    return fs_bench_percentile_sorted (values, n, p);
}

long
fs_bench_vmhwm_kb (int pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen (path, "r");
    long kb = -1;
    if (!file)
        return -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, "VmHWM:", 6) == 0)
            kb = atol (line + 6);
    fclose (file);
    return kb;
}

//  /proc/<pid>/stat into text; false when unreadable
static bool
s_stat (int pid, char *text, size_t size)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    size_t len = fread (text, 1, size - 1, file);
    fclose (file);
    text [len] = 0;
    return true;
}

double
fs_bench_cpu_seconds (int pid)
{
    char text [1024];
    if (!s_stat (pid, text, sizeof text))
        return -1;
    //  Fields after the command (which may hold spaces): state ppid ... utime(14) stime(15)
    char *rest = strrchr (text, ')');
    unsigned long utime = 0, stime = 0;
    if (!rest || sscanf (rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                         &utime, &stime) != 2)
        return -1;
    return (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
}

double
fs_bench_children_cpu (int ppid)
{
    DIR *proc = ppid > 0 ? opendir ("/proc") : NULL;
    if (!proc)
        return -1;
    double total = 0;
    struct dirent *entry;
    while ((entry = readdir (proc))) {
        int pid = atoi (entry->d_name);
        char text [1024];
        if (pid <= 0 || !s_stat (pid, text, sizeof text))
            continue;
        char *rest = strrchr (text, ')');
        int parent = 0;
        unsigned long utime = 0, stime = 0;
        if (rest && sscanf (rest + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &parent, &utime, &stime) == 3
        &&  parent == ppid)
            total += (double) (utime + stime) / (double) sysconf (_SC_CLK_TCK);
    }
    closedir (proc);
    return total;
}

int
fs_bench_http_status (int port, const char *path)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct timeval tv = { 2, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int status = -1;
    char request [256], answer [64] = "";
    int len = snprintf (request, sizeof request,
                        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0
    &&  write (fd, request, (size_t) len) == len
    &&  read (fd, answer, sizeof answer - 1) > 12)
        status = atoi (answer + 9);             //  "HTTP/1.1 200"
    close (fd);
    return status;
}
