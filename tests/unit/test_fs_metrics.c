/*  test_fs_metrics - registry, exact Prometheus text, cumulative buckets, concurrent counts. */
#include "fs_test.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

Test (fs_metrics, renders_exact_prometheus_text)
{
    fs_metrics_t *metrics = fs_metrics_new ("intake");
    cr_assert_not_null (metrics);
    fs_counter_t *a = fs_metrics_counter (metrics, "finestra_events_total",
                                          "Events received.", "type=\"a\"");
    fs_histogram_t *handle = fs_metrics_histogram (metrics, "finestra_handle_seconds",
                                                   "Handler time.", NULL);
    //  Same name registered later with other labels: rendered with its family.
    fs_counter_t *b = fs_metrics_counter (metrics, "finestra_events_total",
                                          "Another help, ignored.", "type=\"b\",src=\"x\"");
    fs_counter_t *restarts = fs_metrics_counter (metrics, "finestra_restarts_total",
                                                 "Restarts.", "");
    fs_counter_add (a, 3);
    fs_counter_add (restarts, 1);
    fs_histogram_observe (handle, 0.0005);      //  on a bound: counted in that bucket
    fs_histogram_observe (handle, 0.003);
    fs_histogram_observe (handle, 0.003);
    fs_histogram_observe (handle, 0.7);
    fs_histogram_observe (handle, 20);          //  only +Inf
    fs_histogram_observe (handle, -1);          //  a clock step: counted as 0
    cr_assert_eq (fs_counter_value (a), 3);
    cr_assert_eq (fs_counter_value (b), 0);

    char *text = fs_metrics_render (metrics);
    cr_assert_not_null (text);
    const char *expected =
        "# HELP finestra_events_total Events received.\n"
        "# TYPE finestra_events_total counter\n"
        "finestra_events_total{service=\"intake\",type=\"a\"} 3\n"
        "finestra_events_total{service=\"intake\",type=\"b\",src=\"x\"} 0\n"
        "# HELP finestra_handle_seconds Handler time.\n"
        "# TYPE finestra_handle_seconds histogram\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.0005\"} 2\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.001\"} 2\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.0025\"} 2\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.005\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.01\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.025\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.05\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.1\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.25\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"0.5\"} 4\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"1\"} 5\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"2.5\"} 5\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"5\"} 5\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"10\"} 5\n"
        "finestra_handle_seconds_bucket{service=\"intake\",le=\"+Inf\"} 6\n"
        "finestra_handle_seconds_sum{service=\"intake\"} 20.7065\n"
        "finestra_handle_seconds_count{service=\"intake\"} 6\n"
        "# HELP finestra_restarts_total Restarts.\n"
        "# TYPE finestra_restarts_total counter\n"
        "finestra_restarts_total{service=\"intake\"} 1\n";
    cr_assert_str_eq (text, expected);
    free (text);
    fs_metrics_destroy (&metrics);
    cr_assert_null (metrics);
    fs_metrics_destroy (&metrics);      //  idempotent
}

Test (fs_metrics, empty_registry_renders_nothing)
{
    fs_metrics_t *metrics = fs_metrics_new ("reporting");
    char *text = fs_metrics_render (metrics);
    cr_assert_str_eq (text, "");
    free (text);
    fs_metrics_destroy (&metrics);
}

