/*  intake_curve - CURVE on the ingest socket: zauth allows only the listed client keys,
    and each key may publish only as the source named in its certificate. */
#include "intake.h"

//  CURVE state for one ingest socket
struct intake_curve_s {
    bool on;                        /* false: everything allowed, socket left plain */
    zactor_t *auth;                 /* zauth: the process's one ZAP handler */
    zcertstore_t *clients;          /* the clients directory, to map a key to its name */
};

//  Reads the source a peer may publish as: the `name` that zauth forwards from the
//  client's certificate, else the certificate of its key (User-Id) in our own store
static const char *
s_peer_name (intake_curve_t *self, zframe_t *frame)
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

intake_curve_t *
intake_curve_new (zsock_t *sock, const fs_config_t *config, char *err, size_t errlen)
{
    assert (sock);
    assert (config);
    intake_curve_t *self = (intake_curve_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    if (!streq (config->curve, "on"))
        return self;
    self->on = true;

    const char *path = config->curve_server_cert;
    if (!path || !*path) {
        snprintf (err, errlen, "FINESTRA_CURVE_SERVER_CERT is required when FINESTRA_CURVE=on");
        goto failed;
    }
    if (!zsys_file_exists (path)) {
        //  zcert_load reads NAME_secret when NAME is given; say which files we looked for
        char secret [PATH_MAX];
        snprintf (secret, sizeof secret, "%s_secret", path);
        if (!zsys_file_exists (secret)) {
            snprintf (err, errlen, "FINESTRA_CURVE_SERVER_CERT=%s: no such file", path);
            goto failed;
        }
    }
    zcert_t *server = zcert_load (path);
    if (!server) {
        snprintf (err, errlen, "FINESTRA_CURVE_SERVER_CERT=%s: not a certificate (zcert format)",
                  path);
        goto failed;
    }
    //  A public-only certificate loads with an all-zero secret key
    const byte *secret_key = zcert_secret_key (server);
    bool has_secret = false;
    for (int i = 0; i < 32; i++)
        has_secret |= secret_key [i] != 0;
    if (!has_secret) {
        snprintf (err, errlen, "FINESTRA_CURVE_SERVER_CERT=%s: has no secret key"
                  " (give intake's .key_secret file)", path);
        zcert_destroy (&server);
        goto failed;
    }

    const char *dir = config->curve_clients_dir;
    if (!dir || !*dir) {
        snprintf (err, errlen, "FINESTRA_CURVE_CLIENTS_DIR is required when FINESTRA_CURVE=on");
        zcert_destroy (&server);
        goto failed;
    }
    int mode = zsys_file_mode (dir);
    if (mode == -1 || !S_ISDIR (mode)) {
        snprintf (err, errlen, "FINESTRA_CURVE_CLIENTS_DIR=%s: no such directory", dir);
        zcert_destroy (&server);
        goto failed;
    }
    self->clients = zcertstore_new (dir);
    if (!self->clients) {
        snprintf (err, errlen, "FINESTRA_CURVE_CLIENTS_DIR=%s: cannot read certificates", dir);
        zcert_destroy (&server);
        goto failed;
    }

    //  Without a ZAP handler libzmq lets any client key in: zauth must run before the
    //  socket accepts a connection. It binds the process's one ZAP endpoint (so one
    //  intake_curve_t at a time per process); with no ALLOW/DENY list it still lets NULL
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
    fs_info ("ingest CURVE on", "clients", dir);
    return self;

failed:
    intake_curve_destroy (&self);
    return NULL;
}

void
intake_curve_destroy (intake_curve_t **self_p)
{
    assert (self_p);
    intake_curve_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->auth);
    zcertstore_destroy (&self->clients);
    free (self);
    *self_p = NULL;
}

int
intake_curve_check_source (intake_curve_t *self, zframe_t *frame, const char *source)
{
    assert (self);
    assert (frame);
    if (!self->on)
        return 0;
    const char *name = s_peer_name (self, frame);
    return name && source && streq (name, source) ? 0 : -1;
}
