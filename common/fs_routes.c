/*  fs_routes - the routing table: event type -> consuming services, parsed from text. */
#include "finestra.h"

#define FS_ROUTES_MAX_CONSUMERS 8

typedef struct {
    char *type;                                         /* message type */
    const char *consumers [FS_ROUTES_MAX_CONSUMERS + 1];/* service names (static), NULL-ended */
    size_t nconsumers;                                  /* how many */
} s_route_t;

struct fs_routes_s {
    s_route_t *routes;          /* one per type line */
    size_t nroutes;             /* how many */
    const char *all [32];       /* distinct consumers of any type, NULL-ended */
    size_t nall;                /* how many */
};

static void
s_add_distinct (fs_routes_t *self, const char *name)
{
    for (size_t i = 0; i < self->nall; i++)
        if (streq (self->all [i], name))
            return;
    if (self->nall + 1 < sizeof self->all / sizeof self->all [0])
        self->all [self->nall++] = name;
}

fs_routes_t *
fs_routes_parse (const char *text, char *err, size_t errlen)
{
    fs_routes_t *self = (fs_routes_t *) calloc (1, sizeof (fs_routes_t));
    char *copy = strdup (text);
    if (!self || !copy) {
        free (self);
        free (copy);
        snprintf (err, errlen, "out of memory");
        return NULL;
    }
    int lineno = 0;
    //  Line by line by hand: strtok would skip blank lines and miscount
    for (char *line = copy, *next; line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        char *hash = strchr (line, '#');
        if (hash)
            *hash = 0;
        char *saveword = NULL;
        char *type = strtok_r (line, " \t\r", &saveword);
        if (!type)
            continue;               //  blank or comment
        if (!fs_proto_lookup (type)) {
            snprintf (err, errlen, "routes line %d: '%s' is not a message type in the catalogue",
                      lineno, type);
            goto fail;
        }
        for (size_t i = 0; i < self->nroutes; i++)
            if (streq (self->routes [i].type, type)) {
                snprintf (err, errlen, "routes line %d: '%s' is routed twice", lineno, type);
                goto fail;
            }
        s_route_t *grown = (s_route_t *) realloc (self->routes,
                                                  (self->nroutes + 1) * sizeof (s_route_t));
        if (!grown) {
            snprintf (err, errlen, "out of memory");
            goto fail;
        }
        self->routes = grown;
        s_route_t *route = &self->routes [self->nroutes++];
        memset (route, 0, sizeof *route);
        route->type = strdup (type);
        char *name;
        while ((name = strtok_r (NULL, " \t\r", &saveword))) {
            const fs_service_info_t *info = fs_service_info (name);
            if (!info) {
                snprintf (err, errlen, "routes line %d: '%s' is not a Finestra service", lineno, name);
                goto fail;
            }
            if (route->nconsumers == FS_ROUTES_MAX_CONSUMERS) {
                snprintf (err, errlen, "routes line %d: more than %d consumers", lineno,
                          FS_ROUTES_MAX_CONSUMERS);
                goto fail;
            }
            route->consumers [route->nconsumers++] = info->name;
            s_add_distinct (self, info->name);
        }
        if (route->nconsumers == 0) {
            snprintf (err, errlen, "routes line %d: '%s' has no consumer", lineno, type);
            goto fail;
        }
    }
    free (copy);
    return self;
fail:
    free (copy);
    fs_routes_destroy (&self);
    return NULL;
}

fs_routes_t *
fs_routes_load (const fs_config_t *config, char *err, size_t errlen)
{
    if (!config->routes_file || !*config->routes_file)
        return fs_routes_parse (fs_file_routes_conf, err, errlen);
    char *text = NULL;
    FILE *file = fopen (config->routes_file, "r");
    if (file) {
        zchunk_t *chunk = zchunk_read (file, 1024 * 1024);
        fclose (file);
        if (chunk) {
            text = strndup ((char *) zchunk_data (chunk), zchunk_size (chunk));
            zchunk_destroy (&chunk);
        }
    }
    if (!text) {
        snprintf (err, errlen, "FINESTRA_ROUTES_FILE=%s: cannot read: %s", config->routes_file,
                  strerror (errno));
        return NULL;
    }
    fs_routes_t *self = fs_routes_parse (text, err, errlen);
    free (text);
    return self;
}

void
fs_routes_destroy (fs_routes_t **self_p)
{
    assert (self_p);
    fs_routes_t *self = *self_p;
    if (self) {
        for (size_t i = 0; i < self->nroutes; i++)
            free (self->routes [i].type);
        free (self->routes);
        free (self);
        *self_p = NULL;
    }
}

size_t
fs_routes_consumers (fs_routes_t *self, const char *type, const char *const **names)
{
    static const char *none [] = { NULL };
    for (size_t i = 0; i < self->nroutes; i++)
        if (streq (self->routes [i].type, type)) {
            *names = self->routes [i].consumers;
            return self->routes [i].nconsumers;
        }
    *names = none;
    return 0;
}

size_t
fs_routes_all_consumers (fs_routes_t *self, const char *const **names)
{
    *names = self->all;
    return self->nall;
}
