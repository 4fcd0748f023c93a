/* fs_fx.h — inodes and directories for the fs/ unit tests (shared by
 * test_obj.c and test_merge.c). Every helper asserts on failure. */
#ifndef COOPFS_TESTS_FS_FX_H
#define COOPFS_TESTS_FS_FX_H

#include <stddef.h>
#include <stdint.h>

#include "fs/obj.h"

/* xorshift64*: a reproducible stream from a seed. */
uint64_t fx_rand(uint64_t *state);

/* A regular file with inline bytes (len 1..FS_INLINE_MAX; 0 makes EMPTY). */
void fx_file_inline(struct fs_inode *ino, const void *data, size_t len);
/* A file from text (inline; "" is EMPTY), mtime set to mtime. */
void fx_file_text(struct fs_inode *ino, const char *text, int64_t mtime);
/* A file by key: every key byte is tag, size bytes. */
void fx_file_key(struct fs_inode *ino, uint8_t tag, uint64_t size);
void fx_symlink(struct fs_inode *ino, const char *target);
/* A directory inode with no reference yet (EMPTY). */
void fx_dir_inode(struct fs_inode *ino, uint32_t mode, int64_t mtime);
/* Appends an xattr (keep names in order) with value[0..len). */
void fx_xattr_add(struct fs_inode *ino, const char *name, const void *value, uint16_t len);

#endif
