/* renew.c — keeping the leases of a writable mount's blocks alive.
 *
 * Every block a mount stores is leased by its key for cfg.lease_days
 * (blockstore: a block without a live lease is deleted). A thread of the
 * mount wakes every hour; once cfg.renew_period_s (a week unless -o
 * renew_s=N) have passed since the last complete renewal (the time is kept in DATA/fs/renewed), it walks
 * the tree of the published head — the commit, every directory stream and
 * every file's manifest, indirect blocks and chunks — and sends each block
 * a fresh lease. Older versions keep the blocks they share with the head;
 * what only they hold lives out its last lease. A walk that fails (the
 * ring is gone) is tried again an hour later.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_int.h"

#define FS_RENEW_CHECK_S 3600u /* at most; a shorter period checks at half of it */

struct walk {
    struct fs *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned pending;
    int status;
    uint64_t stamp_ms, expiry_s;
    uint64_t sent;
};

static void on_lease(void *arg, const struct bs_result *r)
{
    struct walk *w = arg;
    pthread_mutex_lock(&w->mu);
    if (r->status && r->status != BS_ERR_NOT_FOUND && !w->status)
        w->status = fs_errno(r->status);
    w->pending--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int renew_key(struct walk *w, const struct id *key)
{
    if (fs_key_is_hole(key))
        return 0;
    struct lease l;
    if (lease_sign(&w->f->cfg.key, key, w->stamp_ms, w->expiry_s, &l) < 0)
        return -EIO;
    pthread_mutex_lock(&w->mu);
    w->pending++;
    pthread_mutex_unlock(&w->mu);
    int rc = w->f->bc.ops->lease(w->f->bc.impl, key, &l, on_lease, w);
    if (rc < 0) {
        pthread_mutex_lock(&w->mu);
        w->pending--;
        pthread_mutex_unlock(&w->mu);
        return rc;
    }
    w->sent++;
    return 0;
}

static bool stopping(struct fs *f)
{
    pthread_mutex_lock(&f->mu);
    bool s = f->stopping;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static void renew_indirect(void *ctx, const struct id *key)
{
    struct walk *w = ctx;
    int rc = renew_key(w, key);
    pthread_mutex_lock(&w->mu);
    if (rc < 0 && !w->status)
        w->status = rc;
    pthread_mutex_unlock(&w->mu);
}

/* A FILE manifest and what it lists, indirect blocks included. */
static int renew_manifest(struct walk *w, const struct id *key)
{
    struct id *keys = NULL;
    size_t n = 0;
    uint64_t size = 0;
    int rc = renew_key(w, key);
    if (rc == 0)
        rc = fs_walk_manifest(w->f, key, renew_indirect, w, &keys, &n, &size);
    for (size_t i = 0; rc == 0 && i < n && !stopping(w->f); i++)
        rc = renew_key(w, &keys[i]);
    free(keys);
    return rc;
}

static int renew_inode(struct walk *w, const struct fs_inode *a, unsigned depth)
{
    if (depth > 4096 || stopping(w->f))
        return -ECANCELED;
    int rc = 0;
    if (a->ref == FS_REF_KEY)
        rc = renew_manifest(w, &a->key);
    if (rc < 0 || a->type != FS_T_DIR || a->ref == FS_REF_EMPTY)
        return rc;
    struct fs_dir d;
    fs_dir_init(&d);
    if (a->ref == FS_REF_INLINE) {
        rc = fs_dir_decode(a->inline_data, a->size, &d) < 0 ? -EIO : 0;
    } else {
        uint8_t *b = NULL;
        size_t len = 0;
        rc = fs_get_stream(w->f, &a->key, a->size, &b, &len);
        if (rc == 0 && fs_dir_decode(b, len, &d) < 0)
            rc = -EIO;
        free(b);
    }
    for (size_t i = 0; rc == 0 && i < d.n; i++)
        rc = renew_inode(w, &d.e[i].ino, depth + 1);
    fs_dir_clear(&d);
    return rc;
}

static void path_of(struct fs *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/renewed", f->dir);
}

static uint64_t last_renewal(struct fs *f)
{
    char p[4200];
    path_of(f, p, sizeof(p));
    FILE *fp = fopen(p, "r");
    unsigned long long t = 0;
    if (fp) {
        if (fscanf(fp, "%llu", &t) != 1)
            t = 0;
        fclose(fp);
    }
    return t;
}

static void set_last_renewal(struct fs *f, uint64_t t)
{
    char p[4200], tmp[4300];
    path_of(f, p, sizeof(p));
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return;
    fprintf(fp, "%llu\n", (unsigned long long)t);
    if (fflush(fp) == 0 && fsync(fileno(fp)) == 0 && fclose(fp) == 0)
        rename(tmp, p);
    else
        unlink(tmp);
}

int fs_renew_now(struct fs *f)
{
    if (!f->cfg.writable || !f->bc.ops->lease)
        return 0;
    struct walk w;
    memset(&w, 0, sizeof(w));
    w.f = f;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.stamp_ms = (uint64_t)(fs_now_ns() / 1000000);
    w.expiry_s = w.stamp_ms / 1000u + (uint64_t)f->cfg.lease_days * 86400u;
    pthread_mutex_lock(&f->mu);
    bool have = f->has_head;
    struct id head = f->head;
    struct fs_inode root;
    int rc = have ? fs_inode_copy(&root, &f->head_root) : 0;
    pthread_mutex_unlock(&f->mu);
    if (have && rc == 0) {
        rc = renew_key(&w, &head);
        if (rc == 0)
            rc = renew_inode(&w, &root, 0);
        fs_inode_clear(&root);
    }
    pthread_mutex_lock(&w.mu);
    while (w.pending)
        pthread_cond_wait(&w.cv, &w.mu);
    if (rc == 0)
        rc = w.status;
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (rc == 0)
        set_last_renewal(f, (uint64_t)time(NULL));
    LOG_I(f->cfg.log, "fs", "lease renewal of version %llu: %llu blocks, %s",
          (unsigned long long)f->version, (unsigned long long)w.sent,
          rc ? strerror(-rc) : "done");
    return rc;
}

static void *renewer(void *arg)
{
    struct fs *f = arg;
    /* A mount that never renewed counts from its first start: its blocks
     * were leased when they were stored. */
    if (last_renewal(f) == 0)
        set_last_renewal(f, (uint64_t)time(NULL));
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint32_t period = f->cfg.renew_period_s;
        ts.tv_sec += period / 2 < FS_RENEW_CHECK_S ? (period / 2 ? period / 2 : 1) : FS_RENEW_CHECK_S;
        pthread_cond_timedwait(&f->renew_cv, &f->mu, &ts);
        if (f->stopping)
            break;
        uint64_t last = last_renewal(f);
        if ((uint64_t)time(NULL) < last + f->cfg.renew_period_s)
            continue;
        pthread_mutex_unlock(&f->mu);
        fs_renew_now(f);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int renew_start(struct fs *f)
{
    if (!f->cfg.writable || !f->bc.ops->lease || !f->cfg.renew_period_s)
        return 0;
    if (pthread_create(&f->renewer, NULL, renewer, f) != 0)
        return -EAGAIN;
    f->renewer_on = true;
    return 0;
}

void renew_stop(struct fs *f)
{
    if (!f->renewer_on)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->renew_cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->renewer, NULL);
    f->renewer_on = false;
}
