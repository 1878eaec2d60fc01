/*  test_fs_config - settings from the environment: defaults, strict parsing, exact messages,
    --help and the sample env file. */
#include "fs_test.h"

extern char **environ;

//  Each test starts from an environment without any FINESTRA_ variable.
static void
s_clean_environment (void)
{
    bool again = true;
    while (again) {
        again = false;
        for (char **var = environ; *var; var++)
            if (strncmp (*var, "FINESTRA_", 9) == 0) {
                char *name = strndup (*var, strcspn (*var, "="));
                unsetenv (name);
                free (name);
                again = true;   //  environ changed under us: scan again
                break;
            }
    }
}

TestSuite (fs_config, .init = s_clean_environment);

//  Loads and expects failure with exactly this message.
static void
s_expect_error (const char *name, const char *value, const char *message)
{
    setenv (name, value, 1);
    char err [256] = "untouched";
    fs_config_t *config = fs_config_load (err, sizeof err);
    cr_assert_null (config, "%s=%s was accepted", name, value);
    cr_assert_str_eq (err, message);
    unsetenv (name);
}

static fs_config_t *
s_load_ok (void)
{
    char err [256] = "";
    fs_config_t *config = fs_config_load (err, sizeof err);
    cr_assert_not_null (config, "load failed: %s", err);
    cr_assert_str_eq (err, "");
    return config;
}

Test (fs_config, defaults_when_unset)
{
    fs_config_t *config = s_load_ok ();
    cr_assert_str_eq (config->pg_url, "postgresql://finestra@127.0.0.1:15432/finestra");
    cr_assert_str_eq (config->redis_prefix, "finestra:");
    cr_assert_str_eq (config->log_level, "info");
    cr_assert_eq (config->relay_retry_ms, 2000);
    cr_assert_eq (config->relay_batch, 256);
    cr_assert_eq (config->http_port, -1);
    cr_assert_str_eq (config->http_bind, "127.0.0.1");
    cr_assert_not_null (config->bus_bind);
    cr_assert_str_eq (config->bus_bind, "");
    fs_config_destroy (&config);
    cr_assert_null (config);
    fs_config_destroy (&config);        //  idempotent
    cr_assert_null (config);
}

Test (fs_config, int_accepts_bounds_and_negatives)
{
    setenv ("FINESTRA_RELAY_RETRY_MS", "50", 1);
    setenv ("FINESTRA_RELAY_BATCH", "10000", 1);
    setenv ("FINESTRA_HTTP_PORT", "-1", 1);
    setenv ("FINESTRA_ZMQ_LINGER_MS", "0", 1);
    fs_config_t *config = s_load_ok ();
    cr_assert_eq (config->relay_retry_ms, 50);
    cr_assert_eq (config->relay_batch, 10000);
    cr_assert_eq (config->http_port, -1);
    cr_assert_eq (config->zmq_linger_ms, 0);
    fs_config_destroy (&config);

    setenv ("FINESTRA_RELAY_RETRY_MS", "3600000", 1);
    setenv ("FINESTRA_HTTP_PORT", "0", 1);
    config = s_load_ok ();
    cr_assert_eq (config->relay_retry_ms, 3600000);
    cr_assert_eq (config->http_port, 0);
    fs_config_destroy (&config);
}

Test (fs_config, int_rejects_anything_else_with_the_exact_message)
{
    const char *bad [] = {
        "abc", "", "12abc", " 100", "100 ", "+100", "-", "1e3", "0x100", "49", "3600001",
        "-50", "99999999999999999999999", "100.0"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char message [256];
        snprintf (message, sizeof message,
                  "FINESTRA_RELAY_RETRY_MS=%s: expected an integer between 50 and 3600000",
                  bad [i]);
        s_expect_error ("FINESTRA_RELAY_RETRY_MS", bad [i], message);
    }
    s_expect_error ("FINESTRA_HTTP_PORT", "-2",
                    "FINESTRA_HTTP_PORT=-2: expected an integer between -1 and 65535");
    s_expect_error ("FINESTRA_HTTP_PORT", "65536",
                    "FINESTRA_HTTP_PORT=65536: expected an integer between -1 and 65535");
}

