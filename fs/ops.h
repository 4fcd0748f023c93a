/* ops.h — small helpers shared by the FUSE operations (fuse_ops.c,
 * dir_ops.c): the request's file system, the node of an inode number with
 * the tree's lock held, replies that release it. */
#ifndef COOPFS_FS_OPS_H
#define COOPFS_FS_OPS_H

#include <errno.h>
#include <fuse_lowlevel.h>
#include <string.h>

#include "fs/fs_int.h"

#define FS_TIMEOUT_S 10.0

static inline struct fs *FS(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static inline double timeout_of(const struct fnode *n)
{
    return n->ro ? 3600.0 : FS_TIMEOUT_S;
}

/* st_blocks counts the chunks that are not holes, which needs a file's
 * chunk table: fetched for large files before their attributes are
 * given (mu held; drops it). Small files count as wholly allocated. */
#define STAT_EXACT_MIN (64ull << 20)
static inline void stat_prepare(struct fs *f, struct fnode *n)
{
    if (n->a.type == FS_T_FILE && n->a.ref == FS_REF_KEY && !n->chunks_loaded &&
        n->a.size >= STAT_EXACT_MIN)
        file_load_chunks(f, n);
}

static inline void fill_entry(struct fs *f, struct fnode *n, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = n->ino;
    e->generation = 1;
    fnode_stat(f, n, &e->attr);
    e->attr_timeout = e->entry_timeout = timeout_of(n);
}

/* The node for ino, with mu held; replies ENOENT and returns NULL (mu
 * released) if there is none. */
static inline struct fnode *get(fuse_req_t req, fuse_ino_t ino)
{
    struct fs *f = FS(req);
    pthread_mutex_lock(&f->mu);
    struct fnode *n = fnode_get(f, ino);
    if (!n) {
        pthread_mutex_unlock(&f->mu);
        fuse_reply_err(req, ENOENT);
    }
    return n;
}

static inline void done(fuse_req_t req, int err)
{
    pthread_mutex_unlock(&FS(req)->mu);
    fuse_reply_err(req, err < 0 ? -err : err);
}

/* Replies err (mu released) and returns from the operation. */
#define DONE(req, err)                                                                             \
    do {                                                                                           \
        done(req, err);                                                                            \
        return;                                                                                    \
    } while (0)

void fs_dir_ops(struct fuse_lowlevel_ops *ops); /* dir_ops.c */

#endif
