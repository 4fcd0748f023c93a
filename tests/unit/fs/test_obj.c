/* test_obj.c — fs/obj.c: the directory helpers, the directory stream, the
 * commit and the root payload. Round trips of every field, the limits at
 * and one past each bound, every rule the decoders hold a record to (on
 * records written byte by byte here, as docs/formats.md lays them out),
 * every truncation, and seeded random and mutated inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "fs/obj.h"
#include "fs_fx.h"

static uint8_t raw[1u << 20];

/* Decodes bytes copied to a heap block of exactly len bytes (so ASan sees
 * any read past the end). */
static int dir_decode_exact(const uint8_t *p, size_t len, struct fs_dir *d)
{
    uint8_t *h = malloc(len ? len : 1);
    assert_non_null(h);
    memcpy(h, p, len);
    int rc = fs_dir_decode(h, len, d);
    free(h);
    return rc;
}

static int commit_decode_exact(const uint8_t *p, size_t len, struct fs_commit *c)
{
    uint8_t *h = malloc(len ? len : 1);
    assert_non_null(h);
    memcpy(h, p, len);
    int rc = fs_commit_decode(h, len, c);
    free(h);
    return rc;
}

static void assert_dir_equal(const struct fs_dir *a, const struct fs_dir *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->e[i].name, b->e[i].name);
        assert_true(fs_inode_equal(&a->e[i].ino, &b->e[i].ino));
    }
}

