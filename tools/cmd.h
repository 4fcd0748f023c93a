/* cmd.h — the subcommands of the coopfs command. Each parses its own
 * arguments (argv[0] is the subcommand name) and returns an exit status. */
#ifndef COOPFS_TOOLS_CMD_H
#define COOPFS_TOOLS_CMD_H

int cmd_demo(int argc, char **argv); /* demo.c */
int cmd_sim(int argc, char **argv);  /* sim_cmd.c: paths, balance, churn */
int cmd_node(int argc, char **argv);       /* node_cmd.c */
int cmd_status(int argc, char **argv);     /* node_cmd.c */
int cmd_lookup_key(int argc, char **argv); /* node_cmd.c */

/* $XDG_DATA_HOME/coopfs or ~/.local/share/coopfs (a static buffer), or
 * NULL if neither variable is set. */
const char *tools_default_datadir(void);

#endif
