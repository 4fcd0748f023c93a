/* tree.c — the in-memory inodes: the inode table, directories loaded on
 * demand from their streams, paths, attributes. Everything here runs with
 * f->mu held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_int.h"

static void htab_add(struct fs *f, struct fnode *n)
{
    if (f->hcount * 2 >= f->hcap) {
        size_t ncap = f->hcap ? f->hcap * 2 : 1024;
        struct fnode **nt = calloc(ncap, sizeof(*nt));
        if (nt) {
            for (size_t i = 0; i < f->hcap; i++)
                for (struct fnode *e = f->htab[i], *nx; e; e = nx) {
                    nx = e->hnext;
                    e->hnext = nt[e->ino % ncap];
                    nt[e->ino % ncap] = e;
                }
            free(f->htab);
            f->htab = nt;
            f->hcap = ncap;
        }
    }
    n->hnext = f->htab[n->ino % f->hcap];
    f->htab[n->ino % f->hcap] = n;
    f->hcount++;
}

struct fnode *fnode_new(struct fs *f, const char *name, const struct fs_inode *a)
{
    struct fnode *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->name = strdup(name ? name : "");
    if (!n->name || (a && fs_inode_copy(&n->a, a) < 0)) {
        free(n->name);
        free(n);
        return NULL;
    }
    n->spool = -1;
    n->size = n->a.size;
    n->ino = f->next_ino++;
    n->last_read_chunk = UINT32_MAX;
    htab_add(f, n);
    return n;
}

struct fnode *fnode_get(struct fs *f, uint64_t ino)
{
    if (!f->hcap)
        return NULL;
    for (struct fnode *e = f->htab[ino % f->hcap]; e; e = e->hnext)
        if (e->ino == ino)
            return e;
    return NULL;
}

void fnode_free(struct fs *f, struct fnode *n)
{
    struct fnode **pp = &f->htab[n->ino % f->hcap];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = n->hnext;
    f->hcount--;
    for (size_t i = 0; i < n->nkids; i++) {
        n->kids[i]->parent = NULL;
        fnode_maybe_free(f, n->kids[i]);
    }
    fnode_release(f, n);
}

void fnode_release(struct fs *f, struct fnode *n)
{
    free(n->kids);
    file_drop_spool(f, n);
    free(n->ch);
    fs_inode_clear(&n->a);
    free(n->name);
    free(n);
}

void fnode_maybe_free(struct fs *f, struct fnode *n)
{
    if (n->parent || n == f->root || n == f->snaps || n->nlookup || n->nopen || n->busy)
        return;
    if (n->snap_version && n->nlookup)
        return;
    fnode_free(f, n);
}

struct fnode *dir_find(struct fnode *d, const char *name, size_t *pos)
{
    size_t lo = 0, hi = d->nkids;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(d->kids[mid]->name, name);
        if (c == 0) {
            if (pos)
                *pos = mid;
            return d->kids[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos)
        *pos = lo;
    return NULL;
}

int dir_insert(struct fnode *d, struct fnode *k)
{
    size_t pos;
    if (dir_find(d, k->name, &pos))
        return -EEXIST;
    if (d->nkids == d->capkids) {
        size_t nc = d->capkids ? d->capkids * 2 : 8;
        struct fnode **nk = realloc(d->kids, nc * sizeof(*nk));
        if (!nk)
            return -ENOMEM;
        d->kids = nk;
        d->capkids = nc;
    }
    memmove(&d->kids[pos + 1], &d->kids[pos], (d->nkids - pos) * sizeof(*d->kids));
    d->kids[pos] = k;
    d->nkids++;
    k->parent = d;
    k->ro = d->ro;
    return 0;
}

void dir_unlink(struct fnode *d, struct fnode *k)
{
    size_t pos;
    if (dir_find(d, k->name, &pos) == k) {
        memmove(&d->kids[pos], &d->kids[pos + 1], (d->nkids - pos - 1) * sizeof(*d->kids));
        d->nkids--;
    }
    k->parent = NULL;
}

int dir_load(struct fs *f, struct fnode *d)
{
    while (!d->loaded) {
        struct fs_inode a;
        if (fs_inode_copy(&a, &d->a) < 0)
            return -ENOMEM;
        uint8_t *bytes = NULL;
        size_t len = 0;
        int rc = 0;
        pthread_mutex_unlock(&f->mu);
        if (a.ref == FS_REF_KEY)
            rc = fs_get_stream(f, &a.key, a.size, &bytes, &len);
        struct fs_dir dir;
        fs_dir_init(&dir);
        if (rc == 0 && a.ref == FS_REF_INLINE)
            rc = fs_dir_decode(a.inline_data, a.size, &dir) < 0 ? -EIO : 0;
        else if (rc == 0 && a.ref == FS_REF_KEY)
            rc = fs_dir_decode(bytes, len, &dir) < 0 ? -EIO : 0;
        free(bytes);
        pthread_mutex_lock(&f->mu);
        bool same = d->a.ref == a.ref && (a.ref != FS_REF_KEY || id_eq(&a.key, &d->a.key));
        fs_inode_clear(&a);
        if (rc < 0) {
            fs_dir_clear(&dir);
            return rc;
        }
        if (d->loaded || !same) { /* someone else loaded it, or it changed meanwhile */
            fs_dir_clear(&dir);
            continue;
        }
        d->kids = calloc(dir.n ? dir.n : 1, sizeof(*d->kids));
        if (!d->kids) {
            fs_dir_clear(&dir);
            return -ENOMEM;
        }
        d->capkids = dir.n ? dir.n : 1;
        for (size_t i = 0; i < dir.n; i++) {
            struct fnode *k = fnode_new(f, dir.e[i].name, &dir.e[i].ino);
            if (!k) {
                /* not loaded: a snapshot must never see part of it */
                while (d->nkids) {
                    struct fnode *x = d->kids[--d->nkids];
                    x->parent = NULL;
                    fnode_maybe_free(f, x);
                }
                fs_dir_clear(&dir);
                return -ENOMEM;
            }
            k->parent = d;
            k->ro = d->ro;
            k->snap_version = 0;
            d->kids[d->nkids++] = k; /* the stream is sorted */
        }
        fs_dir_clear(&dir);
        d->loaded = true;
        return rc;
    }
    return 0;
}

