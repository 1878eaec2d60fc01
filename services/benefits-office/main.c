/*  finestra-benefits-office - see services/benefits-office/benefits_office_server.c for what it does. */
#include "finestra.h"

extern const fs_service_t benefits_office_service;

int
main (int argc, char **argv)
{
    return fs_server_main (&benefits_office_service, argc, argv);
}
