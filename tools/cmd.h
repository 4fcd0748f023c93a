/* cmd.h — the subcommands of the coopfs command. Each parses its own
 * arguments (argv[0] is the subcommand name) and returns an exit status. */
#ifndef COOPFS_TOOLS_CMD_H
#define COOPFS_TOOLS_CMD_H

int cmd_demo(int argc, char **argv); /* demo.c */
int cmd_sim(int argc, char **argv);  /* sim_cmd.c: paths, balance, churn */

#endif
