/*  fs_server - the skeleton every service runs: stores, bus, relay, HTTP, and a loop that owns shutdown. */
#include "finestra.h"

const fs_service_info_t fs_services [] = {
    { "intake",          "intake",          8081 },
    { "referral-router", "referral_router", 8082 },
    { "benefits-office", "benefits_office", 8083 },
    { "notification",    "notification",    8084 },
    { "reporting",       "reporting",       8085 },
    { NULL, NULL, 0 }
};

struct fs_server_s {
    const fs_service_t *service;    /* what the service brings */
    const fs_service_info_t *info;  /* its fixed facts */
    fs_config_t *config;            /* settings */
    fs_routes_t *routes;            /* routing table */
    fs_metrics_t *metrics;          /* registry, read-only once HTTP runs */
    fs_readiness_t readiness;       /* flags the HTTP thread reads */
    fs_http_t *http;                /* /healthz /readyz /metrics */
    fs_pg_t *pg;                    /* used by the server actor only, once it runs */
    fs_redis_t *redis;              /* idem */
    zloop_t *loop;                  /* the server actor's loop */
    zsock_t *bus;                   /* ROUTER receiving this service's events */
    zactor_t *relay;                /* sends this service's outbox */
    fs_relay_args_t relay_args;     /* the relay's arguments (outlive it) */
    fs_inbox_metrics_t inbox;       /* inbox counters */
    void *state;                    /* the service's own */
};

const fs_service_info_t *
fs_service_info (const char *name)
{
    for (const fs_service_info_t *info = fs_services; name && info->name; info++)
        if (streq (info->name, name))
            return info;
    return NULL;
}

const char *
fs_service_bus (const fs_config_t *config, const char *name)
{
    if (streq (name, "intake"))          return config->bus_intake;
    if (streq (name, "referral-router")) return config->bus_referral_router;
    if (streq (name, "benefits-office")) return config->bus_benefits_office;
    if (streq (name, "notification"))    return config->bus_notification;
    if (streq (name, "reporting"))       return config->bus_reporting;
    return NULL;
}

const fs_config_t *fs_server_config (fs_server_t *self) { return self->config; }
fs_pg_t *fs_server_pg (fs_server_t *self) { return self->pg; }
fs_redis_t *fs_server_redis (fs_server_t *self) { return self->redis; }
fs_routes_t *fs_server_routes (fs_server_t *self) { return self->routes; }
fs_metrics_t *fs_server_metrics (fs_server_t *self) { return self->metrics; }
zloop_t *fs_server_loop (fs_server_t *self) { return self->loop; }
const char *fs_server_name (fs_server_t *self) { return self->info->name; }
const char *fs_server_schema (fs_server_t *self) { return self->info->schema; }
const fs_handler_t *fs_server_handlers (fs_server_t *self) { return self->service->handlers; }
fs_inbox_metrics_t *fs_server_inbox_metrics (fs_server_t *self) { return &self->inbox; }
void *fs_server_state (fs_server_t *self) { return self->state; }
void fs_server_set_state (fs_server_t *self, void *state) { self->state = state; }

int
fs_server_emit (fs_server_t *self, const fs_type_t *ptype, const void *payload,
                char *id_out, fs_proto_error_t *err)
{
    return fs_outbox_emit (self->pg, self->info->schema, self->info->name, self->routes,
                           ptype, payload, NULL, id_out, err);
}

//  --------------------------------------------------------------------------
//  The server actor: owns the bus socket, the relay and the loop

static int
s_on_pipe (zloop_t *loop, zsock_t *pipe, void *arg)
{
    char *command = zstr_recv (pipe);
    bool term = !command || streq (command, "$TERM");
    zstr_free (&command);
    return term ? -1 : 0;           //  -1 ends the loop: shutdown begins
}

static int
s_on_bus (zloop_t *loop, zsock_t *bus, void *arg)
{
    return fs_inbox_handle ((fs_server_t *) arg, bus);
}

