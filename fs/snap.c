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

/* Makes the tree in memory the one of root (the root directory's inode),
 * replacing a root node nothing has used yet (mu held or not started). */
static int set_root(struct fs *f, const struct fs_inode *root)
{
    if (f->root) {
        fnode_free(f, f->root);
        f->root = NULL;
    }
    uint64_t next = f->next_ino;
    f->next_ino = FS_ROOT_INO;
    f->root = fnode_new(f, "", root);
    f->next_ino = next > FS_ROOT_INO ? next : FS_ROOT_INO + 1;
    return f->root ? 0 : -ENOMEM;
}

static void empty_root(struct fs_inode *root)
{
    memset(root, 0, sizeof(*root));
    root->type = FS_T_DIR;
    root->mode = 0755;
    root->uid = (uint32_t)getuid();
    root->gid = (uint32_t)getgid();
    root->mtime_ns = root->ctime_ns = fs_now_ns();
}

int fs_load_tree_at(struct fs *f, const struct id *commit, uint64_t version)
{
    struct fs_inode root;
    if (!commit) {
        empty_root(&root);
        f->has_head = false;
        memset(&f->head, 0, sizeof(f->head));
        f->version = 0;
    } else {
        struct fs_commit c;
        int rc = commit_load(f, commit, &c);
        if (rc < 0)
            return rc;
        root = c.root;
        memset(&c.root, 0, sizeof(c.root));
        fs_commit_clear(&c);
        f->head = *commit;
        f->has_head = true;
        f->version = version;
    }
    fs_inode_clear(&f->head_root);
    int rc = f->has_head ? fs_inode_copy(&f->head_root, &root) : 0;
    if (rc == 0)
        rc = set_root(f, &root);
    fs_inode_clear(&root);
    return rc;
}

int publish_load_head(struct fs *f)
{
    struct id commit;
    uint64_t v = 0;
    int rc = -EIO;
    /* A node that just joined may not yet know where the root lives (the
     * ring settles for a few seconds after a join): "no root" is asked
     * again before it is believed, so an existing tree never shows as
     * empty. */
    for (unsigned tries = 0; tries < f->cfg.root_confirm + 2; tries++) {
        rc = root_read(f, &commit, &v);
        if (rc == 0 || (rc == -ENOENT && tries >= f->cfg.root_confirm))
            break;
        struct timespec ts = { 0, 700 * 1000000L };
        nanosleep(&ts, NULL);
    }
    f->next_ino = FS_ROOT_INO + 2; /* 1: the root, 2: .snapshots */
    if (rc == -ENOENT) {
        LOG_I(f->cfg.log, "fs", "no root yet: an empty file system");
        rc = fs_load_tree_at(f, NULL, 0);
    } else if (rc == 0) {
        rc = fs_load_tree_at(f, &commit, v);
        if (rc == 0)
            LOG_I(f->cfg.log, "fs", "root version %llu", (unsigned long long)v);
    }
    if (rc < 0)
        return rc;
    struct fs_inode sn;
    memset(&sn, 0, sizeof(sn));
    sn.type = FS_T_DIR;
    sn.mode = 0555;
    sn.mtime_ns = sn.ctime_ns = fs_now_ns();
    uint64_t next = f->next_ino;
    f->next_ino = FS_ROOT_INO + 1;
    f->snaps = fnode_new(f, FS_SNAPSHOTS_NAME, &sn);
    f->next_ino = next;
    if (!f->snaps)
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
