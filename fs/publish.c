/* publish.c — from the tree in memory to a signed root, and back.
 *
 * The publisher thread waits until something changed and cfg.publish_ms
 * passed (or somebody waits in fs_sync), then takes a snapshot under the
 * lock: every directory changed since the last one is encoded (inline, or
 * as a stream of DATA chunks under a FILE manifest) bottom up, which only
 * hashes. Without the lock it stores those blocks and the commit, signs
 * the root with version + 1 and stores it with compare-and-swap. When
 * another writer stored a newer root, it merges three ways (merge.h:
 * base = the root its changes started from, theirs = the newer one),
 * commits the merge with both parents, and tries again; what the merge
 * brought in is then applied to the tree in memory, and the kernel's
 * caches of what changed are invalidated. With nothing to publish the
 * same thread polls the root, which is all a --follow mount does.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "fs/merge.h"

#define PUBLISH_CONFLICTS_MAX 16

/* ---- synchronous calls ---- */

struct call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
    uint8_t *bytes;
    size_t len;
    uint64_t version;
};

static void call_done(void *arg, const struct bs_result *r)
{
    struct call *c = arg;
    pthread_mutex_lock(&c->mu);
    c->status = r->status;
    c->version = r->version;
    if (r->bytes && r->len && (c->bytes = malloc(r->len)))
        memcpy(c->bytes, r->bytes, c->len = r->len);
    c->done = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static int call_wait(struct call *c, int started)
{
    if (started < 0) {
        c->status = started;
    } else {
        pthread_mutex_lock(&c->mu);
        while (!c->done)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    return c->status;
}

static void call_init(struct call *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

/* Reads the current root: 0 and *commit and *version, -ENOENT (none), or an
 * error. */
int root_read(struct fs *f, struct id *commit, uint64_t *version)
{
    struct call c;
    call_init(&c);
    int st = call_wait(&c, f->bc.ops->get(f->bc.impl, STORE_ROOT, &f->root_key, call_done, &c));
    int rc = 0;
    struct root_info ri;
    if (st == BS_ERR_NOT_FOUND)
        rc = -ENOENT;
    else if (st)
        rc = fs_errno(st);
    else if (root_verify(&f->root_key, c.bytes, c.len, &ri) < 0 ||
             fs_rootref_decode(ri.payload, ri.payload_len, commit) < 0)
        rc = -EIO;
    else
        *version = ri.version;
    free(c.bytes);
    return rc;
}

int commit_load(struct fs *f, const struct id *key, struct fs_commit *out)
{
    uint8_t *p = NULL;
    size_t len = 0;
    int rc = fs_cache_get(f, key, &p, &len);
    if (rc == 0 && fs_commit_decode(p, len, out) < 0)
        rc = -EIO;
    free(p);
    return rc;
}

/* ---- directory streams ---- */

static int load_entries(struct fs *f, const struct fs_inode *a, struct fs_dir *out)
{
    fs_dir_init(out);
    if (a->ref == FS_REF_EMPTY)
        return 0;
    if (a->ref == FS_REF_INLINE)
        return fs_dir_decode(a->inline_data, a->size, out) < 0 ? -EIO : 0;
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = fs_get_stream(f, &a->key, a->size, &b, &len);
    if (rc == 0 && fs_dir_decode(b, len, out) < 0)
        rc = -EIO;
    free(b);
    return rc;
}

/* Sets a's reference to the encoded stream of d: inline, or stored now. */
static int store_entries(struct fs *f, const struct fs_dir *d, struct fs_inode *a)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = fs_dir_encode(d, &b, &len);
    if (rc < 0)
        return rc;
    free(a->inline_data);
    a->inline_data = NULL;
    a->size = len;
    if (len == 0) {
        a->ref = FS_REF_EMPTY;
    } else if (len <= FS_INLINE_MAX) {
        a->ref = FS_REF_INLINE;
        a->inline_data = b;
        b = NULL;
    } else {
        a->ref = FS_REF_KEY;
        rc = fs_put_stream(f, b, len, &a->key);
    }
    free(b);
    return rc;
}

static int merge_load(void *ctx, const struct fs_inode *dir, struct fs_dir *out)
{
    return load_entries(ctx, dir, out);
}

static int merge_store(void *ctx, const struct fs_dir *d, struct fs_inode *dir)
{
    return store_entries(ctx, d, dir);
}

/* ---- snapshot ---- */

/* Encodes directory d and everything changed below it (mu held, never
 * dropped: the tree stays still). The blocks of large directory streams
 * go to f->pend, stored before the commit. */
static int snap_dir(struct fs *f, struct fnode *d, struct fs_inode *out)
{
    if ((!d->dirty && !d->sub_dirty) || !d->loaded) {
        d->dirty = d->sub_dirty = false;
        return fs_inode_copy(out, &d->a);
    }
    struct fs_dir dir;
    fs_dir_init(&dir);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->nkids; i++) {
        struct fnode *k = d->kids[i];
        struct fs_inode rec;
        if (k->a.type == FS_T_DIR)
            rc = snap_dir(f, k, &rec);
        else {
            k->dirty = false;
            rc = fs_inode_copy(&rec, &k->a);
        }
        if (rc == 0) {
            rc = fs_dir_set(&dir, k->name, &rec);
            fs_inode_clear(&rec);
        }
    }
    d->dirty = d->sub_dirty = false;
    if (rc == 0) {
        struct fs_inode a;
        rc = fs_inode_copy(&a, &d->a);
        if (rc == 0) {
            uint8_t *b = NULL;
            size_t len = 0;
            rc = fs_dir_encode(&dir, &b, &len);
            if (rc == 0 && len > FS_INLINE_MAX) {
                rc = fs_stream_encode(f, b, len, &f->pend, &a.key);
                free(a.inline_data);
                a.inline_data = NULL;
                a.ref = FS_REF_KEY;
                a.size = len;
                free(b);
            } else if (rc == 0) {
                free(a.inline_data);
                a.inline_data = len ? b : NULL;
                a.ref = len ? FS_REF_INLINE : FS_REF_EMPTY;
                a.size = len;
                if (!len)
                    free(b);
            }
            if (rc == 0) {
                /* d->a keeps its attributes as they are now, the new stream */
                free(d->a.inline_data);
                d->a.inline_data = NULL;
                if (a.ref == FS_REF_INLINE && !(d->a.inline_data = malloc(a.size)))
                    rc = -ENOMEM;
                else if (a.ref == FS_REF_INLINE)
                    memcpy(d->a.inline_data, a.inline_data, a.size);
                d->a.ref = a.ref;
                d->a.key = a.key;
                d->a.size = a.size;
                a.mode = d->a.mode;
                a.uid = d->a.uid;
                a.gid = d->a.gid;
                a.mtime_ns = d->a.mtime_ns;
                a.ctime_ns = d->a.ctime_ns;
            }
            if (rc == 0)
                *out = a;
            else
                fs_inode_clear(&a);
        }
    }
    if (rc < 0)
        d->sub_dirty = true; /* try again next time */
    fs_dir_clear(&dir);
    return rc;
}

/* ---- applying a remote change to the tree in memory ---- */

struct notes {
    size_t n, cap;
    struct note {
        uint64_t parent, ino;
        char *name;
    } *v;
};

static void note(struct notes *ns, uint64_t parent, const char *name, uint64_t ino)
{
    if (ns->n == ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 16;
        struct note *nv = realloc(ns->v, nc * sizeof(*nv));
        if (!nv)
            return;
        ns->v = nv;
        ns->cap = nc;
    }
    ns->v[ns->n].parent = parent;
    ns->v[ns->n].ino = ino;
    ns->v[ns->n].name = name ? strdup(name) : NULL;
    ns->n++;
}

static void notes_send(struct fs *f, struct notes *ns)
{
    pthread_mutex_lock(&f->se_mu);
    for (size_t i = 0; i < ns->n; i++) {
        if (f->se) {
            if (ns->v[i].name)
                fuse_lowlevel_notify_inval_entry(f->se, ns->v[i].parent, ns->v[i].name,
                                                 strlen(ns->v[i].name));
            else
                fuse_lowlevel_notify_inval_inode(f->se, ns->v[i].ino, 0, 0);
        }
        free(ns->v[i].name);
    }
    pthread_mutex_unlock(&f->se_mu);
    free(ns->v);
    ns->v = NULL;
    ns->n = ns->cap = 0;
}

/* Changed here and not yet in a snapshot: written, being stored, or
 * being flushed. A remote change does not overwrite such a node. */
static bool local_change(const struct fnode *k)
{
    return k->dirty || k->content_dirty || k->busy || k->flushing;
}

/* Gives k the remote inode nw (k has no local change): its chunk table and
 * a spool left from an earlier open are dropped, the next read loads the
 * new ones. */
static void set_content(struct fs *f, struct fnode *k, const struct fs_inode *nw)
{
    struct fs_inode c;
    if (fs_inode_copy(&c, nw) < 0)
        return;
    fs_inode_clear(&k->a);
    k->a = c;
    file_drop_spool(f, k);
    free(k->ch);
    k->ch = NULL;
    k->nch = 0;
    k->chunks_loaded = false;
    k->size = c.size;
}

/* Keeps the remote version nw of name, which changed here too, beside it
 * as NAME.conflict-remote[-N] (mu held): both edits stay, the local one
 * under the name. */
static void keep_remote(struct fs *f, struct fnode *d, const char *name,
                        const struct fs_inode *nw, struct notes *ns)
{
    char cn[FS_NAME_MAX + 1];
    for (unsigned i = 1; i < 100; i++) {
        int l = i == 1 ? snprintf(cn, sizeof(cn), "%.200s.conflict-remote", name)
                       : snprintf(cn, sizeof(cn), "%.200s.conflict-remote-%u", name, i);
        if (l < 0 || (size_t)l >= sizeof(cn))
            return;
        struct fnode *c = dir_find(d, cn, NULL);
        if (c && fs_inode_equal(&c->a, nw))
            return; /* kept already */
        if (!c)
            break;
    }
    struct fnode *nk = fnode_new(f, cn, nw);
    if (!nk)
        return;
    if (dir_insert(d, nk) < 0) {
        fnode_maybe_free(f, nk);
        return;
    }
    fnode_touch(f, nk);
    journal_set(f, nk, false);
    f->conflicts++;
    note(ns, d->ino, cn, 0);
    LOG_I(f->cfg.log, "fs", "%s changed here and in a newer version: that one is kept as %s",
          name, cn);
}

/* Brings loaded directory d from old to nw (mu held; may drop it to
 * fetch). Entries changed here since the snapshot stay as they are; a file
 * changed on both sides keeps the remote version beside it. */
static void apply_dir(struct fs *f, struct fnode *d, const struct fs_inode *old,
                      const struct fs_inode *nw, struct notes *ns)
{
    if (old && fs_inode_equal(old, nw))
        return;
    if (!d->dirty) {
        d->a.mode = nw->mode;
        d->a.uid = nw->uid;
        d->a.gid = nw->gid;
        d->a.mtime_ns = nw->mtime_ns;
        d->a.ctime_ns = nw->ctime_ns;
    }
    if (!d->loaded) {
        if (!d->dirty && !d->sub_dirty)
            set_content(f, d, nw);
        note(ns, 0, NULL, d->ino);
        return;
    }
    struct fs_dir od, ndir;
    d->busy++; /* pinned while the lock is dropped */
    pthread_mutex_unlock(&f->mu);
    int rc = old ? load_entries(f, old, &od) : (fs_dir_init(&od), 0);
    int rc2 = load_entries(f, nw, &ndir);
    pthread_mutex_lock(&f->mu);
    bool attached = d == f->root || d->parent;
    if (rc == 0 && rc2 == 0 && d->loaded && attached) {
        bool changed_here = false;
        for (size_t i = 0; i < ndir.n; i++) { /* added or changed */
            struct fs_dirent *e = &ndir.e[i];
            struct fs_dirent *o = fs_dir_find(&od, e->name);
            if (o && fs_inode_equal(&o->ino, &e->ino))
                continue;
            struct fnode *k = dir_find(d, e->name, NULL);
            if (k && k->a.type == FS_T_DIR && e->ino.type == FS_T_DIR) {
                apply_dir(f, k, o ? &o->ino : NULL, &e->ino, ns);
                if (!(d == f->root || d->parent))
                    break; /* d itself went meanwhile */
                continue;
            }
            if (k && local_change(k)) {
                keep_remote(f, d, e->name, &e->ino, ns);
                changed_here = true;
                continue;
            }
            if (k && k->a.type == e->ino.type) {
                set_content(f, k, &e->ino);
                note(ns, 0, NULL, k->ino);
                continue;
            }
            if (k) {
                dir_unlink(d, k);
                fnode_maybe_free(f, k);
            }
            struct fnode *nk = fnode_new(f, e->name, &e->ino);
            if (nk && dir_insert(d, nk) < 0)
                fnode_maybe_free(f, nk);
            note(ns, d->ino, e->name, 0);
            changed_here = true;
        }
        for (size_t i = 0; i < od.n; i++) { /* removed */
            if (fs_dir_find(&ndir, od.e[i].name))
                continue;
            struct fnode *k = dir_find(d, od.e[i].name, NULL);
            if (!k || local_change(k) || k->sub_dirty)
                continue;
            dir_unlink(d, k);
            note(ns, d->ino, od.e[i].name, 0);
            fnode_maybe_free(f, k);
            changed_here = true;
        }
        if (changed_here)
            note(ns, 0, NULL, d->ino);
        if (!d->dirty && !d->sub_dirty) {
            d->a.ref = nw->ref;
            d->a.key = nw->key;
            d->a.size = nw->size;
            free(d->a.inline_data);
            d->a.inline_data = NULL;
            if (nw->ref == FS_REF_INLINE && (d->a.inline_data = malloc(nw->size)))
                memcpy(d->a.inline_data, nw->inline_data, nw->size);
        } else {
            d->sub_dirty = true;
        }
    }
    fs_dir_clear(&od);
    fs_dir_clear(&ndir);
    d->busy--;
    fnode_maybe_free(f, d);
}

/* ---- publishing ---- */

static int put_commit(struct fs *f, uint64_t version, const struct id *parents, unsigned np,
                      const struct fs_inode *root, struct id *key)
{
    struct fs_commit c;
    memset(&c, 0, sizeof(c));
    c.version = version;
    c.time_ns = fs_now_ns();
    c.author = f->cfg.pub;
    c.nparents = (uint8_t)np;
    for (unsigned i = 0; i < np; i++)
        c.parents[i] = parents[i];
    c.root = *root; /* borrowed */
    snprintf(c.message, sizeof(c.message), "%s", f->cfg.tag ? f->cfg.tag : "");
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = fs_commit_encode(&c, &b, &len);
    if (rc == 0)
        rc = fs_put_block(f, BLOCK_KIND_FS_COMMIT, b, len, key);
    free(b);
    return rc;
}

/* Stores a root of version pointing at commit, expecting expect. 0, or
 * BS_ERR_CONFLICT with the newer root in *their and *their_version, -EAGAIN
 * (nothing newer is visible: try again), or an error. */
static int put_root(struct fs *f, uint64_t version, const struct id *commit, uint64_t expect,
                    struct id *their, uint64_t *their_version)
{
    uint8_t payload[FS_ROOTREF_LEN], out[ROOT_MAX_LEN];
    size_t len = 0;
    fs_rootref_encode(commit, payload);
    if (root_encode(&f->cfg.key, version, payload, sizeof(payload), out, &len) < 0)
        return -EIO;
    struct call c;
    call_init(&c);
    int st = call_wait(&c, f->bc.ops->root_put(f->bc.impl, out, len, expect, call_done, &c));
    struct root_info ri;
    if ((st == BS_ERR_CONFLICT || st == BS_ERR_STALE) && c.bytes &&
        root_verify(&f->root_key, c.bytes, c.len, &ri) == 0 &&
        fs_rootref_decode(ri.payload, ri.payload_len, their) == 0) {
        *their_version = ri.version;
        st = BS_ERR_CONFLICT;
    } else if (st == BS_ERR_INDETERMINATE || st == BS_ERR_CONFLICT || st == BS_ERR_STALE) {
        struct id cur;
        uint64_t v = 0;
        int rr = root_read(f, &cur, &v);
        if (rr == 0 && v == version && id_eq(&cur, commit)) {
            st = 0; /* ours was stored after all */
        } else if (rr == 0 && v > expect) {
            *their = cur;
            *their_version = v;
            st = BS_ERR_CONFLICT;
        } else {
            st = -EAGAIN;
        }
    }
    free(c.bytes);
    return st;
}

static int publish_once(struct fs *f)
{
    uint64_t target = f->change_seq;
    off_t jend = journal_end(f);
    struct fs_inode ours;
    int rc = snap_dir(f, f->root, &ours);
    if (rc < 0)
        return rc;
    struct fs_inode base;
    if ((rc = fs_inode_copy(&base, &f->head_root)) < 0) {
        fs_inode_clear(&ours);
        return rc;
    }
    uint64_t version = f->version;
    struct id parents[2];
    unsigned np = 0;
    if (f->has_head)
        parents[np++] = f->head;
    struct blist pend = f->pend;
    memset(&f->pend, 0, sizeof(f->pend));
    pthread_mutex_unlock(&f->mu);

    rc = fs_put_blist(f, &pend);
    if (rc < 0) {
        pthread_mutex_lock(&f->mu);
        f->pend = pend; /* nothing else adds to it while we publish */
        f->pub_err = rc;
        f->pub_fail_ms = fs_now_ms();
        f->pub_fails++;
        fs_inode_clear(&ours);
        fs_inode_clear(&base);
        pthread_cond_broadcast(&f->pub_cv);
        LOG_W(f->cfg.log, "fs", "publish failed storing directories: %s", strerror(-rc));
        return rc;
    }
    blist_clear(&pend);

    struct fs_inode cur = ours, merged_from;
    bool merged = false;
    memset(&merged_from, 0, sizeof(merged_from));
    struct id ckey;
    for (unsigned tries = 0;; tries++) {
        rc = put_commit(f, version + 1, parents, np, &cur, &ckey);
        if (rc < 0)
            break;
        struct id their;
        uint64_t tv = 0;
        rc = put_root(f, version + 1, &ckey, version, &their, &tv);
        if (rc == 0) {
            version++;
            break;
        }
        if (rc != BS_ERR_CONFLICT || tries >= PUBLISH_CONFLICTS_MAX) {
            rc = rc == -EAGAIN ? -EAGAIN : fs_errno(rc);
            break;
        }
        struct fs_commit tc;
        if ((rc = commit_load(f, &their, &tc)) < 0)
            break;
        struct fs_merge_io io = { merge_load, merge_store, f };
        struct fs_inode m;
        unsigned nc = 0;
        char tag[96];
        snprintf(tag, sizeof(tag), "%s-v%llu", f->cfg.tag ? f->cfg.tag : "local",
                 (unsigned long long)tv + 1);
        rc = fs_merge3(&io, version || f->has_head ? &base : NULL, &cur, &tc.root, tag, &m, &nc);
        LOG_I(f->cfg.log, "fs", "root conflict: v%llu is newer; merged with %u conflict(s)",
              (unsigned long long)tv, nc);
        if (rc < 0) {
            fs_commit_clear(&tc);
            break;
        }
        f->conflicts += nc;
        if (!merged) {
            merged_from = ours;
            merged = true;
        } else {
            fs_inode_clear(&cur);
        }
        cur = m;
        fs_inode_clear(&base);
        fs_inode_copy(&base, &tc.root);
        fs_commit_clear(&tc);
        version = tv;
        parents[0] = their;
        parents[1] = ckey;
        np = 2;
    }

    pthread_mutex_lock(&f->mu);
    if (rc == 0) {
        struct notes ns = { 0 };
        if (merged)
            apply_dir(f, f->root, &merged_from, &cur, &ns);
        fs_inode_clear(&f->head_root);
        fs_inode_copy(&f->head_root, &cur);
        f->head = ckey;
        f->has_head = true;
        f->version = version;
        if (f->pub_seq < target)
            f->pub_seq = target;
        /* What changed meanwhile gathers for a whole window again, so a
         * steady stream of changes makes one root per publish_ms. */
        if (f->pub_seq != f->change_seq)
            f->first_dirty_ms = fs_now_ms();
        f->pub_err = 0;
        f->pub_fails = 0;
        journal_published(f, jend);
        if (ns.n) {
            pthread_mutex_unlock(&f->mu);
            notes_send(f, &ns);
            pthread_mutex_lock(&f->mu);
        }
        LOG_D(f->cfg.log, "fs", "published v%llu", (unsigned long long)version);
    } else {
        /* The directories snapshotted keep their new streams; the blocks
         * not stored stay in f->pend and go first next time. */
        f->pub_err = rc;
        f->pub_fail_ms = fs_now_ms();
        f->pub_fails++;
        LOG_W(f->cfg.log, "fs", "publish failed: %s", strerror(-rc));
    }
    if (merged)
        fs_inode_clear(&merged_from);
    fs_inode_clear(&cur);
    fs_inode_clear(&base);
    pthread_cond_broadcast(&f->pub_cv);
    return rc;
}

/* ---- following a newer root ---- */

/* Shows the current root if it is newer than the one in memory and
 * nothing local waits to be published (mu held; drops it). */
static void poll_root(struct fs *f)
{
    pthread_mutex_unlock(&f->mu);
    struct id commit;
    uint64_t v = 0;
    int rc = root_read(f, &commit, &v);
    struct fs_commit c;
    bool have = false;
    pthread_mutex_lock(&f->mu);
    bool newer = rc == 0 && v > f->version;
    pthread_mutex_unlock(&f->mu);
    if (newer && commit_load(f, &commit, &c) == 0)
        have = true;
    pthread_mutex_lock(&f->mu);
    if (!have)
        return;
    if (v > f->version && f->pub_seq == f->change_seq) {
        struct notes ns = { 0 };
        apply_dir(f, f->root, f->has_head ? &f->head_root : NULL, &c.root, &ns);
        fs_inode_clear(&f->head_root);
        fs_inode_copy(&f->head_root, &c.root);
        f->head = commit;
        f->has_head = true;
        f->version = v;
        LOG_I(f->cfg.log, "fs", "following v%llu", (unsigned long long)v);
        pthread_mutex_unlock(&f->mu);
        notes_send(f, &ns);
        pthread_mutex_lock(&f->mu);
    }
    fs_commit_clear(&c);
}

static void timed_wait(struct fs *f, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&f->pub_cv, &f->mu, &ts);
}

