/* mount_run.c — the life of a mount: fork (unless -f), node, fs, serve,
 * publish, unmount, leave. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "tools/mount.h"

struct ready_ctx {
    struct mount_job *job;
    int fd; /* the parent's pipe, or -1 */
};

static void on_ready(void *arg)
{
    struct ready_ctx *r = arg;
    if (r->fd >= 0) {
        (void)!write(r->fd, "0", 1);
        close(r->fd);
        r->fd = -1;
        /* detach from the terminal now that the mount exists */
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, STDIN_FILENO);
            dup2(nul, STDOUT_FILENO);
            close(nul);
        }
    } else {
        fprintf(stderr, "coopfs mount: %s mounted\n", r->job->mountpoint);
    }
    if (r->job->on_ready)
        r->job->on_ready(r->job->arg);
}

static int serve(struct mount_job *job, int ready_fd)
{
    struct logger lg;
    log_init(&lg, stderr, job->node.log_level);
    job->fs.log = &lg;
    job->fs.datadir = job->node.datadir;
    struct net_node *node = NULL;
    int rc = net_node_start(&job->node, &node);
    if (rc < 0) {
        fprintf(stderr, "coopfs mount: the node did not start: %s\n", strerror(-rc));
        return 1;
    }
    struct addr a = net_node_addr(node);
    char as[ADDR_STR_MAX], tag[ADDR_STR_MAX + 64], host[64] = "host";
    addr_format(&a, as, sizeof(as));
    gethostname(host, sizeof(host) - 1);
    snprintf(tag, sizeof(tag), "%s-%u", host, (unsigned)a.port);
    job->fs.tag = tag;
    LOG_I(&lg, "mount", "node %s joined; opening the file system", as);
    struct bclient bc = net_node_blocks(node);
    struct fs *f = NULL;
    rc = fs_open(&job->fs, &bc, &f);
    if (rc < 0) {
        fprintf(stderr, "coopfs mount: cannot open the file system: %s\n", strerror(-rc));
        net_node_stop(node);
        return 1;
    }
    struct ready_ctx r = { job, ready_fd };
    rc = fs_serve(f, job->mountpoint, job->fuse_opts, true, on_ready, &r);
    if (r.fd >= 0) /* never mounted */
        close(r.fd);
    if (rc < 0)
        fprintf(stderr, "coopfs mount: %s: %s\n", job->mountpoint, strerror(-rc));
    LOG_I(&lg, "mount", "unmounted at version %llu; leaving the ring",
          (unsigned long long)fs_version(f));
    fs_close(f);
    net_node_stop(node);
    return rc < 0 ? 1 : 0;
}

int mount_run(struct mount_job *job)
{
    if (job->foreground)
        return serve(job, -1);
    /* The node's threads must be started after the fork: fork first, and
     * let the parent wait for the child's word that the mount exists. */
    if (mkdir(job->node.datadir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "coopfs mount: %s: %s\n", job->node.datadir, strerror(errno));
        return 1;
    }
    /* the daemon works from /: make the paths absolute first */
    static char dpath[4096], mpath[4096];
    if (!realpath(job->node.datadir, dpath) || !realpath(job->mountpoint, mpath)) {
        fprintf(stderr, "coopfs mount: %s\n", strerror(errno));
        return 1;
    }
    job->node.datadir = dpath;
    job->mountpoint = mpath;
    char logpath[4200];
    snprintf(logpath, sizeof(logpath), "%s/mount.log", job->node.datadir);
    int p[2];
    if (pipe(p) < 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid > 0) {
        close(p[1]);
        char c = 0;
        ssize_t n = read(p[0], &c, 1);
        close(p[0]);
        if (n == 1 && c == '0')
            return 0;
        fprintf(stderr, "coopfs mount: mounting %s failed; see %s\n", job->mountpoint, logpath);
        return 1;
    }
    close(p[0]);
    setsid();
    int lfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lfd >= 0) {
        dup2(lfd, STDERR_FILENO);
        close(lfd);
    }
    if (chdir("/") < 0) {
        /* keep going: relative paths were resolved by the caller */
    }
    _exit(serve(job, p[1]));
}
