/* dir_ops.c — the FUSE operations on directories as a whole: open,
 * read (readdir, readdirplus; /.snapshots lists the versions), release,
 * fsync, and statfs. */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

/* What a directory handle lists: the names at the time of the readdir at
 * offset 0, so that entries removed or added while a program reads the
 * directory never shift the others under it (offset i + 2 is names[i]; a
 * name gone since is skipped). */
struct dirsnap {
    size_t n;
    char **names;
};

static void dirsnap_free(struct dirsnap *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n; i++)
        free(ds->names[i]);
    free(ds->names);
    free(ds);
}

static int dirsnap_take(struct dirsnap *ds, const struct fnode *d)
{
    for (size_t i = 0; i < ds->n; i++)
        free(ds->names[i]);
    free(ds->names);
    ds->n = 0;
    ds->names = calloc(d->nkids ? d->nkids : 1, sizeof(*ds->names));
    if (!ds->names)
        return -ENOMEM;
    for (size_t i = 0; i < d->nkids; i++) {
        if (!(ds->names[i] = strdup(d->kids[i]->name)))
            return -ENOMEM;
        ds->n = i + 1;
    }
    return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    if (n->a.type != FS_T_DIR)
        DONE(req, ENOTDIR);
    int rc = dir_load(f, n);
    if (rc < 0)
        DONE(req, rc);
    struct dirsnap *ds = calloc(1, sizeof(*ds));
    if (!ds)
        DONE(req, ENOMEM);
    n->nopen++;
    fi->fh = (uint64_t)(uintptr_t)ds;
    fi->keep_cache = 0;
    pthread_mutex_unlock(&f->mu);
    fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *f = FS(req);
    dirsnap_free((struct dirsnap *)(uintptr_t)fi->fh);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    if (n->nopen)
        n->nopen--;
    fnode_maybe_free(f, n);
    done(req, 0);
}

/* Makes sure the snapshot directory lists every version (mu held). */
static void snaps_fill(struct fs *f)
{
    uint64_t *v = NULL;
    size_t n = 0;
    pthread_mutex_unlock(&f->mu);
    int rc = snap_list(f, &v, &n);
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "v%llu", (unsigned long long)v[i]);
        snap_lookup(f, name);
    }
    free(v);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus,
                       struct fuse_file_info *fi)
{
    struct dirsnap *ds = (struct dirsnap *)(uintptr_t)fi->fh;
    struct fs *f = FS(req);
    struct fnode *d = get(req, ino);
    if (!d)
        return;
    if (d->a.type != FS_T_DIR)
        DONE(req, ENOTDIR);
    int rc = d == f->snaps ? 0 : dir_load(f, d);
    if (rc < 0)
        DONE(req, rc);
    if (d == f->snaps && off == 0)
        snaps_fill(f);
    if (!ds)
        DONE(req, EBADF);
    if ((off == 0 || !ds->names) && (rc = dirsnap_take(ds, d)) < 0)
        DONE(req, rc);
    char *buf = malloc(size);
    if (!buf)
        DONE(req, ENOMEM);
    size_t pos = 0;
    for (off_t i = off;; i++) {
        const char *name;
        struct fnode *k = NULL;
        if (i == 0)
            name = ".";
        else if (i == 1)
            name = "..";
        else if ((size_t)(i - 2) < ds->n) {
            name = ds->names[i - 2];
            if (!(k = dir_find(d, name, NULL)))
                continue; /* removed since the listing began */
        } else {
            break;
        }
        size_t need;
        if (plus) {
            struct fuse_entry_param e;
            if (k) {
                fill_entry(f, k, &e);
            } else {
                memset(&e, 0, sizeof(e));
                e.attr.st_mode = S_IFDIR;
                e.attr.st_ino = i == 0 ? d->ino : (d->parent ? d->parent->ino : d->ino);
            }
            need = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e, i + 1);
            if (need > size - pos)
                break;
            if (k)
                k->nlookup++;
        } else {
            struct stat st;
            memset(&st, 0, sizeof(st));
            if (k)
                fnode_stat(f, k, &st);
            else
                st.st_mode = S_IFDIR;
            need = fuse_add_direntry(req, buf + pos, size - pos, name, &st, i + 1);
            if (need > size - pos)
                break;
        }
        pos += need;
    }
    pthread_mutex_unlock(&f->mu);
    fuse_reply_buf(req, buf, pos);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, false, fi);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, true, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct fs *f = FS(req);
    struct bclient_space sp;
    memset(&sp, 0, sizeof(sp));
    f->bc.ops->space(f->bc.impl, &sp);
    unsigned k = sp.replicas ? sp.replicas : 1;
    struct statvfs st;
    memset(&st, 0, sizeof(st));
    st.f_bsize = st.f_frsize = 4096;
    st.f_blocks = sp.total / k / 4096;
    st.f_bfree = st.f_bavail = sp.free / k / 4096;
    st.f_files = 1u << 30;
    st.f_ffree = st.f_favail = 1u << 29;
    st.f_namemax = FS_NAME_MAX;
    fuse_reply_statfs(req, &st);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    int rc = fs_sync(FS(req), FS_SYNC_TIMEOUT_MS);
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

void fs_dir_ops(struct fuse_lowlevel_ops *ops)
{
    ops->opendir = op_opendir;
    ops->readdir = op_readdir;
    ops->readdirplus = op_readdirplus;
    ops->releasedir = op_releasedir;
    ops->fsyncdir = op_fsyncdir;
    ops->statfs = op_statfs;
}