/* encode → decode → encode: the same entries and the same bytes. */
static void round_trip(const struct fs_dir *d)
{
    uint8_t *b1, *b2;
    size_t l1, l2;
    struct fs_dir back;

    assert_int_equal(fs_dir_encode(d, &b1, &l1), 0);
    assert_int_equal(dir_decode_exact(b1, l1, &back), 0);
    assert_dir_equal(d, &back);
    assert_int_equal(fs_dir_encode(&back, &b2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    fs_dir_clear(&back);
    free(b1);
    free(b2);
}

static void set_clear(struct fs_dir *d, const char *name, struct fs_inode *ino)
{
    assert_int_equal(fs_dir_set(d, name, ino), 0);
    fs_inode_clear(ino);
}

/* A directory with one entry of every kind, every field away from 0. */
static void full_dir(struct fs_dir *d)
{
    struct fs_inode ino;
    uint8_t val[FS_XATTR_VALUE_MAX];

    fs_dir_init(d);
    memset(val, 0xa5, sizeof(val));
    fx_file_text(&ino, "hello", -5);
    ino.mode = 07777;
    ino.uid = UINT32_MAX;
    ino.gid = 0x01020304;
    ino.ctime_ns = INT64_MIN;
    fx_xattr_add(&ino, "a", NULL, 0);
    fx_xattr_add(&ino, "b", val, FS_XATTR_VALUE_MAX);
    fx_xattr_add(&ino, "comment", "x", 1);
    set_clear(d, "file.txt", &ino);
    fx_file_key(&ino, 0x42, UINT64_MAX);
    ino.mtime_ns = INT64_MAX;
    set_clear(d, "big", &ino);
    fx_file_inline(&ino, NULL, 0);
    set_clear(d, "empty", &ino);
    fx_symlink(&ino, "../target/of/link");
    set_clear(d, "link", &ino);
    fx_dir_inode(&ino, 0700, 12345);
    set_clear(d, "sub-empty", &ino);
    fx_dir_inode(&ino, 0750, 1);
    ino.ref = FS_REF_KEY;
    ino.size = 99999;
    memset(ino.key.b, 0x17, ID_BYTES);
    set_clear(d, "sub-key", &ino);
    fx_dir_inode(&ino, 0755, 2);
    ino.ref = FS_REF_INLINE;
    ino.size = 5;
    ino.inline_data = malloc(5);
    assert_non_null(ino.inline_data);
    memcpy(ino.inline_data, "\x01\x00\x00\x00\x00", 5);
    set_clear(d, "sub-inline", &ino);
    char name[FS_NAME_MAX + 1];
    memset(name, 'z', FS_NAME_MAX);
    name[FS_NAME_MAX] = '\0';
    fx_file_text(&ino, "max name", 3);
    set_clear(d, name, &ino);
    fx_file_text(&ino, "utf8", 4);
    set_clear(d, "\xc3\xa9t\xc3\xa9", &ino);
}

/* ---- the helpers ---- */

static void test_dir_helpers(void **state)
{
    (void)state;
    struct fs_dir d;
    struct fs_inode ino;
    uint64_t rs = 7;
    char name[32];

    fs_dir_init(&d);
    /* random inserts stay sorted and unique; replacing keeps the count */
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "n%llu", (unsigned long long)(fx_rand(&rs) % 300));
        fx_file_text(&ino, name, i);
        assert_int_equal(fs_dir_set(&d, name, &ino), 0);
        assert_true(fs_inode_equal(&fs_dir_find(&d, name)->ino, &ino));
        fs_inode_clear(&ino);
    }
    for (size_t i = 1; i < d.n; i++)
        assert_true(strcmp(d.e[i - 1].name, d.e[i].name) < 0);
    size_t n = d.n;
    assert_true(n > 200 && n <= 300);
    assert_int_equal(fs_dir_remove(&d, d.e[0].name), 0);
    assert_int_equal(d.n, n - 1);
    assert_int_equal(fs_dir_remove(&d, "absent"), -ENOENT);
    assert_null(fs_dir_find(&d, "absent"));
    round_trip(&d);

    fx_file_text(&ino, "x", 0);
    const char *bad[] = {"", ".", "..", "a/b", "/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(fs_dir_set(&d, bad[i], &ino), -EINVAL);
    char longname[FS_NAME_MAX + 2];
    memset(longname, 'q', FS_NAME_MAX + 1);
    longname[FS_NAME_MAX + 1] = '\0';
    assert_int_equal(fs_dir_set(&d, longname, &ino), -EINVAL);
    longname[FS_NAME_MAX] = '\0';
    assert_int_equal(fs_dir_set(&d, longname, &ino), 0);
    assert_int_equal(fs_dir_set(&d, "...", &ino), 0);
    fs_inode_clear(&ino);
    fs_dir_clear(&d);
    fs_dir_clear(&d); /* twice is harmless */
}

static void test_inode_copy_equal(void **state)
{
    (void)state;
    struct fs_dir d;
    struct fs_inode c;

    full_dir(&d);
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(fs_inode_copy(&c, &d.e[i].ino), 0);
        assert_true(fs_inode_equal(&c, &d.e[i].ino));
        assert_true(fs_inode_valid(&c));
        if (c.inline_data)
            assert_ptr_not_equal(c.inline_data, d.e[i].ino.inline_data);
        /* every field counts */
        c.mode ^= 1;
        assert_false(fs_inode_equal(&c, &d.e[i].ino));
        assert_false(fs_inode_attr_equal(&c, &d.e[i].ino));
        c.mode ^= 1;
        c.ctime_ns++;
        assert_false(fs_inode_equal(&c, &d.e[i].ino));
        c.ctime_ns--;
        c.size++;
        assert_false(fs_inode_equal(&c, &d.e[i].ino));
        assert_true(fs_inode_attr_equal(&c, &d.e[i].ino));
        c.size--;
        if (c.ref == FS_REF_KEY) {
            c.key.b[31] ^= 1;
            assert_false(fs_inode_equal(&c, &d.e[i].ino));
        } else if (c.ref == FS_REF_INLINE) {
            c.inline_data[c.size - 1] ^= 1;
            assert_false(fs_inode_equal(&c, &d.e[i].ino));
        }
        fs_inode_clear(&c);
    }
    /* xattr values count */
    struct fs_inode *f = &fs_dir_find(&d, "file.txt")->ino;
    assert_int_equal(fs_inode_copy(&c, f), 0);
    c.xattr[1].value[100] ^= 1;
    assert_false(fs_inode_equal(&c, f));
    assert_false(fs_inode_attr_equal(&c, f));
    fs_inode_clear(&c);
    assert_int_equal(c.nxattr, 0);
    assert_null(c.xattr);
    fs_dir_clear(&d);
}

/* ---- the directory stream ---- */

