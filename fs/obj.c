/* obj.c — the file system's objects: inode records, directory streams,
 * commits, the root payload (fs/obj.h; byte by byte in docs/formats.md,
 * "File system objects"). Integers are big-endian, as everywhere else in
 * coopfs (common/wire.h). */
#include "fs/obj.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

/* Fixed part of an inode record: type, ref, mode u16, uid, gid, size,
 * mtime, ctime, then the xattr count u8 after the reference. */
#define INODE_FIXED  36u
#define INODE_MIN    (INODE_FIXED + 1u)
#define XATTR_MIN    4u /* name length u8, 1 name byte, value length u16 */
#define DIRENT_MIN   (1u + 1u + INODE_MIN)
#define DIR_HDR      5u /* format u8, count u32 */
#define COMMIT_FIXED (1u + 1u + 2u + 8u + 8u + SIG_PUB_LEN)
#define MODE_BITS    07777u

/* ---- names and inodes ---- */

bool fs_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > FS_NAME_MAX)
        return false;
    if (memchr(name, '/', len) || memchr(name, '\0', len))
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    return true;
}

static bool xattr_name_valid(const char *name, size_t len)
{
    return len >= 1 && len <= FS_XATTR_NAME_MAX && !memchr(name, '\0', len);
}

/* The rules of an inode's reference, shared by the decoder and the
 * encoder's check. */
static bool ref_valid(uint8_t type, uint8_t ref, uint64_t size)
{
    if (type != FS_T_FILE && type != FS_T_DIR && type != FS_T_SYMLINK)
        return false;
    switch (ref) {
    case FS_REF_EMPTY: return type != FS_T_SYMLINK && size == 0;
    case FS_REF_INLINE:
        if (type == FS_T_SYMLINK)
            return size >= 1 && size <= FS_SYMLINK_MAX;
        return size >= 1 && size <= FS_INLINE_MAX;
    case FS_REF_KEY: return type != FS_T_SYMLINK && size >= 1;
    default: return false;
    }
}

bool fs_inode_valid(const struct fs_inode *ino)
{
    if (!ref_valid(ino->type, ino->ref, ino->size) || (ino->mode & ~MODE_BITS))
        return false;
    if (ino->ref == FS_REF_INLINE && !ino->inline_data)
        return false;
    if (ino->nxattr > FS_XATTR_MAX || (ino->nxattr && !ino->xattr))
        return false;
    for (uint16_t i = 0; i < ino->nxattr; i++) {
        const struct fs_xattr *x = &ino->xattr[i];
        size_t nl = strnlen(x->name, sizeof(x->name));
        if (nl == sizeof(x->name) || !xattr_name_valid(x->name, nl))
            return false;
        if (x->len > FS_XATTR_VALUE_MAX || (x->len && !x->value))
            return false;
        if (i > 0 && strcmp(ino->xattr[i - 1].name, x->name) >= 0)
            return false;
    }
    return true;
}

void fs_inode_clear(struct fs_inode *ino)
{
    free(ino->inline_data);
    for (uint16_t i = 0; i < ino->nxattr && ino->xattr; i++)
        free(ino->xattr[i].value);
    free(ino->xattr);
    memset(ino, 0, sizeof(*ino));
}

int fs_inode_copy(struct fs_inode *dst, const struct fs_inode *src)
{
    struct fs_inode c = *src;

    c.inline_data = NULL;
    c.xattr = NULL;
    c.nxattr = 0;
    if (src->ref == FS_REF_INLINE && src->size > 0 && src->inline_data) {
        c.inline_data = malloc(src->size);
        if (!c.inline_data)
            return -ENOMEM;
        memcpy(c.inline_data, src->inline_data, src->size);
    }
    if (src->nxattr > 0 && src->xattr) {
        c.xattr = calloc(src->nxattr, sizeof(*c.xattr));
        if (!c.xattr)
            goto err_clear;
        for (uint16_t i = 0; i < src->nxattr; i++) {
            c.xattr[i] = src->xattr[i];
            c.xattr[i].value = NULL;
            c.nxattr = i + 1;
            if (src->xattr[i].len == 0)
                continue;
            c.xattr[i].value = malloc(src->xattr[i].len);
            if (!c.xattr[i].value)
                goto err_clear;
            memcpy(c.xattr[i].value, src->xattr[i].value, src->xattr[i].len);
        }
    }
    *dst = c;
    return 0;

err_clear:
    fs_inode_clear(&c);
    return -ENOMEM;
}

