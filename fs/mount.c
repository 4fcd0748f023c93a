/* mount.c — opening the file system, serving it over FUSE, closing it. */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "fs/fs_int.h"

void fs_config_default(struct fs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->min_copies = 2;
    cfg->cache_bytes = FS_CACHE_DEFAULT;
    cfg->publish_ms = FS_PUBLISH_MS_DEFAULT;
    cfg->lease_days = 399; /* the longest a node accepts is 400 (BS_LEASE_MAX_S) */
    cfg->renew_period_s = FS_RENEW_PERIOD_S;
    cfg->root_confirm = 2;
}

static int mkdir_if(const char *p)
{
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Spool files are unlinked at once; a crash may leave named ones behind
 * (mkostemp fallback). */
static void clean_spool(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "s.", 2) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

static void free_all(struct fs *f)
{
    for (size_t i = 0; i < f->hcap; i++)
        for (struct fnode *n = f->htab[i], *nx; n; n = nx) {
            nx = n->hnext;
            fnode_release(f, n);
        }
    free(f->htab);
    f->htab = NULL;
    f->hcap = f->hcount = 0;
}

int fs_open(const struct fs_config *cfg, const struct bclient *bc, struct fs **out)
{
    struct fs *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->cfg = *cfg;
    if (!f->cfg.min_copies)
        f->cfg.min_copies = 1;
    f->bc = *bc;
    f->jfd = -1;
    f->lockfd = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->se_mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    pthread_cond_init(&f->pub_cv, NULL);
    pthread_cond_init(&f->renew_cv, NULL);
    pthread_cond_init(&f->jobs_cv, NULL);
    root_key(&f->cfg.pub, &f->root_key);
    int rc = 0;
    size_t dl = strlen(cfg->datadir) + 16;
    f->dir = malloc(dl);
    char *spool = malloc(dl + 8);
    if (!f->dir || !spool)
        rc = -ENOMEM;
    if (rc == 0) {
        snprintf(f->dir, dl, "%s/fs", cfg->datadir);
        snprintf(spool, dl + 8, "%s/spool", f->dir);
        rc = mkdir_if(cfg->datadir);
        if (rc == 0)
            rc = mkdir_if(f->dir);
        if (rc == 0)
            rc = mkdir_if(spool);
    }
    if (rc == 0) {
        char lock[4096];
        snprintf(lock, sizeof(lock), "%s/lock", f->dir);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
            LOG_E(f->cfg.log, "fs", "%s is in use by another mount", f->dir);
            rc = -EBUSY;
            if (fd >= 0)
                close(fd);
        } else {
            f->lockfd = fd; /* held until fs_close */
        }
    }
    if (rc == 0) {
        clean_spool(spool);
        rc = journal_open(f);
    }
    free(spool);
    if (rc == 0)
        rc = fs_cache_new(cfg->cache_bytes, &f->cache);
    if (rc == 0) {
        rc = publish_load_head(f);
        if (rc < 0)
            LOG_E(f->cfg.log, "fs", "cannot read the root: %s", strerror(-rc));
    }
    if (rc == 0 && f->cfg.writable) {
        pthread_mutex_lock(&f->mu);
        rc = journal_replay(f);
        pthread_mutex_unlock(&f->mu);
    }
    if (rc == 0)
        rc = fs_workers_start(f);
    if (rc == 0)
        rc = publish_start(f);
    if (rc == 0)
        rc = renew_start(f);
    if (rc < 0) {
        fs_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void fs_close(struct fs *f)
{
    if (!f)
        return;
    publish_stop(f);
    renew_stop(f);
    fs_workers_stop(f);
    /* stores still running finish on the client's thread */
    pthread_mutex_lock(&f->mu);
    for (;;) {
        bool busy = false;
        for (size_t i = 0; i < f->hcap && !busy; i++)
            for (struct fnode *n = f->htab[i]; n; n = n->hnext)
                if (n->busy)
                    busy = true;
        if (!busy)
            break;
        pthread_cond_wait(&f->cv, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    free_all(f);
    blist_clear(&f->pend);
    journal_close(f);
    if (f->lockfd >= 0)
        close(f->lockfd);
    fs_cache_free(f->cache);
    fs_inode_clear(&f->head_root);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->se_mu);
    pthread_cond_destroy(&f->cv);
    pthread_cond_destroy(&f->pub_cv);
    pthread_cond_destroy(&f->renew_cv);
    pthread_cond_destroy(&f->jobs_cv);
    free(f->dir);
    free(f);
}

void fs_stop(struct fs *f)
{
    f->stop_req = 1;
    if (f->se)
        fuse_session_exit(f->se);
}

int fs_serve(struct fs *f, const char *mountpoint, const char *opts, bool foreground_signals,
             void (*ready)(void *arg), void *arg)
{
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    char base[256];
    snprintf(base, sizeof(base), "default_permissions,fsname=coopfs,subtype=coopfs%s",
             f->cfg.writable ? "" : ",ro");
    int rc = 0;
    if (fuse_opt_add_arg(&args, "coopfs") || fuse_opt_add_arg(&args, "-o") ||
        fuse_opt_add_arg(&args, base))
        rc = -ENOMEM;
    if (rc == 0 && opts && *opts &&
        (fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, opts)))
        rc = -ENOMEM;
    struct fuse_lowlevel_ops ops;
    fs_fuse_ops(&ops);
    struct fuse_session *se = NULL;
    if (rc == 0 && !(se = fuse_session_new(&args, &ops, sizeof(ops), f)))
        rc = -EINVAL;
    fuse_opt_free_args(&args);
    if (rc < 0)
        return rc;
    if (foreground_signals && fuse_set_signal_handlers(se) != 0) {
        fuse_session_destroy(se);
        return -EIO;
    }
    if (fuse_session_mount(se, mountpoint) != 0) {
        if (foreground_signals)
            fuse_remove_signal_handlers(se);
        fuse_session_destroy(se);
        return -EIO;
    }
    pthread_mutex_lock(&f->se_mu);
    f->se = se;
    pthread_mutex_unlock(&f->se_mu);
    if (ready)
        ready(arg);
    if (!f->stop_req)
        rc = fuse_session_loop_mt(se, NULL);
    /* Unmounted, or asked to stop: publish what is pending first. */
    int src = fs_sync(f, FS_SYNC_TIMEOUT_MS);
    if (src < 0)
        LOG_E(f->cfg.log, "fs", "could not publish everything before unmounting: %s",
              strerror(-src));
    pthread_mutex_lock(&f->se_mu);
    f->se = NULL;
    pthread_mutex_unlock(&f->se_mu);
    fuse_session_unmount(se);
    if (foreground_signals)
        fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc < 0 ? -EIO : src;
}
