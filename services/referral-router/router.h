/*  router.h - the referral-router's internal header: its pure rules and its commands. */
#ifndef ROUTER_H_INCLUDED
#define ROUTER_H_INCLUDED

#include "router_rules.h"

/* `load-directory SERVICES_CSV [NEEDS_CSV | ZCODES_CSV ...]`: the need vocabulary, the
   Z-code mapping and the services, in one transaction; on bad data names file, line and
   column and changes nothing. An exit code. (router_directory.c) */
int router_directory_load (fs_server_t *server, int argc, char **argv);
/* `map-zcode CODE...`: each code's need categories from the loaded mapping, or why none.
   0 when every code mapped, 1 otherwise. (router_directory.c) */
int router_directory_map_zcodes (fs_server_t *server, int argc, char **argv);

#endif
