/* fs_fx.c — inodes for the fs/ unit tests (fs_fx.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fs_fx.h"

uint64_t fx_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void base(struct fs_inode *ino, uint8_t type)
{
    memset(ino, 0, sizeof(*ino));
    ino->type = type;
    ino->mode = type == FS_T_DIR ? 0755 : 0644;
    ino->uid = 1000;
    ino->gid = 100;
    ino->mtime_ns = 1700000000000000000ll;
    ino->ctime_ns = 1700000000000000001ll;
}

void fx_file_inline(struct fs_inode *ino, const void *data, size_t len)
{
    base(ino, FS_T_FILE);
    if (len == 0)
        return;
    ino->ref = FS_REF_INLINE;
    ino->size = len;
    ino->inline_data = malloc(len);
    assert_non_null(ino->inline_data);
    memcpy(ino->inline_data, data, len);
}

void fx_file_text(struct fs_inode *ino, const char *text, int64_t mtime)
{
    fx_file_inline(ino, text, strlen(text));
    ino->mtime_ns = mtime;
}

void fx_file_key(struct fs_inode *ino, uint8_t tag, uint64_t size)
{
    base(ino, FS_T_FILE);
    ino->ref = FS_REF_KEY;
    ino->size = size;
    memset(ino->key.b, tag, ID_BYTES);
}

void fx_symlink(struct fs_inode *ino, const char *target)
{
    fx_file_inline(ino, target, strlen(target));
    ino->type = FS_T_SYMLINK;
    ino->mode = 0777;
}

void fx_dir_inode(struct fs_inode *ino, uint32_t mode, int64_t mtime)
{
    base(ino, FS_T_DIR);
    ino->mode = mode;
    ino->mtime_ns = mtime;
}

void fx_xattr_add(struct fs_inode *ino, const char *name, const void *value, uint16_t len)
{
    struct fs_xattr *x = realloc(ino->xattr, (ino->nxattr + 1u) * sizeof(*x));
    assert_non_null(x);
    ino->xattr = x;
    x = &x[ino->nxattr++];
    memset(x, 0, sizeof(*x));
    assert_true(strlen(name) < sizeof(x->name));
    strcpy(x->name, name);
    x->len = len;
    if (len) {
        x->value = malloc(len);
        assert_non_null(x->value);
        memcpy(x->value, value, len);
    }
}
