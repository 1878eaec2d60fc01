/*  intake.h - the intake service's internal header. */
#ifndef INTAKE_H_INCLUDED
#define INTAKE_H_INCLUDED

#include "finestra.h"

extern const fs_service_t intake_service;
extern const fs_migration_t intake_migrations[];

/* The ingest ROUTER: binds FINESTRA_INTAKE_ENDPOINT into the server loop. */
int intake_ingest_start (fs_server_t *server);
void intake_ingest_stop (fs_server_t *server);

/* intake_curve.c: CURVE security on the ingest socket (FINESTRA_CURVE=on), with a ZAP
   handler (czmq zauth) that allows only the certificates in FINESTRA_CURVE_CLIENTS_DIR.
   Each certificate's `name` metadata is the `source` that key may publish as. */
typedef struct intake_curve_s intake_curve_t;
/* Sets sock up as a CURVE server (call BEFORE binding it) and starts the ZAP handler.
   With FINESTRA_CURVE=off: returns an object that allows everything (NULL sockets stay
   plain). NULL with err filled on failure (bad certificate, missing directory). */
intake_curve_t *intake_curve_new (zsock_t *sock, const fs_config_t *config, char *err, size_t errlen);
void intake_curve_destroy (intake_curve_t **self_p);
/* 0 when the peer that sent `frame` may publish as `source` (always 0 with CURVE off);
   -1 otherwise (then the receipt is `source_mismatch`). */
int intake_curve_check_source (intake_curve_t *self, zframe_t *frame, const char *source);

/* `load-territory TERRITORY_CSV CENTRES_CSV [POSTCODES_CSV]`: upserts the territory. */
int intake_territory_load (fs_server_t *server, int argc, char **argv);

#endif
