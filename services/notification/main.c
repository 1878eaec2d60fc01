/*  finestra-notification - see services/notification/notification_server.c for what it does. */
#include "finestra.h"

extern const fs_service_t notification_service;

int
main (int argc, char **argv)
{
    return fs_server_main (&notification_service, argc, argv);
}