static void test_dir_round_trip(void **state)
{
    (void)state;
    struct fs_dir d;
    uint8_t *b;
    size_t l;

    fs_dir_init(&d);
    round_trip(&d);
    assert_int_equal(fs_dir_encode(&d, &b, &l), 0);
    assert_int_equal(l, 5);
    assert_memory_equal(b, "\x01\x00\x00\x00\x00", 5);
    free(b);

    full_dir(&d);
    round_trip(&d);
    fs_dir_clear(&d);

    /* the layout of one entry, byte by byte */
    struct fs_inode ino;
    fs_dir_init(&d);
    fx_file_text(&ino, "hi", 0x0102030405060708ll);
    ino.mode = 0640;
    ino.uid = 7;
    ino.gid = 8;
    ino.ctime_ns = -1;
    fx_xattr_add(&ino, "k", "vv", 2);
    set_clear(&d, "ab", &ino);
    assert_int_equal(fs_dir_encode(&d, &b, &l), 0);
    static const uint8_t want[] = {
        1,    0,    0,    0,    1,                                  /* format, count */
        2,    'a',  'b',                                            /* name */
        1,    1,    0x01, 0xa0, 0,    0,    0,    7,    0, 0, 0, 8, /* type ref mode uid gid */
        0,    0,    0,    0,    0,    0,    0,    2,                /* size */
        1,    2,    3,    4,    5,    6,    7,    8,                /* mtime */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,             /* ctime */
        'h',  'i',                                                  /* inline */
        1,    1,    'k',  0,    2,    'v',  'v',                    /* xattrs */
    };
    assert_int_equal(l, sizeof(want));
    assert_memory_equal(b, want, l);
    free(b);
    fs_dir_clear(&d);
}

static void test_dir_many(void **state)
{
    (void)state;
    struct fs_dir d;
    struct fs_inode ino;
    char name[32];

    fs_dir_init(&d);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "entry-%05d", i);
        fx_file_key(&ino, (uint8_t)i, (uint64_t)i + 1);
        set_clear(&d, name, &ino);
    }
    round_trip(&d);
    fs_dir_clear(&d);
}

