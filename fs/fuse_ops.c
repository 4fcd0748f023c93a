/* fuse_ops.c — the FUSE low-level operations over the tree (tree.c), the
 * file content (file.c) and the publisher (publish.c).
 *
 * Content-hash blocks never change, so the kernel may keep pages and
 * attributes long (FS_TIMEOUT_S); what another writer or a followed root
 * changes is invalidated explicitly (publish.c). There are no hard links
 * (link gives EPERM): an inode has exactly one name, which keeps the
 * journal and the merge path based.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "fs/ops.h"

static bool writable(struct fs *f, const struct fnode *n)
{
    return f->cfg.writable && !n->ro;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
    conn->max_write = 1u << 20;
    conn->max_readahead = 1u << 20;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs *f = FS(req);
    struct fnode *p = get(req, parent);
    if (!p)
        return;
    if (p->a.type != FS_T_DIR)
        DONE(req, ENOTDIR);
    struct fnode *k = NULL;
    if (p == f->root && strcmp(name, FS_SNAPSHOTS_NAME) == 0) {
        k = f->snaps;
    } else if (p == f->snaps) {
        k = snap_lookup(f, name);
    } else {
        int rc = dir_load(f, p);
        if (rc < 0)
            DONE(req, rc);
        k = dir_find(p, name, NULL);
    }
    struct fuse_entry_param e;
    if (!k) {
        memset(&e, 0, sizeof(e));
        e.entry_timeout = p->ro ? 3600.0 : 1.0;
        pthread_mutex_unlock(&f->mu);
        fuse_reply_entry(req, &e);
        return;
    }
    k->nlookup++;
    stat_prepare(f, k);
    fill_entry(f, k, &e);
    pthread_mutex_unlock(&f->mu);
    fuse_reply_entry(req, &e);
}

static void forget_one(struct fs *f, fuse_ino_t ino, uint64_t nlookup)
{
    struct fnode *n = fnode_get(f, ino);
    if (!n)
        return;
    n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
    fnode_maybe_free(f, n);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct fs *f = FS(req);
    pthread_mutex_lock(&f->mu);
    forget_one(f, ino, nlookup);
    pthread_mutex_unlock(&f->mu);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct fs *f = FS(req);
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < count; i++)
        forget_one(f, forgets[i].ino, forgets[i].nlookup);
    pthread_mutex_unlock(&f->mu);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    stat_prepare(f, n);
    struct stat st;
    fnode_stat(f, n, &st);
    double t = timeout_of(n);
    pthread_mutex_unlock(&f->mu);
    fuse_reply_attr(req, &st, t);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    if (!writable(f, n))
        DONE(req, EROFS);
    int rc = 0;
    bool flush = false;
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (n->a.type == FS_T_DIR)
            DONE(req, EISDIR);
        if (n->a.type != FS_T_FILE)
            DONE(req, EINVAL);
        rc = file_truncate(f, n, (uint64_t)attr->st_size);
        if (rc < 0)
            DONE(req, rc);
        flush = !fi && n->nopen == 0; /* truncate(2) of a closed file: nothing else will flush it */
    }
    if (to_set & FUSE_SET_ATTR_MODE)
        n->a.mode = attr->st_mode & 07777;
    if (to_set & FUSE_SET_ATTR_UID)
        n->a.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID)
        n->a.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
        n->a.mtime_ns = fs_now_ns();
    else if (to_set & FUSE_SET_ATTR_MTIME)
        n->a.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
    fnode_changed(f, n);
    if (flush)
        rc = file_flush_held(f, n);
    struct stat st;
    fnode_stat(f, n, &st);
    double t = timeout_of(n);
    fnode_maybe_free(f, n);
    pthread_mutex_unlock(&f->mu);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    if (n->a.type != FS_T_SYMLINK)
        DONE(req, EINVAL);
    char buf[FS_SYMLINK_MAX + 1];
    size_t l = n->a.ref == FS_REF_INLINE ? n->a.size : 0;
    memcpy(buf, n->a.inline_data, l);
    buf[l] = '\0';
    pthread_mutex_unlock(&f->mu);
    fuse_reply_readlink(req, buf);
}

/* fs_make with the caller's uid and gid (mu held). */
static int make(fuse_req_t req, struct fnode *p, const char *name, uint8_t type, mode_t mode,
                const char *target, struct fnode **out)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    return fs_make(FS(req), p, name, type, mode, ctx->uid, ctx->gid, target, out);
}

