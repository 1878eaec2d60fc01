/*  fs_zmq - the suite's sockets, with linger, HWMs and ROUTER_MANDATORY set on purpose. */
#include "finestra.h"

void
fs_zmq_tune (zsock_t *sock, const fs_config_t *config)
{
    assert (sock);
    assert (config);
    zsock_set_linger (sock, (int) config->zmq_linger_ms);
    zsock_set_sndhwm (sock, (int) config->zmq_hwm);
    zsock_set_rcvhwm (sock, (int) config->zmq_hwm);
}

zsock_t *
fs_zmq_router (const char *endpoint, const fs_config_t *config, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new (ZMQ_ROUTER);
    if (!sock) {
        snprintf (err, errlen, "cannot create ROUTER socket: %s", zmq_strerror (zmq_errno ()));
        return NULL;
    }
    fs_zmq_tune (sock, config);
    //  A reply to a peer that has gone must fail, not vanish silently
    zsock_set_router_mandatory (sock, 1);
    if (zsock_bind (sock, "%s", endpoint) < 0) {
        snprintf (err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

zsock_t *
fs_zmq_dealer (const char *endpoint, const fs_config_t *config, char *err, size_t errlen)
{
    assert (endpoint);
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock) {
        snprintf (err, errlen, "cannot create DEALER socket: %s", zmq_strerror (zmq_errno ()));
        return NULL;
    }
    fs_zmq_tune (sock, config);
    //  Reconnect quickly after a consumer restarts, back off to 2 s while it stays away
    zsock_set_reconnect_ivl (sock, 100);
    zsock_set_reconnect_ivl_max (sock, 2000);
    //  Several endpoints are replicas of one consumer: the DEALER spreads sends over them.
    //  Then a send goes only to a connected one (IMMEDIATE), so a dead replica does not
    //  hold its share until the relay's retry time; with one endpoint, sends queue for it
    bool replicas = strchr (endpoint, ',') != NULL;
    if (replicas)
        zsock_set_immediate (sock, 1);
    char *list = strdup (endpoint);
    assert (list);
    int connected = 0;
    char *rest = list;
    char *item;
    while ((item = strsep (&rest, ","))) {
        if (*item == '\0' || zsock_connect (sock, "%s", item) < 0) {
            snprintf (err, errlen, "cannot connect '%s' (of %s): %s", item, endpoint,
                      *item ? zmq_strerror (zmq_errno ()) : "empty endpoint");
            connected = -1;
            break;
        }
        connected++;
    }
    free (list);
    if (connected <= 0) {
        if (connected == 0)
            snprintf (err, errlen, "no endpoint to connect");
        zsock_destroy (&sock);
        return NULL;
    }
    return sock;
}

int
fs_zmq_port (zsock_t *sock)
{
    char *last = zsock_last_endpoint (sock);
    if (!last)
        return -1;
    char *colon = strrchr (last, ':');
    int port = colon ? atoi (colon + 1) : -1;
    free (last);
    return port > 0 ? port : -1;
}