/* Encoder refuses what the decoder would refuse. */
static void test_encode_limits(void **state)
{
    (void)state;
    static uint8_t big[FS_INLINE_MAX + 1];
    struct fs_dir d;
    struct fs_inode ino;
    uint8_t *b;
    size_t l;

    memset(big, 'x', sizeof(big));
    struct {
        uint8_t type;
        size_t len;
        bool ok;
    } cases[] = {
        {FS_T_FILE, FS_INLINE_MAX, true},     {FS_T_FILE, FS_INLINE_MAX + 1, false},
        {FS_T_DIR, FS_INLINE_MAX, true},      {FS_T_DIR, FS_INLINE_MAX + 1, false},
        {FS_T_SYMLINK, FS_SYMLINK_MAX, true}, {FS_T_SYMLINK, FS_SYMLINK_MAX + 1, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fs_dir_init(&d);
        fx_file_inline(&ino, big, cases[i].len);
        ino.type = cases[i].type;
        set_clear(&d, "f", &ino);
        if (cases[i].ok) {
            round_trip(&d);
        } else {
            assert_int_equal(fs_dir_encode(&d, &b, &l), -EINVAL);
        }
        fs_dir_clear(&d);
    }
    /* xattrs: FS_XATTR_MAX fit, one more does not; so for value length */
    struct fs_inode x;
    char nm[8];
    fx_file_text(&x, "x", 0);
    for (unsigned i = 0; i < FS_XATTR_MAX; i++) {
        snprintf(nm, sizeof(nm), "x%02u", i);
        fx_xattr_add(&x, nm, "v", 1);
    }
    fs_dir_init(&d);
    assert_int_equal(fs_dir_set(&d, "f", &x), 0);
    round_trip(&d);
    fx_xattr_add(&x, "x99", "v", 1);
    assert_int_equal(fs_dir_set(&d, "f", &x), 0);
    assert_int_equal(fs_dir_encode(&d, &b, &l), -EINVAL);
    fs_inode_clear(&x);
    fx_file_text(&x, "x", 0);
    fx_xattr_add(&x, "big", big, FS_XATTR_VALUE_MAX + 1);
    assert_int_equal(fs_dir_set(&d, "f", &x), 0);
    assert_int_equal(fs_dir_encode(&d, &b, &l), -EINVAL);
    fs_inode_clear(&x);
    /* unsorted xattrs, a symlink by key, a key with size 0, bad mode */
    fx_file_text(&x, "x", 0);
    fx_xattr_add(&x, "b", "v", 1);
    fx_xattr_add(&x, "a", "v", 1);
    assert_false(fs_inode_valid(&x));
    fs_inode_clear(&x);
    fx_file_key(&x, 1, 0);
    assert_false(fs_inode_valid(&x));
    x.size = 1;
    assert_true(fs_inode_valid(&x));
    x.type = FS_T_SYMLINK;
    assert_false(fs_inode_valid(&x));
    x.type = FS_T_FILE;
    x.mode = 010000;
    assert_false(fs_inode_valid(&x));
    x.mode = 0;
    x.type = 4;
    assert_false(fs_inode_valid(&x));
    fs_inode_clear(&x);
    fs_dir_clear(&d);
}

/* ---- records written byte by byte ---- */

struct rec_inode {
    uint8_t type, ref;
    uint16_t mode;
    uint64_t size;
    size_t data_len; /* bytes written after the fixed part: key or inline */
    uint8_t nx;      /* xattrs written: "a", "b", ... with 1-byte values */
};

static void put_inode(struct wire_writer *w, const struct rec_inode *r)
{
    wire_put_u8(w, r->type);
    wire_put_u8(w, r->ref);
    wire_put_u16(w, r->mode);
    wire_put_u32(w, 1);
    wire_put_u32(w, 2);
    wire_put_u64(w, r->size);
    wire_put_u64(w, 3);
    wire_put_u64(w, 4);
    for (size_t i = 0; i < r->data_len; i++)
        wire_put_u8(w, 'd');
    wire_put_u8(w, r->nx);
    for (uint8_t i = 0; i < r->nx; i++) {
        char nm[3] = {(char)('a' + i / 26), (char)('a' + i % 26), 0};
        wire_put_u8(w, 2);
        wire_put_bytes(w, nm, 2);
        wire_put_u16(w, 1);
        wire_put_u8(w, 'v');
    }
}

/* A one-entry stream named name holding r. */
static size_t one_entry(const char *name, size_t nl, const struct rec_inode *r)
{
    struct wire_writer w;
    wire_writer_init(&w, raw, sizeof(raw));
    wire_put_u8(&w, 1);
    wire_put_u32(&w, 1);
    wire_put_u8(&w, (uint8_t)nl);
    wire_put_bytes(&w, name, nl);
    put_inode(&w, r);
    assert_true(wire_writer_ok(&w));
    return w.len;
}

static void expect_dir(size_t len, int want)
{
    struct fs_dir d;
    int rc = dir_decode_exact(raw, len, &d);
    assert_int_equal(rc, want);
    if (rc != 0)
        assert_int_equal(d.n, 0);
    fs_dir_clear(&d);
}

static void test_dir_rejects_inode(void **state)
{
    (void)state;
    static const struct {
        struct rec_inode r;
        int want;
    } cases[] = {
        {{FS_T_FILE, FS_REF_INLINE, 0644, 3, 3, 0}, 0},
        {{FS_T_FILE, FS_REF_EMPTY, 0644, 0, 0, 0}, 0},
        {{FS_T_FILE, FS_REF_KEY, 0644, 1, 32, 0}, 0},
        {{FS_T_DIR, FS_REF_EMPTY, 0755, 0, 0, 0}, 0},
        {{FS_T_SYMLINK, FS_REF_INLINE, 0777, 1, 1, 0}, 0},
        {{FS_T_FILE, FS_REF_INLINE, 07777, FS_INLINE_MAX, FS_INLINE_MAX, FS_XATTR_MAX}, 0},
        {{FS_T_SYMLINK, FS_REF_INLINE, 0777, FS_SYMLINK_MAX, FS_SYMLINK_MAX, 0}, 0},
        {{0, FS_REF_EMPTY, 0644, 0, 0, 0}, -EBADMSG}, /* type */
        {{4, FS_REF_EMPTY, 0644, 0, 0, 0}, -EBADMSG},
        {{FS_T_FILE, 3, 0644, 0, 0, 0}, -EBADMSG},              /* ref */
        {{FS_T_FILE, FS_REF_EMPTY, 010000, 0, 0, 0}, -EBADMSG}, /* mode */
        {{FS_T_FILE, FS_REF_EMPTY, 0644, 1, 0, 0}, -EBADMSG},   /* empty, size */
        {{FS_T_DIR, FS_REF_EMPTY, 0644, 5, 0, 0}, -EBADMSG},
        {{FS_T_FILE, FS_REF_INLINE, 0644, 0, 0, 0}, -EBADMSG}, /* inline 0 */
        {{FS_T_FILE, FS_REF_INLINE, 0644, FS_INLINE_MAX + 1, FS_INLINE_MAX + 1, 0}, -EBADMSG},
        {{FS_T_DIR, FS_REF_INLINE, 0644, FS_INLINE_MAX + 1, FS_INLINE_MAX + 1, 0}, -EBADMSG},
        {{FS_T_FILE, FS_REF_INLINE, 0644, 3, 2, 0}, -EBADMSG}, /* short data */
        {{FS_T_FILE, FS_REF_INLINE, 0644, 3, 4, 0}, -EBADMSG}, /* long data */
        {{FS_T_FILE, FS_REF_INLINE, 0644, UINT64_MAX, 10, 0}, -EBADMSG},
        {{FS_T_FILE, FS_REF_KEY, 0644, 0, 32, 0}, -EBADMSG}, /* key, size 0 */
        {{FS_T_FILE, FS_REF_KEY, 0644, 1, 31, 0}, -EBADMSG},
        {{FS_T_SYMLINK, FS_REF_EMPTY, 0777, 0, 0, 0}, -EBADMSG}, /* symlink */
        {{FS_T_SYMLINK, FS_REF_KEY, 0777, 10, 32, 0}, -EBADMSG},
        {{FS_T_SYMLINK, FS_REF_INLINE, 0777, FS_SYMLINK_MAX + 1, FS_SYMLINK_MAX + 1, 0}, -EBADMSG},
        {{FS_T_FILE, FS_REF_EMPTY, 0644, 0, 0, FS_XATTR_MAX + 1}, -EBADMSG}, /* xattrs */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t l = one_entry("f", 1, &cases[i].r);
        expect_dir(l, cases[i].want);
    }
}

static void test_dir_rejects_names(void **state)
{
    (void)state;
    const struct rec_inode r = {FS_T_FILE, FS_REF_EMPTY, 0644, 0, 0, 0};
    char longname[FS_NAME_MAX];
    memset(longname, 'n', sizeof(longname));

    expect_dir(one_entry("f", 1, &r), 0);
    expect_dir(one_entry(longname, FS_NAME_MAX, &r), 0);
    expect_dir(one_entry("...", 3, &r), 0);
    expect_dir(one_entry("", 0, &r), -EBADMSG);
    expect_dir(one_entry(".", 1, &r), -EBADMSG);
    expect_dir(one_entry("..", 2, &r), -EBADMSG);
    expect_dir(one_entry("a/b", 3, &r), -EBADMSG);
    expect_dir(one_entry("a\0b", 3, &r), -EBADMSG);

    /* order: strictly increasing by strcmp */
    const char *pairs[][2] = {{"a", "b"},  {"b", "a"}, {"a", "a"},       {"a", "ab"},
                              {"ab", "a"}, {"Z", "a"}, {"\xc3\xa9", "z"}};
    const int want[] = {0, -EBADMSG, -EBADMSG, 0, -EBADMSG, 0, -EBADMSG};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct wire_writer w;
        wire_writer_init(&w, raw, sizeof(raw));
        wire_put_u8(&w, 1);
        wire_put_u32(&w, 2);
        for (int k = 0; k < 2; k++) {
            wire_put_u8(&w, (uint8_t)strlen(pairs[i][k]));
            wire_put_bytes(&w, pairs[i][k], strlen(pairs[i][k]));
            put_inode(&w, &r);
        }
        expect_dir(w.len, want[i]);
    }

    /* format, count, trailing bytes */
    size_t l = one_entry("f", 1, &r);
    raw[0] = 2;
    expect_dir(l, -EBADMSG);
    raw[0] = 1;
    raw[l] = 0;
    expect_dir(l + 1, -EBADMSG);
    raw[4] = 2; /* two entries announced, one there */
    expect_dir(l, -EBADMSG);
    raw[1] = raw[2] = raw[3] = raw[4] = 0xff; /* refused before allocating */
    expect_dir(l, -EBADMSG);
    raw[1] = raw[2] = raw[3] = raw[4] = 0;
    expect_dir(l, -EBADMSG); /* zero entries, then trailing bytes */
    expect_dir(5, 0);
    expect_dir(0, -EBADMSG);
}

