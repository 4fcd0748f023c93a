/* passthrough.c — a minimal FUSE file system that mirrors one directory,
 * the baseline of bench/fs.sh: what any FUSE file system pays on this
 * machine (a round trip through /dev/fuse per request, libfuse's
 * high-level path layer) before doing any work of its own.
 *
 *   passthrough SOURCE_DIR MOUNTPOINT [FUSE options]
 *
 * Every path is resolved relative to SOURCE_DIR with the *at() calls on a
 * directory descriptor opened before mounting, so the file system works
 * whatever the daemon's working directory is. Open files keep their
 * descriptor in fi->fh. Extended attributes are passed through.
 * READDIRPLUS is asked for on every listing and answered with each
 * entry's attributes; writes and readahead go up to 1 MiB. The rest of the caching is left to the command line (-o
 * kernel_cache, attr_timeout=, entry_timeout=, negative_timeout=, libfuse's
 * own options), so the bench can give this file system the same kernel
 * caching as the one it is set against. Shaped after libfuse's
 * example/passthrough.c. */
#define FUSE_USE_VERSION 31

#include <fuse.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

struct pt {
	int root;            /* descriptor of SOURCE_DIR, set before fuse_main */
	char src[PATH_MAX];  /* its absolute path, for the calls with no *at() form */
};

static struct pt *pt_get(void)
{
	return fuse_get_context()->private_data;
}

/* FUSE paths begin with '/'; relative to the root descriptor "/" is ".". */
static const char *pt_rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

/* SOURCE_DIR + path in buf; -ENAMETOOLONG when it does not fit. */
static int pt_full(const char *path, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s%s", pt_get()->src, path);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* The connection as coopfs's mount asks for it (fs/fuse_ops.c
	 * op_init), which libfuse's high-level API takes no options for:
	 * READDIRPLUS on every listing, 1 MiB writes and readahead. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	/* st_ino from the source file system, so `ls -i` and hard links
	 * look the same through the mount; fi->fh is always set, so the
	 * path of an open file is never needed. */
	cfg->use_ino = 1;
	cfg->nullpath_ok = 1;
	return fuse_get_context()->private_data;
}

static int pt_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = fstat((int)fi->fh, st);
	else
		r = fstatat(pt_get()->root, pt_rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r == -1 ? -errno : 0;
}

static int pt_access(const char *path, int mask)
{
	return faccessat(pt_get()->root, pt_rel(path), mask, 0) == -1 ? -errno : 0;
}

static int pt_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n;

	if (size == 0)
		return -EINVAL;
	n = readlinkat(pt_get()->root, pt_rel(path), buf, size - 1);
	if (n == -1)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int pt_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(pt_get()->root, pt_rel(path), O_RDONLY | O_DIRECTORY);
	DIR *d;

	if (fd == -1)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int err = -errno;

		close(fd);
		return err;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	return 0;
}

static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	bool plus = flags & FUSE_READDIR_PLUS;
	struct dirent *e;

	(void)path;
	/* Offsets are telldir() cookies, so a listing larger than one reply
	 * resumes where the kernel stopped instead of being read whole. */
	if (off != 0)
		seekdir(d, off);
	else
		rewinddir(d);
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		enum fuse_fill_dir_flags ff = 0;
		struct stat st;

		memset(&st, 0, sizeof(st));
		st.st_ino = e->d_ino;
		st.st_mode = (mode_t)DTTOIF(e->d_type);
		/* READDIRPLUS: each entry's attributes go with its name, so
		 * `ls -l` needs no lookup per entry. */
		if (plus && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			ff = FUSE_FILL_DIR_PLUS;
		if (fill(buf, e->d_name, &st, telldir(d), ff))
			return 0;
		errno = 0;
	}
	return errno ? -errno : 0;
}

static int pt_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static int pt_mknod(const char *path, mode_t mode, dev_t rdev)
{
	int r;

	if (S_ISFIFO(mode))
		r = mkfifoat(pt_get()->root, pt_rel(path), mode);
	else
		r = mknodat(pt_get()->root, pt_rel(path), mode, rdev);
	return r == -1 ? -errno : 0;
}

static int pt_mkdir(const char *path, mode_t mode)
{
	return mkdirat(pt_get()->root, pt_rel(path), mode) == -1 ? -errno : 0;
}

static int pt_unlink(const char *path)
{
	return unlinkat(pt_get()->root, pt_rel(path), 0) == -1 ? -errno : 0;
}

static int pt_rmdir(const char *path)
{
	return unlinkat(pt_get()->root, pt_rel(path), AT_REMOVEDIR) == -1 ? -errno : 0;
}

static int pt_symlink(const char *target, const char *path)
{
	return symlinkat(target, pt_get()->root, pt_rel(path)) == -1 ? -errno : 0;
}

static int pt_rename(const char *from, const char *to, unsigned int flags)
{
	int root = pt_get()->root;

	/* RENAME_EXCHANGE and RENAME_NOREPLACE would need renameat2; a bench
	 * never asks for them. */
	if (flags)
		return -EINVAL;
	return renameat(root, pt_rel(from), root, pt_rel(to)) == -1 ? -errno : 0;
}

static int pt_link(const char *from, const char *to)
{
	int root = pt_get()->root;

	return linkat(root, pt_rel(from), root, pt_rel(to), 0) == -1 ? -errno : 0;
}

static int pt_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = fchmod((int)fi->fh, mode);
	else
		r = fchmodat(pt_get()->root, pt_rel(path), mode, 0);
	return r == -1 ? -errno : 0;
}