static void reply_made(fuse_req_t req, struct fnode *k)
{
    struct fs *f = FS(req);
    struct fuse_entry_param e;
    k->nlookup++;
    fill_entry(f, k, &e);
    pthread_mutex_unlock(&f->mu);
    fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)rdev;
    struct fnode *p = get(req, parent), *k = NULL;
    if (!p)
        return;
    if (!S_ISREG(mode))
        DONE(req, EPERM);
    int rc = make(req, p, name, FS_T_FILE, mode, NULL, &k);
    if (rc < 0)
        DONE(req, rc);
    reply_made(req, k);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct fnode *p = get(req, parent), *k = NULL;
    if (!p)
        return;
    int rc = make(req, p, name, FS_T_DIR, mode, NULL, &k);
    if (rc < 0)
        DONE(req, rc);
    reply_made(req, k);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    struct fnode *p = get(req, parent), *k = NULL;
    if (!p)
        return;
    int rc = make(req, p, name, FS_T_SYMLINK, 0777, link, &k);
    if (rc < 0)
        DONE(req, rc);
    reply_made(req, k);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
    struct fnode *p = get(req, parent);
    if (!p)
        return;
    done(req, fs_remove(FS(req), p, name, dir));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_entry(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    struct fs *f = FS(req);
    if (flags & ~(unsigned)RENAME_NOREPLACE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct fnode *p = get(req, parent);
    if (!p)
        return;
    struct fnode *np = fnode_get(f, newparent);
    if (!np)
        DONE(req, ENOENT);
    done(req, fs_rename(f, p, name, np, newname, flags & RENAME_NOREPLACE));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino;
    (void)newparent;
    (void)newname;
    fuse_reply_err(req, EPERM); /* no hard links: an inode has one name */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    if (n->a.type == FS_T_DIR)
        DONE(req, EISDIR);
    if ((fi->flags & O_ACCMODE) != O_RDONLY && !writable(f, n))
        DONE(req, EROFS);
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
        /* libfuse asks for atomic O_TRUNC: the kernel sends no setattr */
        int rc = file_truncate(f, n, 0);
        if (rc < 0)
            DONE(req, rc);
        n->a.ctime_ns = fs_now_ns();
    }
    n->nopen++;
    fi->keep_cache = 1; /* remote changes are invalidated explicitly */
    pthread_mutex_unlock(&f->mu);
    fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct fs *f = FS(req);
    struct fnode *p = get(req, parent), *k = NULL;
    if (!p)
        return;
    int rc = make(req, p, name, FS_T_FILE, mode, NULL, &k);
    if (rc < 0)
        DONE(req, rc);
    k->nopen++;
    k->nlookup++;
    struct fuse_entry_param e;
    fill_entry(f, k, &e);
    pthread_mutex_unlock(&f->mu);
    fi->keep_cache = 1;
    fuse_reply_create(req, &e, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    pthread_mutex_unlock(&f->mu); /* n stays: it is open */
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t r = file_read(f, n, buf, size, off);
    if (r < 0)
        fuse_reply_err(req, (int)-r);
    else
        fuse_reply_buf(req, buf, (size_t)r);
    free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    bool ok = writable(f, n);
    pthread_mutex_unlock(&f->mu);
    if (!ok) {
        fuse_reply_err(req, EROFS);
        return;
    }
    ssize_t r = file_write(f, n, buf, size, off);
    if (r < 0)
        fuse_reply_err(req, (int)-r);
    else
        fuse_reply_write(req, (size_t)r);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    pthread_mutex_unlock(&f->mu);
    int rc = file_flush(f, n);
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    file_release(f, n);
    done(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)datasync;
    (void)fi;
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    pthread_mutex_unlock(&f->mu);
    int rc = n->a.type == FS_T_FILE ? file_flush(f, n) : 0;
    if (rc == 0)
        rc = fs_sync(f, FS_SYNC_TIMEOUT_MS);
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

static const struct fuse_lowlevel_ops fs_ops_base = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .create = op_create,
};

void fs_fuse_ops(struct fuse_lowlevel_ops *ops)
{
    *ops = fs_ops_base;
    fs_dir_ops(ops);
    fs_xattr_ops(ops);
}
