/*  test_fs_routes - the routing table: parsing, lookups, and every refusal. */
#include "fs_test.h"

Test (fs_routes, builtin_table_parses_and_routes)
{
    char err [256] = "";
    fs_routes_t *routes = fs_routes_parse (fs_file_routes_conf, err, sizeof err);
    cr_assert (routes, "%s", err);
    const char *const *names;
    cr_assert_eq (fs_routes_consumers (routes, "intake.referral_requested", &names), 2);
    cr_assert_str_eq (names [0], "referral-router");
    cr_assert_str_eq (names [1], "reporting");
    cr_assert_null (names [2]);
    cr_assert_eq (fs_routes_consumers (routes, "attention.requested", &names), 0);
    cr_assert_null (names [0]);
    //  referral-router, reporting, notification, benefits-office
    cr_assert_eq (fs_routes_all_consumers (routes, &names), 4);
    fs_routes_destroy (&routes);
    cr_assert_null (routes);
    fs_routes_destroy (&routes);        //  idempotent
}

Test (fs_routes, comments_blank_lines_and_spacing)
{
    char err [256] = "";
    fs_routes_t *routes = fs_routes_parse ("# header\n\n  notification.queued \t reporting  # trailing\n",
                                           err, sizeof err);
    cr_assert (routes, "%s", err);
    const char *const *names;
    cr_assert_eq (fs_routes_consumers (routes, "notification.queued", &names), 1);
    cr_assert_str_eq (names [0], "reporting");
    fs_routes_destroy (&routes);
}

static void
s_refused (const char *text, const char *expected)
{
    char err [256] = "";
    fs_routes_t *routes = fs_routes_parse (text, err, sizeof err);
    cr_assert_null (routes, "accepted: %s", text);
    cr_assert (strstr (err, expected), "error '%s' lacks '%s'", err, expected);
}

Test (fs_routes, refusals_name_the_line)
{
    s_refused ("no.such_type reporting\n", "line 1: 'no.such_type' is not a message type");
    s_refused ("\nnotification.queued billing\n", "line 2: 'billing' is not a Finestra service");
    s_refused ("notification.queued\n", "line 1: 'notification.queued' has no consumer");
    s_refused ("notification.queued reporting\nnotification.queued intake\n",
               "line 2: 'notification.queued' is routed twice");
}

Test (fs_routes, file_setting)
{
    char path [] = "/tmp/fs-routes-XXXXXX";
    int fd = mkstemp (path);
    cr_assert (fd >= 0);
    const char *text = "referral.status_changed notification\n";
    cr_assert_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    fs_config_t config = { 0 };
    config.routes_file = path;
    char err [256] = "";
    fs_routes_t *routes = fs_routes_load (&config, err, sizeof err);
    cr_assert (routes, "%s", err);
    const char *const *names;
    cr_assert_eq (fs_routes_consumers (routes, "intake.referral_requested", &names), 0);
    cr_assert_eq (fs_routes_consumers (routes, "referral.status_changed", &names), 1);
    fs_routes_destroy (&routes);
    unlink (path);
    config.routes_file = "/nonexistent/routes.conf";
    cr_assert_null (fs_routes_load (&config, err, sizeof err));
    cr_assert (strstr (err, "FINESTRA_ROUTES_FILE=/nonexistent/routes.conf: cannot read"), "%s", err);
}
