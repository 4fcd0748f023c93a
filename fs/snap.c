/* snap.c — the published head at open, and the snapshots: every commit
 * is a version, browsable read-only under /.snapshots/vN (N the root
 * version it was published as), found by walking first parents from the
 * head (at most FS_SNAPSHOTS_MAX back).
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_int.h"

/* ---- the head at open ---- */

int publish_load_head(struct fs *f)
{
    struct id commit;
    uint64_t v = 0;
    int rc = -EIO;
    /* A node that just joined may not yet know where the root lives (the
     * ring settles for a few seconds after a join): "no root" is asked
     * again before it is believed, so an existing tree never shows as
     * empty. */
    for (int tries = 0; tries < 4; tries++) {
        rc = root_read(f, &commit, &v);
        if (rc == 0 || (rc == -ENOENT && tries >= 2))
            break;
        struct timespec ts = { 0, 700 * 1000000L };
        nanosleep(&ts, NULL);
    }
    struct fs_inode root;
    memset(&root, 0, sizeof(root));
    if (rc == -ENOENT) {
        root.type = FS_T_DIR;
        root.mode = 0755;
        root.uid = (uint32_t)getuid();
        root.gid = (uint32_t)getgid();
        root.mtime_ns = root.ctime_ns = fs_now_ns();
        LOG_I(f->cfg.log, "fs", "no root yet: an empty file system");
        rc = 0;
    } else if (rc == 0) {
        struct fs_commit c;
        if ((rc = commit_load(f, &commit, &c)) < 0)
            return rc;
        root = c.root;
        memset(&c.root, 0, sizeof(c.root));
        fs_commit_clear(&c);
        f->head = commit;
        f->has_head = true;
        f->version = v;
        fs_inode_copy(&f->head_root, &root);
        LOG_I(f->cfg.log, "fs", "root version %llu", (unsigned long long)v);
    } else {
        return rc;
    }
    f->next_ino = FS_ROOT_INO;
    f->root = fnode_new(f, "", &root);
    fs_inode_clear(&root);
    struct fs_inode sn;
    memset(&sn, 0, sizeof(sn));
    sn.type = FS_T_DIR;
    sn.mode = 0555;
    sn.mtime_ns = sn.ctime_ns = fs_now_ns();
    f->snaps = fnode_new(f, FS_SNAPSHOTS_NAME, &sn);
    if (!f->root || !f->snaps)
        return -ENOMEM;
    f->snaps->ro = true;
    f->snaps->loaded = true;
    return 0;
}

/* ---- snapshots ---- */

int snap_list(struct fs *f, uint64_t **versions, size_t *n)
{
    pthread_mutex_lock(&f->mu);
    struct id k = f->head;
    bool have = f->has_head;
    pthread_mutex_unlock(&f->mu);
    uint64_t *v = calloc(FS_SNAPSHOTS_MAX, sizeof(*v));
    size_t cnt = 0;
    if (!v)
        return -ENOMEM;
    while (have && cnt < FS_SNAPSHOTS_MAX) {
        struct fs_commit c;
        if (commit_load(f, &k, &c) < 0)
            break;
        v[cnt++] = c.version;
        have = c.nparents > 0;
        if (have)
            k = c.parents[0];
        fs_commit_clear(&c);
    }
    *versions = v;
    *n = cnt;
    return 0;
}

/* mu held; drops it to walk the commits. */
struct fnode *snap_lookup(struct fs *f, const char *name)
{
    struct fnode *k = dir_find(f->snaps, name, NULL);
    if (k)
        return k;
    char *end = NULL;
    if (name[0] != 'v' || !name[1])
        return NULL;
    unsigned long long want = strtoull(name + 1, &end, 10);
    if (*end || want == 0)
        return NULL;
    struct id key = f->head;
    bool have = f->has_head;
    pthread_mutex_unlock(&f->mu);
    struct fs_commit c;
    bool found = false;
    for (unsigned i = 0; have && i < FS_SNAPSHOTS_MAX; i++) {
        if (commit_load(f, &key, &c) < 0)
            break;
        if (c.version == want) {
            found = true;
            break;
        }
        have = c.nparents > 0 && c.version > want;
        if (have)
            key = c.parents[0];
        fs_commit_clear(&c);
    }
    pthread_mutex_lock(&f->mu);
    if (!found)
        return NULL;
    k = dir_find(f->snaps, name, NULL);
    if (!k) {
        k = fnode_new(f, name, &c.root);
        if (k) {
            k->snap_version = want;
            k->ro = true;
            if (dir_insert(f->snaps, k) < 0) {
                fnode_free(f, k);
                k = NULL;
            }
        }
    }
    fs_commit_clear(&c);
    return k;
}
