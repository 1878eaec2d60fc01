/*  fs_zmq - the suite's sockets, with options set on purpose:
    - linger: explicit (czmq 4.2 defaults it to 0, which drops unsent acks on close);
    - ROUTER_MANDATORY on every ROUTER: a reply to a peer that is gone fails loudly
      (EHOSTUNREACH) instead of vanishing;
    - high-water marks: FINESTRA_ZMQ_HWM on both directions. The outbox, not the socket,
      is where events wait: a relay keeps at most FINESTRA_RELAY_WINDOW unacknowledged
      events per consumer, far below the HWM, so a send never blocks or drops. */
#ifndef FS_ZMQ_H_INCLUDED
#define FS_ZMQ_H_INCLUDED

/* Sets linger and HWMs from config on any socket. */
void fs_zmq_tune (zsock_t *sock, const fs_config_t *config);
/* A ROUTER bound on endpoint ("tcp://127.0.0.1:*" binds a free port). NULL on failure
   (err filled). */
zsock_t *fs_zmq_router (const char *endpoint, const fs_config_t *config, char *err, size_t errlen);
/* A DEALER connected to endpoint, or to each of a comma-separated list (replicas of one
   service: sends are spread over those connected). NULL on failure (err filled). */
zsock_t *fs_zmq_dealer (const char *endpoint, const fs_config_t *config, char *err, size_t errlen);
/* The TCP port a socket is bound on (from ZMQ_LAST_ENDPOINT), or -1. */
int fs_zmq_port (zsock_t *sock);

#endif