Test (fs_config, enum_accepts_each_choice)
{
    const char *levels [] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++) {
        setenv ("FINESTRA_LOG_LEVEL", levels [i], 1);
        fs_config_t *config = s_load_ok ();
        cr_assert_str_eq (config->log_level, levels [i]);
        cr_assert_eq (fs_log_level_parse (config->log_level), i);
        fs_config_destroy (&config);
    }
}

Test (fs_config, enum_rejects_others_with_the_exact_message)
{
    const char *bad [] = { "loud", "", "INFO", "info ", "inf", "infos", "debug|info", "|" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char message [256];
        snprintf (message, sizeof message,
                  "FINESTRA_LOG_LEVEL=%s: expected one of debug|info|warn|error", bad [i]);
        s_expect_error ("FINESTRA_LOG_LEVEL", bad [i], message);
    }
}

Test (fs_config, str_set_empty_is_empty_not_default)
{
    setenv ("FINESTRA_PG_URL", "", 1);
    setenv ("FINESTRA_REDIS_URL", "redis://10.0.0.1:6379/2", 1);
    fs_config_t *config = s_load_ok ();
    cr_assert_str_eq (config->pg_url, "");
    cr_assert_str_eq (config->redis_url, "redis://10.0.0.1:6379/2");
    fs_config_destroy (&config);
}

Test (fs_config, str_length_bounds)
{
    char value [66];
    memset (value, 'p', 65);
    value [64] = 0;
    setenv ("FINESTRA_REDIS_PREFIX", value, 1);      //  64 bytes: the maximum
    fs_config_t *config = s_load_ok ();
    cr_assert_str_eq (config->redis_prefix, value);
    fs_config_destroy (&config);
    setenv ("FINESTRA_REDIS_PREFIX", "x", 1);        //  1 byte: the minimum
    config = s_load_ok ();
    cr_assert_str_eq (config->redis_prefix, "x");
    fs_config_destroy (&config);

    s_expect_error ("FINESTRA_REDIS_PREFIX", "",
                    "FINESTRA_REDIS_PREFIX=: expected a string of 1 to 64 bytes");
    value [64] = 'p';
    value [65] = 0;
    char message [256];
    snprintf (message, sizeof message,
              "FINESTRA_REDIS_PREFIX=%s: expected a string of 1 to 64 bytes", value);
    s_expect_error ("FINESTRA_REDIS_PREFIX", value, message);
}

Test (fs_config, long_bad_value_is_cut_in_the_message)
{
    char value [201];
    memset (value, '7', 200);
    value [200] = 0;
    char message [256];
    snprintf (message, sizeof message,
              "FINESTRA_RELAY_BATCH=%.80s...: expected an integer between 1 and 10000", value);
    s_expect_error ("FINESTRA_RELAY_BATCH", value, message);
}

Test (fs_config, small_or_missing_error_buffer)
{
    setenv ("FINESTRA_RELAY_BATCH", "0", 1);
    char err [10];
    memset (err, 'Z', sizeof err);
    cr_assert_null (fs_config_load (err, sizeof err));
    cr_assert_str_eq (err, "FINESTRA_");
    cr_assert_null (fs_config_load (NULL, 0));
}

Test (fs_config, first_bad_setting_is_reported_and_nothing_leaks)
{
    setenv ("FINESTRA_LOG_LEVEL", "verbose", 1);        //  after several STR settings
    setenv ("FINESTRA_SHUTDOWN_GRACE_MS", "x", 1);      //  the last setting
    char err [256];
    cr_assert_null (fs_config_load (err, sizeof err));
    cr_assert_str_eq (err, "FINESTRA_LOG_LEVEL=verbose: expected one of debug|info|warn|error");
}

//  Runs a print function into a string.
static char *
s_print (void (*print) (FILE *))
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    cr_assert_not_null (out);
    print (out);
    fclose (out);
    return text;
}

