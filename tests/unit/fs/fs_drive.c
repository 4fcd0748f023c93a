/* fs_drive.c — mounts over mem_bclient and the FUSE operations of
 * fs/fuse_ops.c without FUSE (fs_drive.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs_drive.h"





static void on_alarm(int sig)
{
    (void)sig;
    static const char m[] = "test_fs: guard: a wait did not end, giving up\n";
    ssize_t w = write(2, m, sizeof(m) - 1);
    (void)w;
    _exit(1);
}

int world_setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    snprintf(w->dir, sizeof(w->dir), "/tmp/coopfs-test-fs-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    assert_int_equal(mem_store_new(&w->st), 0);
    assert_int_equal(sig_keygen(&w->key), 0);
    log_init(&w->log, getenv("COOPFS_TEST_LOG") ? stderr : NULL, LOG_INFO);
    signal(SIGALRM, on_alarm);
    alarm(GUARD_S);
    *state = w;
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int world_teardown(void **state)
{
    struct world *w = *state;
    alarm(0);
    mem_store_free(w->st);
    nftw(w->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(w);
    return 0;
}



int mount_try(struct world *w, struct mount *m, const struct mopts *o)
{
    memset(m, 0, sizeof(*m));
    if (o->dir)
        snprintf(m->dir, sizeof(m->dir), "%s", o->dir);
    else
        snprintf(m->dir, sizeof(m->dir), "%s/m%u", w->dir, w->nmounts++);
    assert_int_equal(mem_bclient_new(w->st, &m->mc), 0);
    struct fs_config cfg;
    fs_config_default(&cfg);
    cfg.datadir = m->dir;
    cfg.writable = !o->ro;
    if (!o->ro)
        cfg.key = w->key;
    cfg.pub = w->key.pub;
    cfg.min_copies = o->min_copies ? o->min_copies : 2;
    cfg.publish_ms = o->publish_ms ? o->publish_ms : 100;
    cfg.workers = 2;
    cfg.cache_bytes = 64 * MiB;
    cfg.root_confirm = 0; /* the memory store has no ring to settle */
    cfg.tag = o->tag ? o->tag : "T";
    cfg.log = &w->log;
    struct bclient bc = mem_bclient_iface(m->mc);
    int rc = fs_open(&cfg, &bc, &m->f);
    if (rc < 0) {
        mem_bclient_free(m->mc);
        m->mc = NULL;
        m->f = NULL;
    }
    return rc;
}

void mount_open(struct world *w, struct mount *m, const struct mopts *o)
{
    assert_int_equal(mount_try(w, m, o), 0);
}

void mount_close(struct mount *m)
{
    fs_close(m->f); /* stores still running finish on the client's thread */
    mem_bclient_free(m->mc);
    m->f = NULL;
    m->mc = NULL;
}

/* ---- what fs/fuse_ops.c does per operation ---- */

/* What op_mknod/op_mkdir/op_create do (mu held): fs/namespace.c. */
int make(struct fs *f, struct fnode *p, const char *name, uint8_t type, struct fnode **out)
{
    return fs_make(f, p, name, type, type == FS_T_DIR ? 0755 : 0644, (uint32_t)getuid(),
                   (uint32_t)getgid(), NULL, out);
}

