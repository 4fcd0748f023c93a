/* demo.c — coopfs demo: placeholder. */
#include <stdio.h>

#include "tools/cmd.h"

int cmd_demo(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 1;
}
