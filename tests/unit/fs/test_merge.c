/* test_merge.c — fs/merge.c over an in-memory store (a map from key to
 * directory stream): every rule of fs/merge.h, nested and many-entry
 * directories, loading only what differs, conflict names, idempotence
 * (merge(b, x, x) == x) and commutativity up to which side keeps the plain
 * name, on seeded random trees. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "fs/merge.h"
#include "fs/obj.h"
#include "fs_fx.h"

#define TAG "T"

/* ---- the in-memory store ---- */

struct blob {
    struct id key;
    uint8_t *bytes;
    size_t len;
};

struct mem {
    struct blob *b;
    size_t n, cap;
    unsigned loads;   /* load_dir calls */
    int fail_load_at; /* the load_dir call (1-based) that fails, 0: none */
    int fail_store;   /* every store_dir fails */
    struct fs_merge_io io;
};

static int mem_load(void *ctx, const struct fs_inode *dir, struct fs_dir *out)
{
    struct mem *m = ctx;

    m->loads++;
    if (m->fail_load_at && (int)m->loads == m->fail_load_at)
        return -EIO;
    assert_int_equal(dir->type, FS_T_DIR);
    if (dir->ref == FS_REF_EMPTY) {
        fs_dir_init(out);
        return 0;
    }
    if (dir->ref == FS_REF_INLINE)
        return fs_dir_decode(dir->inline_data, dir->size, out);
    for (size_t i = 0; i < m->n; i++)
        if (id_eq(&m->b[i].key, &dir->key))
            return fs_dir_decode(m->b[i].bytes, m->b[i].len, out);
    return -ENOENT;
}

static int mem_store(void *ctx, const struct fs_dir *d, struct fs_inode *dir)
{
    struct mem *m = ctx;
    uint8_t *bytes;
    size_t len;

    if (m->fail_store)
        return -EIO;
    assert_int_equal(dir->ref, FS_REF_EMPTY);
    assert_null(dir->inline_data);
    if (d->n == 0)
        return 0;
    int rc = fs_dir_encode(d, &bytes, &len);
    if (rc != 0)
        return rc;
    dir->size = len;
    if (len <= FS_INLINE_MAX) {
        dir->ref = FS_REF_INLINE;
        dir->inline_data = bytes;
        return 0;
    }
    dir->ref = FS_REF_KEY;
    hash_sha256(&dir->key, bytes, len);
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 16;
        m->b = realloc(m->b, m->cap * sizeof(*m->b));
        assert_non_null(m->b);
    }
    m->b[m->n++] = (struct blob){dir->key, bytes, len};
    return 0;
}

static int setup(void **state)
{
    struct mem *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->io = (struct fs_merge_io){mem_load, mem_store, m};
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    struct mem *m = *state;
    for (size_t i = 0; i < m->n; i++)
        free(m->b[i].bytes);
    free(m->b);
    free(m);
    return 0;
}

/* ---- trees by path ---- */

static void empty_root(struct fs_inode *r)
{
    fx_dir_inode(r, 0755, 1);
}

/* Sets path (a/b/c) in the tree under root to ino (NULL removes it),
 * creating directories on the way; *root becomes the new root. */
static void put(struct mem *m, struct fs_inode *root, const char *path, const struct fs_inode *ino)
{
    struct fs_dir d;
    char first[FS_NAME_MAX + 1];
    const char *slash = strchr(path, '/');
    size_t fl = slash ? (size_t)(slash - path) : strlen(path);

    assert_true(fl > 0 && fl <= FS_NAME_MAX);
    memcpy(first, path, fl);
    first[fl] = '\0';
    assert_int_equal(mem_load(m, root, &d), 0);
    m->loads--; /* only the merge's loads count */
    if (slash) {
        struct fs_inode child;
        struct fs_dirent *e = fs_dir_find(&d, first);
        if (e && e->ino.type == FS_T_DIR)
            assert_int_equal(fs_inode_copy(&child, &e->ino), 0);
        else
            fx_dir_inode(&child, 0755, 1);
        put(m, &child, slash + 1, ino);
        assert_int_equal(fs_dir_set(&d, first, &child), 0);
        fs_inode_clear(&child);
    } else if (ino) {
        assert_int_equal(fs_dir_set(&d, first, ino), 0);
    } else {
        fs_dir_remove(&d, first);
    }
    free(root->inline_data);
    root->inline_data = NULL;
    root->ref = FS_REF_EMPTY;
    root->size = 0;
    assert_int_equal(mem_store(m, &d, root), 0);
    fs_dir_clear(&d);
}

