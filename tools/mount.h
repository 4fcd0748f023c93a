/* mount.h — running a mount: an in-process node and the file system over
 * it (coopfs mount, coopfs demo). */
#ifndef COOPFS_TOOLS_MOUNT_H
#define COOPFS_TOOLS_MOUNT_H

#include <stdbool.h>

#include "fs/fs.h"
#include "net/node.h"

struct mount_job {
    struct net_node_config node;
    struct fs_config fs;
    const char *mountpoint;
    char fuse_opts[1024];
    bool foreground; /* else: fork, and return once mounted */
    /* called once mounted (foreground only), e.g. to print what to try */
    void (*on_ready)(void *arg);
    void *arg;
};

/* Starts the node, opens the file system, mounts it and serves until
 * unmounted or SIGTERM/SIGINT; then publishes what is pending, unmounts
 * and leaves the ring. Returns the process exit status (0, 1 on a
 * failure, which is explained on stderr or in DATA/fs/mount.log). */
int mount_run(struct mount_job *job);

#endif