Test (fs_metrics, same_name_and_labels_is_the_same_series)
{
    fs_metrics_t *metrics = fs_metrics_new ("intake");
    fs_counter_t *one = fs_metrics_counter (metrics, "x_total", "X.", "k=\"v\"");
    fs_counter_t *two = fs_metrics_counter (metrics, "x_total", "X.", "k=\"v\"");
    fs_counter_t *other = fs_metrics_counter (metrics, "x_total", "X.", "k=\"w\"");
    fs_counter_t *bare = fs_metrics_counter (metrics, "x_total", "X.", NULL);
    fs_counter_t *bare_too = fs_metrics_counter (metrics, "x_total", "X.", "");
    cr_assert_eq (one, two);
    cr_assert_neq (one, other);
    cr_assert_eq (bare, bare_too);
    fs_histogram_t *h1 = fs_metrics_histogram (metrics, "y_seconds", "Y.", NULL);
    fs_histogram_t *h2 = fs_metrics_histogram (metrics, "y_seconds", "Y.", NULL);
    cr_assert_eq (h1, h2);
    fs_counter_add (one, 2);
    fs_counter_add (two, 3);
    cr_assert_eq (fs_counter_value (one), 5);

    char *text = fs_metrics_render (metrics);
    //  One HELP/TYPE per name and one line per distinct series.
    cr_assert_str_eq (text,
        "# HELP x_total X.\n"
        "# TYPE x_total counter\n"
        "x_total{service=\"intake\",k=\"v\"} 5\n"
        "x_total{service=\"intake\",k=\"w\"} 0\n"
        "x_total{service=\"intake\"} 0\n"
        "# HELP y_seconds Y.\n"
        "# TYPE y_seconds histogram\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.0005\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.001\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.0025\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.005\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.01\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.025\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.05\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.1\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.25\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"0.5\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"1\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"2.5\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"5\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"10\"} 0\n"
        "y_seconds_bucket{service=\"intake\",le=\"+Inf\"} 0\n"
        "y_seconds_sum{service=\"intake\"} 0\n"
        "y_seconds_count{service=\"intake\"} 0\n");
    free (text);
    fs_metrics_destroy (&metrics);
}

Test (fs_metrics, help_and_service_are_escaped)
{
    fs_metrics_t *metrics = fs_metrics_new ("odd\"name\\");
    fs_counter_add (fs_metrics_counter (metrics, "z_total", "Line one\nback\\slash \"q\"", NULL), 1);
    char *text = fs_metrics_render (metrics);
    cr_assert_str_eq (text,
        "# HELP z_total Line one\\nback\\\\slash \"q\"\n"
        "# TYPE z_total counter\n"
        "z_total{service=\"odd\\\"name\\\\\"} 1\n");
    free (text);
    fs_metrics_destroy (&metrics);
}

//  Reads the +Inf bucket and count of a rendered histogram series.
static void
s_histogram_totals (const char *text, const char *name, uint64_t *inf, uint64_t *count)
{
    char key [128];
    snprintf (key, sizeof key, "%s_bucket{service=\"t\",le=\"+Inf\"} ", name);
    const char *at = strstr (text, key);
    cr_assert_not_null (at);
    *inf = strtoull (at + strlen (key), NULL, 10);
    snprintf (key, sizeof key, "%s_count{service=\"t\"} ", name);
    at = strstr (text, key);
    cr_assert_not_null (at);
    *count = strtoull (at + strlen (key), NULL, 10);
}

Test (fs_metrics, buckets_are_cumulative_and_non_decreasing)
{
    fs_metrics_t *metrics = fs_metrics_new ("t");
    fs_histogram_t *h = fs_metrics_histogram (metrics, "h_seconds", "H.", NULL);
    //  One observation inside each of the 15 buckets, twice.
    double values [] = { 0.0001, 0.0007, 0.002, 0.004, 0.007, 0.02, 0.04, 0.07, 0.2, 0.4,
                         0.7, 2, 4, 7, 70 };
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof values / sizeof values [0]; i++)
            fs_histogram_observe (h, values [i]);
    char *text = fs_metrics_render (metrics);
    uint64_t previous = 0, expected = 0;
    int buckets = 0;
    for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
        if (strncmp (line, "h_seconds_bucket", 16) == 0) {
            uint64_t value = strtoull (strrchr (line, ' ') + 1, NULL, 10);
            expected += 2;      //  each bucket got two observations of its own
            cr_assert_eq (value, expected, "%s", line);
            cr_assert_geq (value, previous);
            previous = value;
            buckets++;
        }
    cr_assert_eq (buckets, 15);
    free (text);
    fs_metrics_destroy (&metrics);
}

/* -- concurrency ------------------------------------------------------------------------ */

#define S_THREADS    4
#define S_INCREMENTS 100000

typedef struct {
    fs_counter_t *counter;      /* shared by every thread */
    fs_histogram_t *histogram;  /* shared by every thread */
} s_shared_t;

static void *
s_counting (void *arg)
{
    s_shared_t *shared = (s_shared_t *) arg;
    for (int i = 0; i < S_INCREMENTS; i++) {
        fs_counter_add (shared->counter, 1);
        if (i % 4 == 0)
            fs_histogram_observe (shared->histogram, 0.003);
    }
    return NULL;
}

