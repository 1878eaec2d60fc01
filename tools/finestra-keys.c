/*  finestra-keys - makes and lists the CURVE key pairs of intake and of the city systems
    that publish to it (zcert files; a client's `name` is the source it may publish as). */
#include "finestra.h"

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: finestra-keys new NAME DIR   a publisher's pair: DIR/NAME.key (public, goes in\n"
        "                                    FINESTRA_CURVE_CLIENTS_DIR) and DIR/NAME.key_secret\n"
        "                                    (mode 0600, for the publisher only); NAME is the\n"
        "                                    source it may publish as\n"
        "       finestra-keys server DIR     intake's own pair: DIR/intake.key (public, for\n"
        "                                    publishers) and DIR/intake.key_secret (for\n"
        "                                    FINESTRA_CURVE_SERVER_CERT)\n"
        "       finestra-keys list DIR       name and public key of every certificate in DIR\n");
}

//  A name is a source: 1..64 characters a-z A-Z 0-9 . _ - (it becomes a file name too)
static bool
s_valid_name (const char *name)
{
    size_t len = strlen (name);
    if (len == 0 || len > 64 || name [0] == '.' || name [0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        ||    c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int
s_make (const char *name, const char *dir)
{
    if (!s_valid_name (name)) {
        fprintf (stderr, "finestra-keys: '%s': a name is 1..64 of a-z A-Z 0-9 . _ -"
                 " (not starting with . or -)\n", name);
        return 2;
    }
    int mode = zsys_file_mode (dir);
    if (mode == -1 || !S_ISDIR (mode)) {
        fprintf (stderr, "finestra-keys: %s: no such directory\n", dir);
        return 1;
    }
    char public [PATH_MAX], secret [PATH_MAX];
    snprintf (public, sizeof public, "%s/%s.key", dir, name);
    snprintf (secret, sizeof secret, "%s/%s.key_secret", dir, name);
    //  Never overwrite: a replaced key locks its publisher out (rotation makes a new name
    //  or a new directory on purpose)
    if (zsys_file_exists (public) || zsys_file_exists (secret)) {
        fprintf (stderr, "finestra-keys: %s already exists; remove it first to replace the key\n",
                 zsys_file_exists (public) ? public : secret);
        return 1;
    }
    zcert_t *cert = zcert_new ();
    if (!cert) {
        fprintf (stderr, "finestra-keys: cannot make a key pair\n");
        return 1;
    }
    zcert_set_meta (cert, "name", "%s", name);
    char created [32];
    fs_rfc3339 (fs_now_ms (), created);
    zcert_set_meta (cert, "created", "%s", created);
    int rc = zcert_save (cert, public);
    //  zcert_save already writes the secret file private; make sure whatever the umask
    if (rc == 0 && chmod (secret, 0600) != 0)
        rc = -1;
    if (rc != 0) {
        fprintf (stderr, "finestra-keys: cannot write %s: %s\n", public, strerror (errno));
        zcert_destroy (&cert);
        return 1;
    }
    printf ("%s\t%s\n", name, zcert_public_txt (cert));
    zcert_destroy (&cert);
    return fflush (stdout) == 0 ? 0 : 1;
}

static bool
s_ends_with (const char *s, const char *suffix)
{
    size_t len = strlen (s), slen = strlen (suffix);
    return len >= slen && streq (s + len - slen, suffix);
}

static int
s_list (const char *dir)
{
    int mode = zsys_file_mode (dir);
    if (mode == -1 || !S_ISDIR (mode)) {
        fprintf (stderr, "finestra-keys: %s: no such directory\n", dir);
        return 1;
    }
    zdir_t *zdir = zdir_new (dir, NULL);
    if (!zdir) {
        fprintf (stderr, "finestra-keys: cannot read %s\n", dir);
        return 1;
    }
    //  File names sorted, so the listing is stable
    zlist_t *paths = zlist_new ();
    zlist_autofree (paths);
    zlist_t *files = zdir_list (zdir);
    for (zfile_t *file = (zfile_t *) zlist_first (files); file;
         file = (zfile_t *) zlist_next (files))
        zlist_append (paths, (void *) zfile_filename (file, NULL));
    zlist_destroy (&files);
    zlist_sort (paths, NULL);
    int listed = 0;
    for (const char *path = (const char *) zlist_first (paths); path;
         path = (const char *) zlist_next (paths)) {
        //  A pair shows once, under its public file; a lone secret file shows too
        if (s_ends_with (path, "_secret")) {
            char public [PATH_MAX];
            snprintf (public, sizeof public, "%.*s", (int) (strlen (path) - 7), path);
            if (zsys_file_exists (public))
                continue;
        }
        zcert_t *cert = zcert_load (path);
        if (!cert)
            continue;           //  not a certificate: zcertstore ignores it too
        const char *name = zcert_meta (cert, "name");
        char secret [PATH_MAX];
        snprintf (secret, sizeof secret, "%s_secret", path);
        bool has_secret = s_ends_with (path, "_secret") || zsys_file_exists (secret);
        const char *base = strrchr (path, '/');
        printf ("%s\t%s\t%s%s\n", name ? name : "(no name)", zcert_public_txt (cert),
                base ? base + 1 : path, has_secret ? "\t(with secret)" : "");
        zcert_destroy (&cert);
        listed++;
    }
    zlist_destroy (&paths);
    zdir_destroy (&zdir);
    if (listed == 0)
        fprintf (stderr, "finestra-keys: no certificates in %s\n", dir);
    return fflush (stdout) == 0 ? 0 : 1;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && streq (argv [1], "new"))
        return s_make (argv [2], argv [3]);
    if (argc == 3 && streq (argv [1], "server"))
        return s_make ("intake", argv [2]);
    if (argc == 3 && streq (argv [1], "list"))
        return s_list (argv [2]);
    if (argc == 2 && (streq (argv [1], "--help") || streq (argv [1], "-h"))) {
        s_usage (stdout);
        return 0;
    }
    s_usage (stderr);
    return 2;
}