static void put_text(struct mem *m, struct fs_inode *root, const char *path, const char *text)
{
    struct fs_inode f;
    fx_file_text(&f, text, 0);
    put(m, root, path, &f);
    fs_inode_clear(&f);
}

static void put_dir(struct mem *m, struct fs_inode *root, const char *path)
{
    struct fs_inode f;
    fx_dir_inode(&f, 0755, 1);
    put(m, root, path, &f);
    fs_inode_clear(&f);
}

static void del(struct mem *m, struct fs_inode *root, const char *path)
{
    put(m, root, path, NULL);
}

static void copy(struct fs_inode *dst, const struct fs_inode *src)
{
    assert_int_equal(fs_inode_copy(dst, src), 0);
}

/* Appends "path=text;" for every file, "path->target;" for a symlink and
 * "path/;" for a directory, in name order. */
static void dump_into(struct mem *m, const struct fs_inode *dir, const char *prefix, char *out,
                      size_t cap)
{
    struct fs_dir d;
    char path[4096];

    assert_int_equal(mem_load(m, dir, &d), 0);
    m->loads--;
    for (size_t i = 0; i < d.n; i++) {
        const struct fs_inode *e = &d.e[i].ino;
        size_t l = strlen(out);
        snprintf(path, sizeof(path), "%s%s", prefix, d.e[i].name);
        if (e->type == FS_T_DIR) {
            snprintf(out + l, cap - l, "%s/;", path);
            strcat(path, "/");
            dump_into(m, e, path, out, cap);
        } else {
            snprintf(out + l, cap - l, "%s%s%.*s;", path, e->type == FS_T_SYMLINK ? "->" : "=",
                     (int)e->size, e->inline_data ? (const char *)e->inline_data : "");
        }
    }
    fs_dir_clear(&d);
}

static char *dump(struct mem *m, const struct fs_inode *root)
{
    static char buf[1 << 20];
    buf[0] = '\0';
    dump_into(m, root, "", buf, sizeof(buf));
    return buf;
}

static unsigned merge(struct mem *m, const struct fs_inode *b, const struct fs_inode *o,
                      const struct fs_inode *t, struct fs_inode *out)
{
    unsigned nc = 12345;
    assert_int_equal(fs_merge3(&m->io, b, o, t, TAG, out, &nc), 0);
    assert_int_not_equal(nc, 12345);
    return nc;
}

/* Merges and checks the dump; returns the conflicts. */
static unsigned expect(struct mem *m, const struct fs_inode *b, const struct fs_inode *o,
                       const struct fs_inode *t, const char *want)
{
    struct fs_inode r;
    unsigned nc = merge(m, b, o, t, &r);
    assert_string_equal(dump(m, &r), want);
    fs_inode_clear(&r);
    return nc;
}

/* base: a=1 b=2 d/x=1 d/y=2; ours and theirs start as copies. */
static void start(struct mem *m, struct fs_inode *b, struct fs_inode *o, struct fs_inode *t)
{
    empty_root(b);
    put_text(m, b, "a", "1");
    put_text(m, b, "b", "2");
    put_text(m, b, "d/x", "1");
    put_text(m, b, "d/y", "2");
    copy(o, b);
    copy(t, b);
}

static void clear3(struct fs_inode *b, struct fs_inode *o, struct fs_inode *t)
{
    fs_inode_clear(b);
    fs_inode_clear(o);
    fs_inode_clear(t);
}