static void test_dir_rejects_xattrs(void **state)
{
    (void)state;
    const struct {
        const char *names[3];
        size_t nlen[3];
        uint16_t vlen;
        int want;
    } cases[] = {
        {{"a", "b", "c"}, {1, 1, 1}, 0, 0},
        {{"a", "b", "c"}, {1, 1, 1}, FS_XATTR_VALUE_MAX, 0},
        {{"a", "b", "c"}, {1, 1, 1}, FS_XATTR_VALUE_MAX + 1, -EBADMSG},
        {{"a", "c", "b"}, {1, 1, 1}, 0, -EBADMSG},
        {{"a", "a", "b"}, {1, 1, 1}, 0, -EBADMSG},
        {{"a", "", "b"}, {1, 0, 1}, 0, -EBADMSG},
        {{"a", "b\0", "c"}, {1, 2, 1}, 0, -EBADMSG},
        {{"a", "b", "c"}, {1, 1, 1}, 0, 0},
    };
    static uint8_t val[FS_XATTR_VALUE_MAX + 1];
    const struct rec_inode r = {FS_T_FILE, FS_REF_EMPTY, 0644, 0, 0, 0};
    char longname[FS_XATTR_NAME_MAX];
    memset(longname, 'x', sizeof(longname));

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t l = one_entry("f", 1, &r);
        struct wire_writer w;
        wire_writer_init(&w, raw, sizeof(raw));
        w.len = l - 1; /* over the xattr count */
        wire_put_u8(&w, 3);
        for (int k = 0; k < 3; k++) {
            bool last = i == 7 && k == 2; /* the longest name */
            wire_put_u8(&w, (uint8_t)(last ? sizeof(longname) : cases[i].nlen[k]));
            wire_put_bytes(&w, last ? longname : cases[i].names[k],
                           last ? sizeof(longname) : cases[i].nlen[k]);
            wire_put_u16(&w, cases[i].vlen);
            wire_put_bytes(&w, val, cases[i].vlen);
        }
        expect_dir(w.len, cases[i].want);
        expect_dir(w.len - 1, -EBADMSG);
    }
}