static void *publisher(void *arg)
{
    struct fs *f = arg;
    uint64_t last_poll = fs_now_ms();
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        uint64_t now = fs_now_ms();
        bool pending = f->cfg.writable && f->pub_seq != f->change_seq;
        if (pending) {
            uint64_t due = f->first_dirty_ms + f->cfg.publish_ms;
            if (f->pub_err) { /* back off after a failure */
                /* 1 s, doubling to 16 s; someone waiting in fs_sync asks
                 * at least every second */
                unsigned sh = f->pub_fails > 5 ? 4 : (f->pub_fails ? f->pub_fails - 1 : 0);
                uint64_t retry = f->pub_fail_ms + (f->sync_waiters ? 1000u : 1000u << sh);
                if (retry > due)
                    due = retry;
            }
            if (f->sync_waiters && !f->pub_err)
                due = now;
            if (now >= due) {
                publish_once(f);
                continue;
            }
            timed_wait(f, due - now);
            continue;
        }
        if (now - last_poll >= FS_FOLLOW_POLL_MS) {
            poll_root(f);
            last_poll = fs_now_ms();
            continue;
        }
        timed_wait(f, FS_FOLLOW_POLL_MS - (now - last_poll));
    }
    /* Stopping: one last publish of what is pending. */
    if (f->cfg.writable && f->pub_seq != f->change_seq)
        publish_once(f);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

