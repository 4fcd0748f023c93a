/* journal.c — the mount's local journal (DATA/fs/journal).
 *
 * Every change to the tree is appended as a record before the operation
 * returns; a flush of a written file also fdatasyncs it, which is what
 * makes close() durable before the root is published. A record is
 *   u32 body length | u32 check (the first 4 bytes of SHA-256 of the body) | body
 * and a body is one of
 *   u8 J_SET    | u16 path length | path | u32 n | a directory stream of one entry (obj.h)
 *   u8 J_DEL    | u16 path length | path
 *   u8 J_RENAME | u16 from length | from | u16 to length | to
 *   u8 J_MARK   | u64 offset | u64 version | commit [32]: every record before
 *                 offset is in the stored root of that version and commit,
 *                 the base of the records after offset
 *   u8 J_BASE   | u64 version | commit [32]: the first record of a journal
 *                 that was empty: the published version its records apply to
 *                 (version 0 and a zero commit: none yet)
 * Paths are relative to the mount's root, '/'-separated. At open the
 * records after the last mark are applied over the tree of their base (the
 * mark's version, or the J_BASE one), not over whatever is current: when
 * the current root is newer (this mount published them but crashed before
 * its mark, or another writer published since), the publish that follows
 * merges three ways against it like any other. Once a root holds every
 * record the file is emptied; when records came in during the publish, the
 * file is rewritten as a BASE of the new root and those records (a MARK
 * only if that fails). A torn or damaged tail is cut off.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/wire.h"
#include "fs/fs_int.h"

enum { J_MARK = 4, J_BASE = 5 };
#define J_HDR 8
#define J_MAX_BODY (16u << 20)

int journal_open(struct fs *f)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/journal", f->dir);
    f->jfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    return f->jfd < 0 ? -errno : 0;
}

void journal_close(struct fs *f)
{
    if (f->jfd >= 0)
        close(f->jfd);
    f->jfd = -1;
}

off_t journal_end(struct fs *f)
{
    struct stat st;
    return fstat(f->jfd, &st) == 0 ? st.st_size : 0;
}

static int append(struct fs *f, const uint8_t *body, size_t len, bool sync)
{
    uint8_t hdr[J_HDR];
    struct id h;
    hash_sha256(&h, body, len);
    struct wire_writer w;
    wire_writer_init(&w, hdr, sizeof(hdr));
    wire_put_u32(&w, (uint32_t)len);
    wire_put_bytes(&w, h.b, 4);
    off_t end = lseek(f->jfd, 0, SEEK_END);
    struct iovec iov[2] = { { hdr, J_HDR }, { (void *)body, len } };
    if (end < 0 || pwritev(f->jfd, iov, 2, end) != (ssize_t)(J_HDR + len))
        return -EIO;
    if (sync && fdatasync(f->jfd) < 0)
        return -EIO;
    return 0;
}

/* The first record of an empty journal names the version its records
 * apply to. */
static int ensure_base(struct fs *f)
{
    if (journal_end(f) > 0)
        return 0;
    uint8_t body[1 + 8 + ID_BYTES];
    struct wire_writer w;
    wire_writer_init(&w, body, sizeof(body));
    wire_put_u8(&w, J_BASE);
    wire_put_u64(&w, f->has_head ? f->version : 0);
    struct id zero;
    memset(&zero, 0, sizeof(zero));
    wire_put_id(&w, f->has_head ? &f->head : &zero);
    return append(f, body, sizeof(body), false);
}

int journal_sync(struct fs *f)
{
    return fdatasync(f->jfd) < 0 ? -EIO : 0;
}