/* Every prefix of a valid stream is refused. */
static void test_dir_truncated(void **state)
{
    (void)state;
    struct fs_dir d;
    uint8_t *b;
    size_t l;

    full_dir(&d);
    assert_int_equal(fs_dir_encode(&d, &b, &l), 0);
    fs_dir_clear(&d);
    for (size_t n = 0; n < l; n++) {
        assert_int_equal(dir_decode_exact(b, n, &d), -EBADMSG);
        fs_dir_clear(&d);
    }
    free(b);
}

/* ---- commits ---- */

static void make_commit(struct fs_commit *c, uint8_t np, size_t mlen)
{
    memset(c, 0, sizeof(*c));
    c->version = 0x1122334455667788ull;
    c->time_ns = -42;
    memset(c->author.b, 0xab, SIG_PUB_LEN);
    c->nparents = np;
    for (uint8_t i = 0; i < np && i < FS_COMMIT_PARENTS; i++)
        memset(c->parents[i].b, 0x10 + i, ID_BYTES);
    memset(c->message, 'm', mlen);
    c->message[mlen] = '\0';
    fx_dir_inode(&c->root, 0755, 77);
    c->root.ref = FS_REF_KEY;
    c->root.size = 1234;
    memset(c->root.key.b, 0x99, ID_BYTES);
    fx_xattr_add(&c->root, "user.tag", "t", 1);
}

static void assert_commit_equal(const struct fs_commit *a, const struct fs_commit *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->time_ns, b->time_ns);
    assert_memory_equal(a->author.b, b->author.b, SIG_PUB_LEN);
    assert_int_equal(a->nparents, b->nparents);
    for (uint8_t i = 0; i < a->nparents; i++)
        assert_true(id_eq(&a->parents[i], &b->parents[i]));
    assert_string_equal(a->message, b->message);
    assert_true(fs_inode_equal(&a->root, &b->root));
}

static void test_commit_round_trip(void **state)
{
    (void)state;
    const size_t mlens[] = {0, 1, FS_MESSAGE_MAX};
    for (uint8_t np = 0; np <= FS_COMMIT_PARENTS; np++) {
        for (size_t k = 0; k < 3; k++) {
            struct fs_commit c, back;
            uint8_t *b, *b2;
            size_t l, l2;
            make_commit(&c, np, mlens[k]);
            assert_int_equal(fs_commit_encode(&c, &b, &l), 0);
            assert_int_equal(l, 52 + np * 32u + mlens[k] + 37 + 32 + 1 + 8 + 2 + 1);
            assert_int_equal(commit_decode_exact(b, l, &back), 0);
            assert_commit_equal(&c, &back);
            assert_int_equal(fs_commit_encode(&back, &b2, &l2), 0);
            assert_int_equal(l, l2);
            assert_memory_equal(b, b2, l);
            /* every prefix, and one trailing byte, are refused */
            for (size_t n = 0; n < l; n++)
                assert_int_equal(commit_decode_exact(b, n, &back), -EBADMSG);
            uint8_t *t = malloc(l + 1);
            assert_non_null(t);
            memcpy(t, b, l);
            t[l] = 0;
            assert_int_equal(commit_decode_exact(t, l + 1, &back), -EBADMSG);
            free(t);
            fs_commit_clear(&back);
            fs_commit_clear(&c);
            free(b);
            free(b2);
        }
    }
}

