/*  fs_test_curve - CURVE keys for a test in a temporary directory: a server's certificate,
    a clients directory with one listed client, and one client that is not listed. */
#include "fs_test.h"

void
fs_test_curve_keys_make (fs_test_curve_keys_t *keys, const char *tag, const char *server_file,
                         const char *server_name, const char *clients, const char *allowed,
                         const char *unknown)
{
    memset (keys, 0, sizeof *keys);
    snprintf (keys->dir, sizeof keys->dir, "/tmp/finestra-%s-XXXXXX", tag);
    cr_assert (mkdtemp (keys->dir));
    snprintf (keys->server_cert, sizeof keys->server_cert, "%s/%s.key", keys->dir, server_file);
    snprintf (keys->clients, sizeof keys->clients, "%s/%s", keys->dir, clients);
    cr_assert_eq (mkdir (keys->clients, 0755), 0);
    keys->server = zcert_new ();
    zcert_set_meta (keys->server, "name", "%s", server_name);
    cr_assert_eq (zcert_save (keys->server, keys->server_cert), 0);
    keys->allowed = zcert_new ();
    zcert_set_meta (keys->allowed, "name", "%s", allowed);
    char path [192];
    snprintf (path, sizeof path, "%s/%s.key", keys->clients, allowed);
    cr_assert_eq (zcert_save_public (keys->allowed, path), 0);
    keys->unknown = zcert_new ();
    zcert_set_meta (keys->unknown, "name", "%s", unknown);
}

void
fs_test_curve_keys_destroy (fs_test_curve_keys_t *keys)
{
    zcert_destroy (&keys->server);
    zcert_destroy (&keys->allowed);
    zcert_destroy (&keys->unknown);
    char command [192];
    snprintf (command, sizeof command, "rm -rf '%s'", keys->dir);
    cr_assert_eq (system (command), 0);
}