int journal_set(struct fs *f, struct fnode *n, bool sync)
{
    char *path = fnode_path(n);
    if (!path || !*path) {
        /* unlinked or a snapshot: nothing to record; the root's own
         * attributes go with the next root only */
        free(path);
        return 0;
    }
    struct fs_dir d;
    fs_dir_init(&d);
    struct fs_inode a;
    int rc = fs_inode_copy(&a, &n->a);
    if (rc == 0 && a.type == FS_T_DIR) { /* a directory's record carries its attributes only */
        free(a.inline_data);
        a.inline_data = NULL;
        a.ref = FS_REF_EMPTY;
        a.size = 0;
    }
    uint8_t *stream = NULL, *body = NULL;
    size_t slen = 0, plen = strlen(path);
    if (rc == 0)
        rc = ensure_base(f);
    if (rc == 0)
        rc = fs_dir_set(&d, n->name, &a);
    if (rc == 0)
        rc = fs_dir_encode(&d, &stream, &slen);
    if (rc == 0 && !(body = malloc(1 + 2 + plen + 4 + slen)))
        rc = -ENOMEM;
    if (rc == 0) {
        struct wire_writer w;
        wire_writer_init(&w, body, 1 + 2 + plen + 4 + slen);
        wire_put_u8(&w, J_SET);
        wire_put_u16(&w, (uint16_t)plen);
        wire_put_bytes(&w, path, plen);
        wire_put_u32(&w, (uint32_t)slen);
        wire_put_bytes(&w, stream, slen);
        rc = append(f, body, 1 + 2 + plen + 4 + slen, sync);
    }
    fs_inode_clear(&a);
    fs_dir_clear(&d);
    free(stream);
    free(body);
    free(path);
    return rc;
}

int journal_del(struct fs *f, const char *path)
{
    size_t pl = strlen(path);
    uint8_t *body = malloc(3 + pl);
    if (!body)
        return -ENOMEM;
    struct wire_writer w;
    wire_writer_init(&w, body, 3 + pl);
    wire_put_u8(&w, J_DEL);
    wire_put_u16(&w, (uint16_t)pl);
    wire_put_bytes(&w, path, pl);
    int rc = ensure_base(f);
    if (rc == 0)
        rc = append(f, body, 3 + pl, false);
    free(body);
    return rc;
}

int journal_rename(struct fs *f, const char *from, const char *to)
{
    size_t a = strlen(from), b = strlen(to);
    uint8_t *body = malloc(5 + a + b);
    if (!body)
        return -ENOMEM;
    struct wire_writer w;
    wire_writer_init(&w, body, 5 + a + b);
    wire_put_u8(&w, J_RENAME);
    wire_put_u16(&w, (uint16_t)a);
    wire_put_bytes(&w, from, a);
    wire_put_u16(&w, (uint16_t)b);
    wire_put_bytes(&w, to, b);
    int rc = ensure_base(f);
    if (rc == 0)
        rc = append(f, body, 5 + a + b, false);
    free(body);
    return rc;
}

/* Rewrites the journal as a BASE record of the current head followed by
 * the records from offset end on (a new file, synced, renamed over the
 * old one): what a MARK says, without the journal growing. 0 or -errno
 * (the old journal is untouched). */
static int compact(struct fs *f, off_t end)
{
    off_t cur = journal_end(f);
    if (cur - end > (off_t)J_MAX_BODY)
        return -EFBIG;
    size_t tail = (size_t)(cur - end);
    uint8_t *buf = malloc(tail ? tail : 1);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    if (tail && pread(f->jfd, buf, tail, end) != (ssize_t)tail)
        rc = -EIO;
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/journal", f->dir);
    snprintf(tmp, sizeof(tmp), "%s/journal.tmp", f->dir);
    int fd = rc == 0 ? open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (rc == 0) {
        int old = f->jfd;
        f->jfd = fd; /* append() and ensure_base() write to the new file */
        rc = ensure_base(f);
        if (rc == 0 && tail && pwrite(fd, buf, tail, journal_end(f)) != (ssize_t)tail)
            rc = -EIO;
        if (rc == 0 && fdatasync(fd) < 0)
            rc = -EIO;
        if (rc == 0 && rename(tmp, path) < 0)
            rc = -errno;
        if (rc == 0) {
            int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            close(old);
        } else {
            f->jfd = old;
            close(fd);
            unlink(tmp);
        }
    }
    free(buf);
    return rc;
}

void journal_published(struct fs *f, off_t end)
{
    if (journal_end(f) == end) {
        if (ftruncate(f->jfd, 0) == 0)
            fdatasync(f->jfd);
        return;
    }
    if (compact(f, end) == 0)
        return;
    /* could not rewrite it: a mark says the same */
    uint8_t body[1 + 8 + 8 + ID_BYTES];
    struct wire_writer w;
    wire_writer_init(&w, body, sizeof(body));
    wire_put_u8(&w, J_MARK);
    wire_put_u64(&w, (uint64_t)end);
    wire_put_u64(&w, f->version);
    wire_put_id(&w, &f->head);
    append(f, body, sizeof(body), true); /* synced: a replay must not run them again */
}

