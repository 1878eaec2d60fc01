/*  finestra-config - prints the sample env file or the settings help, or checks the
    current environment against the settings table. */
#include "finestra.h"

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: finestra-config [--sample | --help | --check]\n"
        "  --sample  print a sample env file, every setting commented out (the default)\n"
        "  --help    describe every setting: type, bounds, default\n"
        "  --check   validate the FINESTRA_* environment; exit 1 with the reason if bad\n");
}

int
main (int argc, char **argv)
{
    const char *command = argc > 1? argv [1]: "--sample";
    if (argc > 2) {
        s_usage (stderr);
        return 2;
    }
    if (streq (command, "--sample"))
        fs_config_print_sample (stdout);
    else
    if (streq (command, "--help")) {
        s_usage (stdout);
        printf ("\n");
        fs_config_print_help (stdout);
    }
    else
    if (streq (command, "--check")) {
        char err [512];
        fs_config_t *config = fs_config_load (err, sizeof err);
        if (!config) {
            fprintf (stderr, "finestra-config: %s\n", err);
            return 1;
        }
        fs_config_destroy (&config);
        printf ("settings ok\n");
    }
    else {
        s_usage (stderr);
        return 2;
    }
    return fflush (stdout) == 0? 0: 1;
}
