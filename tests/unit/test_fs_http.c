/*  test_fs_http - the HTTP endpoint over a real socket: health, readiness, metrics, errors. */
#include "fs_test.h"

static fs_metrics_t *s_metrics;
static fs_counter_t *s_counter;
static fs_readiness_t s_readiness;
static fs_http_t *s_http;
static int s_port;

static void
s_start (void)
{
    s_metrics = fs_metrics_new ("intake");
    cr_assert_not_null (s_metrics);
    //  Registered before the HTTP thread starts: afterwards the registry is only read.
    s_counter = fs_metrics_counter (s_metrics, "finestra_test_total", "Test.", NULL);
    atomic_init (&s_readiness.pg, false);
    atomic_init (&s_readiness.redis, false);
    atomic_init (&s_readiness.sockets, false);
    atomic_init (&s_readiness.stopping, false);
    char err [256] = "";
    s_http = fs_http_new ("127.0.0.1", 0, s_metrics, &s_readiness, err, sizeof err);
    cr_assert_not_null (s_http, "fs_http_new: %s", err);
    s_port = fs_http_port (s_http);
    cr_assert (s_port > 0 && s_port <= 65535, "port %d", s_port);
}

static void
s_stop (void)
{
    fs_http_destroy (&s_http);
    cr_assert_null (s_http);
    fs_http_destroy (&s_http);          //  idempotent
    fs_metrics_destroy (&s_metrics);
}

TestSuite (fs_http, .init = s_start, .fini = s_stop);

//  Requests and checks the status and the exact body.
static void
s_expect (const char *method, const char *path, int status, const char *body)
{
    int got_status = 0;
    char *got_body = NULL;
    cr_assert_eq (fs_test_http_request (s_port, method, path, &got_status, NULL, &got_body), 0,
                  "%s %s failed", method, path);
    cr_assert_eq (got_status, status, "%s %s: %d", method, path, got_status);
    cr_assert_str_eq (got_body, body, "%s %s", method, path);
    free (got_body);
}

Test (fs_http, healthz_answers_ok)
{
    s_expect ("GET", "/healthz", 200, "ok\n");
    s_expect ("GET", "/healthz?probe=1", 200, "ok\n");
    s_expect ("HEAD", "/healthz", 200, "");
}

Test (fs_http, readyz_lists_what_is_not_ready)
{
    s_expect ("GET", "/readyz", 503, "not ready: postgresql down, redis down, sockets not ready\n");
    atomic_store (&s_readiness.pg, true);
    s_expect ("GET", "/readyz", 503, "not ready: redis down, sockets not ready\n");
    atomic_store (&s_readiness.redis, true);
    atomic_store (&s_readiness.sockets, true);
    s_expect ("GET", "/readyz", 200, "ready\n");
    atomic_store (&s_readiness.redis, false);
    s_expect ("GET", "/readyz", 503, "not ready: redis down\n");
    atomic_store (&s_readiness.redis, true);
    atomic_store (&s_readiness.stopping, true);
    s_expect ("GET", "/readyz", 503, "not ready: stopping\n");
}

Test (fs_http, metrics_renders_the_registry)
{
    fs_counter_add (s_counter, 7);         //  counted here, rendered on the HTTP thread
    int status = 0;
    char *headers = NULL, *body = NULL;
    cr_assert_eq (fs_test_http_request (s_port, "GET", "/metrics", &status, &headers, &body), 0);
    cr_assert_eq (status, 200);
    cr_assert_not_null (strstr (headers, "\r\nContent-Type: text/plain; version=0.0.4"),
                        "%s", headers);
    cr_assert_not_null (strstr (body, "# TYPE finestra_test_total counter\n"), "%s", body);
    cr_assert_not_null (strstr (body, "finestra_test_total{service=\"intake\"} 7\n"), "%s", body);
    free (headers);
    free (body);

    fs_counter_add (s_counter, 1);
    cr_assert_eq (fs_test_http_get (s_port, "/metrics", &status, &body), 0);
    cr_assert_not_null (strstr (body, "finestra_test_total{service=\"intake\"} 8\n"), "%s", body);
    free (body);
}

Test (fs_http, unknown_path_is_404)
{
    s_expect ("GET", "/nope", 404, "not found\n");
    s_expect ("GET", "/", 404, "not found\n");
    s_expect ("GET", "/healthz/extra", 404, "not found\n");
}

Test (fs_http, other_methods_are_405_with_allow)
{
    s_expect ("POST", "/healthz", 405, "method not allowed\n");
    s_expect ("DELETE", "/metrics", 405, "method not allowed\n");
    int status = 0;
    char *headers = NULL;
    cr_assert_eq (fs_test_http_request (s_port, "PUT", "/readyz", &status, &headers, NULL), 0);
    cr_assert_eq (status, 405);
    cr_assert_not_null (strstr (headers, "\r\nAllow: GET, HEAD\r\n"), "%s", headers);
    free (headers);
}

Test (fs_http, many_sequential_requests)
{
    for (int i = 0; i < 100; i++)
        s_expect ("GET", "/healthz", 200, "ok\n");
}

/* -- start-up failures: reported in err, never asserted ----------------------------------- */

Test (fs_http_new, bad_address_is_an_error)
{
    fs_readiness_t readiness = { 0 };
    char err [256] = "";
    cr_assert_null (fs_http_new ("localhost", 0, NULL, &readiness, err, sizeof err));
    cr_assert_str_eq (err, "HTTP bind address \"localhost\": expected an IPv4 address "
                      "such as 127.0.0.1");
    cr_assert_null (fs_http_new ("", 0, NULL, &readiness, err, sizeof err));
    cr_assert_null (fs_http_new ("127.0.0.256", 0, NULL, &readiness, err, sizeof err));
    cr_assert_null (fs_http_new (NULL, 0, NULL, &readiness, NULL, 0));
}

Test (fs_http_new, bad_port_is_an_error)
{
    fs_readiness_t readiness = { 0 };
    char err [256] = "";
    cr_assert_null (fs_http_new ("127.0.0.1", 70000, NULL, &readiness, err, sizeof err));
    cr_assert_str_eq (err, "HTTP port 70000: expected 0..65535 (0 = any free port)");
    cr_assert_null (fs_http_new ("127.0.0.1", -1, NULL, &readiness, err, sizeof err));
}

Test (fs_http_new, port_in_use_is_an_error)
{
    fs_readiness_t readiness = { 0 };
    char err [256] = "";
    fs_http_t *first = fs_http_new ("127.0.0.1", 0, NULL, &readiness, err, sizeof err);
    cr_assert_not_null (first, "%s", err);
    int port = fs_http_port (first);
    fs_http_t *second = fs_http_new ("127.0.0.1", port, NULL, &readiness, err, sizeof err);
    cr_assert_null (second);
    char prefix [128];
    snprintf (prefix, sizeof prefix, "HTTP endpoint: cannot listen on 127.0.0.1:%d: ", port);
    cr_assert (strncmp (err, prefix, strlen (prefix)) == 0, "%s", err);
    cr_assert_gt (strlen (err), strlen (prefix));

    //  Without a registry /metrics is empty, and the first endpoint still serves.
    int status = 0;
    char *body = NULL;
    cr_assert_eq (fs_test_http_get (port, "/metrics", &status, &body), 0);
    cr_assert_eq (status, 200);
    cr_assert_str_eq (body, "");
    free (body);
    fs_http_destroy (&first);
}
