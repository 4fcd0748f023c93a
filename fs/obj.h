/* obj.h — the file system's objects on content-hash blocks (DESIGN.md
 * section 7; byte by byte in docs/formats.md, "File system objects").
 *
 *   root block (signed, versioned; block.h)   payload: struct fs_rootref
 *     -> commit block (content block of kind BLOCK_KIND_FS_COMMIT)
 *          version, time, author, parents, and the root directory's inode
 *     -> a directory's entries: a byte stream (fs_dir_encode), held inline
 *        in the parent's entry when small, else stored like a file
 *     -> a file's bytes: inline when small (<= FS_INLINE_MAX), else a FILE
 *        manifest (block.h: chunks of BLOCK_KIND_DATA, indirect blocks for
 *        large files), so `coopfs lookup KEY` fetches any file or
 *        directory stream of a mount. An all-zero chunk key in a manifest
 *        is a hole: FS_CHUNK bytes of zeros (or fewer for the last chunk),
 *        never stored.
 *
 * Everything here is pure: encoders, decoders and checks, no I/O. Every
 * decoder takes untrusted bytes (from the ring or the local journal) and
 * returns -EBADMSG for anything malformed, never reading out of bounds;
 * tests/fuzz/fuzz_fsobj.c fuzzes them.
 */
#ifndef COOPFS_FS_OBJ_H
#define COOPFS_FS_OBJ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blockstore/block.h"
#include "common/id.h"
#include "common/sig.h"

#define FS_FORMAT          1
#define FS_CHUNK           BLOCK_MAX_DATA /* 256 KiB chunks of file bytes */
#define FS_INLINE_MAX      4096u          /* file bytes or directory stream kept inline */
#define FS_NAME_MAX        255u
#define FS_SYMLINK_MAX     4095u
#define FS_XATTR_NAME_MAX  255u
#define FS_XATTR_VALUE_MAX 4096u
#define FS_XATTR_MAX       32u  /* user xattrs per inode */
#define FS_COMMIT_PARENTS  2u   /* a merge commit has two */
#define FS_MESSAGE_MAX     512u

#define BLOCK_KIND_FS_COMMIT 16 /* within BLOCK_KIND_FS_FIRST..LAST */

enum fs_type { FS_T_FILE = 1, FS_T_DIR = 2, FS_T_SYMLINK = 3 };

/* Where an inode's bytes are: a file's data, a directory's entry stream,
 * a symlink's target (always inline). */
enum fs_ref_kind {
    FS_REF_EMPTY = 0,  /* no bytes */
    FS_REF_INLINE = 1, /* inline[0..inline_len) */
    FS_REF_KEY = 2,    /* key of a FILE manifest */
};

struct fs_xattr {
    char name[FS_XATTR_NAME_MAX + 1]; /* NUL-terminated, without the "user." prefix */
    uint16_t len;
    uint8_t *value; /* malloc'd, len bytes */
};

/* One inode as a directory entry holds it (there are no hard links: an
 * inode has exactly one name). */
struct fs_inode {
    uint8_t type;     /* enum fs_type */
    uint32_t mode;    /* permission bits only (07777) */
    uint32_t uid, gid;
    uint64_t size;    /* file: bytes; dir: stream length; symlink: target length */
    int64_t mtime_ns; /* nanoseconds since the epoch */
    int64_t ctime_ns;
    uint8_t ref;      /* enum fs_ref_kind */
    struct id key;    /* FS_REF_KEY */
    uint8_t *inline_data; /* FS_REF_INLINE: malloc'd, size bytes (<= FS_INLINE_MAX,
                             <= FS_SYMLINK_MAX for symlinks) */
    uint16_t nxattr;
    struct fs_xattr *xattr; /* malloc'd array of nxattr, sorted by name */
};

struct fs_dirent {
    char *name; /* malloc'd, NUL-terminated, 1..FS_NAME_MAX bytes, no '/' or NUL,
                   not "." or ".." */
    struct fs_inode ino;
};

struct fs_dir {
    size_t n, cap;
    struct fs_dirent *e; /* sorted by name (strcmp), names unique */
};