static void test_commit_rejects(void **state)
{
    (void)state;
    struct fs_commit c, back;
    uint8_t *b;
    size_t l;

    /* the encoder's refusals */
    make_commit(&c, 3, 0);
    assert_int_equal(fs_commit_encode(&c, &b, &l), -EINVAL);
    c.nparents = 1;
    c.root.type = FS_T_FILE;
    assert_int_equal(fs_commit_encode(&c, &b, &l), -EINVAL);
    c.root.type = FS_T_DIR;
    c.root.size = 0; /* a key with no bytes */
    assert_int_equal(fs_commit_encode(&c, &b, &l), -EINVAL);
    c.root.size = 1234;

    /* the decoder's, patched into a valid payload */
    memcpy(c.message, "abc", 4);
    assert_int_equal(fs_commit_encode(&c, &b, &l), 0);
    const size_t root_off = 52 + 32 + 3;
    struct {
        size_t off;
        uint8_t val;
    } patch[] = {
        {0, 0},
        {0, 2}, /* format */
        {1, 3},
        {1, 2},
        {1, 0}, /* parents: too many; a count that misplaces the rest */
        {2, 0x02},
        {3, 0x01},
        {3, 0x04},             /* message length */
        {52 + 32 + 1, 0},      /* NUL inside the message */
        {root_off, FS_T_FILE}, /* root not a directory */
        {root_off, 9},
        {root_off + 1, FS_REF_INLINE},
    };
    for (size_t i = 0; i < sizeof(patch) / sizeof(patch[0]); i++) {
        uint8_t *p = malloc(l);
        assert_non_null(p);
        memcpy(p, b, l);
        p[patch[i].off] = patch[i].val;
        memset(&back, 0x5a, sizeof(back));
        assert_int_equal(commit_decode_exact(p, l, &back), -EBADMSG);
        assert_int_equal(back.nparents, 0x5a); /* untouched */
        free(p);
    }
    free(b);
    /* a message of FS_MESSAGE_MAX + 1 bytes, written by hand */
    struct wire_writer w;
    wire_writer_init(&w, raw, sizeof(raw));
    wire_put_u8(&w, 1);
    wire_put_u8(&w, 0);
    wire_put_u16(&w, FS_MESSAGE_MAX + 1);
    wire_put_u64(&w, 1);
    wire_put_u64(&w, 1);
    for (int i = 0; i < SIG_PUB_LEN; i++)
        wire_put_u8(&w, 1);
    for (unsigned i = 0; i < FS_MESSAGE_MAX + 1; i++)
        wire_put_u8(&w, 'm');
    const struct rec_inode r = {FS_T_DIR, FS_REF_EMPTY, 0755, 0, 0, 0};
    put_inode(&w, &r);
    assert_int_equal(commit_decode_exact(raw, w.len, &back), -EBADMSG);
    raw[3] = FS_MESSAGE_MAX & 0xff; /* the same, with 512 announced: a trailing byte */
    raw[2] = FS_MESSAGE_MAX >> 8;
    assert_int_equal(commit_decode_exact(raw, w.len, &back), -EBADMSG);
    fs_commit_clear(&c);
}

/* ---- root payload, holes ---- */