bool fs_inode_attr_equal(const struct fs_inode *a, const struct fs_inode *b)
{
    if (a->type != b->type || a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
        a->mtime_ns != b->mtime_ns || a->ctime_ns != b->ctime_ns || a->nxattr != b->nxattr)
        return false;
    for (uint16_t i = 0; i < a->nxattr; i++) {
        const struct fs_xattr *x = &a->xattr[i], *y = &b->xattr[i];
        if (strcmp(x->name, y->name) != 0 || x->len != y->len ||
            (x->len && memcmp(x->value, y->value, x->len) != 0))
            return false;
    }
    return true;
}

bool fs_inode_equal(const struct fs_inode *a, const struct fs_inode *b)
{
    if (!fs_inode_attr_equal(a, b) || a->size != b->size || a->ref != b->ref)
        return false;
    if (a->ref == FS_REF_KEY)
        return id_eq(&a->key, &b->key);
    if (a->ref == FS_REF_INLINE && a->size > 0) {
        if (!a->inline_data || !b->inline_data)
            return a->inline_data == b->inline_data;
        return memcmp(a->inline_data, b->inline_data, a->size) == 0;
    }
    return true;
}

/* ---- directories in memory ---- */

void fs_dir_init(struct fs_dir *d)
{
    memset(d, 0, sizeof(*d));
}

void fs_dir_clear(struct fs_dir *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->e[i].name);
        fs_inode_clear(&d->e[i].ino);
    }
    free(d->e);
    fs_dir_init(d);
}

