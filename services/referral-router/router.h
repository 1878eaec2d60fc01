/*  router.h - the referral-router's internal header: its pure rules and its commands. */
#ifndef ROUTER_H_INCLUDED
#define ROUTER_H_INCLUDED

#include "router_rules.h"
#include "router_feed.h"

/* `load-directory SERVICES_CSV [NEEDS_CSV | ZCODES_CSV | TERRITORY_CSV ...]`: the
   territory, the need vocabulary, the Z-code mapping and the services, in one transaction;
   on bad data names file, line and column and changes nothing. An exit code.
   (router_directory_load.c) */
int router_directory_load (fs_server_t *server, int argc, char **argv);
/* `map-zcode CODE...`: each code's need categories from the loaded mapping, or why none.
   0 when every code mapped, 1 otherwise. (router_directory_load.c) */
int router_directory_map_zcodes (fs_server_t *server, int argc, char **argv);
/* `find-services [--age N] [--lives ...] [--district D] ...`: every active service's fit
   for the facts given, the criterion that fails in words. (router_directory_load.c) */
int router_directory_find_services (fs_server_t *server, int argc, char **argv);

/* ---- router_referral.c: the lifecycle applied to stored referrals ------------------- */

#define ROUTER_REFERRAL_UNKNOWN 100     /* no referral of that id */

/* Inside the caller's transaction: moves the referral to `to` as actor, if the transition
   table allows it (router_transition_check); updates its row, records the transition with
   its reason, and emits referral.status_changed (correlation carried on). Returns
   ROUTER_TX_OK, a router_tx_result_t refusal or ROUTER_REFERRAL_UNKNOWN with err saying
   why (nothing written), or -1 on a database failure (roll back). */
int router_referral_transition (fs_server_t *server, const char *referral_id,
                                router_status_t to, router_actor_t actor,
                                const char *reason_code, const char *reason_text, char *err,
                                size_t errlen);
/* As router_referral_transition on a connection of the caller's (the feed endpoint's). */
int router_referral_transition_on (fs_server_t *server, fs_pg_t *pg, const char *referral_id,
                                   router_status_t to, router_actor_t actor,
                                   const char *reason_code, const char *reason_text, char *err,
                                   size_t errlen);
/* `transition REFERRAL_ID STATUS --as requester|target [--reason CODE] [--text TEXT]`:
   0 applied, 1 refused (the error lists what is allowed), 2 usage. */
int router_referral_command (fs_server_t *server, int argc, char **argv);

/* ---- router_directory.c: the loaded directory, in memory ----------------------------- */

typedef struct _router_directory_t router_directory_t;

/* Reads the active services and the Z-code mapping in one snapshot. NULL with err set when
   the database cannot be read (or holds a row load-directory would refuse). */
router_directory_t *router_directory_new (fs_pg_t *pg, char *err, size_t errlen);
/* As router_directory_new, read inside the caller's open transaction (e.g. an inbox
   handler's): no snapshot of its own. */
router_directory_t *router_directory_read (fs_pg_t *pg, char *err, size_t errlen);
void router_directory_destroy (router_directory_t **self_p);
/* Active services, ordered by code; index past the end gives NULL. */
size_t router_directory_size (router_directory_t *self);
const router_service_t *router_directory_service (router_directory_t *self, size_t index);
/* The active service of that code, NULL when none. */
const router_service_t *router_directory_find (router_directory_t *self, const char *code);
/* The district of a neighbourhood of the loaded territory; NULL when unknown. */
const char *router_directory_district_of (router_directory_t *self,
                                          const char *neighbourhood);
/* router_zcode_lookup over the loaded mapping. */
router_zcode_result_t router_directory_zcode (router_directory_t *self, const char *code,
                                              const router_zmap_t **row, char *normalized);
/* router_zcode_needs over the loaded mapping: a health event's codes into need categories. */
size_t router_directory_zcode_needs (router_directory_t *self, const char *const *codes,
                                     size_t ncodes, const char **needs, size_t max,
                                     router_zcode_result_t *results);

/* ---- router_route.c: routing a request (router_scope.h: what may leave) --------------- */

/* True when text, a list of items separated by 0x1f (array_to_string (..., E'\x1f')),
   holds item. */
bool router_list_has (const char *text, const char *item);
/* Registers the routing counters (the service's init hook). 0. */
int router_route_init (fs_server_t *server);
/* intake.referral_requested: needs -> candidates -> criteria -> level -> consent -> the
   package at its target, in the inbox transaction; once per event_ref. */
int router_on_referral_requested (fs_inbox_ctx_t *ctx);
/* A consent of person changed: its referrals held for consent are checked again, inside
   the caller's transaction; those now allowed are sent. 0 or -1 (database). */
int router_route_recheck (fs_server_t *server, fs_pg_t *pg, const char *person,
                          const fs_envelope_t *cause);
/* `override-consent REFERRAL_ID --basis B --by WHO --reason TEXT`: an audited release of a
   referral held for consent with the data the basis allows. 0, 1 refused, 2 usage. */
int router_override_command (fs_server_t *server, int argc, char **argv);

#endif
