/* coopfs.c — the coopfs command: dispatches to a subcommand. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "tools/cmd.h"
#include "tools/keys.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct subcommand subcommands[] = {
    {"demo", cmd_demo, "run a local ring of 5 nodes on loopback and mount it (the main job)"},
    {"mount", cmd_mount, "mount the file system of a key (or follow one read-only)"},
    {"node", cmd_node, "run a node of the ring (see docs/operations.md)"},
    {"status", cmd_status, "show the state of the running node"},
    {"lookup-key", cmd_lookup_key, "ask the running node which node is responsible for a key"},
    {"keygen", cmd_keygen, "make a key pair for signing roots and leases (NAME.key, NAME.pub)"},
    {"insert", cmd_insert, "store a file in the ring and print its key"},
    {"lookup", cmd_lookup, "fetch a file by its key, verified"},
    {"reclaim", cmd_reclaim, "give up your lease on a file's blocks"},
    {"renew", cmd_renew, "extend your lease on a file's blocks"},
    {"kv", cmd_kv, "put or get a value through the node's DHT API"},
    {"root", cmd_root, "read or write an owner's signed root (version, payload)"},
    {"sim", cmd_sim, "Chord experiments in the simulator: paths, balance, churn"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: coopfs COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(f, "  %-11s %s\n", subcommands[i].name, subcommands[i].help);
    fprintf(f, "\n'coopfs COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    /* A node or a reader that goes away mid-write is an error to report,
     * not a reason to die. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("coopfs %s\n", COOPFS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "coopfs: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
