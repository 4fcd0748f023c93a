/* xattr.c — extended attributes.
 *
 * user.* attributes are stored in the inode (obj.h: at most FS_XATTR_MAX,
 * values up to FS_XATTR_VALUE_MAX bytes). Two more are read-only and not
 * listed (so copying a tree does not try to set them):
 *   user.coopfs.key      the key of the block that holds the inode's bytes
 *                        (a FILE manifest, `coopfs lookup KEY` fetches it),
 *                        or "inline" / "empty";
 *   user.coopfs.holders  the nodes of that block's replica set, ip:port,
 *                        one per line.
 * Other namespaces are not supported (ENOTSUP).
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "common/addr.h"
#include "fs/fs_int.h"
#include "fs/ops.h"

#define PREFIX       "user."
#define COOPFS_KEY   "user.coopfs.key"
#define COOPFS_HOLD  "user.coopfs.holders"
#define COOPFS_SPACE "user.coopfs."

static void reply_value(fuse_req_t req, const void *v, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, v, len);
}

static int find(const struct fs_inode *a, const char *name)
{
    for (uint16_t i = 0; i < a->nxattr; i++)
        if (strcmp(a->xattr[i].name, name) == 0)
            return i;
    return -1;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    if (strcmp(name, COOPFS_KEY) == 0 || strcmp(name, COOPFS_HOLD) == 0) {
        uint8_t ref = n->a.ref;
        struct id key = n->a.key;
        pthread_mutex_unlock(&f->mu);
        char buf[BCLIENT_MAX_HOLDERS * 64 + 80];
        size_t len = 0;
        if (strcmp(name, COOPFS_KEY) == 0) {
            if (ref == FS_REF_KEY)
                for (size_t i = 0; i < ID_BYTES; i++)
                    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%02x", key.b[i]);
            else
                len = (size_t)snprintf(buf, sizeof(buf), "%s",
                                       ref == FS_REF_INLINE ? "inline" : "empty");
        } else if (ref == FS_REF_KEY) {
            struct addr h[BCLIENT_MAX_HOLDERS];
            int nh = f->bc.ops->holders(f->bc.impl, &key, h, BCLIENT_MAX_HOLDERS);
            if (nh < 0) {
                fuse_reply_err(req, EIO);
                return;
            }
            for (int i = 0; i < nh; i++) {
                char a[ADDR_STR_MAX];
                addr_format(&h[i], a, sizeof(a));
                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s\n", a);
            }
        } else {
            len = (size_t)snprintf(buf, sizeof(buf), "%s\n",
                                   ref == FS_REF_INLINE ? "inline" : "empty");
        }
        reply_value(req, buf, len, size);
        return;
    }
    if (strncmp(name, PREFIX, strlen(PREFIX)) != 0) {
        pthread_mutex_unlock(&f->mu);
        fuse_reply_err(req, ENODATA);
        return;
    }
    int i = find(&n->a, name + strlen(PREFIX));
    if (i < 0) {
        pthread_mutex_unlock(&f->mu);
        fuse_reply_err(req, ENODATA);
        return;
    }
    size_t len = n->a.xattr[i].len;
    uint8_t *v = malloc(len ? len : 1);
    if (v && len)
        memcpy(v, n->a.xattr[i].value, len);
    pthread_mutex_unlock(&f->mu);
    if (!v)
        fuse_reply_err(req, ENOMEM);
    else
        reply_value(req, v, len, size);
    free(v);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct fs *f = FS(req);
    struct fnode *n = get(req, ino);
    if (!n)
        return;
    size_t len = 0;
    for (uint16_t i = 0; i < n->a.nxattr; i++)
        len += strlen(PREFIX) + strlen(n->a.xattr[i].name) + 1;
    char *buf = malloc(len ? len : 1);
    size_t pos = 0;
    for (uint16_t i = 0; buf && i < n->a.nxattr; i++)
        pos += (size_t)sprintf(buf + pos, "%s%s", PREFIX, n->a.xattr[i].name) + 1;
    pthread_mutex_unlock(&f->mu);
    if (!buf)
        fuse_reply_err(req, ENOMEM);
    else
        reply_value(req, buf, len, size);
    free(buf);
}

static int check_user(const char *name)
{
    if (strncmp(name, PREFIX, strlen(PREFIX)) != 0)
        return -ENOTSUP;
    if (strncmp(name, COOPFS_SPACE, strlen(COOPFS_SPACE)) == 0)
        return -EPERM;
    size_t l = strlen(name) - strlen(PREFIX);
    if (l == 0)
        return -EINVAL;
    return l > FS_XATTR_NAME_MAX ? -ERANGE : 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    struct fs *f = FS(req);
    int rc = check_user(name);
    if (rc == 0 && size > FS_XATTR_VALUE_MAX)
        rc = -E2BIG;
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    pthread_mutex_lock(&f->mu);
    struct fnode *n = fnode_get(f, ino);
    if (!n)
        rc = -ENOENT;
    else if (!f->cfg.writable || n->ro)
        rc = -EROFS;
    const char *nm = name + strlen(PREFIX);
    int i = n && rc == 0 ? find(&n->a, nm) : -1;
    if (rc == 0 && i >= 0 && (flags & XATTR_CREATE))
        rc = -EEXIST;
    if (rc == 0 && i < 0 && (flags & XATTR_REPLACE))
        rc = -ENODATA;
    if (rc == 0 && i < 0 && n->a.nxattr >= FS_XATTR_MAX)
        rc = -ENOSPC;
    uint8_t *v = rc == 0 ? malloc(size ? size : 1) : NULL;
    if (rc == 0 && !v)
        rc = -ENOMEM;
    if (rc == 0) {
        if (size)
            memcpy(v, value, size);
        if (i < 0) {
            struct fs_xattr *nx = realloc(n->a.xattr, (n->a.nxattr + 1u) * sizeof(*nx));
            if (!nx) {
                free(v);
                rc = -ENOMEM;
            } else {
                n->a.xattr = nx;
                /* keep them sorted by name */
                uint16_t pos = 0;
                while (pos < n->a.nxattr && strcmp(nx[pos].name, nm) < 0)
                    pos++;
                memmove(&nx[pos + 1], &nx[pos], (n->a.nxattr - pos) * sizeof(*nx));
                memset(&nx[pos], 0, sizeof(*nx));
                snprintf(nx[pos].name, sizeof(nx[pos].name), "%s", nm);
                nx[pos].value = v;
                nx[pos].len = (uint16_t)size;
                n->a.nxattr++;
            }
        } else {
            free(n->a.xattr[i].value);
            n->a.xattr[i].value = v;
            n->a.xattr[i].len = (uint16_t)size;
        }
    }
    if (rc == 0) {
        fnode_changed(f, n);
    }
    pthread_mutex_unlock(&f->mu);
    fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct fs *f = FS(req);
    int rc = check_user(name);
    if (rc < 0) {
        fuse_reply_err(req, rc == -ENOTSUP ? ENODATA : -rc);
        return;
    }
    pthread_mutex_lock(&f->mu);
    struct fnode *n = fnode_get(f, ino);
    int i = n ? find(&n->a, name + strlen(PREFIX)) : -1;
    if (!n)
        rc = -ENOENT;
    else if (!f->cfg.writable || n->ro)
        rc = -EROFS;
    else if (i < 0)
        rc = -ENODATA;
    if (rc == 0) {
        free(n->a.xattr[i].value);
        memmove(&n->a.xattr[i], &n->a.xattr[i + 1],
                (n->a.nxattr - (unsigned)i - 1) * sizeof(*n->a.xattr));
        n->a.nxattr--;
        fnode_changed(f, n);
    }
    pthread_mutex_unlock(&f->mu);
    fuse_reply_err(req, -rc);
}

void fs_xattr_ops(struct fuse_lowlevel_ops *ops)
{
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
    ops->setxattr = op_setxattr;
    ops->removexattr = op_removexattr;
}