/* ---- the rules ---- */

static void test_one_side(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    put_text(m, &o, "a", "1o");
    del(m, &o, "b");
    put_text(m, &o, "c", "new");
    put_text(m, &o, "d/z", "3");
    const char *w = "a=1o;c=new;d/;d/x=1;d/y=2;d/z=3;";
    assert_int_equal(expect(m, &b, &o, &t, w), 0); /* theirs unchanged */
    assert_int_equal(expect(m, &b, &t, &o, w), 0); /* ours unchanged */
    /* a side equal to the base is never loaded: nothing to merge */
    m->loads = 0;
    expect(m, &b, &o, &t, w);
    assert_int_equal(m->loads, 0);
    clear3(&b, &o, &t);
}

static void test_both_sides_disjoint(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    put_text(m, &o, "a", "1o");
    put_text(m, &t, "b", "2t");
    del(m, &o, "d/x");
    put_text(m, &t, "d/y", "2t");
    put_text(m, &o, "n/o", "o");
    put_text(m, &t, "n/t", "t"); /* a directory added on both sides */
    const char *w = "a=1o;b=2t;d/;d/y=2t;n/;n/o=o;n/t=t;";
    assert_int_equal(expect(m, &b, &o, &t, w), 0);
    assert_int_equal(expect(m, &b, &t, &o, w), 0);
    clear3(&b, &o, &t);
}

static void test_same_change(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    put_text(m, &o, "a", "same");
    put_text(m, &t, "a", "same");
    del(m, &o, "b");
    del(m, &t, "b");
    put_text(m, &o, "c", "added");
    put_text(m, &t, "c", "added");
    put_text(m, &t, "d/x", "x2");
    assert_int_equal(expect(m, &b, &o, &t, "a=same;c=added;d/;d/x=x2;d/y=2;"), 0);
    clear3(&b, &o, &t);
}

static void test_edit_conflict(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    put_text(m, &o, "a", "ours");
    put_text(m, &t, "a", "theirs");
    put_text(m, &o, "d/x", "xo");
    put_text(m, &t, "d/x", "xt");
    put_text(m, &o, "add", "o"); /* added on both sides, different */
    put_text(m, &t, "add", "t");
    const char *w = "a=theirs;a.conflict-T=ours;add=t;add.conflict-T=o;b=2;"
                    "d/;d/x=xt;d/x.conflict-T=xo;d/y=2;";
    assert_int_equal(expect(m, &b, &o, &t, w), 3);
    /* the other way round, the other side keeps the name */
    const char *w2 = "a=ours;a.conflict-T=theirs;add=o;add.conflict-T=t;b=2;"
                     "d/;d/x=xo;d/x.conflict-T=xt;d/y=2;";
    assert_int_equal(expect(m, &b, &t, &o, w2), 3);
    /* symlinks are edited like files */
    struct fs_inode l;
    fx_symlink(&l, "to-o");
    put(m, &o, "b", &l);
    fs_inode_clear(&l);
    fx_symlink(&l, "to-t");
    put(m, &t, "b", &l);
    fs_inode_clear(&l);
    struct fs_inode r;
    assert_int_equal(merge(m, &b, &o, &t, &r), 4);
    assert_non_null(strstr(dump(m, &r), "b->to-t;b.conflict-T->to-o;"));
    fs_inode_clear(&r);
    clear3(&b, &o, &t);
}

static void test_conflict_name_taken(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    put_text(m, &b, "a.conflict-T", "old"); /* in all three */
    fs_inode_clear(&o);
    fs_inode_clear(&t);
    copy(&o, &b);
    copy(&t, &b);
    put_text(m, &o, "a", "ours");
    put_text(m, &t, "a", "theirs");
    put_text(m, &t, "a.conflict-T-2", "taken by theirs"); /* a later plain name */
    const char *w = "a=theirs;a.conflict-T=old;a.conflict-T-2=taken by theirs;"
                    "a.conflict-T-3=ours;b=2;d/;d/x=1;d/y=2;";
    assert_int_equal(expect(m, &b, &o, &t, w), 1);
    clear3(&b, &o, &t);
}

