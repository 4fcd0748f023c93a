/* sim_cmd.c — coopfs sim: placeholder until the experiments land. */
#include <stdio.h>

#include "tools/cmd.h"

int cmd_sim(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "coopfs sim: not built yet\n");
    return 1;
}
