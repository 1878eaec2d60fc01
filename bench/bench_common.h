/*  bench_common - helpers the benchmarks share (bench_common.c, linked into each bench_*):
    a clock, medians and percentiles, a process's CPU and peak memory, an HTTP
    status probe. */
#ifndef BENCH_COMMON_H_INCLUDED
#define BENCH_COMMON_H_INCLUDED

#include "finestra.h"

/* Monotonic seconds. */
double fs_bench_now (void);
/* qsort comparator for doubles, ascending. */
int fs_bench_cmp_double (const void *a, const void *b);
/* Median of n values (1..64), the mean of the middle two when n is even. */
double fs_bench_median (const double *values, int n);
/* p-th quantile (0..1) of n sorted values, nearest rank; 0 when n is 0. */
double fs_bench_percentile_sorted (const double *sorted, size_t n, double p);
/* The same after sorting values in place. */
double fs_bench_percentile (double *values, size_t n, double p);
/* Peak resident memory (VmHWM) of pid in kB, -1 when unreadable. */
long fs_bench_vmhwm_kb (int pid);
/* CPU seconds (user + system, all threads) pid has used, -1 when unreadable. */
double fs_bench_cpu_seconds (int pid);
/* CPU seconds used by every live process whose parent is ppid (PostgreSQL's backends and
   helpers are the postmaster's children); -1 when /proc is unreadable or ppid <= 0. */
double fs_bench_children_cpu (int ppid);
/* HTTP status of GET path on 127.0.0.1:port, -1 when no answer (2 s timeout). */
int fs_bench_http_status (int port, const char *path);

#endif