//  Keeps /readyz true to the stores' state
static int
s_on_check (zloop_t *loop, int timer_id, void *arg)
{
    fs_server_t *self = (fs_server_t *) arg;
    PGresult *result = fs_pg_exec (self->pg, "SELECT 1", 0, NULL);
    atomic_store (&self->readiness.pg, result != NULL);
    PQclear (result);
    atomic_store (&self->readiness.redis, fs_redis_ping (self->redis) == 0);
    return 0;
}

static void
s_server_actor (zsock_t *pipe, void *arg)
{
    fs_server_t *self = (fs_server_t *) arg;
    const fs_config_t *config = self->config;
    char err [256] = "";
    const char *bind = config->bus_bind && *config->bus_bind
                     ? config->bus_bind : fs_service_bus (config, self->info->name);
    self->loop = zloop_new ();
    if (strchr (bind, ',')) {
        //  A list names replicas; each binds one of them, told by FINESTRA_BUS_BIND
        fs_error ("the bus endpoint is a list of replicas: set FINESTRA_BUS_BIND to this"
                  " replica's own endpoint", "endpoint", bind);
        goto failed;
    }
    self->bus = fs_zmq_router (bind, config, err, sizeof err);
    if (!self->bus) {
        fs_error ("cannot bind the bus", "endpoint", bind, "reason", err);
        goto failed;
    }
    self->relay = zactor_new (fs_relay_actor, &self->relay_args);
    if (!self->relay) {
        fs_error ("cannot start the relay");
        goto failed;
    }
    zloop_reader (self->loop, pipe, s_on_pipe, self);
    zloop_reader (self->loop, self->bus, s_on_bus, self);
    //  zloop ends on zsys_interrupted by default; here only $TERM ends it, so the
    //  parent controls the order of shutdown
    zloop_set_nonstop (self->loop, true);
    if (self->service->start && self->service->start (self)) {
        fs_error ("service start-up failed");
        goto failed;
    }
    zloop_timer (self->loop, 1000, 0, s_on_check, self);
    s_on_check (self->loop, 0, self);
    atomic_store (&self->readiness.sockets, true);
    fs_info ("ready", "bus", bind);
    zsock_signal (pipe, 0);

    zloop_start (self->loop);

    //  Shutdown: handlers run to completion inside the loop, so nothing is half-applied
    atomic_store (&self->readiness.stopping, true);
    if (self->service->stop)
        self->service->stop (self);
    zactor_destroy (&self->relay);
    zsock_destroy (&self->bus);
    zloop_destroy (&self->loop);
    return;

failed:
    zactor_destroy (&self->relay);
    zsock_destroy (&self->bus);
    zloop_destroy (&self->loop);
    zsock_signal (pipe, 1);
}

//  --------------------------------------------------------------------------
//  main ()

static void
s_usage (const fs_service_t *service, FILE *out)
{
    fprintf (out,
             "usage: finestra-%s [--help | --print-config | <command> ...]\n"
             "Runs the %s service until SIGINT or SIGTERM. Settings come from the environment:\n\n",
             service->name, service->name);
    fs_config_print_help (out);
}

static void
s_server_destroy (fs_server_t **self_p)
{
    fs_server_t *self = *self_p;
    if (!self)
        return;
    fs_http_destroy (&self->http);
    fs_redis_destroy (&self->redis);
    fs_pg_destroy (&self->pg);
    fs_metrics_destroy (&self->metrics);
    fs_routes_destroy (&self->routes);
    fs_config_destroy (&self->config);
    free (self);
    *self_p = NULL;
}

