/*  intake_curve - CURVE on the ingest socket (fs_curve): zauth allows only the listed client
    keys, and each key may publish only as the source named in its certificate. */
#include "intake.h"

//  CURVE state for the ingest socket
struct intake_curve_s {
    fs_curve_t *curve;              /* the keys and their names */
};

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
    self->curve = fs_curve_new (sock, streq (config->curve, "on"), config->curve_server_cert,
                                "FINESTRA_CURVE_SERVER_CERT", config->curve_clients_dir,
                                "FINESTRA_CURVE_CLIENTS_DIR", err, errlen);
    if (!self->curve)
        intake_curve_destroy (&self);
    return self;
}

void
intake_curve_destroy (intake_curve_t **self_p)
{
    assert (self_p);
    intake_curve_t *self = *self_p;
    if (!self)
        return;
    fs_curve_destroy (&self->curve);
    free (self);
    *self_p = NULL;
}

int
intake_curve_check_source (intake_curve_t *self, zframe_t *frame, const char *source)
{
    assert (self);
    return fs_curve_check_name (self->curve, frame, source);
}
