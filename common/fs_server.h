/*  fs_server - the skeleton every service runs: settings, logs, PostgreSQL (migrations),
    Redis, HTTP endpoint, bus ROUTER with the inbox, the outbox relay, and a zloop that owns
    shutdown. A service supplies an fs_service_t; its main() is one call to fs_server_main. */
#ifndef FS_SERVER_H_INCLUDED
#define FS_SERVER_H_INCLUDED

/* The five services and their fixed facts. */
typedef struct {
    const char *name;           /* "referral-router" */
    const char *schema;         /* PostgreSQL schema it owns, "referral_router" */
    int http_port;              /* standard HTTP port */
} fs_service_info_t;

extern const fs_service_info_t fs_services[];   /* ends with { NULL } */
const fs_service_info_t *fs_service_info (const char *name);
/* The bus endpoint configured for a service (FINESTRA_BUS_<NAME>), NULL if unknown. */
const char *fs_service_bus (const fs_config_t *config, const char *name);

/* What a service brings to the skeleton. */
typedef struct {
    const char *name;                   /* one of fs_services */
    const fs_migration_t *migrations;   /* its schema's migrations */
    const fs_handler_t *handlers;       /* bus message handlers, ends with { NULL } */
    /* Optional: first, single-threaded, before the HTTP endpoint and stores start: register
       metrics (the registry is read-only once HTTP runs), allocate state. 0 or -1. */
    int (*init) (fs_server_t *server);
    /* Optional: in the server actor, after PG/Redis/bus are up, before ready; e.g. bind more sockets with
       fs_server_loop. Returns 0, or -1 to stop start-up. */
    int (*start) (fs_server_t *server);
    /* Optional: before the stores close. */
    void (*stop) (fs_server_t *server);
    /* Optional: extra command-line commands, e.g. "rebuild-redis". Returns an exit code,
       or -1 for "not mine". Runs with settings, logs, PG and Redis up, no loop. */
    int (*command) (fs_server_t *server, int argc, char **argv);
} fs_service_t;

/* main(): parse --help/--print-config, load settings, run the server actor until SIGINT/
   SIGTERM, shut down within FINESTRA_SHUTDOWN_GRACE_MS, return 0 (or 1 on start-up failure). */
int fs_server_main (const fs_service_t *service, int argc, char **argv);

/* Accessors for handlers and start/stop hooks. */
const fs_config_t *fs_server_config (fs_server_t *self);
fs_pg_t *fs_server_pg (fs_server_t *self);
fs_redis_t *fs_server_redis (fs_server_t *self);
fs_routes_t *fs_server_routes (fs_server_t *self);
fs_metrics_t *fs_server_metrics (fs_server_t *self);
zloop_t *fs_server_loop (fs_server_t *self);
const char *fs_server_name (fs_server_t *self);
const char *fs_server_schema (fs_server_t *self);
const fs_handler_t *fs_server_handlers (fs_server_t *self);
fs_inbox_metrics_t *fs_server_inbox_metrics (fs_server_t *self);
/* The service's own state, set by its start hook. */
void *fs_server_state (fs_server_t *self);
void fs_server_set_state (fs_server_t *self, void *state);

/* Emits an event outside any inbox handling (e.g. intake after storing an external event):
   the caller has opened the transaction on fs_server_pg. */
int fs_server_emit (fs_server_t *self, const fs_type_t *ptype, const void *payload,
                    char *id_out, fs_proto_error_t *err);

#endif
