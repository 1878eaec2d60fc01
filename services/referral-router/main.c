/*  finestra-referral-router - see services/referral-router/referral_router_server.c for what it does. */
#include "finestra.h"

extern const fs_service_t referral_router_service;

int
main (int argc, char **argv)
{
    return fs_server_main (&referral_router_service, argc, argv);
}
