/*  intake.h - the intake service's internal header. */
#ifndef INTAKE_H_INCLUDED
#define INTAKE_H_INCLUDED

#include "finestra.h"

extern const fs_service_t intake_service;
extern const fs_migration_t intake_migrations[];

/* The ingest ROUTER: binds FINESTRA_INTAKE_ENDPOINT into the server loop. */
int intake_ingest_start (fs_server_t *server);
void intake_ingest_stop (fs_server_t *server);

/* `load-territory TERRITORY_CSV CENTRES_CSV [POSTCODES_CSV]`: upserts the territory. */
int intake_territory_load (fs_server_t *server, int argc, char **argv);

#endif