/* op_create (type FILE: the node comes back open) or op_mkdir. */
int do_make(struct fs *f, const char *path, uint8_t type, struct fnode **out)
{
    pthread_mutex_lock(&f->mu);
    struct fnode *p = NULL, *k;
    const char *base = NULL;
    k = path_walk(f, path, &p, &base);
    int rc = !p || !base ? -ENOENT : k ? -EEXIST : make(f, p, base, type, &k);
    if (rc == 0) {
        if (type == FS_T_FILE) {
            k->content_dirty = true;
            k->nopen++;
        }
        k->nlookup++;
        *out = k;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

struct fnode *xcreate(struct fs *f, const char *path)
{
    struct fnode *n = NULL;
    assert_int_equal(do_make(f, path, FS_T_FILE, &n), 0);
    return n;
}

/* op_lookup + op_open; NULL if there is no such file. */
struct fnode *xopen(struct fs *f, const char *path)
{
    pthread_mutex_lock(&f->mu);
    struct fnode *k = path_walk(f, path, NULL, NULL);
    if (k) {
        k->nlookup++;
        k->nopen++;
    }
    pthread_mutex_unlock(&f->mu);
    return k;
}

/* op_release. */
void xrelease(struct fs *f, struct fnode *n)
{
    pthread_mutex_lock(&f->mu);
    file_release(f, n);
    pthread_mutex_unlock(&f->mu);
}

/* close(2): op_flush, then op_release. Returns the flush's result. */
int xclose(struct fs *f, struct fnode *n)
{
    int rc = file_flush(f, n);
    xrelease(f, n);
    return rc;
}

void xwrite(struct fs *f, struct fnode *n, const void *buf, size_t len, uint64_t off)
{
    assert_int_equal(file_write(f, n, buf, len, (off_t)off), (ssize_t)len);
}

/* op_setattr with FUSE_SET_ATTR_SIZE; open: ftruncate (fi set). */
int xtruncate(struct fs *f, struct fnode *n, uint64_t size, bool open)
{
    pthread_mutex_lock(&f->mu);
    if (!f->cfg.writable || n->ro) {
        pthread_mutex_unlock(&f->mu);
        return -EROFS;
    }
    int rc = file_truncate(f, n, size);
    if (rc < 0) {
        pthread_mutex_unlock(&f->mu);
        return rc;
    }
    bool flush = !open && n->nopen == 0;
    fnode_changed(f, n);
    if (flush)
        rc = file_flush_held(f, n);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

uint64_t xsize(struct fs *f, struct fnode *n)
{
    struct stat st;
    pthread_mutex_lock(&f->mu);
    fnode_stat(f, n, &st);
    pthread_mutex_unlock(&f->mu);
    return (uint64_t)st.st_size;
}

/* ---- data ---- */

uint8_t pat(uint64_t off, unsigned seed)
{
    uint64_t x = off * 0x9e3779b97f4a7c15ull + seed * 0x2545f4914f6cdd1dull;
    return (uint8_t)(x >> 56 ^ x >> 17);
}

uint8_t *pattern(uint64_t off, size_t len, unsigned seed)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = pat(off + i, seed);
    return b;
}

/* Writes a pattern into the file and into the shadow copy. */
void wpat(struct fs *f, struct fnode *n, uint8_t *shadow, uint64_t off, size_t len,
                 unsigned seed)
{
    uint8_t *b = pattern(off, len, seed);
    xwrite(f, n, b, len, off);
    if (shadow)
        memcpy(shadow + off, b, len);
    free(b);
}

/* Reads [off, off + len) and compares it with want[0..len). */
void check_range(struct fs *f, struct fnode *n, uint64_t off, size_t len,
                        const uint8_t *want)
{
    uint8_t *b = malloc(len + 1);
    assert_non_null(b);
    ssize_t r = file_read(f, n, (char *)b, len, (off_t)off);
    assert_int_equal(r, (ssize_t)len);
    assert_memory_equal(b, want, len);
    free(b);
}

void check_zeros(struct fs *f, struct fnode *n, uint64_t off, size_t len)
{
    uint8_t *z = calloc(1, len);
    assert_non_null(z);
    check_range(f, n, off, len, z);
    free(z);
}

/* The whole file equals want[0..len) (size included). */
void check_file(struct fs *f, const char *path, const uint8_t *want, size_t len)
{
    struct fnode *n = xopen(f, path);
    if (!n)
        fail_msg("%s is missing", path);
    assert_int_equal(xsize(f, n), len);
    if (len)
        check_range(f, n, 0, len, want);
    char c;
    assert_int_equal(file_read(f, n, &c, 1, (off_t)len), 0);
    xrelease(f, n);
}

void check_text(struct fs *f, const char *path, const char *text)
{
    check_file(f, path, (const uint8_t *)text, strlen(text));
}

void put_text(struct fs *f, const char *path, const char *text)
{
    struct fnode *n = xcreate(f, path);
    if (*text)
        xwrite(f, n, text, strlen(text), 0);
    assert_int_equal(xclose(f, n), 0);
}

/* The names of the root directory, sorted, '\n'-joined, malloc'd. */
char *root_names(struct fs *f)
{
    pthread_mutex_lock(&f->mu);
    assert_int_equal(dir_load(f, f->root), 0);
    size_t len = 1;
    for (size_t i = 0; i < f->root->nkids; i++)
        len += strlen(f->root->kids[i]->name) + 1;
    char *s = calloc(1, len);
    assert_non_null(s);
    for (size_t i = 0; i < f->root->nkids; i++) {
        strcat(s, f->root->kids[i]->name);
        strcat(s, "\n");
    }
    pthread_mutex_unlock(&f->mu);
    return s;
}

uint64_t elapsed_ms(uint64_t t0)
{
    return fs_now_ms() - t0;
}

void nap_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Polls fs_version(f) until it reaches v, up to limit_ms. */
bool wait_version(struct fs *f, uint64_t v, unsigned limit_ms)
{
    uint64_t t0 = fs_now_ms();
    while (fs_version(f) < v) {
        if (elapsed_ms(t0) > limit_ms)
            return false;
        nap_ms(20);
    }
    return true;
}

int xunlink(struct fs *f, const char *path)
{
    pthread_mutex_lock(&f->mu);
    struct fnode *p = NULL;
    const char *base = NULL;
    path_walk(f, path, &p, &base);
    int rc = !p || !base ? -ENOENT : fs_remove(f, p, base, false);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

/* Like rename(2) with RENAME_NOREPLACE. */
int xrename(struct fs *f, const char *from, const char *to)
{
    pthread_mutex_lock(&f->mu);
    struct fnode *p = NULL, *np = NULL;
    const char *fb = NULL, *nb = NULL;
    struct fnode *k = path_walk(f, from, &p, &fb);
    if (k)
        path_walk(f, to, &np, &nb);
    int rc = !k || !np || !nb ? -ENOENT : fs_rename(f, p, fb, np, nb, true);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

bool exists(struct fs *f, const char *path)
{
    pthread_mutex_lock(&f->mu);
    bool e = path_walk(f, path, NULL, NULL) != NULL;
    pthread_mutex_unlock(&f->mu);
    return e;
}