static void test_conflict_name_limits(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t, r;
    char name[FS_NAME_MAX + 1], want[FS_NAME_MAX + 1];
    struct fs_dir d;

    /* a name of 255 bytes of 2-byte UTF-8 ("é" x 127, then 'x') */
    for (int i = 0; i < 127; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[254] = 'x';
    name[255] = '\0';
    empty_root(&b);
    copy(&o, &b);
    copy(&t, &b);
    put_text(m, &o, name, "o");
    put_text(m, &t, name, "t");
    assert_int_equal(fs_merge3(&m->io, &b, &o, &t, "h/st", &r, NULL), 0);
    assert_int_equal(mem_load(m, &r, &d), 0);
    assert_int_equal(d.n, 2);
    /* 255 - strlen(".conflict-h_st") = 241: cut to 240, a whole "é" */
    memcpy(want, name, 240);
    strcpy(want + 240, ".conflict-h_st");
    assert_non_null(fs_dir_find(&d, want));
    assert_non_null(fs_dir_find(&d, name));
    fs_dir_clear(&d);
    fs_inode_clear(&r);

    /* no tag, and a tag longer than 64 bytes */
    clear3(&b, &o, &t);
    start(m, &b, &o, &t);
    put_text(m, &o, "a", "o");
    put_text(m, &t, "a", "t");
    assert_int_equal(fs_merge3(&m->io, &b, &o, &t, NULL, &r, NULL), 0);
    assert_string_equal(dump(m, &r), "a=t;a.conflict=o;b=2;d/;d/x=1;d/y=2;");
    fs_inode_clear(&r);
    char tag[100];
    memset(tag, 'g', sizeof(tag) - 1);
    tag[99] = '\0';
    assert_int_equal(fs_merge3(&m->io, &b, &o, &t, tag, &r, NULL), 0);
    assert_int_equal(mem_load(m, &r, &d), 0);
    assert_int_equal(d.n, 4);
    assert_int_equal(strlen(d.e[1].name), 1 + strlen(".conflict-") + 64);
    fs_dir_clear(&d);
    fs_inode_clear(&r);
    clear3(&b, &o, &t);
}

static void test_delete_modify(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    del(m, &o, "a");
    put_text(m, &t, "a", "1t");
    put_text(m, &o, "b", "2o");
    del(m, &t, "b");
    del(m, &o, "d"); /* a directory deleted, a file in it changed */
    put_text(m, &t, "d/y", "2t");
    const char *w = "a=1t;b=2o;d/;d/x=1;d/y=2t;";
    assert_int_equal(expect(m, &b, &o, &t, w), 0);
    assert_int_equal(expect(m, &b, &t, &o, w), 0);
    clear3(&b, &o, &t);
}

static void test_file_vs_dir(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    start(m, &b, &o, &t);
    put_text(m, &o, "x/in", "o"); /* added: a directory here, a file there */
    put_text(m, &t, "x", "t");
    del(m, &o, "a"); /* a file turned into a directory, and edited */
    put_text(m, &o, "a/in", "o");
    put_text(m, &t, "a", "1t");
    del(m, &t, "d"); /* a directory turned into a file, and edited */
    put_text(m, &t, "d", "file");
    put_text(m, &o, "d/x", "xo");
    const char *w = "a/;a/in=o;a.conflict-T=1t;b=2;d/;d/x=xo;d/y=2;d.conflict-T=file;"
                    "x/;x/in=o;x.conflict-T=t;";
    assert_int_equal(expect(m, &b, &o, &t, w), 3);
    assert_int_equal(expect(m, &b, &t, &o, w), 3);
    clear3(&b, &o, &t);
}

static void test_nested(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;

    empty_root(&b);
    put_text(m, &b, "p/q/r/s/f", "base");
    put_text(m, &b, "p/q/r/s/g", "base");
    put_text(m, &b, "p/q/other/h", "base");
    copy(&o, &b);
    copy(&t, &b);
    put_text(m, &o, "p/q/r/s/f", "o");
    put_text(m, &t, "p/q/r/s/f", "t");
    put_text(m, &o, "p/q/r/s/new", "o");
    put_text(m, &t, "p/q/other/h", "t");
    const char *w = "p/;p/q/;p/q/other/;p/q/other/h=t;p/q/r/;p/q/r/s/;p/q/r/s/f=t;"
                    "p/q/r/s/f.conflict-T=o;p/q/r/s/g=base;p/q/r/s/new=o;";
    m->loads = 0;
    assert_int_equal(expect(m, &b, &o, &t, w), 1);
    /* the root, p, p/q, p/q/r, p/q/r/s differ on both sides: 5 x 3 loads; "other"
     * changed only in theirs: taken whole, never loaded */
    assert_int_equal(m->loads, 5 * 3);
    clear3(&b, &o, &t);
}

static void test_lazy_loads(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t;
    char path[64];

    empty_root(&b);
    for (int i = 0; i < 50; i++) {
        snprintf(path, sizeof(path), "big/d%02d/f", i);
        put_text(m, &b, path, "x");
    }
    put_text(m, &b, "mine/f", "x");
    copy(&o, &b);
    copy(&t, &b);
    put_text(m, &t, "big/d07/f", "t");
    put_text(m, &o, "mine/f", "o");
    m->loads = 0;
    struct fs_inode r;
    assert_int_equal(merge(m, &b, &o, &t, &r), 0);
    assert_int_equal(m->loads, 3); /* the roots only */
    assert_non_null(strstr(dump(m, &r), "big/d07/f=t;"));
    assert_non_null(strstr(dump(m, &r), "mine/f=o;"));
    fs_inode_clear(&r);
    clear3(&b, &o, &t);
}

static void test_many_entries(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t, r;
    struct fs_dir bd, od, td, d;
    char name[32], text[32];

    fs_dir_init(&bd);
    fs_dir_init(&od);
    fs_dir_init(&td);
    for (int i = 0; i < 3000; i++) {
        struct fs_inode f;
        snprintf(name, sizeof(name), "f%04d", i);
        fx_file_text(&f, "base", 0);
        assert_int_equal(fs_dir_set(&bd, name, &f), 0);
        /* ours changes the even ones, theirs every third: 500 conflicts */
        snprintf(text, sizeof(text), "o%d", i);
        if (i % 2 == 0) {
            fs_inode_clear(&f);
            fx_file_text(&f, text, 0);
        }
        assert_int_equal(fs_dir_set(&od, name, &f), 0);
        fs_inode_clear(&f);
        snprintf(text, sizeof(text), "%s%d", i % 3 == 0 ? "t" : "base", i);
        fx_file_text(&f, i % 3 == 0 ? text : "base", 0);
        assert_int_equal(fs_dir_set(&td, name, &f), 0);
        fs_inode_clear(&f);
    }
    empty_root(&b);
    empty_root(&o);
    empty_root(&t);
    assert_int_equal(mem_store(m, &bd, &b), 0);
    assert_int_equal(mem_store(m, &od, &o), 0);
    assert_int_equal(mem_store(m, &td, &t), 0);
    assert_int_equal(b.ref, FS_REF_KEY); /* past FS_INLINE_MAX: by key */
    assert_int_equal(merge(m, &b, &o, &t, &r), 500);
    assert_int_equal(r.ref, FS_REF_KEY);
    assert_int_equal(mem_load(m, &r, &d), 0);
    assert_int_equal(d.n, 3500);
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "f%04d", i);
        const struct fs_inode *f = &fs_dir_find(&d, name)->ino;
        char want = i % 3 == 0 ? 't' : i % 2 == 0 ? 'o' : 'b';
        assert_int_equal(f->inline_data[0], want);
        strcat(name, ".conflict-" TAG);
        const struct fs_dirent *c = fs_dir_find(&d, name);
        if (i % 6 == 0)
            assert_int_equal(c->ino.inline_data[0], 'o');
        else
            assert_null(c);
    }
    fs_dir_clear(&d);
    fs_dir_clear(&bd);
    fs_dir_clear(&od);
    fs_dir_clear(&td);
    fs_inode_clear(&r);
    clear3(&b, &o, &t);
}