/* Index of name, or of where it would go (*found false). */
static size_t dir_search(const struct fs_dir *d, const char *name, bool *found)
{
    size_t lo = 0, hi = d->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->e[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

struct fs_dirent *fs_dir_find(const struct fs_dir *d, const char *name)
{
    bool found;
    size_t i = dir_search(d, name, &found);
    return found ? &d->e[i] : NULL;
}

int fs_dir_set(struct fs_dir *d, const char *name, const struct fs_inode *ino)
{
    struct fs_inode copy;
    bool found;

    if (!fs_name_valid(name, strnlen(name, FS_NAME_MAX + 1)))
        return -EINVAL;
    size_t i = dir_search(d, name, &found);
    if (fs_inode_copy(&copy, ino) != 0)
        return -ENOMEM;
    if (found) {
        fs_inode_clear(&d->e[i].ino);
        d->e[i].ino = copy;
        return 0;
    }
    char *nm = strdup(name);
    if (!nm)
        goto err_copy;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 8;
        struct fs_dirent *e = realloc(d->e, cap * sizeof(*e));
        if (!e)
            goto err_name;
        d->e = e;
        d->cap = cap;
    }
    memmove(&d->e[i + 1], &d->e[i], (d->n - i) * sizeof(*d->e));
    d->e[i].name = nm;
    d->e[i].ino = copy;
    d->n++;
    return 0;

err_name:
    free(nm);
err_copy:
    fs_inode_clear(&copy);
    return -ENOMEM;
}

int fs_dir_remove(struct fs_dir *d, const char *name)
{
    bool found;
    size_t i = dir_search(d, name, &found);

    if (!found)
        return -ENOENT;
    free(d->e[i].name);
    fs_inode_clear(&d->e[i].ino);
    memmove(&d->e[i], &d->e[i + 1], (d->n - i - 1) * sizeof(*d->e));
    d->n--;
    return 0;
}

/* ---- inode records ---- */

static size_t inode_size(const struct fs_inode *ino)
{
    size_t n = INODE_MIN;

    if (ino->ref == FS_REF_KEY)
        n += ID_BYTES;
    else if (ino->ref == FS_REF_INLINE)
        n += ino->size;
    for (uint16_t i = 0; i < ino->nxattr; i++)
        n += 1 + strlen(ino->xattr[i].name) + 2 + ino->xattr[i].len;
    return n;
}

static void inode_put(struct wire_writer *w, const struct fs_inode *ino)
{
    wire_put_u8(w, ino->type);
    wire_put_u8(w, ino->ref);
    wire_put_u16(w, (uint16_t)ino->mode);
    wire_put_u32(w, ino->uid);
    wire_put_u32(w, ino->gid);
    wire_put_u64(w, ino->size);
    wire_put_u64(w, (uint64_t)ino->mtime_ns);
    wire_put_u64(w, (uint64_t)ino->ctime_ns);
    if (ino->ref == FS_REF_KEY)
        wire_put_id(w, &ino->key);
    else if (ino->ref == FS_REF_INLINE)
        wire_put_bytes(w, ino->inline_data, ino->size);
    wire_put_u8(w, (uint8_t)ino->nxattr);
    for (uint16_t i = 0; i < ino->nxattr; i++) {
        const struct fs_xattr *x = &ino->xattr[i];
        size_t nl = strlen(x->name);
        wire_put_u8(w, (uint8_t)nl);
        wire_put_bytes(w, x->name, nl);
        wire_put_u16(w, x->len);
        if (x->len)
            wire_put_bytes(w, x->value, x->len);
    }
}

static int xattrs_get(struct wire_reader *r, struct fs_inode *ino)
{
    uint8_t n = wire_get_u8(r);

    if (!wire_reader_ok(r) || n > FS_XATTR_MAX || (size_t)n * XATTR_MIN > r->left)
        return -EBADMSG;
    if (n == 0)
        return 0;
    ino->xattr = calloc(n, sizeof(*ino->xattr));
    if (!ino->xattr)
        return -ENOMEM;
    for (uint8_t i = 0; i < n; i++) {
        struct fs_xattr *x = &ino->xattr[i];
        uint8_t nl = wire_get_u8(r);
        const uint8_t *nm = wire_get_view(r, nl);
        if (!nm || !xattr_name_valid((const char *)nm, nl))
            return -EBADMSG;
        memcpy(x->name, nm, nl);
        x->name[nl] = '\0';
        if (i > 0 && strcmp(ino->xattr[i - 1].name, x->name) >= 0)
            return -EBADMSG;
        x->len = wire_get_u16(r);
        if (x->len > FS_XATTR_VALUE_MAX)
            return -EBADMSG;
        const uint8_t *v = wire_get_view(r, x->len);
        if (!v)
            return -EBADMSG;
        /* counted before the value is allocated, so a clear frees it */
        ino->nxattr = i + 1;
        if (x->len) {
            x->value = malloc(x->len);
            if (!x->value)
                return -ENOMEM;
            memcpy(x->value, v, x->len);
        }
    }
    return 0;
}

/* Decodes one inode record into *out (zeroed first). On an error *out may
 * own allocations: the caller clears it. */
static int inode_get(struct wire_reader *r, struct fs_inode *out)
{
    memset(out, 0, sizeof(*out));
    out->type = wire_get_u8(r);
    out->ref = wire_get_u8(r);
    out->mode = wire_get_u16(r);
    out->uid = wire_get_u32(r);
    out->gid = wire_get_u32(r);
    out->size = wire_get_u64(r);
    out->mtime_ns = (int64_t)wire_get_u64(r);
    out->ctime_ns = (int64_t)wire_get_u64(r);
    if (!wire_reader_ok(r) || !ref_valid(out->type, out->ref, out->size) ||
        (out->mode & ~MODE_BITS))
        return -EBADMSG;
    if (out->ref == FS_REF_KEY) {
        wire_get_id(r, &out->key);
    } else if (out->ref == FS_REF_INLINE) {
        const uint8_t *v = wire_get_view(r, (size_t)out->size);
        if (!v)
            return -EBADMSG;
        out->inline_data = malloc((size_t)out->size);
        if (!out->inline_data)
            return -ENOMEM;
        memcpy(out->inline_data, v, (size_t)out->size);
    }
    if (!wire_reader_ok(r))
        return -EBADMSG;
    return xattrs_get(r, out);
}

/* ---- directory streams ---- */

int fs_dir_encode(const struct fs_dir *d, uint8_t **out, size_t *len)
{
    size_t n = DIR_HDR;

    if (d->n > UINT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < d->n; i++) {
        size_t nl = strnlen(d->e[i].name, FS_NAME_MAX + 1);
        if (!fs_name_valid(d->e[i].name, nl) || !fs_inode_valid(&d->e[i].ino) ||
            (i > 0 && strcmp(d->e[i - 1].name, d->e[i].name) >= 0))
            return -EINVAL;
        n += 1 + nl + inode_size(&d->e[i].ino);
    }
    uint8_t *buf = malloc(n);
    if (!buf)
        return -ENOMEM;
    struct wire_writer w;
    wire_writer_init(&w, buf, n);
    wire_put_u8(&w, FS_FORMAT);
    wire_put_u32(&w, (uint32_t)d->n);
    for (size_t i = 0; i < d->n; i++) {
        size_t nl = strlen(d->e[i].name);
        wire_put_u8(&w, (uint8_t)nl);
        wire_put_bytes(&w, d->e[i].name, nl);
        inode_put(&w, &d->e[i].ino);
    }
    if (!wire_writer_ok(&w) || w.len != n) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

int fs_dir_decode(const uint8_t *bytes, size_t len, struct fs_dir *d)
{
    struct wire_reader r;
    struct fs_dir t;
    int rc = -EBADMSG;

    fs_dir_init(&t);
    wire_reader_init(&r, bytes, len);
    uint8_t fmt = wire_get_u8(&r);
    uint32_t n = wire_get_u32(&r);
    if (!wire_reader_ok(&r) || fmt != FS_FORMAT || n > r.left / DIRENT_MIN)
        goto err;
    if (n > 0) {
        t.e = calloc(n, sizeof(*t.e));
        if (!t.e) {
            rc = -ENOMEM;
            goto err;
        }
        t.cap = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct fs_dirent *e = &t.e[i];
        uint8_t nl = wire_get_u8(&r);
        const uint8_t *nm = wire_get_view(&r, nl);
        if (!nm || !fs_name_valid((const char *)nm, nl)) {
            rc = -EBADMSG;
            goto err;
        }
        e->name = malloc((size_t)nl + 1);
        if (!e->name) {
            rc = -ENOMEM;
            goto err;
        }
        memcpy(e->name, nm, nl);
        e->name[nl] = '\0';
        t.n = i + 1; /* e->ino is zero: clearing it is safe */
        if (i > 0 && strcmp(t.e[i - 1].name, e->name) >= 0) {
            rc = -EBADMSG;
            goto err;
        }
        rc = inode_get(&r, &e->ino);
        if (rc != 0)
            goto err;
    }
    if (!wire_reader_done(&r)) {
        rc = -EBADMSG;
        goto err;
    }
    *d = t;
    return 0;

err:
    fs_dir_clear(&t);
    fs_dir_init(d);
    return rc;
}

/* ---- commits ---- */

int fs_commit_encode(const struct fs_commit *c, uint8_t **out, size_t *len)
{
    size_t ml = strnlen(c->message, sizeof(c->message));

    if (c->root.type != FS_T_DIR || c->nparents > FS_COMMIT_PARENTS || ml > FS_MESSAGE_MAX ||
        !fs_inode_valid(&c->root))
        return -EINVAL;
    size_t n = COMMIT_FIXED + (size_t)c->nparents * ID_BYTES + ml + inode_size(&c->root);
    uint8_t *buf = malloc(n);
    if (!buf)
        return -ENOMEM;
    struct wire_writer w;
    wire_writer_init(&w, buf, n);
    wire_put_u8(&w, FS_FORMAT);
    wire_put_u8(&w, c->nparents);
    wire_put_u16(&w, (uint16_t)ml);
    wire_put_u64(&w, c->version);
    wire_put_u64(&w, (uint64_t)c->time_ns);
    wire_put_bytes(&w, c->author.b, SIG_PUB_LEN);
    for (uint8_t i = 0; i < c->nparents; i++)
        wire_put_id(&w, &c->parents[i]);
    wire_put_bytes(&w, c->message, ml);
    inode_put(&w, &c->root);
    if (!wire_writer_ok(&w) || w.len != n) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

int fs_commit_decode(const uint8_t *bytes, size_t len, struct fs_commit *c)
{
    struct wire_reader r;
    struct fs_commit t;
    int rc;

    memset(&t, 0, sizeof(t));
    wire_reader_init(&r, bytes, len);
    uint8_t fmt = wire_get_u8(&r);
    t.nparents = wire_get_u8(&r);
    uint16_t ml = wire_get_u16(&r);
    t.version = wire_get_u64(&r);
    t.time_ns = (int64_t)wire_get_u64(&r);
    wire_get_bytes(&r, t.author.b, SIG_PUB_LEN);
    if (!wire_reader_ok(&r) || fmt != FS_FORMAT || t.nparents > FS_COMMIT_PARENTS ||
        ml > FS_MESSAGE_MAX)
        return -EBADMSG;
    for (uint8_t i = 0; i < t.nparents; i++)
        wire_get_id(&r, &t.parents[i]);
    const uint8_t *m = wire_get_view(&r, ml);
    if (!m || memchr(m, '\0', ml))
        return -EBADMSG;
    memcpy(t.message, m, ml);
    t.message[ml] = '\0';
    rc = inode_get(&r, &t.root);
    if (rc == 0 && (t.root.type != FS_T_DIR || !wire_reader_done(&r)))
        rc = -EBADMSG;
    if (rc != 0) {
        fs_inode_clear(&t.root);
        return rc;
    }
    *c = t;
    return 0;
}

void fs_commit_clear(struct fs_commit *c)
{
    fs_inode_clear(&c->root);
}

/* ---- the root payload, holes ---- */

void fs_rootref_encode(const struct id *commit, uint8_t out[FS_ROOTREF_LEN])
{
    out[0] = FS_FORMAT;
    memcpy(out + 1, commit->b, ID_BYTES);
}

int fs_rootref_decode(const uint8_t *bytes, size_t len, struct id *commit)
{
    if (len != FS_ROOTREF_LEN || bytes[0] != FS_FORMAT)
        return -EBADMSG;
    memcpy(commit->b, bytes + 1, ID_BYTES);
    return 0;
}

bool fs_key_is_hole(const struct id *k)
{
    return id_is_zero(k);
}
