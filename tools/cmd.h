/* cmd.h — the subcommands of the coopfs command. Each parses its own
 * arguments (argv[0] is the subcommand name) and returns an exit status. */
#ifndef COOPFS_TOOLS_CMD_H
#define COOPFS_TOOLS_CMD_H

#include <stdint.h>

int cmd_demo(int argc, char **argv); /* fsdemo.c: a local ring, mounted */
int cmd_sim_demo(int argc, char **argv); /* demo.c: the narrated simulator ring */
int cmd_mount(int argc, char **argv);  /* mount_cmd.c */
int cmd_sim(int argc, char **argv);  /* sim_cmd.c: paths, balance, churn */
int cmd_node(int argc, char **argv);       /* node_cmd.c */
int cmd_status(int argc, char **argv);     /* node_cmd.c */
int cmd_lookup_key(int argc, char **argv); /* node_cmd.c */

/* $XDG_DATA_HOME/coopfs or ~/.local/share/coopfs (a static buffer), or
 * NULL if neither variable is set. */
const char *tools_default_datadir(void);
/* Parses a size: digits with an optional K, M, G or T (powers of 1024;
 * "KiB"/"KB" spellings too). Returns 0 or -EINVAL. */
int tools_parse_size(const char *s, uint64_t *out);

/* The options every command that runs a node takes (coopfs node, mount):
 * getopt_long entries, the defaults, and the parser of one option.
 * tools_node_option returns 0 (taken), 1 (not a node option) or 2 (bad
 * value, explained on stderr). */
#define TOOLS_NODE_OPTIONS                                                                         \
    {"data", required_argument, NULL, 'd'}, {"listen", required_argument, NULL, 'l'},             \
        {"join", required_argument, NULL, 'j'}, {"vnodes", required_argument, NULL, 'v'},         \
        {"http", required_argument, NULL, 'H'}, {"log-level", required_argument, NULL, 'L'},      \
        {"capacity", required_argument, NULL, 'c'}, {"replicas", required_argument, NULL, 'r'},   \
        {"owner-cap", required_argument, NULL, 'C'}, {"api", required_argument, NULL, 'a'},       \
        {"no-api", no_argument, NULL, 'A'}
struct net_node_config;
void tools_node_defaults(struct net_node_config *cfg);
int tools_node_option(const char *prog, int opt, const char *arg, struct net_node_config *cfg);
/* Opens the control connection of the node of datadir (NULL: the
 * default), or explains on stderr why not and returns NULL. */
struct ctl_client;
struct ctl_client *tools_open_node(const char *prog, const char *datadir);

int cmd_insert(int argc, char **argv);  /* past.c */
int cmd_lookup(int argc, char **argv);  /* past.c */
int cmd_reclaim(int argc, char **argv); /* past.c */
int cmd_renew(int argc, char **argv);   /* past.c */
int cmd_kv(int argc, char **argv);      /* kv_cmd.c */
int cmd_root(int argc, char **argv);    /* root_cmd.c */

#endif
