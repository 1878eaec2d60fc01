/*  fs_curve - CURVE on a socket city systems connect to: a ZAP handler (czmq zauth) lets in
    only the certificates of a clients directory, and each certificate's `name` says which
    identity that key may use (intake: the source it publishes as; the router's feed: the
    feed it reads). One per process: zauth binds the process's one ZAP endpoint. */
#ifndef FS_CURVE_H_INCLUDED
#define FS_CURVE_H_INCLUDED

typedef struct fs_curve_s fs_curve_t;

/* Sets sock up as a CURVE server (call BEFORE binding it) with the secret certificate at
   cert_path, and starts zauth over clients_dir. on = false: an object that allows
   everything, the socket left plain. `cert_setting` and `dir_setting` name the settings in
   errors. NULL with err filled on failure (bad certificate, missing directory). */
fs_curve_t *fs_curve_new (zsock_t *sock, bool on, const char *cert_path, const char *cert_setting,
                          const char *clients_dir, const char *dir_setting, char *err,
                          size_t errlen);
void fs_curve_destroy (fs_curve_t **self_p);
/* True when CURVE is on. */
bool fs_curve_on (fs_curve_t *self);
/* The `name` of the certificate of the peer that sent frame (zauth's metadata, else the
   clients directory's certificate of its key); NULL when none or CURVE is off. */
const char *fs_curve_peer_name (fs_curve_t *self, zframe_t *frame);
/* 0 when the peer that sent frame may act as `name` (always 0 with CURVE off), else -1. */
int fs_curve_check_name (fs_curve_t *self, zframe_t *frame, const char *name);

#endif