/* ---- replay ---- */

static char *get_path(struct wire_reader *r)
{
    uint16_t l = wire_get_u16(r);
    const uint8_t *p = wire_get_view(r, l);
    if (!wire_reader_ok(r) || l == 0 || memchr(p, 0, l))
        return NULL;
    char *s = malloc((size_t)l + 1);
    if (s) {
        memcpy(s, p, l);
        s[l] = '\0';
    }
    return s;
}

static void drop_kid(struct fs *f, struct fnode *d, struct fnode *k)
{
    dir_unlink(d, k);
    fnode_touch(f, d);
    fnode_maybe_free(f, k);
}

static int replay_set(struct fs *f, struct wire_reader *r)
{
    char *path = get_path(r);
    uint32_t sl = wire_get_u32(r);
    const uint8_t *s = wire_get_view(r, sl);
    if (!path || !wire_reader_ok(r)) {
        free(path);
        return -EBADMSG;
    }
    struct fs_dir d;
    fs_dir_init(&d);
    if (fs_dir_decode(s, sl, &d) < 0 || d.n != 1) {
        fs_dir_clear(&d);
        free(path);
        return -EBADMSG;
    }
    struct fnode *parent = NULL;
    const char *base = NULL;
    struct fnode *k = path_walk(f, path, &parent, &base);
    struct fs_inode *a = &d.e[0].ino;
    if (parent && base && strcmp(base, d.e[0].name) == 0 && parent->a.type == FS_T_DIR) {
        if (k && k->a.type == FS_T_DIR && a->type == FS_T_DIR) {
            k->a.mode = a->mode;
            k->a.uid = a->uid;
            k->a.gid = a->gid;
            k->a.mtime_ns = a->mtime_ns;
            k->a.ctime_ns = a->ctime_ns;
            fs_inode_clear(&(struct fs_inode){ .nxattr = k->a.nxattr, .xattr = k->a.xattr });
            k->a.xattr = a->xattr;
            k->a.nxattr = a->nxattr;
            a->xattr = NULL;
            a->nxattr = 0;
            fnode_touch(f, k);
        } else {
            if (k)
                drop_kid(f, parent, k);
            struct fnode *nk = fnode_new(f, d.e[0].name, a);
            if (nk) {
                if (nk->a.type == FS_T_DIR)
                    nk->loaded = true; /* a new directory: its entries come in their own records */
                dir_insert(parent, nk);
                fnode_touch(f, nk);
            }
        }
    }
    fs_dir_clear(&d);
    free(path);
    return 0;
}

static int replay_del(struct fs *f, struct wire_reader *r)
{
    char *path = get_path(r);
    if (!path)
        return -EBADMSG;
    struct fnode *parent = NULL;
    struct fnode *k = path_walk(f, path, &parent, NULL);
    if (k && parent)
        drop_kid(f, parent, k);
    free(path);
    return 0;
}

static int replay_rename(struct fs *f, struct wire_reader *r)
{
    char *from = get_path(r), *to = get_path(r);
    int rc = from && to ? 0 : -EBADMSG;
    struct fnode *fp = NULL, *tp = NULL;
    const char *tb = NULL;
    struct fnode *k = rc == 0 ? path_walk(f, from, &fp, NULL) : NULL;
    struct fnode *t = k ? path_walk(f, to, &tp, &tb) : NULL;
    if (k && fp && tp && tb && tp->a.type == FS_T_DIR && strlen(tb) <= FS_NAME_MAX) {
        if (t && t != k)
            drop_kid(f, tp, t);
        char *nn = strdup(tb);
        if (nn) {
            dir_unlink(fp, k);
            fnode_touch(f, fp);
            free(k->name);
            k->name = nn;
            if (dir_insert(tp, k) == 0)
                fnode_touch(f, k);
        }
    }
    free(from);
    free(to);
    return rc;
}

