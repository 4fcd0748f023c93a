/* gen_fsobj_corpus.c — writes the seed corpus of fuzz_fsobj.
 *
 *   gen_fsobj_corpus DIR
 *
 * writes into DIR, one file each: directory streams (empty; one entry of
 * every type and reference kind with xattrs; a directory holding another
 * stream inline; many entries), commits (no parent, two parents with a
 * message and an inline root), a root payload, and a near miss of each (a
 * byte short, a trailing byte). The output is deterministic. The files are
 * committed in tests/fuzz/corpus/fsobj/; run this again (and commit the
 * result) when a format changes:
 *
 *   rm -f tests/fuzz/corpus/fsobj/[a-z]*
 *   gen_fsobj_corpus tests/fuzz/corpus/fsobj
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/obj.h"

static const char *out_dir;
static int status;

static void emit(const char *name, const void *p, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        status = 1;
        return;
    }
    if (fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "%s: write failed\n", path);
        status = 1;
    }
}

static void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "gen_fsobj_corpus: %s failed: %d\n", what, rc);
        exit(1);
    }
}

/* The record, then a byte short and with a trailing byte. */
static void emit3(const char *name, const uint8_t *p, size_t len)
{
    char n2[128];
    uint8_t *t = malloc(len + 1);
    if (!t)
        exit(1);
    memcpy(t, p, len);
    t[len] = 0;
    emit(name, p, len);
    snprintf(n2, sizeof(n2), "%s_short", name);
    emit(n2, p, len - 1);
    snprintf(n2, sizeof(n2), "%s_trailing", name);
    emit(n2, t, len + 1);
    free(t);
}

static void inode(struct fs_inode *ino, uint8_t type, const char *text)
{
    memset(ino, 0, sizeof(*ino));
    ino->type = type;
    ino->mode = type == FS_T_DIR ? 0755 : 0644;
    ino->uid = 1000;
    ino->gid = 1000;
    ino->mtime_ns = 1795000000123456789ll;
    ino->ctime_ns = 1795000000123456789ll;
    if (text && *text) {
        ino->ref = FS_REF_INLINE;
        ino->size = strlen(text);
        ino->inline_data = (uint8_t *)strdup(text);
        if (!ino->inline_data)
            exit(1);
    }
}

static void set(struct fs_dir *d, const char *name, struct fs_inode *ino)
{
    check(fs_dir_set(d, name, ino), "fs_dir_set");
    fs_inode_clear(ino);
}

static void xattr(struct fs_inode *ino, const char *name, const char *value)
{
    struct fs_xattr *x = realloc(ino->xattr, (ino->nxattr + 1u) * sizeof(*x));
    if (!x)
        exit(1);
    ino->xattr = x;
    x = &x[ino->nxattr++];
    memset(x, 0, sizeof(*x));
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->len = (uint16_t)strlen(value);
    x->value = (uint8_t *)strdup(value);
    if (!x->value)
        exit(1);
}

int main(int argc, char **argv)
{
    struct fs_dir d, sub;
    struct fs_inode ino;
    uint8_t *b, *sb;
    size_t l, sl;
    char name[32];

    if (argc != 2) {
        fprintf(stderr, "usage: gen_fsobj_corpus DIR\n");
        return 2;
    }
    out_dir = argv[1];

    fs_dir_init(&d);
    check(fs_dir_encode(&d, &b, &l), "encode");
    emit3("dir_empty", b, l);
    free(b);

    /* a subdirectory's stream, held inline by its parent */
    fs_dir_init(&sub);
    inode(&ino, FS_T_FILE, "inner");
    set(&sub, "inner.txt", &ino);
    check(fs_dir_encode(&sub, &sb, &sl), "encode");
    fs_dir_clear(&sub);

    inode(&ino, FS_T_FILE, "hello, world\n");
    xattr(&ino, "comment", "seed");
    xattr(&ino, "mime_type", "text/plain");
    set(&d, "hello.txt", &ino);
    inode(&ino, FS_T_FILE, NULL);
    set(&d, "empty", &ino);
    inode(&ino, FS_T_FILE, NULL);
    ino.ref = FS_REF_KEY;
    ino.size = 1000000;
    memset(ino.key.b, 0x3c, ID_BYTES);
    set(&d, "big.bin", &ino);
    inode(&ino, FS_T_SYMLINK, "hello.txt");
    ino.mode = 0777;
    set(&d, "link", &ino);
    inode(&ino, FS_T_DIR, NULL);
    set(&d, "emptydir", &ino);
    inode(&ino, FS_T_DIR, NULL);
    ino.ref = FS_REF_INLINE;
    ino.size = sl;
    ino.inline_data = sb;
    set(&d, "sub", &ino);
    inode(&ino, FS_T_DIR, NULL);
    ino.ref = FS_REF_KEY;
    ino.size = 70000;
    memset(ino.key.b, 0xd1, ID_BYTES);
    set(&d, "bigdir", &ino);
    check(fs_dir_encode(&d, &b, &l), "encode");
    emit3("dir_mixed", b, l);
    free(b);

    /* a commit whose root holds that directory inline */
    struct fs_commit c;
    memset(&c, 0, sizeof(c));
    c.version = 7;
    c.time_ns = 1795000000000000000ll;
    memset(c.author.b, 0xa7, SIG_PUB_LEN);
    c.nparents = 2;
    memset(c.parents[0].b, 0x11, ID_BYTES);
    memset(c.parents[1].b, 0x22, ID_BYTES);
    snprintf(c.message, sizeof(c.message), "merge of 6 and 5");
    check(fs_dir_encode(&d, &b, &l), "encode");
    inode(&c.root, FS_T_DIR, NULL);
    c.root.ref = FS_REF_INLINE;
    c.root.size = l;
    c.root.inline_data = b;
    check(fs_commit_encode(&c, &b, &l), "commit encode");
    emit3("commit_merge", b, l);
    free(b);
    fs_commit_clear(&c);
    fs_dir_clear(&d);

    memset(&c, 0, sizeof(c));
    c.version = 1;
    inode(&c.root, FS_T_DIR, NULL);
    check(fs_commit_encode(&c, &b, &l), "commit encode");
    emit3("commit_first", b, l);
    free(b);
    fs_commit_clear(&c);

    fs_dir_init(&d);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "file-%02d", i);
        inode(&ino, FS_T_FILE, name);
        set(&d, name, &ino);
    }
    check(fs_dir_encode(&d, &b, &l), "encode");
    emit3("dir_many", b, l);
    free(b);
    fs_dir_clear(&d);

    struct id k;
    uint8_t rr[FS_ROOTREF_LEN];
    for (int i = 0; i < ID_BYTES; i++)
        k.b[i] = (uint8_t)(0x40 + i);
    fs_rootref_encode(&k, rr);
    emit3("rootref", rr, sizeof(rr));
    return status;
}