int
fs_server_main (const fs_service_t *service, int argc, char **argv)
{
    if (argc > 1 && (streq (argv [1], "--help") || streq (argv [1], "-h"))) {
        s_usage (service, stdout);
        return 0;
    }
    char err [512] = "";
    fs_server_t *self = (fs_server_t *) calloc (1, sizeof (fs_server_t));
    assert (self);
    self->service = service;
    self->info = fs_service_info (service->name);
    assert (self->info);            //  a service not in fs_services is a programmer error
    self->config = fs_config_load (err, sizeof err);
    if (!self->config) {
        fprintf (stderr, "finestra-%s: %s\n", service->name, err);
        s_server_destroy (&self);
        return 1;
    }
    if (argc > 1 && streq (argv [1], "--print-config")) {
        fs_config_print_sample (stdout);
        s_server_destroy (&self);
        return 0;
    }
    fs_log_init (service->name, (fs_log_level_t) fs_log_level_parse (self->config->log_level));
    //  czmq's handler only sets zsys_interrupted; the loops below act on it
    zsys_init ();
    zsys_set_linger ((size_t) self->config->zmq_linger_ms);
    int rc = 1;
    self->routes = fs_routes_load (self->config, err, sizeof err);
    if (!self->routes) {
        fs_error ("bad routing table", "reason", err);
        goto done;
    }
    self->metrics = fs_metrics_new (service->name);
    fs_relay_register (&self->relay_args, self->metrics);
    fs_inbox_register (&self->inbox, self->metrics);
    self->relay_args.config = self->config;
    self->relay_args.service = self->info->name;
    self->relay_args.schema = self->info->schema;
    self->relay_args.routes = self->routes;
    if (service->init && service->init (self))
        goto done;
    bool command = argc > 1;
    if (!command) {
        int port = self->config->http_port < 0 ? self->info->http_port : (int) self->config->http_port;
        self->http = fs_http_new (self->config->http_bind, port, self->metrics, &self->readiness,
                                  err, sizeof err);
        if (!self->http) {
            fs_error ("cannot start the HTTP endpoint", "reason", err);
            goto done;
        }
        char portstr [16];
        snprintf (portstr, sizeof portstr, "%d", fs_http_port (self->http));
        fs_info ("starting", "http_port", portstr);
    }
    //  Stores: wait for them with back-off (they may start after us under Compose)
    self->pg = fs_pg_new (self->config->pg_url);
    if (!self->pg || fs_pg_connect (self->pg, (int) self->config->pg_connect_timeout_ms)) {
        fs_error ("cannot reach PostgreSQL", "reason", self->pg ? fs_pg_error (self->pg) : "oom");
        goto done;
    }
    if (fs_migrate_run (self->pg, self->info->schema, "common", common_migrations) < 0
    ||  fs_migrate_run (self->pg, self->info->schema, self->info->schema, service->migrations) < 0) {
        fs_error ("migrations failed", "reason", fs_pg_error (self->pg));
        goto done;
    }
    self->redis = fs_redis_new (self->config->redis_url, err, sizeof err);
    if (!self->redis || fs_redis_connect (self->redis, (int) self->config->pg_connect_timeout_ms)) {
        fs_error ("cannot reach Redis", "reason", self->redis ? fs_redis_error (self->redis) : err);
        goto done;
    }
    if (command) {
        rc = service->command ? service->command (self, argc - 1, argv + 1) : -1;
        if (rc == -1) {
            fprintf (stderr, "finestra-%s: unknown command '%s'\n", service->name, argv [1]);
            s_usage (service, stderr);
            rc = 2;
        }
        goto done;
    }
    zactor_t *server = zactor_new (s_server_actor, self);
    if (!server)
        goto done;                  //  the actor logged why
    //  Wait for SIGINT/SIGTERM; the handler only set the flag
    zpoller_t *poller = zpoller_new (server, NULL);
    rc = 0;
    while (!zsys_interrupted) {
        if (zpoller_wait (poller, 200) == server) {
            rc = 1;                 //  the actor stopped on its own: a fatal error
            break;
        }
    }
    zpoller_destroy (&poller);
    fs_info ("stopping");
    zactor_destroy (&server);
    fs_info ("stopped");
done:
    s_server_destroy (&self);
    return rc;
}