int journal_replay(struct fs *f)
{
    off_t end = journal_end(f);
    if (end <= 0)
        return 0;
    if (end > (off_t)1 << 32)
        return -EFBIG;
    uint8_t *buf = malloc((size_t)end);
    if (!buf)
        return -ENOMEM;
    if (pread(f->jfd, buf, (size_t)end, 0) != end) {
        free(buf);
        return -EIO;
    }
    /* Find the whole records, the last mark and the base. */
    size_t off = 0, start = 0, good = 0;
    bool have_base = false;
    uint64_t base_v = 0;
    struct id base;
    memset(&base, 0, sizeof(base));
    while (off + J_HDR <= (size_t)end) {
        struct wire_reader r;
        wire_reader_init(&r, buf + off, J_HDR);
        uint32_t len = wire_get_u32(&r);
        if (len == 0 || len > J_MAX_BODY || off + J_HDR + len > (size_t)end)
            break;
        struct id h;
        hash_sha256(&h, buf + off + J_HDR, len);
        if (memcmp(h.b, buf + off + 4, 4) != 0)
            break;
        if (buf[off + J_HDR] == J_MARK && len == 1 + 16 + ID_BYTES) {
            wire_reader_init(&r, buf + off + J_HDR + 1, len - 1);
            uint64_t m = wire_get_u64(&r);
            uint64_t v = wire_get_u64(&r);
            struct id c;
            wire_get_id(&r, &c);
            if (m <= off) {
                start = (size_t)m;
                have_base = true;
                base_v = v;
                base = c;
            }
        } else if (buf[off + J_HDR] == J_BASE && len == 1 + 8 + ID_BYTES && off == 0) {
            wire_reader_init(&r, buf + off + J_HDR + 1, len - 1);
            base_v = wire_get_u64(&r);
            wire_get_id(&r, &base);
            have_base = true;
        }
        off += J_HDR + len;
        good = off;
    }
    if (good < (size_t)end) {
        LOG_W(f->cfg.log, "fs", "journal: cutting %zu damaged bytes at offset %zu",
              (size_t)end - good, good);
        if (ftruncate(f->jfd, (off_t)good) < 0 || fdatasync(f->jfd) < 0) {
            free(buf);
            return -EIO;
        }
    }
    /* Records to apply, and a base older than the current root: apply
     * them to the base's tree; the publish merges with the current one. */
    bool any = false;
    for (off = start; off < good;) {
        struct wire_reader r;
        wire_reader_init(&r, buf + off, J_HDR);
        uint32_t len = wire_get_u32(&r);
        uint8_t t = buf[off + J_HDR];
        if (t == J_SET || t == J_DEL || t == J_RENAME)
            any = true;
        off += J_HDR + len;
    }
    if (any && have_base && f->has_head && base_v < f->version &&
        !id_eq(&base, &f->head)) {
        int lr = base_v ? fs_load_tree_at(f, &base, base_v) : fs_load_tree_at(f, NULL, 0);
        if (lr < 0)
            LOG_W(f->cfg.log, "fs",
                  "journal: its base version %llu cannot be read (%s): applying it over "
                  "version %llu",
                  (unsigned long long)base_v, strerror(-lr), (unsigned long long)f->version);
        else
            LOG_I(f->cfg.log, "fs",
                  "journal: applying it over its base version %llu; the next publish merges "
                  "it with the current version",
                  (unsigned long long)base_v);
    }
    unsigned applied = 0, bad = 0;
    for (off = start; off < good;) {
        struct wire_reader r;
        wire_reader_init(&r, buf + off, J_HDR);
        uint32_t len = wire_get_u32(&r);
        wire_reader_init(&r, buf + off + J_HDR, len);
        uint8_t type = wire_get_u8(&r);
        int rc = 0;
        if (type == J_SET)
            rc = replay_set(f, &r);
        else if (type == J_DEL)
            rc = replay_del(f, &r);
        else if (type == J_RENAME)
            rc = replay_rename(f, &r);
        if (rc < 0)
            bad++;
        else if (type == J_SET || type == J_DEL || type == J_RENAME)
            applied++;
        off += J_HDR + len;
    }
    if (applied || bad)
        LOG_I(f->cfg.log, "fs", "journal: replayed %u records (%u unreadable)", applied, bad);
    free(buf);
    return 0;
}
