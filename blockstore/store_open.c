/* store_open.c — what the store does at open: make the layout, empty tmp/,
 * walk blocks/, roots/ and kv/ checking every file, move the bad ones to
 * quarantine/, and count the bytes of the good ones.
 *
 * Every entry of those directories is either a good file, counted in used
 * and reported by store_scan, or moved to quarantine/: a file that fails its
 * check, cannot be read, is larger than its kind allows, has a name that is
 * not its key in lower-case hex (in the right fan-out directory), or is not
 * a regular file. So used is exactly the sum of the sizes of the files under
 * blocks/, roots/ and kv/ from open on.
 */
#include "blockstore/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const type_names[] = {"?", "content", "root", "kv"};

int store_quarantine_move(struct store *st, int dirfd, const char *name, const char *what)
{
    const char *base = strrchr(name, '/');
    char qname[256];

    base = base ? base + 1 : name;
    for (unsigned attempt = 0; attempt < 1000; attempt++) {
        if (attempt == 0)
            snprintf(qname, sizeof(qname), "%s-%.200s", what, base);
        else
            snprintf(qname, sizeof(qname), "%s-%.200s.%" PRIu64, what, base, st->quar_seq++);
        if (renameat2(dirfd, name, st->quar_fd, qname, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno == EEXIST)
            continue;
        if (errno != EINVAL && errno != ENOSYS)
            return -errno;
        /* A file system without RENAME_NOREPLACE: check, then rename (only
         * this process renames into quarantine/). */
        if (faccessat(st->quar_fd, qname, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        if (renameat(dirfd, name, st->quar_fd, qname) == 0)
            return 0;
        return -errno;
    }
    return -EEXIST;
}

/* mkdir -p path, mode 0700, fsyncing the parent of every directory made so
 * that the layout survives a crash. Returns 0 or -errno. */
static int mkdir_p(struct store *st, const char *path)
{
    char *p = strdup(path);
    size_t len;
    int err = 0;

    if (!p)
        return -ENOMEM;
    len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (size_t i = 1; i <= len && !err; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) == 0) {
            char *slash = strrchr(p, '/');
            const char *parent = !slash ? "." : slash == p ? "/" : NULL;
            int pfd;
            if (slash && slash != p)
                *slash = '\0';
            pfd = open(parent ? parent : p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (slash && slash != p)
                *slash = '/';
            if (pfd < 0) {
                err = -errno;
            } else {
                err = store_fsync(st, pfd);
                close(pfd);
            }
        } else if (errno != EEXIST) {
            err = -errno;
        }
        p[i] = saved;
    }
    free(p);
    return err;
}

/* Makes dirfd/name a directory (quarantining a non-directory in its way)
 * and opens it. Sets *made when it had to be created. Returns the fd or
 * -errno. */
static int subdir_open(struct store *st, int dirfd, const char *name, bool *made)
{
    struct stat sb;
    int fd;

    if (mkdirat(dirfd, name, 0700) == 0) {
        *made = true;
    } else if (errno != EEXIST) {
        return -errno;
    } else if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(sb.st_mode)) {
        int err = st->quar_fd >= 0 ? store_quarantine_move(st, dirfd, name, "layout") : -ENOTDIR;
        if (err)
            return err;
        LOG_W(&st->lg, STORE_MOD, "%s: %s was not a directory; moved to quarantine/", st->dir,
              name);
        if (mkdirat(dirfd, name, 0700) != 0)
            return -errno;
        *made = true;
    }
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    return fd >= 0 ? fd : -errno;
}

/* Removes every entry of tmp/ (what a crash left half written). */
static int tmp_empty(struct store *st)
{
    int dfd = dup(st->tmp_fd);
    DIR *d;
    struct dirent *de;
    int err = 0;

    if (dfd < 0)
        return -errno;
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(st->tmp_fd, de->d_name, 0) == 0) {
            st->open_stats.tmp_removed++;
            continue;
        }
        if (errno == EISDIR || errno == EPERM) {
            /* Not something the store makes: keep it for the operator. */
            err = store_quarantine_move(st, st->tmp_fd, de->d_name, "tmp");
            if (err)
                break;
            LOG_W(&st->lg, STORE_MOD, "%s: tmp/%s is a directory; moved to quarantine/", st->dir,
                  de->d_name);
            continue;
        }
        err = -errno;
        break;
    }
    closedir(d);
    return err;
}