void publish_kick(struct fs *f)
{
    pthread_cond_broadcast(&f->pub_cv);
}

int publish_start(struct fs *f)
{
    if (pthread_create(&f->publisher, NULL, publisher, f) != 0)
        return -EAGAIN;
    f->publisher_on = true;
    return 0;
}

void publish_stop(struct fs *f)
{
    if (!f->publisher_on)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->pub_cv);
    pthread_cond_broadcast(&f->jobs_cv);
    pthread_cond_broadcast(&f->renew_cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->publisher, NULL);
    f->publisher_on = false;
}

int fs_sync(struct fs *f, uint32_t timeout_ms)
{
    if (!f->cfg.writable)
        return 0;
    pthread_mutex_lock(&f->mu);
    uint64_t target = f->change_seq, deadline = fs_now_ms() + timeout_ms;
    int rc = 0;
    f->sync_waiters++;
    pthread_cond_broadcast(&f->pub_cv);
    while (f->pub_seq < target) {
        uint64_t now = fs_now_ms();
        if (now >= deadline) {
            rc = -EIO;
            break;
        }
        if (f->stopping && !f->publisher_on) {
            rc = -EIO;
            break;
        }
        uint64_t fail = f->pub_fail_ms;
        timed_wait(f, deadline - now < 200 ? deadline - now : 200);
        /* A failure after we asked, with the ring unreachable, is an answer. */
        if (f->pub_err && f->pub_fail_ms != fail && f->pub_seq < target &&
            fs_now_ms() - (deadline - timeout_ms) > 10000) {
            rc = f->pub_err == -ENOSPC ? -ENOSPC : -EIO;
            break;
        }
    }
    f->sync_waiters--;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

uint64_t fs_version(struct fs *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t v = f->version;
    pthread_mutex_unlock(&f->mu);
    return v;
}

