/* mount_cmd.c — coopfs mount: argument parsing and wiring of an
 * in-process node (net/node.h) and the file system (fs/fs.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blockstore/bs.h"
#include "fs/fs.h"
#include "net/node.h"
#include "tools/cmd.h"
#include "tools/keys.h"
#include "tools/mount.h"

static const char mount_usage[] =
    "usage: coopfs mount [--key NAME | --follow PUBKEY] [--data DIR] [--listen HOST:PORT]\n"
    "                    [--join HOST:PORT]... [--capacity SIZE] [--replicas K] [--vnodes N]\n"
    "                    [--api HOST:PORT] [--log-level LEVEL] [-f] [-o OPTIONS] MOUNTPOINT\n"
    "\n"
    "Mounts the file system of a key at MOUNTPOINT, with a node of the ring in\n"
    "this process (it joins the ring at --join; without --join it starts one).\n"
    "\n"
    "  --key NAME        write as NAME (coopfs keygen NAME; default: the key 'default')\n"
    "  --follow PUBKEY   read-only, following PUBKEY's root (hex, or a .pub file, or a\n"
    "                    key name); new versions show within seconds\n"
    "  --data DIR        the node's state and the mount's journal and spool (DIR/fs)\n"
    "  --listen ...      as for coopfs node (default 127.0.0.1:0: the kernel picks)\n"
    "  -f                stay in the foreground (otherwise return once mounted)\n"
    "  -o OPTIONS        FUSE options (allow_other, ro, ...) and coopfs ones:\n"
    "                    min_copies=N (a chunk must reach N nodes; default min(k,2)),\n"
    "                    cache=SIZE (block cache, default 256M), publish_ms=N (1000),\n"
    "                    renew_s=N (renew the leases of every block this often; 604800)\n"
    "\n"
    "SIGTERM, SIGINT or fusermount3 -u publish what is pending and unmount.\n"
    "See docs/operations.md.\n";

static int load_pub(const char *s, struct sig_pub *out)
{
    if (strlen(s) == 2 * SIG_PUB_LEN && sig_pub_from_hex(s, out) == 0)
        return 0;
    if (access(s, R_OK) == 0)
        return sig_pub_load(s, out);
    char path[4096];
    if (tools_key_path(s, "pub", path, sizeof(path)) == 0 && access(path, R_OK) == 0)
        return load_pub(path, out);
    return -ENOENT;
}

/* Splits the coopfs options out of a -o list; the rest goes to FUSE. */
static int parse_o(const char *o, struct fs_config *fc, bool *min_set, char *rest, size_t cap)
{
    char *dup = strdup(o), *save = NULL;
    if (!dup)
        return -ENOMEM;
    size_t len = strlen(rest);
    int rc = 0;
    for (char *t = strtok_r(dup, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (strncmp(t, "min_copies=", 11) == 0) {
            char *end;
            unsigned long m = strtoul(t + 11, &end, 10);
            if (*end || m < 1 || m > BS_REPLICAS_MAX)
                rc = -EINVAL;
            fc->min_copies = (unsigned)m;
            *min_set = true;
        } else if (strncmp(t, "cache=", 6) == 0) {
            if (tools_parse_size(t + 6, &v) < 0)
                rc = -EINVAL;
            fc->cache_bytes = v;
        } else if (strncmp(t, "renew_s=", 8) == 0) {
            char *end;
            unsigned long m = strtoul(t + 8, &end, 10);
            if (*end || m > 400ul * 86400ul)
                rc = -EINVAL;
            fc->renew_period_s = (uint32_t)m;
        } else if (strncmp(t, "publish_ms=", 11) == 0) {
            char *end;
            unsigned long m = strtoul(t + 11, &end, 10);
            if (*end || m > 600000)
                rc = -EINVAL;
            fc->publish_ms = (uint32_t)m;
        } else {
            int n = snprintf(rest + len, cap - len, "%s%s", len ? "," : "", t);
            if (n < 0 || (size_t)n >= cap - len)
                rc = -E2BIG;
            else
                len += (size_t)n;
        }
        if (rc < 0)
            fprintf(stderr, "coopfs mount: bad option '%s'\n", t);
    }
    free(dup);
    return rc;
}

int cmd_mount(int argc, char **argv)
{
    static const struct option opts[] = {
        TOOLS_NODE_OPTIONS,
        {"key", required_argument, NULL, 'K'},
        {"follow", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct mount_job job;
    memset(&job, 0, sizeof(job));
    tools_node_defaults(&job.node);
    job.node.api_on = false;
    addr_parse_listen("127.0.0.1:0", &job.node.listen);
    fs_config_default(&job.fs);
    const char *key = NULL, *follow = NULL;
    bool min_set = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "hfo:", opts, NULL)) != -1) {
        switch (opt) {
        case 'h': fputs(mount_usage, stdout); return 0;
        case 'f': job.foreground = true; continue;
        case 'K': key = optarg; continue;
        case 'F': follow = optarg; continue;
        case 'o':
            if (parse_o(optarg, &job.fs, &min_set, job.fuse_opts, sizeof(job.fuse_opts)) < 0)
                return 2;
            continue;
        default: break;
        }
        int rc = tools_node_option("coopfs mount", opt, optarg, &job.node);
        if (rc == 1) {
            fputs(mount_usage, stderr);
            return 2;
        }
        if (rc)
            return rc;
    }
    if (optind != argc - 1) {
        fputs(mount_usage, stderr);
        return 2;
    }
    job.mountpoint = argv[optind];
    if (key && follow) {
        fprintf(stderr, "coopfs mount: --key and --follow exclude each other\n");
        return 2;
    }
    if (follow) {
        if (load_pub(follow, &job.fs.pub) < 0) {
            fprintf(stderr,
                    "coopfs mount: --follow wants a public key: 64 hex digits, a .pub file "
                    "or a key name, not '%s'\n",
                    follow);
            return 2;
        }
        job.fs.writable = false;
    } else {
        if (!key)
            key = "default";
        int rc = tools_key_load(key, &job.fs.key);
        if (rc < 0) {
            fprintf(stderr,
                    "coopfs mount: cannot load the key '%s' (%s); make one with coopfs keygen %s\n",
                    key, strerror(-rc), key);
            return 2;
        }
        job.fs.pub = job.fs.key.pub;
        job.fs.writable = true;
    }
    if (!min_set)
        job.fs.min_copies = job.node.replicas < 2 ? job.node.replicas : 2;
    if (!job.node.datadir)
        job.node.datadir = tools_default_datadir();
    if (!job.node.datadir) {
        fprintf(stderr, "coopfs mount: no --data and neither XDG_DATA_HOME nor HOME is set\n");
        return 2;
    }
    struct stat st;
    if (stat(job.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "coopfs mount: %s is not a directory\n", job.mountpoint);
        return 2;
    }
    return mount_run(&job);
}