void fnode_changed(struct fs *f, struct fnode *n)
{
    n->a.ctime_ns = fs_now_ns();
    fnode_touch(f, n);
    journal_set(f, n, false);
}

void fnode_touch(struct fs *f, struct fnode *n)
{
    n->dirty = true;
    for (struct fnode *p = n->parent; p && !p->sub_dirty; p = p->parent)
        p->sub_dirty = true;
    if (n->parent)
        n->parent->sub_dirty = true;
    if (f->pub_seq == f->change_seq)
        f->first_dirty_ms = fs_now_ms();
    f->change_seq++;
    publish_kick(f);
}

char *fnode_path(struct fnode *n)
{
    size_t len = 0;
    struct fnode *p = n;
    for (; p->parent; p = p->parent)
        len += strlen(p->name) + 1;
    if (p->ino != FS_ROOT_INO || p->ro || p->snap_version)
        return NULL; /* detached (unlinked, or under a removed directory), or a snapshot */
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    s[len] = '\0';
    for (p = n; p->parent; p = p->parent) {
        size_t l = strlen(p->name);
        len -= l;
        memcpy(s + len, p->name, l);
        s[--len] = '/';
    }
    return s;
}

void fnode_stat(const struct fs *f, const struct fnode *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    uint32_t mode = n->a.mode & 07777;
    if (n->ro)
        mode &= ~0222u;
    switch (n->a.type) {
    case FS_T_DIR:
        st->st_mode = S_IFDIR | mode;
        st->st_nlink = 2;
        st->st_size = (off_t)(n->loaded ? n->nkids * 64 : n->a.size);
        break;
    case FS_T_SYMLINK:
        st->st_mode = S_IFLNK | mode;
        st->st_nlink = 1;
        st->st_size = (off_t)n->a.size;
        break;
    default:
        st->st_mode = S_IFREG | mode;
        st->st_nlink = n->parent || n == f->root ? 1 : 0;
        st->st_size = (off_t)n->size;
        break;
    }
    st->st_uid = n->a.uid;
    st->st_gid = n->a.gid;
    st->st_blksize = 65536;
    /* Allocated space: chunks that are not holes. */
    uint64_t blocks = 0;
    if (n->a.type == FS_T_FILE && n->chunks_loaded) {
        for (size_t i = 0; i < n->nch; i++)
            if (n->ch[i].st != CH_KEY || !fs_key_is_hole(&n->ch[i].key))
                blocks += FS_CHUNK;
        if (blocks > n->size)
            blocks = n->size;
    } else {
        blocks = n->a.type == FS_T_FILE ? n->size : n->a.size;
    }
    st->st_blocks = (blkcnt_t)((blocks + 511) / 512);
    st->st_mtim.tv_sec = n->a.mtime_ns / 1000000000;
    st->st_mtim.tv_nsec = n->a.mtime_ns % 1000000000;
    st->st_ctim.tv_sec = n->a.ctime_ns / 1000000000;
    st->st_ctim.tv_nsec = n->a.ctime_ns % 1000000000;
    st->st_atim = st->st_mtim;
}

struct fnode *path_walk(struct fs *f, const char *path, struct fnode **parent, const char **base)
{
    struct fnode *d = f->root;
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char name[FS_NAME_MAX + 1];
        if (l == 0 || l > FS_NAME_MAX)
            return NULL;
        memcpy(name, p, l);
        name[l] = '\0';
        if (d->a.type != FS_T_DIR || dir_load(f, d) < 0)
            return NULL;
        struct fnode *k = dir_find(d, name, NULL);
        if (!e || !e[1]) {
            if (parent)
                *parent = d;
            if (base)
                *base = p;
            return k;
        }
        if (!k)
            return NULL;
        d = k;
        p = e + 1;
    }
}