/* Starts the quarantine suffixes past what is there, so that a name moved
 * aside many times over the store's life does not search long for a free
 * one. */
static int quarantine_count(struct store *st)
{
    int dfd = dup(st->quar_fd);
    DIR *d;

    if (dfd < 0)
        return -errno;
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    while (readdir(d) != NULL)
        st->quar_seq++;
    closedir(d);
    return 0;
}

int store_open_layout(struct store *st)
{
    static const char *const subs[] = {"quarantine", "tmp", "blocks", "roots", "kv"};
    int *fds[] = {&st->quar_fd, &st->tmp_fd, &st->blocks_fd, &st->roots_fd, &st->kv_fd};
    bool made = false;
    int err;

    err = mkdir_p(st, st->dir);
    if (err)
        return err;
    st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dir_fd < 0)
        return -errno;
    /* quarantine/ first: the others may need it. */
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        *fds[i] = subdir_open(st, st->dir_fd, subs[i], &made);
        if (*fds[i] < 0)
            return *fds[i];
    }
    if (made && (err = store_fsync(st, st->dir_fd)) != 0)
        return err;
    if ((err = quarantine_count(st)) != 0)
        return err;
    made = false;
    for (unsigned i = 0; i < 256; i++) {
        char sub[3];
        int fd;
        snprintf(sub, sizeof(sub), "%02x", i);
        fd = subdir_open(st, st->blocks_fd, sub, &made);
        if (fd < 0)
            return fd;
        close(fd);
    }
    if (made && (err = store_fsync(st, st->blocks_fd)) != 0)
        return err;
    return tmp_empty(st);
}

/* ---- the walk ---- */

struct walk {
    struct store *st;
    uint8_t *buf;     /* room for the largest file of any kind */
    char **bad;       /* names to quarantine after the directory's readdir */
    const char **why; /* their reasons */
    size_t nbad, capbad;
    size_t capfound;
    bool quarantined; /* something moved: fsync quarantine/ at the end */
};

static int walk_bad(struct walk *w, const char *name, const char *why)
{
    if (w->nbad == w->capbad) {
        size_t ncap = w->capbad ? w->capbad * 2 : 16;
        char **nb = realloc(w->bad, ncap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        w->bad = nb;
        const char **nw = realloc(w->why, ncap * sizeof(*nw));
        if (!nw)
            return -ENOMEM;
        w->why = nw;
        w->capbad = ncap;
    }
    w->bad[w->nbad] = strdup(name);
    if (!w->bad[w->nbad])
        return -ENOMEM;
    w->why[w->nbad++] = why;
    return 0;
}

static int walk_found(struct walk *w, enum store_type type, const struct id *key, uint32_t size)
{
    struct store *st = w->st;
    if (st->nfound == w->capfound) {
        size_t ncap = w->capfound ? w->capfound * 2 : 256;
        struct store_found *nf = realloc(st->found, ncap * sizeof(*nf));
        if (!nf)
            return -ENOMEM;
        st->found = nf;
        w->capfound = ncap;
    }
    st->found[st->nfound].key = *key;
    st->found[st->nfound].size = size;
    st->found[st->nfound].type = (uint8_t)type;
    st->nfound++;
    atomic_fetch_add(&st->used, (uint64_t)size);
    return 0;
}

/* Checks one entry. Returns NULL if good (and records it), else the reason.
 * *err is set for a failure of the walk itself. */
static const char *walk_file(struct walk *w, int dirfd, const char *name, enum store_type type,
                             const char *fanout, int *err)
{
    struct id key;
    char hex[ID_HEX_LEN + 1];
    struct stat sb;
    const char *why;
    int fd, r;

    if (strlen(name) != ID_HEX_LEN || id_from_hex(name, &key) != 0)
        return "its name is not a key";
    id_to_hex(&key, hex);
    if (strcmp(hex, name) != 0)
        return "its name is not lower-case hex";
    if (fanout && memcmp(fanout, name, 2) != 0)
        return "it is in the wrong fan-out directory";
    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOMEM || errno == EMFILE || errno == ENFILE) {
            *err = -errno; /* not the file's fault: fail the open */
            return NULL;
        }
        return "it cannot be opened";
    }
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return "it cannot be read";
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return "it is not a regular file";
    }
    if ((uint64_t)sb.st_size > store_max_len(type)) {
        close(fd);
        return "it is larger than its kind allows";
    }
    r = store_read_fd(fd, w->buf, (size_t)sb.st_size);
    close(fd);
    if (r)
        return r == -EIO ? "it cannot be read" : "it is shorter than its size";
    why = store_check(type, &key, w->buf, (size_t)sb.st_size);
    if (why)
        return why;
    *err = walk_found(w, type, &key, (uint32_t)sb.st_size);
    return NULL;
}