static int pt_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = fchown((int)fi->fh, uid, gid);
	else
		r = fchownat(pt_get()->root, pt_rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
	return r == -1 ? -errno : 0;
}

static int pt_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int fd, r;

	if (fi)
		return ftruncate((int)fi->fh, size) == -1 ? -errno : 0;
	fd = openat(pt_get()->root, pt_rel(path), O_WRONLY);
	if (fd == -1)
		return -errno;
	r = ftruncate(fd, size) == -1 ? -errno : 0;
	close(fd);
	return r;
}

static int pt_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	int r;

	if (fi)
		r = futimens((int)fi->fh, tv);
	else
		r = utimensat(pt_get()->root, pt_rel(path), tv, AT_SYMLINK_NOFOLLOW);
	return r == -1 ? -errno : 0;
}

static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd = openat(pt_get()->root, pt_rel(path), fi->flags, mode);

	if (fd == -1)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
	int flags = fi->flags;
	int fd;

	/* With the writeback cache the kernel reads pages of files opened
	 * write-only and appends itself. */
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	flags &= ~O_APPEND;
	fd = openat(pt_get()->root, pt_rel(path), flags);
	if (fd == -1 && errno == EACCES && flags != fi->flags)
		fd = openat(pt_get()->root, pt_rel(path), fi->flags);
	if (fd == -1)
		return -errno;
	fi->fh = (uint64_t)fd;
	return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);

	(void)path;
	return n == -1 ? -errno : (int)n;
}

static int pt_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n = pwrite((int)fi->fh, buf, size, off);

	(void)path;
	return n == -1 ? -errno : (int)n;
}

static int pt_statfs(const char *path, struct statvfs *sv)
{
	int fd = openat(pt_get()->root, pt_rel(path), O_RDONLY | O_PATH);
	int r;

	if (fd == -1)
		return -errno;
	r = fstatvfs(fd, sv) == -1 ? -errno : 0;
	close(fd);
	return r;
}

static int pt_flush(const char *path, struct fuse_file_info *fi)
{
	int fd = dup((int)fi->fh);

	(void)path;
	/* close() of a duplicate reports delayed write errors of the source
	 * file system to the closer, as a local close would. */
	if (fd == -1)
		return -errno;
	return close(fd) == -1 ? -errno : 0;
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int pt_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int fd = (int)fi->fh;
	int r;

	(void)path;
	r = datasync ? fdatasync(fd) : fsync(fd);
	return r == -1 ? -errno : 0;
}

/* Extended attributes, as libfuse's example has them: ls -l asks for
 * security.selinux and the ACLs of every entry, and a file system that
 * answers (coopfs does) pays a round trip each time, where one that says
 * ENOSYS once is never asked again. */
static int pt_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	char full[PATH_MAX];
	int r = pt_full(path, full, sizeof(full));

	if (r == 0 && lsetxattr(full, name, value, size, flags) == -1)
		r = -errno;
	return r;
}

static int pt_getxattr(const char *path, const char *name, char *value, size_t size)
{
	char full[PATH_MAX];
	int r = pt_full(path, full, sizeof(full));
	ssize_t n;

	if (r < 0)
		return r;
	n = lgetxattr(full, name, value, size);
	return n == -1 ? -errno : (int)n;
}

static int pt_listxattr(const char *path, char *list, size_t size)
{
	char full[PATH_MAX];
	int r = pt_full(path, full, sizeof(full));
	ssize_t n;

	if (r < 0)
		return r;
	n = llistxattr(full, list, size);
	return n == -1 ? -errno : (int)n;
}

static int pt_removexattr(const char *path, const char *name)
{
	char full[PATH_MAX];
	int r = pt_full(path, full, sizeof(full));

	if (r == 0 && lremovexattr(full, name) == -1)
		r = -errno;
	return r;
}

static const struct fuse_operations pt_ops = {
	.init = pt_init,
	.getattr = pt_getattr,
	.access = pt_access,
	.readlink = pt_readlink,
	.opendir = pt_opendir,
	.readdir = pt_readdir,
	.releasedir = pt_releasedir,
	.mknod = pt_mknod,
	.mkdir = pt_mkdir,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.symlink = pt_symlink,
	.rename = pt_rename,
	.link = pt_link,
	.chmod = pt_chmod,
	.chown = pt_chown,
	.truncate = pt_truncate,
	.utimens = pt_utimens,
	.create = pt_create,
	.open = pt_open,
	.read = pt_read,
	.write = pt_write,
	.statfs = pt_statfs,
	.flush = pt_flush,
	.release = pt_release,
	.fsync = pt_fsync,
	.setxattr = pt_setxattr,
	.getxattr = pt_getxattr,
	.listxattr = pt_listxattr,
	.removexattr = pt_removexattr,
};

int main(int argc, char *argv[])
{
	struct pt pt;
	int r;

	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s SOURCE_DIR MOUNTPOINT [FUSE options]\n", argv[0]);
		return 2;
	}
	if (!realpath(argv[1], pt.src)) {
		perror(argv[1]);
		return 1;
	}
	pt.root = open(pt.src, O_RDONLY | O_DIRECTORY);
	if (pt.root == -1) {
		perror(argv[1]);
		return 1;
	}
	/* Files are created with the modes asked for, not masked again. */
	umask(0);
	/* fuse_main sees "prog MOUNTPOINT options...", without SOURCE_DIR. */
	argv[1] = argv[0];
	r = fuse_main(argc - 1, argv + 1, &pt_ops, &pt);
	close(pt.root);
	return r;
}
