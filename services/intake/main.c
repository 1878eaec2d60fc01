/*  finestra-intake - the single window: receives city systems' events (ingest contract v1). */
#include "intake.h"

int
main (int argc, char **argv)
{
    return fs_server_main (&intake_service, argc, argv);
}