/* Moves the entries collected as bad to quarantine/, then fsyncs dirfd. */
static int walk_flush_bad(struct walk *w, int dirfd, const char *where, const char *what)
{
    struct store *st = w->st;
    int err = 0;

    for (size_t i = 0; i < w->nbad; i++) {
        if (!err) {
            err = store_quarantine_move(st, dirfd, w->bad[i], what);
            if (err)
                LOG_E(&st->lg, STORE_MOD, "%s: cannot move %s/%s to quarantine/: %s", st->dir,
                      where, w->bad[i], strerror(-err));
            else
                LOG_W(&st->lg, STORE_MOD, "%s: %s/%s moved to quarantine/: %s", st->dir, where,
                      w->bad[i], w->why[i]);
        }
        free(w->bad[i]);
    }
    if (!err && w->nbad > 0) {
        st->open_stats.quarantined += w->nbad;
        w->quarantined = true;
        err = store_fsync(st, dirfd);
    }
    w->nbad = 0;
    return err;
}

/* Walks one directory of files of type (fanout: the two hex digits of a
 * blocks/ subdirectory, else NULL). */
static int walk_dir(struct walk *w, int dirfd, enum store_type type, const char *fanout,
                    const char *where)
{
    int dfd = dup(dirfd);
    DIR *d;
    struct dirent *de;
    int err = 0;

    if (dfd < 0)
        return -errno;
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    rewinddir(d);
    while (!err && (de = readdir(d)) != NULL) {
        const char *why;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        w->st->open_stats.checked++;
        why = walk_file(w, dirfd, de->d_name, type, fanout, &err);
        if (why && !err)
            err = walk_bad(w, de->d_name, why);
    }
    closedir(d);
    /* Moved after the readdir: renaming entries out of a directory being
     * read may make readdir skip others. */
    if (!err)
        return walk_flush_bad(w, dirfd, where, type_names[type]);
    for (size_t i = 0; i < w->nbad; i++)
        free(w->bad[i]);
    w->nbad = 0;
    return err;
}

/* Entries of blocks/ other than the 256 fan-out directories. */
static int walk_blocks_top(struct walk *w)
{
    struct store *st = w->st;
    int dfd = dup(st->blocks_fd);
    DIR *d;
    struct dirent *de;
    int err = 0;

    if (dfd < 0)
        return -errno;
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -errno;
    }
    rewinddir(d);
    while (!err && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        bool fan =
            strlen(n) == 2 && strchr("0123456789abcdef", n[0]) && strchr("0123456789abcdef", n[1]);
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || fan)
            continue;
        st->open_stats.checked++;
        err = walk_bad(w, n, "it is not a fan-out directory");
    }
    closedir(d);
    if (!err)
        return walk_flush_bad(w, st->blocks_fd, "blocks", "blocks");
    for (size_t i = 0; i < w->nbad; i++)
        free(w->bad[i]);
    w->nbad = 0;
    return err;
}

int store_open_walk(struct store *st)
{
    struct walk w;
    int err;

    memset(&w, 0, sizeof(w));
    w.st = st;
    w.buf = malloc(BLOCK_MAX_STORED > KV_MAX_LEN ? BLOCK_MAX_STORED : KV_MAX_LEN);
    if (!w.buf)
        return -ENOMEM;
    err = walk_dir(&w, st->roots_fd, STORE_ROOT, NULL, "roots");
    if (!err)
        err = walk_dir(&w, st->kv_fd, STORE_KV, NULL, "kv");
    if (!err)
        err = walk_blocks_top(&w);
    for (unsigned i = 0; i < 256 && !err; i++) {
        char sub[3], where[10];
        int fd;
        snprintf(sub, sizeof(sub), "%02x", i);
        snprintf(where, sizeof(where), "blocks/%s", sub);
        fd = openat(st->blocks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            err = -errno;
            break;
        }
        err = walk_dir(&w, fd, STORE_CONTENT, sub, where);
        close(fd);
    }
    if (!err && w.quarantined)
        err = store_fsync(st, st->quar_fd);
    free(w.buf);
    free(w.bad);
    free(w.why);
    return err;
}
