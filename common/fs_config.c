/*  fs_config - loads, validates and documents the settings table of fs_settings.def. */
#include "finestra.h"

#define S_SHOWN_MAX 80          /* a bad value longer than this is cut in messages */

typedef enum { S_STR, S_INT, S_ENUM } s_type_t;

/* One row of the table, as fs_settings.def declares it. */
typedef struct {
    const char *env;            /* environment variable */
    s_type_t type;              /* how the value is parsed */
    const char *dflt;           /* value when the variable is unset */
    long min;                   /* INT: lowest value; STR: shortest length */
    long max;                   /* INT: highest value; STR: longest length, 0 = unbounded */
    const char *choices;        /* ENUM: allowed values, '|'-separated */
    const char *help;           /* one line for --help and the sample file */
    size_t offset;              /* where the value lives in fs_config_t */
} s_setting_t;

static const s_setting_t s_settings [] = {
#define FS_SETTING(field, env, type, dflt, min, max, choices, help) \
    { #env, S_##type, dflt, min, max, choices, help, offsetof (fs_config_t, field) },
#include "fs_settings.def"
#undef FS_SETTING
};
#define S_SETTINGS (sizeof s_settings / sizeof s_settings [0])

//  ENUM: true if value is one of the '|'-separated choices.
static bool
s_is_choice (const char *choices, const char *value)
{
    size_t len = strlen (value);
    const char *choice = choices;
    while (true) {
        const char *bar = strchr (choice, '|');
        size_t choice_len = bar? (size_t) (bar - choice): strlen (choice);
        if (choice_len == len && memcmp (choice, value, len) == 0)
            return true;
        if (!bar)
            return false;
        choice = bar + 1;
    }
}

//  INT: whole string, optional minus sign and decimal digits only (no spaces, no "+").
static bool
s_parse_long (const char *text, long *value)
{
    const char *digits = *text == '-'? text + 1: text;
    if (*digits < '0' || *digits > '9')
        return false;
    char *end;
    errno = 0;
    *value = strtol (text, &end, 10);
    return errno == 0 && *end == 0;
}

//  Checks text against the setting; on failure writes the message into err.
static bool
s_validate (const s_setting_t *setting, const char *text, long *number, char *err, size_t errlen)
{
    char expected [160];
    bool valid;
    size_t len = strlen (text);
    if (setting->type == S_INT) {
        valid = s_parse_long (text, number)
             && *number >= setting->min && *number <= setting->max;
        snprintf (expected, sizeof expected, "an integer between %ld and %ld",
                  setting->min, setting->max);
    }
    else
    if (setting->type == S_ENUM) {
        valid = s_is_choice (setting->choices, text);
        snprintf (expected, sizeof expected, "one of %s", setting->choices);
    }
    else {
        valid = len >= (size_t) setting->min
             && (setting->max <= 0 || len <= (size_t) setting->max);
        if (setting->max > 0)
            snprintf (expected, sizeof expected, "a string of %ld to %ld bytes",
                      setting->min, setting->max);
        else
            snprintf (expected, sizeof expected, "a string of at least %ld bytes",
                      setting->min);
    }
    if (!valid && err && errlen > 0)
        snprintf (err, errlen, "%s=%.*s%s: expected %s", setting->env, S_SHOWN_MAX, text,
                  len > S_SHOWN_MAX? "...": "", expected);
    return valid;
}

fs_config_t *
fs_config_load (char *err, size_t errlen)
{
    if (err && errlen > 0)
        *err = 0;
    fs_config_t *self = calloc (1, sizeof *self);
    if (!self)
        goto oom;
    for (size_t i = 0; i < S_SETTINGS; i++) {
        const s_setting_t *setting = &s_settings [i];
        const char *text = getenv (setting->env);
        if (!text)
            text = setting->dflt;       //  unset: default; set but empty: empty
        long number = 0;
        if (!s_validate (setting, text, &number, err, errlen)) {
            fs_config_destroy (&self);
            return NULL;
        }
        void *field = (char *) self + setting->offset;
        if (setting->type == S_INT)
            *(long *) field = number;
        else
        if (!(*(char **) field = strdup (text)))
            goto oom;
    }
    return self;
oom:
    fs_config_destroy (&self);
    if (err && errlen > 0)
        snprintf (err, errlen, "settings: out of memory");
    return NULL;
}

void
fs_config_destroy (fs_config_t **self_p)
{
    assert (self_p);
    fs_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < S_SETTINGS; i++)
        if (s_settings [i].type != S_INT)
            free (*(char **) ((char *) self + s_settings [i].offset));
    free (self);
    *self_p = NULL;
}

//  "integer 50..3600000", "one of a|b", "string", "string of 1..64 bytes".
static void
s_describe (const s_setting_t *setting, char *out, size_t size)
{
    if (setting->type == S_INT)
        snprintf (out, size, "integer %ld..%ld", setting->min, setting->max);
    else
    if (setting->type == S_ENUM)
        snprintf (out, size, "one of %s", setting->choices);
    else
    if (setting->max > 0)
        snprintf (out, size, "string of %ld..%ld bytes", setting->min, setting->max);
    else
    if (setting->min > 0)
        snprintf (out, size, "string of at least %ld bytes", setting->min);
    else
        snprintf (out, size, "string");
}

void
fs_config_print_help (FILE *out)
{
    fprintf (out, "Settings (environment variables; unset = default):\n");
    for (size_t i = 0; i < S_SETTINGS; i++) {
        const s_setting_t *setting = &s_settings [i];
        char kind [160];
        s_describe (setting, kind, sizeof kind);
        fprintf (out, "\n  %s  (%s, default \"%s\")\n      %s\n",
                 setting->env, kind, setting->dflt, setting->help);
    }
}

void
fs_config_print_sample (FILE *out)
{
    fprintf (out,
        "# Finestra settings, one NAME=value per line (an env file for Docker Compose or\n"
        "# systemd). Every setting is listed, commented out, with its default: uncomment a\n"
        "# line to change it. Unset means the default; set but empty means empty.\n"
        "# Generated by `finestra-config --sample` from common/fs_settings.def.\n");
    for (size_t i = 0; i < S_SETTINGS; i++) {
        const s_setting_t *setting = &s_settings [i];
        char kind [160];
        s_describe (setting, kind, sizeof kind);
        fprintf (out, "\n# %s\n# (%s)\n#%s=%s\n", setting->help, kind, setting->env,
                 setting->dflt);
    }
}