static void test_dir_attrs(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t, r;

    start(m, &b, &o, &t);
    put_text(m, &o, "a", "o"); /* so neither side equals the base */
    put_text(m, &t, "b", "t");
    o.mode = 0700;
    fx_xattr_add(&o, "color", "red", 3);
    merge(m, &b, &o, &t, &r); /* only ours changed them: ours */
    assert_int_equal(r.mode, 0700);
    assert_int_equal(r.nxattr, 1);
    fs_inode_clear(&r);
    t.mode = 0750;
    t.mtime_ns = 99;
    merge(m, &b, &o, &t, &r); /* both: theirs */
    assert_int_equal(r.mode, 0750);
    assert_int_equal(r.mtime_ns, 99);
    assert_int_equal(r.nxattr, 0);
    fs_inode_clear(&r);
    o.mode = b.mode;
    fs_inode_clear(&o);
    copy(&o, &b);
    put_text(m, &o, "a", "o");
    merge(m, &b, &o, &t, &r); /* only theirs: theirs */
    assert_int_equal(r.mode, 0750);
    assert_string_equal(dump(m, &r), "a=o;b=t;d/;d/x=1;d/y=2;");
    fs_inode_clear(&r);
    clear3(&b, &o, &t);
}

static void test_no_base(void **state)
{
    struct mem *m = *state;
    struct fs_inode o, t, r, f;

    empty_root(&o);
    empty_root(&t);
    put_text(m, &o, "same", "s");
    put_text(m, &t, "same", "s");
    put_text(m, &o, "diff", "o");
    put_text(m, &t, "diff", "t");
    put_text(m, &o, "only-o", "o");
    put_text(m, &t, "d/only-t", "t");
    put_text(m, &o, "d/only-o", "o");
    const char *w = "d/;d/only-o=o;d/only-t=t;diff=t;diff.conflict-T=o;only-o=o;same=s;";
    assert_int_equal(expect(m, NULL, &o, &t, w), 1);
    fx_file_text(&f, "not a dir", 0); /* a base that is no directory is none */
    assert_int_equal(expect(m, &f, &o, &t, w), 1);
    assert_int_equal(fs_merge3(&m->io, NULL, &f, &t, TAG, &r, NULL), -EINVAL);
    assert_int_equal(fs_merge3(&m->io, NULL, &o, &f, TAG, &r, NULL), -EINVAL);
    fs_inode_clear(&f);
    fs_inode_clear(&o);
    fs_inode_clear(&t);
}

