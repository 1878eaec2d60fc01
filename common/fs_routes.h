/*  fs_routes - the routing table: which services consume which event type.
    Configuration, not code: proto/routes.conf (built in) or FINESTRA_ROUTES_FILE. */
#ifndef FS_ROUTES_H_INCLUDED
#define FS_ROUTES_H_INCLUDED

typedef struct fs_routes_s fs_routes_t;

/* Parses the text of a routing table. Every type must be in the proto catalogue and every
   consumer a known service; otherwise NULL and err names the line. */
fs_routes_t *fs_routes_parse (const char *text, char *err, size_t errlen);
/* Loads FINESTRA_ROUTES_FILE when set, else the built-in table. */
fs_routes_t *fs_routes_load (const fs_config_t *config, char *err, size_t errlen);
void fs_routes_destroy (fs_routes_t **self_p);

/* Consumers of a type: count, and *names set to a NULL-terminated array owned by routes. */
size_t fs_routes_consumers (fs_routes_t *self, const char *type, const char *const **names);
/* The distinct consumers of any type emitted by... anyone: for relays to connect. */
size_t fs_routes_all_consumers (fs_routes_t *self, const char *const **names);

#endif
