/*  test_fs_util - clocks, v4 UUIDs, RFC 3339 formatting and parsing, string helpers. */
#include "finestra.h"
#include <criterion/criterion.h>

Test (fs_util, clocks)
{
    //  After 2020-01-01 and before 2200: the wall clock is in milliseconds
    int64_t now = fs_now_ms ();
    cr_assert_gt (now, 1577836800000LL);
    cr_assert_lt (now, 7258118400000LL);
    int64_t m1 = fs_mono_ms ();
    int64_t m2 = fs_mono_ms ();
    cr_assert_geq (m2, m1);
    cr_assert_geq (m1, 0);
}

Test (fs_util, uuid_v4)
{
    static char ids [1000][FS_UUID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        char *id = ids [i];
        memset (id, 'x', FS_UUID_LEN + 1);
        fs_uuid (id);
        cr_assert_eq (strlen (id), FS_UUID_LEN);
        for (int k = 0; k < FS_UUID_LEN; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23)
                cr_assert_eq (id [k], '-');
            else
                cr_assert (strchr ("0123456789abcdef", id [k]) && id [k], "%s", id);
        }
        cr_assert_eq (id [14], '4', "version: %s", id);
        cr_assert (strchr ("89ab", id [19]), "variant: %s", id);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq (ids [j], id);
    }
}

Test (fs_util, rfc3339_format)
{
    char out [25];
    fs_rfc3339 (0, out);
    cr_assert_str_eq (out, "1970-01-01T00:00:00.000Z");
    fs_rfc3339 (1795332756123LL, out);
    cr_assert_str_eq (out, "2026-11-22T07:32:36.123Z");
    fs_rfc3339 (951782400000LL, out);               //  a leap day
    cr_assert_str_eq (out, "2000-02-29T00:00:00.000Z");
    fs_rfc3339 (-1, out);                           //  before the epoch, floor not truncate
    cr_assert_str_eq (out, "1969-12-31T23:59:59.999Z");
    fs_rfc3339 (INT64_MAX, out);                    //  clamped to what fits
    cr_assert_str_eq (out, "9999-12-31T23:59:59.999Z");
    fs_rfc3339 (INT64_MIN, out);
    cr_assert_str_eq (out, "0000-01-01T00:00:00.000Z");
    cr_assert_eq (strlen (out), 24);
}

Test (fs_util, rfc3339_parse_valid)
{
    struct { const char *text; int64_t ms; } cases [] = {
        { "1970-01-01T00:00:00Z", 0 },
        { "2026-11-22T07:32:36.123Z", 1795332756123LL },
        { "2026-11-22t07:32:36.123z", 1795332756123LL },
        { "2026-11-22T08:32:36.123+01:00", 1795332756123LL },
        { "2026-11-22T02:02:36.123-05:30", 1795332756123LL },
        { "2026-11-22T07:32:36.1234567Z", 1795332756123LL },      //  beyond ms: cut
        { "2026-11-22T07:32:36.123456789Z", 1795332756123LL },
        { "2026-11-22T07:32:36.1Z", 1795332756100LL },
        { "2026-11-22T07:32:36Z", 1795332756000LL },
        { "2000-02-29T00:00:00Z", 951782400000LL },
        { "1969-12-31T23:59:59.999Z", -1 },
        { "2016-12-31T23:59:60Z", 1483228800000LL },               //  leap second rolls over
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        int64_t ms = 42;
        cr_assert_eq (fs_rfc3339_parse (cases [i].text, &ms), 0, "%s", cases [i].text);
        cr_assert_eq (ms, cases [i].ms, "%s: %lld", cases [i].text, (long long) ms);
    }
    cr_assert_eq (fs_rfc3339_parse ("2026-11-22T07:32:36Z", NULL), 0);
}

Test (fs_util, rfc3339_parse_invalid)
{
    const char *bad [] = {
        "", "2026", "2026-11-22", "2026-11-22T", "2026-11-22T07:32:36", "2026-11-22T07:32Z",
        "2026-11-22T07:32:36.Z", "2026-11-22T07:32:36.1234567890Z", "2026-11-22 07:32:36Z",
        "2026-11-22T24:00:00Z", "2026-11-22T23:60:00Z", "2026-11-22T23:59:61Z",
        "2026-13-22T07:32:36Z", "2026-00-22T07:32:36Z", "2026-11-00T07:32:36Z",
        "2026-11-31T07:32:36Z", "2023-02-29T07:32:36Z", "1900-02-29T00:00:00Z",
        "2026-11-22T07:32:36+01", "2026-11-22T07:32:36+0100", "2026-11-22T07:32:36+24:00",
        "2026-11-22T07:32:36+01:60", "2026-11-22T07:32:36Zjunk", "2026-11-22T07:32:36 Z",
        "26-11-22T07:32:36Z", "2026-1-22T07:32:36Z", "2026-11-22T7:32:36Z", "2026-11-22T07:32:36.12a3Z",
        "+026-11-22T07:32:36Z", "2026-11-22T07:32:36.-1Z", "2026-11-22X07:32:36Z"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        int64_t ms = 42;
        cr_assert_eq (fs_rfc3339_parse (bad [i], &ms), -1, "accepted %s", bad [i]);
        cr_assert_eq (ms, 42, "wrote *ms for %s", bad [i]);
    }
    cr_assert_eq (fs_rfc3339_parse (NULL, NULL), -1);
}

Test (fs_util, rfc3339_round_trip)
{
    int64_t samples [] = { 0, 1, 999, 1000, 86399999, 951782400000LL, 1795332756123LL,
                           -86400001, 253402300799999LL, -62135596800000LL };
    for (size_t i = 0; i < sizeof samples / sizeof samples [0]; i++) {
        char out [25];
        fs_rfc3339 (samples [i], out);
        int64_t back;
        cr_assert_eq (fs_rfc3339_parse (out, &back), 0, "%s", out);
        cr_assert_eq (back, samples [i], "%s", out);
    }
    char now [25];
    int64_t ms = fs_now_ms (), back;
    fs_rfc3339 (ms, now);
    cr_assert_eq (fs_rfc3339_parse (now, &back), 0);
    cr_assert_eq (back, ms);
}

Test (fs_util, strdup_and_free)
{
    cr_assert_null (fs_strdup (NULL));
    char *s = fs_strdup ("Núria");
    cr_assert_str_eq (s, "Núria");
    fs_free (&s);
    cr_assert_null (s);
    fs_free (&s);               //  idempotent
    fs_free (NULL);
    int *numbers = malloc (4 * sizeof *numbers);
    fs_free (&numbers);
    cr_assert_null (numbers);
}
