/*  finestra-reporting - see services/reporting/reporting_server.c for what it does. */
#include "finestra.h"

extern const fs_service_t reporting_service;

int
main (int argc, char **argv)
{
    return fs_server_main (&reporting_service, argc, argv);
}