/* The rules every decoder holds an inode to (and encoders check):
 *   type FILE, DIR or SYMLINK; mode within 07777 (stored as a u16);
 *   EMPTY:  size 0 (a file or a directory with no bytes; not a symlink);
 *   INLINE: size 1..FS_INLINE_MAX bytes (symlink: 1..FS_SYMLINK_MAX),
 *           inline_data holds them (an empty file is EMPTY, not INLINE);
 *   KEY:    size >= 1, key names a FILE manifest; never a symlink;
 *   at most FS_XATTR_MAX xattrs, names 1..FS_XATTR_NAME_MAX bytes without
 *   NUL, sorted strictly by strcmp, values <= FS_XATTR_VALUE_MAX bytes.
 * fs_inode_valid tests them; fs_name_valid tests an entry name of len
 * bytes (1..FS_NAME_MAX, no '/' or NUL, not "." or ".."). */
bool fs_inode_valid(const struct fs_inode *ino);
bool fs_name_valid(const char *name, size_t len);

/* Frees what an inode owns (inline data, xattrs) and zeroes it. */
void fs_inode_clear(struct fs_inode *ino);
/* Deep copy. Returns 0 or -ENOMEM. */
int fs_inode_copy(struct fs_inode *dst, const struct fs_inode *src);
/* True if a and b are the same inode byte for byte (type, mode, owner,
 * size, times, reference, xattrs): what a merge compares. */
bool fs_inode_equal(const struct fs_inode *a, const struct fs_inode *b);
/* True if a and b agree on type, mode, owner, times and xattrs (not size
 * nor reference): a directory's own attributes, as a merge compares them. */
bool fs_inode_attr_equal(const struct fs_inode *a, const struct fs_inode *b);

void fs_dir_init(struct fs_dir *d);
void fs_dir_clear(struct fs_dir *d);
/* Binary search; the entry or NULL. */
struct fs_dirent *fs_dir_find(const struct fs_dir *d, const char *name);
/* Inserts or replaces name with a copy of ino (the dir takes a deep copy).
 * Returns 0, -EINVAL (bad name), -ENOMEM. */
int fs_dir_set(struct fs_dir *d, const char *name, const struct fs_inode *ino);
/* Removes name; 0 or -ENOENT. */
int fs_dir_remove(struct fs_dir *d, const char *name);

/* The directory stream: encodes d into a malloc'd buffer (*out, *len).
 * Returns 0, -ENOMEM, or -EINVAL if an entry breaks a rule the decoder
 * holds it to (bad or unsorted name, fs_inode_valid false), so nothing is
 * written that would not read back. */
int fs_dir_encode(const struct fs_dir *d, uint8_t **out, size_t *len);
/* Decodes a stream into d (initialized by the call). Checks names (valid,
 * sorted, unique), types, reference kinds, sizes against inline lengths,
 * xattr counts and lengths. Returns 0, -EBADMSG, -ENOMEM; on an error d is
 * left empty (fs_dir_clear is harmless). */
int fs_dir_decode(const uint8_t *bytes, size_t len, struct fs_dir *d);

/* A commit: the payload of a content block of kind BLOCK_KIND_FS_COMMIT. */
struct fs_commit {
    uint64_t version; /* the root version it was published as */
    int64_t time_ns;
    struct sig_pub author;
    uint8_t nparents; /* 0..FS_COMMIT_PARENTS */
    struct id parents[FS_COMMIT_PARENTS];
    struct fs_inode root; /* the root directory (type FS_T_DIR) */
    char message[FS_MESSAGE_MAX + 1]; /* NUL-terminated, may be empty */
};
/* Encodes c as a commit payload, malloc'd. Returns 0 or -ENOMEM, -EINVAL
 * (root not a directory or not fs_inode_valid, too many parents). */
int fs_commit_encode(const struct fs_commit *c, uint8_t **out, size_t *len);
/* Decodes; c->root owns allocations (fs_commit_clear). 0, -EBADMSG, -ENOMEM
 * (*c untouched on an error). The message may not contain NUL. */
int fs_commit_decode(const uint8_t *bytes, size_t len, struct fs_commit *c);
void fs_commit_clear(struct fs_commit *c);

/* The payload of the mount's root block: format byte, then the commit key.
 * FS_ROOTREF_LEN bytes. */
#define FS_ROOTREF_LEN (1 + ID_BYTES)
void fs_rootref_encode(const struct id *commit, uint8_t out[FS_ROOTREF_LEN]);
int fs_rootref_decode(const uint8_t *bytes, size_t len, struct id *commit);

/* True for the all-zero key that stands for a hole in a manifest. */
bool fs_key_is_hole(const struct id *k);

#endif