static void test_rootref(void **state)
{
    (void)state;
    struct id k, back;
    uint8_t out[FS_ROOTREF_LEN];

    for (int i = 0; i < ID_BYTES; i++)
        k.b[i] = (uint8_t)(i * 7 + 1);
    fs_rootref_encode(&k, out);
    assert_int_equal(out[0], FS_FORMAT);
    assert_memory_equal(out + 1, k.b, ID_BYTES);
    assert_int_equal(fs_rootref_decode(out, sizeof(out), &back), 0);
    assert_true(id_eq(&k, &back));
    memset(&back, 0, sizeof(back));
    for (size_t n = 0; n < sizeof(out); n++)
        assert_int_equal(fs_rootref_decode(out, n, &back), -EBADMSG);
    uint8_t longer[FS_ROOTREF_LEN + 1] = {0};
    memcpy(longer, out, sizeof(out));
    assert_int_equal(fs_rootref_decode(longer, sizeof(longer), &back), -EBADMSG);
    out[0] = 2;
    assert_int_equal(fs_rootref_decode(out, sizeof(out), &back), -EBADMSG);
    assert_true(id_is_zero(&back)); /* untouched on an error */

    struct id z = {{0}};
    assert_true(fs_key_is_hole(&z));
    z.b[31] = 1;
    assert_false(fs_key_is_hole(&z));
    z.b[31] = 0;
    z.b[0] = 0x80;
    assert_false(fs_key_is_hole(&z));
}

/* ---- random and mutated inputs ---- */

/* Whatever decodes re-encodes to the same bytes (one spelling each). */
static void check_any(const uint8_t *p, size_t len)
{
    struct fs_dir d;
    struct fs_commit c;
    struct id k;
    uint8_t *b;
    size_t l;

    int rc = dir_decode_exact(p, len, &d);
    assert_true(rc == 0 || rc == -EBADMSG);
    if (rc == 0) {
        assert_int_equal(fs_dir_encode(&d, &b, &l), 0);
        assert_int_equal(l, len);
        assert_memory_equal(b, p, len);
        free(b);
    }
    fs_dir_clear(&d);
    rc = commit_decode_exact(p, len, &c);
    assert_true(rc == 0 || rc == -EBADMSG);
    if (rc == 0) {
        assert_int_equal(fs_commit_encode(&c, &b, &l), 0);
        assert_int_equal(l, len);
        assert_memory_equal(b, p, len);
        free(b);
        fs_commit_clear(&c);
    }
    rc = fs_rootref_decode(p, len, &k);
    assert_true(rc == 0 || rc == -EBADMSG);
}

static void test_random_inputs(void **state)
{
    (void)state;
    uint64_t seed = 20261121, rs = seed;
    struct fs_dir d;
    struct fs_commit c;
    uint8_t *valid[2];
    size_t vlen[2];
    uint8_t *buf = malloc(1u << 16);
    unsigned decoded = 0;

    print_message("seed %llu\n", (unsigned long long)seed);
    assert_non_null(buf);
    full_dir(&d);
    assert_int_equal(fs_dir_encode(&d, &valid[0], &vlen[0]), 0);
    fs_dir_clear(&d);
    make_commit(&c, 2, 10);
    assert_int_equal(fs_commit_encode(&c, &valid[1], &vlen[1]), 0);
    fs_commit_clear(&c);

    for (int i = 0; i < 20000; i++) {
        size_t len;
        if (i % 2 == 0) { /* noise, often with a plausible header */
            len = fx_rand(&rs) % 512;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)fx_rand(&rs);
            if (len > 5 && i % 4 == 0) {
                buf[0] = 1;
                buf[1] = buf[2] = buf[3] = 0;
                buf[4] = (uint8_t)(fx_rand(&rs) % 4);
            }
        } else { /* a valid record with a few bytes changed */
            const int v = (i / 2) % 2;
            len = vlen[v];
            memcpy(buf, valid[v], len);
            unsigned flips = 1 + fx_rand(&rs) % 4;
            for (unsigned k = 0; k < flips; k++) {
                uint64_t x = fx_rand(&rs);
                buf[x % len] = (uint8_t)(x >> 32);
            }
        }
        check_any(buf, len);
        struct fs_dir t;
        if (dir_decode_exact(buf, len, &t) == 0)
            decoded++;
        fs_dir_clear(&t);
    }
    print_message("%u of 20000 decoded as directories\n", decoded);
    assert_true(decoded > 0);
    free(valid[0]);
    free(valid[1]);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_helpers),       cmocka_unit_test(test_inode_copy_equal),
        cmocka_unit_test(test_dir_round_trip),    cmocka_unit_test(test_dir_many),
        cmocka_unit_test(test_encode_limits),     cmocka_unit_test(test_dir_rejects_inode),
        cmocka_unit_test(test_dir_rejects_names), cmocka_unit_test(test_dir_rejects_xattrs),
        cmocka_unit_test(test_dir_truncated),     cmocka_unit_test(test_commit_round_trip),
        cmocka_unit_test(test_commit_rejects),    cmocka_unit_test(test_rootref),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