Test (fs_metrics, concurrent_updates_sum_exactly_while_rendering)
{
    fs_metrics_t *metrics = fs_metrics_new ("t");
    s_shared_t shared = {
        .counter = fs_metrics_counter (metrics, "c_total", "C.", NULL),
        .histogram = fs_metrics_histogram (metrics, "d_seconds", "D.", NULL)
    };
    pthread_t threads [S_THREADS];
    for (int i = 0; i < S_THREADS; i++)
        cr_assert_eq (pthread_create (&threads [i], NULL, s_counting, &shared), 0);
    //  Render while they count: values only grow, and count always equals +Inf.
    uint64_t last = 0;
    for (int i = 0; i < 50; i++) {
        char *text = fs_metrics_render (metrics);
        cr_assert_not_null (text);
        const char *at = strstr (text, "c_total{service=\"t\"} ");
        cr_assert_not_null (at);
        uint64_t value = strtoull (at + 21, NULL, 10);
        cr_assert_geq (value, last);
        last = value;
        uint64_t inf, count;
        s_histogram_totals (text, "d_seconds", &inf, &count);
        cr_assert_eq (inf, count);
        free (text);
    }
    for (int i = 0; i < S_THREADS; i++)
        pthread_join (threads [i], NULL);

    cr_assert_eq (fs_counter_value (shared.counter), (uint64_t) S_THREADS * S_INCREMENTS);
    char *text = fs_metrics_render (metrics);
    char line [128];
    snprintf (line, sizeof line, "c_total{service=\"t\"} %d\n", S_THREADS * S_INCREMENTS);
    cr_assert_not_null (strstr (text, line), "%s", text);
    uint64_t inf, count;
    s_histogram_totals (text, "d_seconds", &inf, &count);
    cr_assert_eq (count, S_THREADS * S_INCREMENTS / 4);
    //  100000 observations of 3 ms: exactly 300 s, no floating-point drift.
    cr_assert_not_null (strstr (text, "d_seconds_sum{service=\"t\"} 300\n"), "%s", text);
    cr_assert_not_null (strstr (text, "d_seconds_bucket{service=\"t\",le=\"0.0025\"} 0\n"));
    cr_assert_not_null (strstr (text, "d_seconds_bucket{service=\"t\",le=\"0.005\"} 100000\n"));
    free (text);
    fs_metrics_destroy (&metrics);
}

Test (fs_metrics, updates_through_null_are_ignored)
{
    fs_counter_add (NULL, 1);
    fs_histogram_observe (NULL, 1.0);
    cr_assert_eq (fs_counter_value (NULL), 0);
}

/* A name used as two kinds is a programmer error: it aborts where assertions are on
   (the project builds RelWithDebInfo, with NDEBUG: there the registration gives NULL). */
#ifndef NDEBUG
#if __has_include (<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif
Test (fs_metrics, one_name_two_kinds_aborts)
{
    //  A process killed by a signal leaves Criterion's buffers behind, which valgrind reports
    //  as leaks; the normal and sanitizer runs check the abort.
    if (RUNNING_ON_VALGRIND)
        return;
    fflush (NULL);
    pid_t pid = fork ();
    cr_assert (pid >= 0);
    if (pid == 0) {
        fs_metrics_t *metrics = fs_metrics_new ("t");
        fs_metrics_counter (metrics, "same_name", "A.", NULL);
        fs_metrics_histogram (metrics, "same_name", "B.", NULL);
        _exit (0);
    }
    int status;
    cr_assert_eq (waitpid (pid, &status, 0), pid);
    cr_assert (WIFSIGNALED (status) && WTERMSIG (status) == SIGABRT, "status %d", status);
}
#else
Test (fs_metrics, one_name_two_kinds_gives_null)
{
    fs_metrics_t *metrics = fs_metrics_new ("t");
    cr_assert_not_null (fs_metrics_counter (metrics, "same_name", "A.", NULL));
    cr_assert_null (fs_metrics_histogram (metrics, "same_name", "B.", NULL));
    cr_assert_null (fs_metrics_counter (metrics, "bad name", "C.", NULL));
    fs_metrics_destroy (&metrics);
}
#endif
