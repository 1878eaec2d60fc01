/*  fs_curve - CURVE on a socket city systems connect to: zauth allows only the listed
    client keys, and each key may act only as the name in its certificate. */
#include "finestra.h"

//  CURVE state for one ingest socket
struct fs_curve_s {
    bool on;                        /* false: everything allowed, socket left plain */
    zactor_t *auth;                 /* zauth: the process's one ZAP handler */
    zcertstore_t *clients;          /* the clients directory, to map a key to its name */
};

//  Reads the name a peer may act as: the `name` that zauth forwards from the
//  client's certificate, else the certificate of its key (User-Id) in our own store
static const char *
s_peer_name (fs_curve_t *self, zframe_t *frame)
{
    const char *name = zframe_meta (frame, "name");
    if (name && *name)
        return name;
    const char *key = zframe_meta (frame, "User-Id");
    if (!key || strlen (key) != 40)
        return NULL;
    //  zcertstore reloads the directory when it has changed, so rotated keys count here too
    zcert_t *cert = zcertstore_lookup (self->clients, key);
    return cert ? zcert_meta (cert, "name") : NULL;
}

fs_curve_t *
fs_curve_new (zsock_t *sock, bool on, const char *cert_path, const char *cert_setting,
              const char *clients_dir, const char *dir_setting, char *err, size_t errlen)
{
    assert (sock);
    assert (cert_setting && dir_setting);
    fs_curve_t *self = (fs_curve_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (!on)
        return self;
    self->on = true;

    const char *path = cert_path;
    if (!path || !*path) {
        snprintf (err, errlen, "%s is required when CURVE is on", cert_setting);
        goto failed;
    }
    if (!zsys_file_exists (path)) {
        //  zcert_load reads NAME_secret when NAME is given; say which files we looked for
        char secret [PATH_MAX];
        snprintf (secret, sizeof secret, "%s_secret", path);
        if (!zsys_file_exists (secret)) {
            snprintf (err, errlen, "%s=%s: no such file", cert_setting, path);
            goto failed;
        }
    }
    zcert_t *server = zcert_load (path);
    if (!server) {
        snprintf (err, errlen, "%s=%s: not a certificate (zcert format)",
                  cert_setting, path);
        goto failed;
    }
    //  A public-only certificate loads with an all-zero secret key
    const byte *secret_key = zcert_secret_key (server);
    bool has_secret = false;
    for (int i = 0; i < 32; i++)
        has_secret |= secret_key [i] != 0;
    if (!has_secret) {
        snprintf (err, errlen, "%s=%s: has no secret key"
                  " (give the server's .key_secret file)", cert_setting, path);
        zcert_destroy (&server);
        goto failed;
    }

    const char *dir = clients_dir;
    if (!dir || !*dir) {
        snprintf (err, errlen, "%s is required when CURVE is on", dir_setting);
        zcert_destroy (&server);
        goto failed;
    }
    int mode = zsys_file_mode (dir);
    if (mode == -1 || !S_ISDIR (mode)) {
        snprintf (err, errlen, "%s=%s: no such directory", dir_setting, dir);
        zcert_destroy (&server);
        goto failed;
    }
    self->clients = zcertstore_new (dir);
    if (!self->clients) {
        snprintf (err, errlen, "%s=%s: cannot read certificates", dir_setting, dir);
        zcert_destroy (&server);
        goto failed;
    }

    //  Without a ZAP handler libzmq lets any client key in: zauth must run before the
    //  socket accepts a connection. It binds the process's one ZAP endpoint (so one
    //  fs_curve_t at a time per process); with no ALLOW/DENY list it still lets NULL
    //  connections through, so the plain bus sockets keep working.
    self->auth = zactor_new (zauth, NULL);
    if (!self->auth) {
        snprintf (err, errlen, "cannot start the ZAP handler (zauth)");
        zcert_destroy (&server);
        goto failed;
    }
    zstr_sendx (self->auth, "CURVE", dir, NULL);
    zsock_wait (self->auth);

    zcert_apply (server, sock);
    zsock_set_curve_server (sock, 1);
    zcert_destroy (&server);
    fs_info ("CURVE on", "clients", dir);
    return self;

failed:
    fs_curve_destroy (&self);
    return NULL;
}

void
fs_curve_destroy (fs_curve_t **self_p)
{
    assert (self_p);
    fs_curve_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->auth);
    zcertstore_destroy (&self->clients);
    free (self);
    *self_p = NULL;
}

bool
fs_curve_on (fs_curve_t *self)
{
    assert (self);
    return self->on;
}

const char *
fs_curve_peer_name (fs_curve_t *self, zframe_t *frame)
{
    assert (self);
    assert (frame);
    return self->on ? s_peer_name (self, frame) : NULL;
}

int
fs_curve_check_name (fs_curve_t *self, zframe_t *frame, const char *name)
{
    assert (self);
    assert (frame);
    if (!self->on)
        return 0;
    const char *peer = s_peer_name (self, frame);
    return peer && name && streq (peer, name) ? 0 : -1;
}