static void test_io_errors(void **state)
{
    struct mem *m = *state;
    struct fs_inode b, o, t, r;

    start(m, &b, &o, &t);
    put_text(m, &o, "d/x", "o");
    put_text(m, &t, "d/x", "t");
    memset(&r, 0x5a, sizeof(r));
    for (int k = 1; k <= 6; k++) { /* root: 3 loads, d: 3 loads */
        m->loads = 0;
        m->fail_load_at = k;
        assert_int_equal(fs_merge3(&m->io, &b, &o, &t, TAG, &r, NULL), -EIO);
        assert_int_equal(r.type, 0x5a); /* untouched */
    }
    m->fail_load_at = 0;
    m->fail_store = 1;
    assert_int_equal(fs_merge3(&m->io, &b, &o, &t, TAG, &r, NULL), -EIO);
    m->fail_store = 0;
    clear3(&b, &o, &t);
}

/* ---- properties on random trees ---- */

/* Random edits: files f0..f5 in "", d0, d1, d0/e0; text from the stream. */
static void random_edits(struct mem *m, struct fs_inode *root, uint64_t *rs, int n)
{
    static const char *dirs[] = {"", "d0/", "d1/", "d0/e0/"};
    char path[64], text[16];
    for (int i = 0; i < n; i++) {
        uint64_t x = fx_rand(rs);
        snprintf(path, sizeof(path), "%sf%d", dirs[x % 4], (int)(x >> 8) % 6);
        switch ((x >> 16) % 6) {
        case 0: del(m, root, path); break;
        case 1:
            put_dir(m, root, path); /* a file may become a directory */
            break;
        default:
            snprintf(text, sizeof(text), "v%d", (int)((x >> 24) % 4));
            put_text(m, root, path, text);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Drops every ".conflict-T[-N]" and sorts the entries of a dump, so that
 * two merges that differ only in which side kept the plain name compare
 * equal. */
static void normalize(const char *in, char *out)
{
    char *copy = strdup(in), *items[4096];
    size_t n = 0;
    assert_non_null(copy);
    for (char *s = strtok(copy, ";"); s; s = strtok(NULL, ";")) {
        char *c;
        while ((c = strstr(s, ".conflict-" TAG))) {
            char *end = c + strlen(".conflict-" TAG);
            if (*end == '-')
                while (*++end >= '0' && *end <= '9')
                    ;
            memmove(c, end, strlen(end) + 1);
        }
        assert_true(n < 4096);
        items[n++] = s;
    }
    qsort(items, n, sizeof(items[0]), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(out, items[i]);
        strcat(out, ";");
    }
    free(copy);
}

static void test_random_properties(void **state)
{
    struct mem *m = *state;
    uint64_t seed = 5, rs = seed;
    static char a[1 << 16], b2[1 << 16], na[1 << 16], nb[1 << 16];
    unsigned total = 0;

    print_message("seed %llu\n", (unsigned long long)seed);
    for (int round = 0; round < 200; round++) {
        struct fs_inode b, o, t, r1, r2, x;
        empty_root(&b);
        random_edits(m, &b, &rs, 12);
        copy(&o, &b);
        copy(&t, &b);
        random_edits(m, &o, &rs, 1 + round % 8);
        random_edits(m, &t, &rs, 1 + round % 5);

        /* idempotence: merge(b, x, x) == x, with or without a base */
        assert_int_equal(merge(m, &b, &o, &o, &x), 0);
        assert_true(fs_inode_equal(&x, &o));
        fs_inode_clear(&x);
        assert_int_equal(merge(m, NULL, &t, &t, &x), 0);
        assert_true(fs_inode_equal(&x, &t));
        fs_inode_clear(&x);

        /* commutativity, up to which side keeps the plain name */
        unsigned c1 = merge(m, &b, &o, &t, &r1);
        unsigned c2 = merge(m, &b, &t, &o, &r2);
        assert_int_equal(c1, c2);
        total += c1;
        strcpy(a, dump(m, &r1));
        strcpy(b2, dump(m, &r2));
        normalize(a, na);
        normalize(b2, nb);
        if (strcmp(na, nb) != 0)
            print_message("round %d:\n%s\n%s\n", round, a, b2);
        assert_string_equal(na, nb);
        if (c1 == 0)
            assert_string_equal(a, b2);

        /* one side unchanged: the other, whole */
        assert_int_equal(merge(m, &b, &o, &b, &x), 0);
        assert_true(fs_inode_equal(&x, &o));
        fs_inode_clear(&x);
        assert_int_equal(merge(m, &b, &b, &t, &x), 0);
        assert_true(fs_inode_equal(&x, &t));
        fs_inode_clear(&x);
        fs_inode_clear(&r1);
        fs_inode_clear(&r2);
        clear3(&b, &o, &t);
    }
    print_message("%u conflicts in 200 rounds\n", total);
    assert_true(total > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_side, setup, teardown),
        cmocka_unit_test_setup_teardown(test_both_sides_disjoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_name_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_name_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_modify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_vs_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lazy_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_attrs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_properties, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
