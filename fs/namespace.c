/* namespace.c — the changes to the tree's names: make an entry, remove
 * one, rename one. The FUSE operations (fuse_ops.c) and the unit tests
 * (tests/unit/fs) call these, with f->mu held. Each checks, changes the
 * tree, marks what changed for the publisher and appends its journal
 * record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs_int.h"

static bool writable(const struct fs *f, const struct fnode *n)
{
    return f->cfg.writable && !n->ro;
}

static int check_name(const char *name)
{
    size_t l = strlen(name);
    if (l == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
        return -EINVAL;
    return l > FS_NAME_MAX ? -ENAMETOOLONG : 0;
}

int fs_make(struct fs *f, struct fnode *p, const char *name, uint8_t type, uint32_t mode,
            uint32_t uid, uint32_t gid, const char *target, struct fnode **out)
{
    if (!writable(f, p))
        return -EROFS;
    if (p->a.type != FS_T_DIR)
        return -ENOTDIR;
    int rc = check_name(name);
    if (rc < 0)
        return rc;
    if (p == f->root && strcmp(name, FS_SNAPSHOTS_NAME) == 0)
        return -EEXIST;
    if ((rc = dir_load(f, p)) < 0)
        return rc;
    if (dir_find(p, name, NULL))
        return -EEXIST;
    struct fs_inode a;
    memset(&a, 0, sizeof(a));
    a.type = type;
    a.mode = mode & 07777;
    a.uid = uid;
    a.gid = (p->a.mode & S_ISGID) ? p->a.gid : gid;
    a.mtime_ns = a.ctime_ns = fs_now_ns();
    if (type == FS_T_SYMLINK) {
        size_t l = target ? strlen(target) : 0;
        if (l == 0)
            return -ENOENT; /* as Linux: the format has no empty symlink */
        if (l > FS_SYMLINK_MAX)
            return -ENAMETOOLONG;
        a.ref = FS_REF_INLINE;
        a.size = l;
        a.inline_data = (uint8_t *)(uintptr_t)target; /* copied by fnode_new */
    }
    struct fnode *k = fnode_new(f, name, &a);
    if (!k)
        return -ENOMEM;
    if (type == FS_T_DIR)
        k->loaded = true;
    if (type == FS_T_FILE)
        k->content_dirty = true; /* its first flush records it durably */
    if ((rc = dir_insert(p, k)) < 0) {
        fnode_free(f, k);
        return rc;
    }
    p->a.mtime_ns = p->a.ctime_ns = a.mtime_ns;
    p->dirty = true;
    fnode_touch(f, k);
    journal_set(f, k, false);
    *out = k;
    return 0;
}

int fs_remove(struct fs *f, struct fnode *p, const char *name, bool dir)
{
    if (!writable(f, p))
        return -EROFS;
    if (p->a.type != FS_T_DIR)
        return -ENOTDIR;
    int rc = dir_load(f, p);
    if (rc < 0)
        return rc;
    struct fnode *k = dir_find(p, name, NULL);
    if (!k)
        return -ENOENT;
    if (dir && k->a.type != FS_T_DIR)
        return -ENOTDIR;
    if (!dir && k->a.type == FS_T_DIR)
        return -EISDIR;
    if (dir) {
        if ((rc = dir_load(f, k)) < 0)
            return rc;
        if (k->nkids)
            return -ENOTEMPTY;
    }
    char *path = fnode_path(k);
    dir_unlink(p, k);
    p->a.mtime_ns = p->a.ctime_ns = fs_now_ns();
    fnode_touch(f, p);
    if (path)
        journal_del(f, path);
    free(path);
    fnode_maybe_free(f, k);
    return 0;
}

int fs_rename(struct fs *f, struct fnode *p, const char *name, struct fnode *np,
              const char *newname, bool noreplace)
{
    if (!writable(f, p) || !writable(f, np))
        return -EROFS;
    if (p->a.type != FS_T_DIR || np->a.type != FS_T_DIR)
        return -ENOTDIR;
    int rc = check_name(newname);
    if (rc == 0)
        rc = dir_load(f, p);
    if (rc == 0)
        rc = dir_load(f, np);
    if (rc < 0)
        return rc;
    if (np == f->root && strcmp(newname, FS_SNAPSHOTS_NAME) == 0)
        return -EEXIST;
    struct fnode *k = dir_find(p, name, NULL);
    if (!k)
        return -ENOENT;
    struct fnode *t = dir_find(np, newname, NULL);
    if (t == k)
        return 0;
    for (struct fnode *a = np; a; a = a->parent)
        if (a == k)
            return -EINVAL; /* into itself */
    if (t) {
        if (noreplace)
            return -EEXIST;
        if (t->a.type == FS_T_DIR && k->a.type != FS_T_DIR)
            return -EISDIR;
        if (t->a.type != FS_T_DIR && k->a.type == FS_T_DIR)
            return -ENOTDIR;
        if (t->a.type == FS_T_DIR) {
            if ((rc = dir_load(f, t)) < 0)
                return rc;
            if (t->nkids)
                return -ENOTEMPTY;
        }
    }
    char *nn = strdup(newname);
    char *from = fnode_path(k);
    if (!nn || !from) {
        free(nn);
        free(from);
        return -ENOMEM;
    }
    if (t) {
        dir_unlink(np, t);
        fnode_maybe_free(f, t);
    }
    dir_unlink(p, k);
    free(k->name);
    k->name = nn;
    dir_insert(np, k);
    int64_t now = fs_now_ns();
    p->a.mtime_ns = p->a.ctime_ns = np->a.mtime_ns = np->a.ctime_ns = now;
    k->a.ctime_ns = now;
    fnode_touch(f, p);
    fnode_touch(f, np);
    fnode_touch(f, k);
    char *to = fnode_path(k);
    if (to)
        journal_rename(f, from, to);
    free(from);
    free(to);
    return 0;
}
