/* fsdemo.c — coopfs demo: the README's first command. A ring of five
 * nodes on loopback (four in this process plus the mount's own), data in a
 * temporary directory, mounted read-write at MOUNTPOINT until Ctrl-C, then
 * everything is removed again. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/node.h"
#include "tools/cmd.h"
#include "tools/mount.h"

#define DEMO_NODES 4 /* plus the mount's */

struct demo {
    const char *mnt;
    char dir[256];
    struct addr first;
};

static void print_try(void *arg)
{
    struct demo *d = arg;
    printf("\ncoopfs demo: a ring of %d nodes on loopback is mounted read-write at\n"
           "  %s\n"
           "Data lives in %s (removed on exit). Try, in another terminal:\n"
           "  cp -r /usr/share/doc/bash %s/ && ls -l %s/bash\n"
           "  getfattr -n user.coopfs.holders %s/bash/copyright   (the nodes holding it)\n"
           "  ls %s/.snapshots/                  (every published version)\n"
           "  coopfs status --data %s/node0      (one node of the ring)\n"
           "Ctrl-C publishes what is pending, unmounts and stops the ring.\n\n",
           DEMO_NODES + 1, d->mnt, d->dir, d->mnt, d->mnt, d->mnt, d->mnt, d->dir);
    fflush(stdout);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: coopfs demo [MOUNTPOINT]\n\n"
                "Starts a ring of %d nodes on loopback with its data in a temporary directory,\n"
                "mounts it read-write at MOUNTPOINT (default ./coopfs-demo, created) and serves\n"
                "until Ctrl-C, which unmounts, stops the ring and removes the data.\n"
                "(The narrated simulator ring of earlier versions is 'coopfs sim demo'.)\n",
                DEMO_NODES + 1);
        return argc == 2 ? 0 : 2;
    }
    struct demo d;
    memset(&d, 0, sizeof(d));
    d.mnt = argc == 2 ? argv[1] : "coopfs-demo";
    if (mkdir(d.mnt, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "coopfs demo: %s: %s\n", d.mnt, strerror(errno));
        return 1;
    }
    char *mnt = realpath(d.mnt, NULL);
    if (!mnt)
        return 1;
    d.mnt = mnt;
    snprintf(d.dir, sizeof(d.dir), "%s/coopfs-demo.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(d.dir)) {
        fprintf(stderr, "coopfs demo: cannot make a temporary directory: %s\n", strerror(errno));
        free(mnt);
        return 1;
    }
    struct net_node *nodes[DEMO_NODES] = { 0 };
    char dirs[DEMO_NODES][300];
    int rc = 0;
    printf("coopfs demo: starting %d nodes on 127.0.0.1 ...\n", DEMO_NODES);
    fflush(stdout);
    for (int i = 0; i < DEMO_NODES && rc == 0; i++) {
        struct net_node_config cfg;
        tools_node_defaults(&cfg);
        snprintf(dirs[i], sizeof(dirs[i]), "%s/node%d", d.dir, i);
        cfg.datadir = dirs[i];
        addr_parse_listen("127.0.0.1:0", &cfg.listen);
        cfg.api_on = false;
        cfg.capacity = 2ull << 30;
        cfg.log_level = LOG_WARN;
        if (i > 0) {
            cfg.join[0] = d.first;
            cfg.njoin = 1;
        }
        rc = net_node_start(&cfg, &nodes[i]);
        if (rc < 0)
            fprintf(stderr, "coopfs demo: node %d did not start: %s\n", i, strerror(-rc));
        else if (i == 0)
            d.first = net_node_addr(nodes[0]);
    }
    if (rc == 0) {
        struct mount_job job;
        memset(&job, 0, sizeof(job));
        tools_node_defaults(&job.node);
        static char mdir[300];
        snprintf(mdir, sizeof(mdir), "%s/mount", d.dir);
        job.node.datadir = mdir;
        addr_parse_listen("127.0.0.1:0", &job.node.listen);
        job.node.api_on = false;
        job.node.capacity = 2ull << 30;
        job.node.log_level = LOG_WARN;
        job.node.join[0] = d.first;
        job.node.njoin = 1;
        fs_config_default(&job.fs);
        job.fs.writable = true;
        if (sig_keygen(&job.fs.key) < 0) {
            rc = -EIO;
        } else {
            job.fs.pub = job.fs.key.pub;
            job.mountpoint = d.mnt;
            job.foreground = true;
            job.on_ready = print_try;
            job.arg = &d;
            rc = mount_run(&job) ? -EIO : 0;
        }
    }
    printf("coopfs demo: stopping the ring\n");
    for (int i = DEMO_NODES - 1; i >= 0; i--)
        net_node_stop(nodes[i]);
    nftw(d.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    printf("coopfs demo: removed %s\n", d.dir);
    free(mnt);
    return rc < 0 ? 1 : 0;
}
