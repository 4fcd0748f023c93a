/* merge.h — the three-way merge of two directory trees against their
 * common base, for a publish whose root compare-and-swap lost (DESIGN.md
 * section 7): "ours" is the local tree, "theirs" the one already
 * published, "base" the commit both grew from.
 *
 * Rules, per name in the union of the three directories, comparing whole
 * inodes with fs_inode_equal (NULL = no entry):
 *   1. ours == theirs: take it (the same change on both sides, or none).
 *   2. ours == base: take theirs (including its deletion).
 *   3. theirs == base: take ours (including its deletion).
 *   Otherwise both sides changed the name differently:
 *   4. deleted on one side, changed on the other: keep the changed one
 *      (nothing lost).
 *   5. both directories: merge them recursively (against the base entry
 *      when it is a directory, else against an empty one).
 *   6. a directory on one side, a file or symlink on the other: the
 *      directory keeps the name, the other goes under the conflict name.
 *   7. both files or symlinks (edited both sides, or added both sides with
 *      different content): theirs keeps the name, ours goes under the
 *      conflict name.
 * The conflict name is NAME.conflict-TAG, then NAME.conflict-TAG-2, -3, ...
 * until it is free in the merged directory (conflict copies are placed
 * after every plain name, so they never displace one). NAME is cut (at a
 * UTF-8 boundary) when the whole would pass FS_NAME_MAX; a '/' in TAG
 * becomes '_', and TAG is cut to 64 bytes.
 * Each rule 6 or 7 counts one conflict; rule 4 does not (both versions
 * are kept in a sense: the change survives, the deletion is undone).
 *
 * A merged directory's own attributes (mode, owner, times, xattrs) are
 * theirs unless only ours changed them (fs_inode_attr_equal against the
 * base). A directory is loaded only when it must be: when ours equals
 * base, theirs is taken whole (and the other way round), and equal sides
 * are taken as they are, so subtrees one side did not touch are never
 * fetched.
 */
#ifndef COOPFS_FS_MERGE_H
#define COOPFS_FS_MERGE_H

#include "fs/obj.h"

struct fs_merge_io {
    /* Loads the entries of a directory inode (fetch its stream: inline, or
     * a FILE manifest through the ring; an EMPTY directory has none) into
     * out (initialized by the call). 0 or -errno. */
    int (*load_dir)(void *ctx, const struct fs_inode *dir, struct fs_dir *out);
    /* Stores a directory's entries and sets *dir's ref/key/size/inline_data
     * for them (inline when small). *dir arrives with its attributes set,
     * ref FS_REF_EMPTY, size 0 and no inline data. 0 or -errno. */
    int (*store_dir)(void *ctx, const struct fs_dir *d, struct fs_inode *dir);
    void *ctx;
};

/* Merges directory inodes ours and theirs against base. base may be NULL
 * (no common ancestor: treated as empty; a base that is not a directory is
 * treated the same). Sets *out to the merged directory inode, which the
 * caller clears with fs_inode_clear. conflict_tag names the loser of a
 * conflict (see above; NULL or "" gives NAME.conflict). Sets *nconflicts
 * (may be NULL) to the number of conflicts, on success only. Returns 0, -EINVAL (ours or theirs not
 * a directory), -ENOMEM, or an error of io. *out is written only on success. */
int fs_merge3(const struct fs_merge_io *io, const struct fs_inode *base,
              const struct fs_inode *ours, const struct fs_inode *theirs, const char *conflict_tag,
              struct fs_inode *out, unsigned *nconflicts);

#endif