Test (fs_config, help_lists_every_setting)
{
    char *help = s_print (fs_config_print_help);
    cr_assert_not_null (strstr (help,
        "  FINESTRA_RELAY_RETRY_MS  (integer 50..3600000, default \"2000\")\n"
        "      Probe a silent consumer after this; re-send a row 3x this old once later ones"
        " are acked\n"));
    cr_assert_not_null (strstr (help,
        "  FINESTRA_LOG_LEVEL  (one of debug|info|warn|error, default \"info\")\n"));
    cr_assert_not_null (strstr (help,
        "  FINESTRA_REDIS_PREFIX  (string of 1..64 bytes, default \"finestra:\")\n"));
    cr_assert_not_null (strstr (help, "  FINESTRA_BUS_BIND  (string, default \"\")\n"));
#define FS_SETTING(field, env, type, dflt, min, max, choices, text) \
    cr_assert_not_null (strstr (help, "  " #env "  ("), #env " missing"); \
    cr_assert_not_null (strstr (help, "      " text "\n"), #env " help missing");
#include "fs_settings.def"
#undef FS_SETTING
    free (help);
}

Test (fs_config, sample_comments_every_setting_with_help_and_default)
{
    char *sample = s_print (fs_config_print_sample);
    cr_assert_not_null (strstr (sample,
        "\n# Probe a silent consumer after this; re-send a row 3x this old once later ones"
        " are acked\n"
        "# (integer 50..3600000)\n"
        "#FINESTRA_RELAY_RETRY_MS=2000\n"));
#define FS_SETTING(field, env, type, dflt, min, max, choices, text) \
    cr_assert_not_null (strstr (sample, "\n# " text "\n# ("), #env " help missing"); \
    cr_assert_not_null (strstr (sample, "\n#" #env "=" dflt "\n"), #env " default missing");
#include "fs_settings.def"
#undef FS_SETTING
    //  Every line is a comment or blank: copying the file changes nothing until edited.
    for (char *line = sample; *line; line = strchr (line, '\n') + 1)
        cr_assert (*line == '#' || *line == '\n', "uncommented line: %.40s", line);
    free (sample);
}

//  Uncommenting every setting line of the sample gives exactly the defaults.
Test (fs_config, sample_uncommented_loads_as_the_defaults)
{
    fs_config_t *defaults = s_load_ok ();
    char *sample = s_print (fs_config_print_sample);
    int count = 0;
    for (char *line = strtok (sample, "\n"); line; line = strtok (NULL, "\n"))
        if (strncmp (line, "#FINESTRA_", 10) == 0) {
            char *equals = strchr (line, '=');
            cr_assert_not_null (equals);
            *equals = 0;
            cr_assert_eq (setenv (line + 1, equals + 1, 1), 0);
            count++;
        }
    free (sample);
    int settings = 0;
#define FS_SETTING(field, env, type, dflt, min, max, choices, help) settings++;
#include "fs_settings.def"
#undef FS_SETTING
    cr_assert_eq (count, settings);

    fs_config_t *loaded = s_load_ok ();
#define FS_SETTING_STR(field)  cr_assert_str_eq (loaded->field, defaults->field);
#define FS_SETTING_INT(field)  cr_assert_eq (loaded->field, defaults->field);
#define FS_SETTING_ENUM(field) cr_assert_str_eq (loaded->field, defaults->field);
#define FS_SETTING(field, env, type, dflt, min, max, choices, help) FS_SETTING_##type (field)
#include "fs_settings.def"
#undef FS_SETTING
#undef FS_SETTING_STR
#undef FS_SETTING_INT
#undef FS_SETTING_ENUM
    fs_config_destroy (&loaded);
    fs_config_destroy (&defaults);
}

//  deploy/config/finestra.env.sample is generated by finestra-config --sample: keep it so.
Test (fs_config, committed_sample_is_up_to_date)
{
    char *sample = s_print (fs_config_print_sample);
    char path [1024];
    snprintf (path, sizeof path, "%s/deploy/config/finestra.env.sample", FS_TEST_SOURCE_DIR);
    FILE *file = fopen (path, "r");
    cr_assert_not_null (file, "%s missing: run finestra-config --sample > it", path);
    char *committed = calloc (1, strlen (sample) + 2);
    size_t size = fread (committed, 1, strlen (sample) + 1, file);
    fclose (file);
    cr_assert_eq (size, strlen (sample), "%s is stale: regenerate with finestra-config", path);
    cr_assert_str_eq (committed, sample, "%s is stale: regenerate with finestra-config", path);
    free (committed);
    free (sample);
}
