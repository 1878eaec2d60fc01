/*  fs_config - the settings of common/fs_settings.def, read from the environment. */
#ifndef FS_CONFIG_H_INCLUDED
#define FS_CONFIG_H_INCLUDED

/* One field per setting; STR and ENUM are owned strings, INT is a long. */
typedef struct {
#define FS_SETTING_STR(field)  char *field;
#define FS_SETTING_INT(field)  long field;
#define FS_SETTING_ENUM(field) char *field;
#define FS_SETTING(field, env, type, dflt, min, max, choices, help) FS_SETTING_##type (field)
#include "fs_settings.def"
#undef FS_SETTING
#undef FS_SETTING_STR
#undef FS_SETTING_INT
#undef FS_SETTING_ENUM
} fs_config_t;

/* Reads every setting from the environment (default when unset). On a bad value
   returns NULL and writes into err (size errlen) a message naming the variable and what
   it accepts, e.g. "FINESTRA_RELAY_RETRY_MS=abc: expected an integer between 50 and 3600000". */
fs_config_t *fs_config_load (char *err, size_t errlen);
void fs_config_destroy (fs_config_t **self_p);
/* Prints every setting: name, default, bounds, help (for --help). */
void fs_config_print_help (FILE *out);
/* Prints a sample env file, every setting commented with its help and default. */
void fs_config_print_sample (FILE *out);

#endif
