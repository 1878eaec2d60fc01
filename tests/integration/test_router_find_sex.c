/*  test_router_find_sex - `finestra-referral-router find-services --sex`: an operator asks
    what a woman (or a man, or a non-binary person) would fit, the way the sex on the person's
    file decides the condition `woman` when routing; a bad value is refused, naming it. */
#include "fs_test.h"

extern const char *fs_test_source_dir;

static char *s_url;                 //  the suite's database
static char s_out [65536];          //  the last command's stdout
static char s_err [65536];          //  and stderr

static fs_test_command_t s_router = {
    .service = "referral-router", .redis_prefix = "test:router_find_sex:",
    .settings = (const char *const []) { "FINESTRA_PG_CONNECT_TIMEOUT_MS=10000", NULL },
    .capture = true, .out = s_out, .out_size = sizeof s_out, .err = s_err,
    .err_size = sizeof s_err
};
#define s_run(...) fs_test_command_runl (&s_router, __VA_ARGS__)

//  A woman of 35 in Sarrià-Sant Gervasi (district 05) who needs help with gender violence
#define S_PERSON "--age", "35", "--district", "05", "--needs", "gender_violence"

//  The demo directory's women's service of district 05, as a fit and as a non-fit
#define S_PIAD_FITS "  PIAD-05     PIAD Sarri"
#define S_PIAD_NOT  "  PIAD-05     conditions: requires woman; "

static void
s_setup (void)
{
    s_url = fs_test_db_create ("router_find_sex");
    s_router.pg_url = s_url;
    char data [600];
    snprintf (data, sizeof data, "%s/services/referral-router/data", fs_test_source_dir);
    char services [700], needs [700], zcodes [700];
    snprintf (services, sizeof services, "%s/services.csv", data);
    snprintf (needs, sizeof needs, "%s/needs.csv", data);
    snprintf (zcodes, sizeof zcodes, "%s/zcodes.csv", data);
    cr_assert_eq (s_run ("load-directory", services, needs, zcodes, NULL), 0, "%s", s_err);
}

static void
s_teardown (void)
{
    fs_test_db_drop (s_url);
    free (s_url);
    s_url = NULL;
}

TestSuite (router_find_sex, .init = s_setup, .fini = s_teardown, .timeout = 120);

Test (router_find_sex, sex_decides_woman)
{
    //  Not given: the women's service cannot tell
    cr_assert_eq (s_run ("find-services", S_PERSON, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, S_PIAD_NOT "not known for the person\n"), "%s", s_out);
    cr_expect (!strstr (s_out, S_PIAD_FITS), "%s", s_out);

    cr_assert_eq (s_run ("find-services", S_PERSON, "--sex", "female", NULL), 0, "%s", s_err);
    char *fits = strstr (s_out, "fits:\n");
    char *piad = strstr (s_out, S_PIAD_FITS);
    cr_expect (fits && piad && piad > fits, "%s", s_out);
    cr_expect (!strstr (s_out, S_PIAD_NOT), "%s", s_out);

    cr_assert_eq (s_run ("find-services", "--sex", "male", S_PERSON, NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, S_PIAD_NOT "the person's sex is recorded as male\n"), "%s", s_out);
    cr_expect (!strstr (s_out, S_PIAD_FITS), "%s", s_out);

    cr_assert_eq (s_run ("find-services", S_PERSON, "--sex", "non_binary", NULL), 0, "%s",
                  s_err);
    cr_expect (strstr (s_out, S_PIAD_NOT "the person's sex is recorded as non-binary\n"), "%s",
               s_out);

    //  What the operator says of the condition itself stands over the sex, as in routing
    cr_assert_eq (s_run ("find-services", S_PERSON, "--sex", "male", "--holds", "woman", NULL),
                  0, "%s", s_err);
    cr_expect (strstr (s_out, S_PIAD_FITS), "%s", s_out);
    cr_assert_eq (s_run ("find-services", S_PERSON, "--sex", "female", "--lacks", "woman",
                         NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, S_PIAD_NOT "it does not hold for the person\n"), "%s", s_out);
}

Test (router_find_sex, bad_sex_refused)
{
    const char *bad [] = { "F", "woman", "Female", "", "non-binary" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        cr_expect_eq (s_run ("find-services", S_PERSON, "--sex", bad [i], NULL), 2,
                      "--sex '%s' accepted: %s", bad [i], s_out);
        char expected [120];
        snprintf (expected, sizeof expected, "find-services: --sex takes female, male or"
                  " non_binary, not \"%s\"", bad [i]);
        cr_expect (strstr (s_err, expected), "--sex '%s': %s", bad [i], s_err);
        //  Refused before any answer
        cr_expect (!strstr (s_out, " fit, "), "--sex '%s': %s", bad [i], s_out);
    }
    cr_expect_eq (s_run ("find-services", S_PERSON, "--sex", NULL), 2);
    cr_expect (strstr (s_err, "find-services: --sex needs a value"), "%s", s_err);
}

Test (router_find_sex, usage_names_sex)
{
    cr_assert_eq (s_run ("find-services", "--help", NULL), 0, "%s", s_err);
    cr_expect (strstr (s_out, "[--sex female|male|non_binary]"), "%s", s_out);
}
