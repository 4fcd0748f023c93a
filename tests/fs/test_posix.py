#!/usr/bin/env python3
"""test_posix.py — POSIX behaviour of a coopfs mount, driven by ordinary
programs and system calls.

A ring of 4 `coopfs node` processes on 127.0.41.x and one `coopfs mount -f
--key alice` joining it. Every section runs even when an earlier one
failed; the test fails listing every failed section.

  copy        `cp -a common chord blockstore` (this repository's sources)
              into the mount; `diff -r` finds nothing, and modes, sizes,
              contents and mtimes (to the second) are identical.
  tar         a tree with files of modes 0600/0755/0644, a 0700 directory,
              symlinks (relative, absolute, dangling) and set mtimes goes
              in with `tar c | tar x -p` and back out the same way; modes,
              symlink targets, contents and mtimes (files, links and
              directories, to the second) are the original's.
  git         `git init`, add, commit (twice), `git fsck --full`, a clean
              `git status` inside the mount.
  rename      over an existing file (a reader that opens the target all
              along never sees it missing or half-written), across
              directories, a directory (with its contents) and into
              another directory, an open file (writes through the fd land
              in the renamed file), an fd open on the target before a
              rename over it (it still reads the old file), onto itself;
              ENOTEMPTY (onto a non-empty directory), EISDIR (a file onto
              a directory), ENOTDIR (a directory onto a file), EINVAL (a
              directory into itself), ENOENT (a missing source).
  unlink      a file unlinked while open: fstat says nlink 0, reads and
              writes through the fd still work, the name is gone and no
              .fuse_hidden file shows.
  truncate    up (zeros appear), down, up again past a 256 KiB chunk edge
              (no stale bytes come back), to 0; truncate and ftruncate.
  offsets     pwrite at offsets across chunk edges and past the end (the
              hole reads as zeros), O_APPEND; every read equals a model,
              before and after reopening.
  links       symlink/readlink (short, dangling, 1000 bytes), lstat says
              a link, reading through it; link(2) fails with EPERM.
  attributes  chmod (files and a directory; it moves ctime, not mtime),
              chown (as root), a write moves mtime, st_blocks covers a
              written file, create/rename/unlink move the directory's
              mtime, utime sets mtime (to
              the second; whether atime is kept is printed, as
              fs/obj.h has no atime); statfs has non-zero block size and
              blocks.
  xattr       user.* set/get/list/replace/remove (ENODATA afterwards);
              user.coopfs.key of a 300 KiB file is 64 hex digits (or
              "inline" for a small file) and cannot be set;
              user.coopfs.holders lists at least one ip:port, each one of
              the ring's or the mount's address.
  dirs        mkdir/rmdir with EEXIST, ENOENT, ENOTDIR, EISDIR (unlink of
              a directory), ENOTEMPTY; readdir of 2,000 entries returns
              exactly those names.
  O_TRUNC     open(O_TRUNC) + close empties a file; rewriting a 10-byte
              file with 3 bytes leaves only those 3.
  open, mmap  O_EXCL on an existing file (EEXIST), ENOENT and ENOTDIR on
              open; writes through a shared mmap (across a
              chunk edge) reach the file; a 255-byte name works, 256 bytes
              is ENAMETOOLONG; a name with space, comma, UTF-8, tab and a
              control byte.
  parallel    8 threads at once write, rename and unlink their own files
              in one directory while 2 more append lines to one file with
              O_APPEND; the directory then holds exactly what is left and
              every appended line is there, whole.
  edges       files of sizes at chunk and power-of-two edges (0 .. 512 KiB
              + 1) read back; truncate to exactly one chunk; a file 100
              directories deep survives renaming the top.
  readdir     readdir of 1,500 names while 500 of them are unlinked (after
              the 200th entry) returns every kept name exactly once.
  rm -rf      of a tree with 2,100 empty files and a copy of common/, and
              of the 100-deep tree: exit 0, nothing left.
  remount     fusermount3 -u ends the mount and coopfs mount exits 0; a
              mount on the same --data shows every entry identical (type,
              mode, size, SHA-256, mtimes of files, links and directories,
              owner, user.* xattrs).

Environment: see fslib.py and ringlib.py.
"""

import errno
import mmap
import os
import random
import re
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

rl = fl.rl
say, check, Failure = fl.say, fl.check, fl.Failure
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CHUNK = 256 * 1024


# ---------------------------------------------------------------- copy


def t_copy(env, m):
    dirs = ["common", "chord", "blockstore"]
    dest = m.path("src")
    os.mkdir(dest)
    t0 = time.monotonic()
    fl.sh(["cp", "-a"] + dirs + [dest], "cp -a into the mount", cwd=REPO)
    say(f"cp -a {' '.join(dirs)}: {time.monotonic() - t0:.1f} s")
    for d in dirs:
        r = subprocess.run(["diff", "-r", os.path.join(REPO, d), os.path.join(dest, d)],
                           capture_output=True, text=True, timeout=fl.scaled(120))
        check(r.returncode == 0, f"diff -r {d} finds no difference",
              f"diff -r {d} exited {r.returncode}: {(r.stdout + r.stderr)[:800]}")
        a = fl.tree_digest(os.path.join(REPO, d))
        b = fl.tree_digest(os.path.join(dest, d))
        diffs = fl.diff_digests(a, b, ("source", "mount"))
        check(not diffs, f"{d}: {len(a)} entries with identical type, mode, size, SHA-256 and "
              f"mtime", f"{d}: {len(diffs)} differences after cp -a: {diffs[:8]}")


# ---------------------------------------------------------------- tar


def build_tar_tree(top):
    os.makedirs(os.path.join(top, "priv", "deep"))
    os.makedirs(os.path.join(top, "pub"))
    files = {"a.txt": (b"hello\n", 0o644), "run.sh": (b"#!/bin/sh\necho hi\n", 0o755),
             "secret": (b"s3cret" * 100, 0o600), "priv/key": (b"k" * 5000, 0o600),
             "priv/deep/big": (os.urandom(CHUNK + 12345), 0o644),
             "pub/empty": (b"", 0o644)}
    base = 1_600_000_000
    for i, (rel, (data, mode)) in enumerate(sorted(files.items())):
        p = os.path.join(top, rel)
        fl.write_file(p, data)
        os.chmod(p, mode)
        os.utime(p, (base + 1000 * i + 7, base + 1000 * i))
    os.symlink("a.txt", os.path.join(top, "link-rel"))
    os.symlink("/etc/hostname", os.path.join(top, "link-abs"))
    os.symlink("../no/such/file", os.path.join(top, "pub", "dangling"))
    for i, rel in enumerate(["link-rel", "link-abs", "pub/dangling"]):
        os.utime(os.path.join(top, rel), (base + 50_000 + i, base + 50_000 + i),
                 follow_symlinks=False)
    os.chmod(os.path.join(top, "priv"), 0o700)
    os.chmod(os.path.join(top, "pub"), 0o755)
    for i, rel in enumerate(["priv/deep", "priv", "pub"]):  # deepest first
        os.utime(os.path.join(top, rel), (base + 90_000 + i, base + 90_000 + i))


def dir_mtimes(top):
    out = {}
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            out[os.path.relpath(p, top)] = int(os.lstat(p).st_mtime)
    return out


def tar_copy(src, dst, what):
    os.makedirs(dst, exist_ok=True)
    cmd = f"tar cf - -C '{src}' . | tar xpf - -C '{dst}'"
    fl.sh(["sh", "-c", "set -e; " + cmd], what)


def t_tar(env, m):
    src = os.path.join(env.root, "tar-src")
    back = os.path.join(env.root, "tar-back")
    inside = m.path("tarx")
    build_tar_tree(src)
    want = fl.tree_digest(src)
    want_d = dir_mtimes(src)
    tar_copy(src, inside, "tar into the mount")
    got = fl.tree_digest(inside)
    diffs = fl.diff_digests(want, got, ("original", "mount"))
    check(not diffs, f"in the mount: {len(want)} entries with the original modes, contents, "
          f"symlink targets and mtimes", f"after tar x -p into the mount: {diffs[:8]}")
    tar_copy(inside, back, "tar out of the mount")
    got = fl.tree_digest(back)
    diffs = fl.diff_digests(want, got, ("original", "round trip"))
    check(not diffs, "after the round trip: modes, contents, symlink targets, mtimes identical",
          f"after tar out of the mount: {diffs[:8]}")
    for where, top in (("mount", inside), ("round trip", back)):
        got_d = dir_mtimes(top)
        check(got_d == want_d, f"{where}: directory mtimes kept ({len(want_d)} directories)",
              f"{where}: directory mtimes {got_d}, original {want_d}")


# ---------------------------------------------------------------- git


def t_git(env, m):
    repo = m.path("gitrepo")
    os.mkdir(repo)
    genv = dict(os.environ, HOME=env.root, GIT_CONFIG_NOSYSTEM="1",
                GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org")

    def git(*args):
        return fl.sh(["git"] + list(args), f"git {args[0]}", cwd=repo, env=genv)

    git("init", "-q")
    fl.sh(["cp", "-a", os.path.join(REPO, "common"), os.path.join(REPO, "README.md"), repo],
          "cp into the git work tree")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    with open(os.path.join(repo, "README.md"), "a") as f:
        f.write("one more line\n")
    os.rename(os.path.join(repo, "common"), os.path.join(repo, "common2"))
    git("add", "-A")
    git("commit", "-q", "-m", "second")
    git("gc", "-q")
    r = git("fsck", "--full", "--strict")
    say(f"ok: git fsck --full --strict: clean {r.stderr.strip()[:200]!r}")
    r = git("status", "--porcelain")
    check(r.stdout.strip() == "", "git status: nothing to commit",
          f"git status --porcelain after the commits: {r.stdout[:400]!r}")
    n = git("rev-list", "--count", "HEAD").stdout.strip()
    check(n == "2", "git log: 2 commits", f"git rev-list --count HEAD: {n!r}, expected 2")


# ---------------------------------------------------------------- rename


def t_rename(env, m):
    d = m.path("ren")
    os.makedirs(os.path.join(d, "d1"))
    os.makedirs(os.path.join(d, "d2"))
    P = lambda *x: os.path.join(d, *x)  # noqa: E731

    # over an existing file, with a reader that must always see one whole version
    target = P("target")
    versions = [bytes([65 + i % 26]) * (1000 + 37 * i) for i in range(60)]
    fl.write_file(target, versions[0])
    stop = threading.Event()
    bad = []
    reads = [0]

    def reader():
        ok = set(versions)
        while not stop.is_set():
            try:
                b = fl.read_file(target)
            except OSError as e:
                bad.append(f"open/read of the target failed: {fl.errname(e.errno)}")
                return
            reads[0] += 1
            if b not in ok:
                bad.append(f"read {len(b)} bytes that are no whole version: {b[:20]!r}…")
                return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    for i, v in enumerate(versions[1:], 1):
        tmp = P(f"tmp{i}")
        fl.write_file(tmp, v)
        os.rename(tmp, target)
    stop.set()
    t.join(fl.scaled(30))
    check(not t.is_alive(), "reader finished", "the reader thread is blocked in the mount")
    check(not bad, f"{len(versions) - 1} renames over the target; {reads[0]} concurrent reads "
          f"all saw a whole version", f"rename over an existing file is not atomic: {bad}")
    check(fl.read_file(target) == versions[-1] and not os.path.exists(P("tmp1")),
          "the target holds the last version, the sources are gone",
          "after the renames the target does not hold the last version or a source remains")

    # an fd open on the target before a rename over it still reads the old file
    fl.write_file(P("victim"), b"old victim")
    fd = os.open(P("victim"), os.O_RDONLY)
    try:
        fl.write_file(P("replacement"), b"new one")
        os.rename(P("replacement"), P("victim"))
        got = os.pread(fd, 100, 0)
    finally:
        os.close(fd)
    check(got == b"old victim" and fl.read_file(P("victim")) == b"new one",
          "an fd opened on the target before the rename still reads the old file",
          f"after rename over an open file: the old fd reads {got!r}, the name reads "
          f"{fl.read_file(P('victim'))!r}")

    # across directories
    fl.write_file(P("d1", "x"), b"cross")
    os.rename(P("d1", "x"), P("d2", "y"))
    check(fl.read_file(P("d2", "y")) == b"cross" and not os.path.exists(P("d1", "x"))
          and os.listdir(P("d1")) == [], "rename across directories",
          f"after rename d1/x -> d2/y: d2={os.listdir(P('d2'))} d1={os.listdir(P('d1'))}")

    # a directory with its contents, then into another directory
    os.makedirs(P("tree", "sub"))
    fl.write_file(P("tree", "sub", "f"), b"deep")
    fl.write_file(P("tree", "g"), b"top")
    os.rename(P("tree"), P("tree2"))
    check(fl.read_file(P("tree2", "sub", "f")) == b"deep" and fl.read_file(P("tree2", "g"))
          == b"top" and not os.path.exists(P("tree")), "directory rename keeps its contents",
          "after renaming a directory its contents are not at the new name")
    os.rename(P("tree2"), P("d1", "moved"))
    check(fl.read_file(P("d1", "moved", "sub", "f")) == b"deep",
          "directory moved into another directory",
          "after moving a directory into d1 its contents are not there")
    st = os.stat(P("d1", "moved", "sub", "f"))
    check(st.st_size == 4, "stat after the moves", f"stat size {st.st_size}")

    # an open file
    fd = os.open(P("open-src"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"before ")
        os.rename(P("open-src"), P("d2", "open-dst"))
        os.write(fd, b"after")
    finally:
        os.close(fd)
    got = fl.read_file(P("d2", "open-dst"))
    check(got == b"before after" and not os.path.exists(P("open-src")),
          "writes through an fd opened before the rename land in the renamed file",
          f"renamed open file holds {got!r}, expected b'before after'")

    # onto itself, onto an empty directory
    fl.write_file(P("same"), b"same")
    os.rename(P("same"), P("same"))
    check(fl.read_file(P("same")) == b"same", "rename onto itself is a no-op",
          "rename onto itself changed the file")
    os.mkdir(P("emptydir"))
    os.makedirs(P("srcdir"))
    fl.write_file(P("srcdir", "in"), b"in")
    os.rename(P("srcdir"), P("emptydir"))
    check(fl.read_file(P("emptydir", "in")) == b"in", "directory renamed onto an empty one",
          "rename of a directory onto an empty directory lost its contents")

    # errors
    os.makedirs(P("full"))
    fl.write_file(P("full", "f"), b"x")
    os.makedirs(P("src2"))
    fl.expect_errno(lambda: os.rename(P("src2"), P("full")), (errno.ENOTEMPTY, errno.EEXIST),
                    "rename onto a non-empty directory")
    fl.expect_errno(lambda: os.rename(P("same"), P("full")), errno.EISDIR,
                    "rename of a file onto a directory")
    fl.expect_errno(lambda: os.rename(P("src2"), P("same")), errno.ENOTDIR,
                    "rename of a directory onto a file")
    fl.expect_errno(lambda: os.rename(P("src2"), P("src2", "inside")), errno.EINVAL,
                    "rename of a directory into itself")
    fl.expect_errno(lambda: os.rename(P("missing"), P("x")), errno.ENOENT,
                    "rename of a missing file")
    check(os.path.isdir(P("src2")) and fl.read_file(P("full", "f")) == b"x",
          "failed renames changed nothing", "a failed rename changed the tree")


# ---------------------------------------------------------------- unlink


def t_unlink_open(env, m):
    p = m.path("unl")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"hello ")
        os.unlink(p)
        check(not os.path.exists(p), "the name is gone after unlink", "the name is still there")
        st = os.fstat(fd)
        check(st.st_nlink == 0, "fstat of the open fd: nlink 0",
              f"fstat of the unlinked open file: nlink {st.st_nlink}, expected 0")
        os.write(fd, b"world")
        os.lseek(fd, 0, os.SEEK_SET)
        got = os.read(fd, 100)
        check(got == b"hello world", "read and write through the fd after unlink",
              f"read through the fd after unlink and a write: {got!r}")
        check(os.fstat(fd).st_size == 11, "fstat size 11", f"fstat size {os.fstat(fd).st_size}")
    finally:
        os.close(fd)
    hidden = [n for n in os.listdir(m.mountpoint) if n.startswith(".fuse_hidden")]
    check(not hidden and not os.path.exists(p), "no .fuse_hidden file, the name stays gone",
          f"after unlink of an open file: {hidden or 'the name came back'}")


# ---------------------------------------------------------------- truncate


def t_truncate(env, m):
    p = m.path("trunc")
    data = os.urandom(100_000)
    fl.write_file(p, data)
    os.truncate(p, 300_000)
    got = fl.read_file(p)
    check(got == data + bytes(200_000), "truncate up: zeros after the data",
          f"truncate up to 300000: size {len(got)}, prefix kept {got[:100_000] == data}, "
          f"tail zero {got[100_000:] == bytes(len(got) - 100_000)}")
    os.truncate(p, 1000)
    got = fl.read_file(p)
    check(got == data[:1000], "truncate down to 1000", f"truncate down: {len(got)} bytes, "
          f"prefix kept {got == data[:len(got)]}")
    big = os.urandom(600 * 1024)
    fl.write_file(p, big)
    with open(p, "r+b") as f:
        f.truncate(300 * 1024)
        f.truncate(700 * 1024)
    got = fl.read_file(p)
    want = big[:300 * 1024] + bytes(400 * 1024)
    check(got == want, "down to 300 KiB then up to 700 KiB (past a chunk edge): no stale bytes",
          f"ftruncate down then up: size {len(got)}, first differing byte at "
          f"{next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)}")
    os.truncate(p, 0)
    check(os.stat(p).st_size == 0 and fl.read_file(p) == b"", "truncate to 0",
          f"truncate to 0: size {os.stat(p).st_size}")


# ---------------------------------------------------------------- offsets


def t_offsets(env, m, rng):
    p = m.path("offs")
    model = bytearray()
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)

    def pw(off, data):
        os.pwrite(fd, data, off)
        if len(model) < off + len(data):
            model.extend(bytes(off + len(data) - len(model)))
        model[off:off + len(data)] = data

    try:
        pw(0, b"start")
        pw(CHUNK - 3, b"across-the-edge")
        pw(2 * CHUNK + 1_000_000, b"far")  # leaves a hole
        for _ in range(60):
            off = rng.randrange(3 * CHUNK + 1_000_000)
            pw(off, rng.randbytes(rng.randrange(1, 70_000)))
        got = os.pread(fd, len(model) + 10, 0)
        check(got == bytes(model), f"{len(model)} bytes after 63 pwrites equal the model "
              "(through the same fd)", f"pread after pwrites differs from the model "
              f"(size {len(got)} vs {len(model)})")
    finally:
        os.close(fd)
    got = fl.read_file(p)
    check(got == bytes(model), "after reopening: equal to the model",
          f"after close and reopen: size {len(got)} vs {len(model)}, first difference at "
          f"{next((i for i in range(min(len(got), len(model))) if got[i] != model[i]), None)}")
    with open(p, "ab") as f:
        f.write(b"appended")
    got = fl.read_file(p)
    check(got == bytes(model) + b"appended", "O_APPEND writes at the end",
          f"after an O_APPEND write: tail {got[-12:]!r}")


# ---------------------------------------------------------------- links


def t_links(env, m):
    d = m.path("links")
    os.mkdir(d)
    fl.write_file(os.path.join(d, "file"), b"through the link")
    long_target = "x/" * 499 + "y"
    for name, target in (("l1", "file"), ("dangling", "../nowhere/at/all"), ("long", long_target),
                         ("abs", "/etc/hostname")):
        p = os.path.join(d, name)
        os.symlink(target, p)
        got = os.readlink(p)
        check(got == target and stat.S_ISLNK(os.lstat(p).st_mode),
              f"symlink {name} -> {target[:30]}{'…' if len(target) > 30 else ''} "
              f"({len(target)} bytes)", f"symlink {name}: readlink {got!r}, lstat mode "
              f"{oct(os.lstat(p).st_mode)}")
    check(fl.read_file(os.path.join(d, "l1")) == b"through the link",
          "reading through a symlink", "reading through l1 gave other bytes")
    check(os.lstat(os.path.join(d, "l1")).st_size == 4, "lstat size of a symlink is its "
          "target's length", f"lstat size {os.lstat(os.path.join(d, 'l1')).st_size}")
    fl.expect_errno(lambda: os.link(os.path.join(d, "file"), os.path.join(d, "hard")),
                    errno.EPERM, "link(2)")
    check(not os.path.exists(os.path.join(d, "hard")), "no hard link made",
          "a failed link(2) left a name")


# ---------------------------------------------------------------- attributes


def t_attrs(env, m):
    p = m.path("attr")
    fl.write_file(p, b"attributes")
    for mode in (0o600, 0o755, 0o640, 0o4755):
        os.chmod(p, mode)
        got = stat.S_IMODE(os.stat(p).st_mode)
        check(got == mode, f"chmod {mode:o}", f"chmod {mode:o}: stat says {got:o}")
    d = m.path("attrdir")
    os.mkdir(d)
    os.chmod(d, 0o711)
    got = stat.S_IMODE(os.stat(d).st_mode)
    check(got == 0o711, "chmod of a directory", f"chmod 711 of a directory: stat says {got:o}")
    if os.geteuid() == 0:
        os.chmod(p, 0o644)
        os.chown(p, 1234, 5678)
        st = os.stat(p)
        check((st.st_uid, st.st_gid) == (1234, 5678), "chown 1234:5678",
              f"chown 1234:5678: stat says {st.st_uid}:{st.st_gid}")
        os.chown(p, -1, 42)
        st = os.stat(p)
        check((st.st_uid, st.st_gid) == (1234, 42), "chown -1:42 changes only the group",
              f"chown -1:42: stat says {st.st_uid}:{st.st_gid}")
    else:
        say("not root: chown not tried")
    at, mt = 1_500_000_123, 1_400_000_456
    os.utime(p, (at, mt))
    st = os.stat(p)
    check(int(st.st_mtime) == mt, "utime sets mtime",
          f"utime({at}, {mt}): stat says mtime {int(st.st_mtime)}")
    # fs/obj.h keeps mtime and ctime only (no atime, by design): report, do not judge
    say(f"info: atime after utime({at}, {mt}) reads {int(st.st_atime)} "
        f"({'kept' if int(st.st_atime) == at else 'not kept'})")
    os.utime(p, ns=(at * 10**9 + 123_456_789, mt * 10**9 + 987_654_321))
    st = os.stat(p)
    say(f"info: mtime with nanoseconds kept as {st.st_mtime_ns} "
        f"({'exact' if st.st_mtime_ns == mt * 10**9 + 987_654_321 else 'rounded'})")
    check(st.st_mtime_ns // 10**9 == mt, "utimensat to the second", f"mtime_ns {st.st_mtime_ns}")
    before = time.time()
    os.utime(p, None)
    st = os.stat(p)
    check(abs(st.st_mtime - before) < 60, "utime(NULL) sets now",
          f"utime(NULL): mtime {st.st_mtime}, now {before}")
    os.utime(p, (1_000_000_000, 1_000_000_000))
    st0 = os.stat(p)
    time.sleep(1.1)
    os.chmod(p, 0o600)
    st1 = os.stat(p)
    check(st1.st_ctime > st0.st_ctime and int(st1.st_mtime) == 1_000_000_000,
          "chmod moves ctime, not mtime", f"chmod: ctime {st0.st_ctime} -> {st1.st_ctime}, "
          f"mtime {st1.st_mtime} (expected 1000000000)")
    before = time.time()
    with open(p, "r+b") as f:
        f.write(b"X")
    st2 = os.stat(p)
    check(st2.st_mtime >= before - 2, "a write moves mtime to now",
          f"after a write mtime is {st2.st_mtime}, the write was at {before:.0f}")
    fl.write_file(p, os.urandom(300_000))
    st = os.stat(p)
    check(st.st_blocks * 512 >= 300_000, f"st_blocks of a 300,000-byte file: {st.st_blocks}",
          f"st_blocks of a 300,000-byte file is {st.st_blocks} (du would say "
          f"{st.st_blocks * 512} bytes)")
    d2 = m.path("attrdir2")
    os.mkdir(d2)
    for what, act in (("creating a file", lambda: fl.write_file(os.path.join(d2, "x"), b"x")),
                      ("renaming in it", lambda: os.rename(os.path.join(d2, "x"),
                                                           os.path.join(d2, "y"))),
                      ("unlinking in it", lambda: os.unlink(os.path.join(d2, "y")))):
        os.utime(d2, (1_000_000_000, 1_000_000_000))
        t = time.time()
        act()
        got = os.stat(d2).st_mtime
        check(got >= t - 2, f"{what} moves the directory's mtime",
              f"{what}: the directory's mtime stays {got:.0f} (set to 1000000000 before; now "
              f"{t:.0f})")
    sv = os.statvfs(m.mountpoint)
    check(sv.f_bsize > 0 and sv.f_blocks > 0 and sv.f_namemax > 0,
          f"statfs: bsize {sv.f_bsize}, blocks {sv.f_blocks}, bfree {sv.f_bfree}, "
          f"namemax {sv.f_namemax}", f"statfs has zeros: {sv}")


# ---------------------------------------------------------------- xattr


def t_xattr(env, m):
    p = m.path("xa")
    fl.write_file(p, os.urandom(300 * 1024))
    os.setxattr(p, "user.test", b"value-1")
    check(os.getxattr(p, "user.test") == b"value-1", "setxattr/getxattr user.test",
          f"getxattr user.test: {os.getxattr(p, 'user.test')!r}")
    os.setxattr(p, "user.test", b"value-2" * 100)
    os.setxattr(p, "user.other", b"")
    names = os.listxattr(p)
    check("user.test" in names and "user.other" in names, f"listxattr {names}",
          f"listxattr lacks user.test or user.other: {names}")
    check(os.getxattr(p, "user.test") == b"value-2" * 100, "replace a value",
          "getxattr after a replace returned the old value")
    fl.expect_errno(lambda: os.setxattr(p, "user.test", b"x", os.XATTR_CREATE), errno.EEXIST,
                    "XATTR_CREATE of an existing name")
    os.removexattr(p, "user.test")
    fl.expect_errno(lambda: os.getxattr(p, "user.test"), errno.ENODATA,
                    "getxattr after removexattr")
    check("user.test" not in os.listxattr(p), "removed name not listed",
          f"listxattr after remove: {os.listxattr(p)}")

    key = os.getxattr(p, "user.coopfs.key").decode().strip()
    check(re.fullmatch(r"[0-9a-f]{64}", key) is not None, f"user.coopfs.key of a 300 KiB file: "
          f"{key[:16]}…", f"user.coopfs.key of a 300 KiB file: {key!r}, expected 64 hex digits")
    small = m.path("xa-small")
    fl.write_file(small, b"tiny")
    skey = os.getxattr(small, "user.coopfs.key").decode().strip()
    check(skey == "inline" or re.fullmatch(r"[0-9a-f]{64}", skey) is not None,
          f"user.coopfs.key of a 4-byte file: {skey[:16]}", f"user.coopfs.key of a small file: "
          f"{skey!r}, expected 'inline' or 64 hex digits")
    try:
        os.setxattr(p, "user.coopfs.key", b"0" * 64)
        raise Failure("setxattr user.coopfs.key succeeded; it is read-only")
    except OSError as e:
        say(f"ok: setxattr user.coopfs.key refused with {fl.errname(e.errno)}")
    check(os.getxattr(p, "user.coopfs.key").decode().strip() == key,
          "user.coopfs.key unchanged", "user.coopfs.key changed after a refused setxattr")

    holders = os.getxattr(p, "user.coopfs.holders").decode().split()
    known = {n.addr for n in env.ring}
    known_hosts = {rl.parse_addr(a)[0] for a in known} | {env.host(100 + i) for i in range(1, 9)}
    bad = [h for h in holders if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", h)
           or rl.parse_addr(h)[0] not in known_hosts]
    check(holders and not bad, f"user.coopfs.holders: {holders}",
          f"user.coopfs.holders {holders!r}: expected at least one ip:port of the ring "
          f"({sorted(known)}) or the mount; unexpected: {bad}")


# ---------------------------------------------------------------- dirs


def t_dirs(env, m, n_entries):
    d = m.path("dirs")
    os.mkdir(d)
    check(os.path.isdir(d), "mkdir", "mkdir made no directory")
    fl.expect_errno(lambda: os.mkdir(d), errno.EEXIST, "mkdir of an existing name")
    fl.expect_errno(lambda: os.rmdir(m.path("no-such-dir")), errno.ENOENT, "rmdir of nothing")
    fl.write_file(os.path.join(d, "f"), b"")
    fl.expect_errno(lambda: os.rmdir(os.path.join(d, "f")), errno.ENOTDIR, "rmdir of a file")
    fl.expect_errno(lambda: os.unlink(d), errno.EISDIR, "unlink of a directory")
    fl.expect_errno(lambda: os.rmdir(d), errno.ENOTEMPTY, "rmdir of a non-empty directory")
    fl.expect_errno(lambda: os.mkdir(os.path.join(d, "f", "sub")), errno.ENOTDIR,
                    "mkdir under a file")
    os.unlink(os.path.join(d, "f"))
    os.rmdir(d)
    check(not os.path.exists(d), "rmdir of the emptied directory", "the directory is still there")

    big = m.path("many")
    os.mkdir(big)
    names = {f"entry-{i:05d}-{'x' * (i % 40)}" for i in range(n_entries)}
    t0 = time.monotonic()
    for n in names:
        fd = os.open(os.path.join(big, n), os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
    say(f"created {n_entries} files in {time.monotonic() - t0:.1f} s")
    got = os.listdir(big)
    check(len(got) == len(set(got)) and set(got) == names,
          f"readdir returns exactly the {n_entries} names",
          f"readdir of {n_entries} entries: {len(got)} names ({len(set(got))} distinct), "
          f"missing {sorted(names - set(got))[:5]}, extra {sorted(set(got) - names)[:5]}")
    with os.scandir(big) as it:
        kinds = {e.is_file(follow_symlinks=False) for e in it}
    check(kinds == {True}, "scandir: every entry a regular file",
          f"scandir d_type says not a file: {kinds}")
    for i, n in enumerate(sorted(names)):
        if i % 2 == 0:
            os.unlink(os.path.join(big, n))
    got = set(os.listdir(big))
    want = {n for i, n in enumerate(sorted(names)) if i % 2 == 1}
    check(got == want, f"after unlinking half: {len(got)} names",
          f"after unlinking half: {len(got)} names, expected {len(want)}")


# ---------------------------------------------------------------- open, mmap, names


def t_open_mmap(env, m):
    p = m.path("opens")
    fl.write_file(p, b"0123456789")
    fl.expect_errno(lambda: os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644),
                    errno.EEXIST, "O_CREAT|O_EXCL of an existing file")
    fl.expect_errno(lambda: os.open(m.path("no", "such"), os.O_RDONLY), errno.ENOENT,
                    "open under a missing directory")
    fl.expect_errno(lambda: os.open(m.path("opens", "x"), os.O_CREAT | os.O_WRONLY, 0o644),
                    errno.ENOTDIR, "create under a file")

    size = CHUNK + 5000
    fl.write_file(p, bytes(size))
    with open(p, "r+b") as f:
        mm = mmap.mmap(f.fileno(), size)
        mm[0:5] = b"HELLO"
        mm[CHUNK - 2:CHUNK + 3] = b"EDGE!"
        mm.flush()
        mm.close()
    got = fl.read_file(p)
    want = bytearray(size)
    want[0:5] = b"HELLO"
    want[CHUNK - 2:CHUNK + 3] = b"EDGE!"
    check(got == bytes(want), "writes through a shared mmap reach the file",
          f"after writes through mmap the file differs (size {len(got)}; head {got[:5]!r})")
    with open(p, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        ok = mm[CHUNK - 2:CHUNK + 3] == b"EDGE!"
        mm.close()
    check(ok, "a read-only mmap sees them", "a read-only mmap reads other bytes")

    longest = "n" * 255
    fl.write_file(m.path(longest), b"255")
    check(fl.read_file(m.path(longest)) == b"255" and longest in os.listdir(m.mountpoint),
          "a 255-byte name", "a file with a 255-byte name is not there")
    fl.expect_errno(lambda: fl.write_file(m.path("n" * 256), b"x"), errno.ENAMETOOLONG,
                    "a 256-byte name")
    odd = "sp ace,ü\u00e9\t\x01-"
    fl.write_file(m.path(odd), b"odd")
    check(odd in os.listdir(m.mountpoint) and fl.read_file(m.path(odd)) == b"odd",
          "a name with space, comma, UTF-8, tab and a control byte",
          f"a file named {odd!r} is not listed or reads other bytes")


def t_otrunc(env, m):
    p = m.path("otrunc")
    fl.write_file(p, b"0123456789")
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    got = fl.read_file(p)
    check(os.stat(p).st_size == 0 and got == b"", "open(O_WRONLY|O_TRUNC) + close empties "
          "the file", f"open(O_WRONLY|O_TRUNC) of a 10-byte file, then close: stat size "
          f"{os.stat(p).st_size}, contents {got!r}; expected empty")
    fl.write_file(p, b"0123456789")
    fl.write_file(p, b"abc")  # open("wb") is O_WRONLY|O_CREAT|O_TRUNC
    got = fl.read_file(p)
    check(got == b"abc", "rewriting a file with open('wb') leaves only the new bytes",
          f"writing b'abc' with open('wb') over b'0123456789' leaves {got!r}")


def t_parallel(env, m, rng):
    """8 threads at once, each writing, overwriting, renaming and removing
    its own files in a shared directory."""
    d = m.path("par")
    os.mkdir(d)
    seeds = [rng.getrandbits(32) for _ in range(8)]
    results = {}
    errors = []

    def worker(w):
        r = random.Random(seeds[w])
        mine = {}
        try:
            for i in range(25):
                name = f"w{w}-{i}"
                data = r.randbytes(r.choice([0, 100, 70_000, 300_000]))
                fl.write_file(os.path.join(d, name), data)
                mine[name] = data
                if i % 5 == 4:
                    new = name + "-renamed"
                    os.rename(os.path.join(d, name), os.path.join(d, new))
                    mine[new] = mine.pop(name)
                if i % 7 == 6:
                    victim = sorted(mine)[0]
                    os.unlink(os.path.join(d, victim))
                    del mine[victim]
            results[w] = mine
        except OSError as e:
            errors.append(f"worker {w}: {fl.errname(e.errno)} on {e.filename}")

    lines = 500

    def appender(w):
        fd = os.open(os.path.join(d, "appended"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        try:
            for i in range(lines):
                os.write(fd, f"worker {w} line {i:05d} {'.' * (i % 50)}\n".encode())
        except OSError as e:
            errors.append(f"appender {w}: {fl.errname(e.errno)}")
        finally:
            os.close(fd)

    ts = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(8)]
    ts += [threading.Thread(target=appender, args=(w,), daemon=True) for w in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(fl.scaled(120))
    check(not any(t.is_alive() for t in ts) and not errors, "8 threads wrote, renamed and "
          "removed their files at once", f"parallel workers: {errors or 'one is still blocked'}")
    text = fl.read_file(os.path.join(d, "appended")).decode()
    want_lines = {f"worker {w} line {i:05d} {'.' * (i % 50)}" for w in (0, 1)
                  for i in range(lines)}
    got_lines = text.splitlines()
    check(len(got_lines) == 2 * lines and set(got_lines) == want_lines,
          f"2 threads appending with O_APPEND: all {2 * lines} lines whole",
          f"O_APPEND from 2 threads: {len(got_lines)} lines, {len(want_lines - set(got_lines))} "
          f"missing, {len(set(got_lines) - want_lines)} torn or unknown")
    want = {k: v for mine in results.values() for k, v in mine.items()}
    want["appended"] = text.encode()
    got = set(os.listdir(d))
    bad = [k for k in want if k not in got or fl.read_file(os.path.join(d, k)) != want[k]]
    check(got == set(want) and not bad, f"the directory holds exactly the {len(want)} files "
          "left, each with its bytes", f"after the parallel work: missing or wrong {bad[:5]}, "
          f"extra {sorted(got - set(want))[:5]}")


# ---------------------------------------------------------------- edges


def t_edges(env, m):
    """Sizes at chunk and power-of-two edges, deep paths."""
    d = m.path("edges")
    os.mkdir(d)
    sizes = sorted({0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1}
                   | {(1 << k) + j for k in range(8, 14) for j in (-1, 0, 1)})
    datas = {n: os.urandom(n) for n in sizes}
    for n, b in datas.items():
        fl.write_file(os.path.join(d, f"s{n}"), b)
    bad = [n for n, b in datas.items() if fl.read_file(os.path.join(d, f"s{n}")) != b
           or os.stat(os.path.join(d, f"s{n}")).st_size != n]
    check(not bad, f"{len(sizes)} files of sizes at chunk and power-of-two edges read back",
          f"files of these sizes read back wrong: {bad}")
    p = os.path.join(d, f"s{2 * CHUNK + 1}")
    os.truncate(p, CHUNK)
    got = fl.read_file(p)
    check(got == datas[2 * CHUNK + 1][:CHUNK], "truncate to exactly one chunk",
          f"truncate of a {2 * CHUNK + 1}-byte file to {CHUNK}: {len(got)} bytes, prefix "
          f"{'kept' if got == datas[2 * CHUNK + 1][:len(got)] else 'changed'}")

    deep = os.path.join(d, *[f"l{i}" for i in range(100)])
    os.makedirs(deep)
    fl.write_file(os.path.join(deep, "bottom"), b"bottom")
    os.rename(os.path.join(d, "l0"), os.path.join(d, "top"))
    moved = os.path.join(d, "top", *[f"l{i}" for i in range(1, 100)], "bottom")
    check(fl.read_file(moved) == b"bottom", "a file 100 directories deep, after renaming the "
          "top one", "the file 100 directories deep is not there after renaming the top")



def t_readdir_unlink(env, m):
    """readdir while unlinking: every name not removed is seen exactly once
    (POSIX leaves only the added and removed names unspecified)."""
    big = m.path("rd")
    os.mkdir(big)
    names = [f"e{i:04d}" for i in range(1500)]
    for n in names:
        os.close(os.open(os.path.join(big, n), os.O_CREAT | os.O_WRONLY, 0o644))
    removed = set(names[1::3])
    seen = []
    with os.scandir(big) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i == 200:
                for n in removed:
                    os.unlink(os.path.join(big, n))
    kept = set(names) - removed
    dup = len(seen) - len(set(seen))
    missing = kept - set(seen)
    check(not dup and not missing, f"readdir while 500 of 1,500 names are unlinked: every "
          f"kept name once ({len(seen)} names seen)", f"readdir while unlinking: {dup} names "
          f"returned twice, {len(missing)} kept names never returned (e.g. {sorted(missing)[:3]})")


def t_rm_rf(env, m):
    d = m.path("rmrf")
    for sub in ("a", "b/c", "b/d"):
        os.makedirs(os.path.join(d, sub))
        for i in range(700):
            os.close(os.open(os.path.join(d, sub, f"f{i:04d}-{'y' * (i % 30)}"),
                             os.O_CREAT | os.O_WRONLY, 0o644))
    fl.sh(["cp", "-a", os.path.join(REPO, "common"), d], "cp -a common")
    r = subprocess.run(["rm", "-rf", d], capture_output=True, text=True, timeout=fl.scaled(120))
    check(r.returncode == 0 and not os.path.exists(d), "rm -rf of a tree with 2,100 files",
          f"rm -rf of a tree with 2,100 files exited {r.returncode}: "
          f"{r.stderr.strip()[:300]}; {'still there' if os.path.exists(d) else 'gone'}")
    edges = m.path("edges")
    r = subprocess.run(["rm", "-rf", edges], capture_output=True, text=True,
                       timeout=fl.scaled(120))
    check(r.returncode == 0 and not os.path.exists(edges), "rm -rf of the edges tree (100 deep)",
          f"rm -rf of the edges tree exited {r.returncode}: {r.stderr.strip()[:300]}")


# ---------------------------------------------------------------- remount


def rich_digest(top):
    """tree_digest plus owner, group, directory mtimes and user.* xattrs."""
    out = {}
    for rel, v in fl.tree_digest(top).items():
        p = os.path.join(top, rel)
        st = os.lstat(p)
        xa = ()
        if not stat.S_ISLNK(st.st_mode):
            xa = tuple(sorted((n, os.getxattr(p, n)) for n in os.listxattr(p)
                              if n.startswith("user.") and not n.startswith("user.coopfs.")))
        out[rel] = v + (st.st_uid, st.st_gid, int(st.st_mtime), xa)
    return out


def t_remount(env, m, state):
    before = rich_digest(m.mountpoint)
    say(f"{len(before)} entries before the unmount")
    m.unmount()
    state["unmounted"] = True
    m.start()
    state["unmounted"] = False
    after = rich_digest(m.mountpoint)
    diffs = []
    for k in sorted(set(before) | set(after)):
        if before.get(k) != after.get(k):
            diffs.append(f"{k}: before {str(before.get(k))[:160]} / after "
                         f"{str(after.get(k))[:160]}")
    check(not diffs, f"after unmount and mount on the same --data all {len(before)} entries "
          "are identical (type, mode, size, SHA-256, mtime, owner, user.* xattrs)",
          f"{len(diffs)} entries differ after the remount: {diffs[:6]}")


# ---------------------------------------------------------------- main


def main():
    fl.preflight(("git",))
    rng = rl.make_rng()
    env = fl.FsEnv("posix", 41)
    env.keygen("alice")
    env.start_ring()
    m = env.mount(key="alice")
    c = fl.Checks()
    c.run("copy: cp -a of the sources, diff -r", t_copy, env, m)
    c.run("tar round trip", t_tar, env, m)
    c.run("git in the mount", t_git, env, m)
    c.run("rename", t_rename, env, m)
    c.run("unlink while open", t_unlink_open, env, m)
    c.run("truncate", t_truncate, env, m)
    c.run("writes at offsets", t_offsets, env, m, rng)
    c.run("symlink, readlink, link", t_links, env, m)
    c.run("chmod, chown, utimens, statfs", t_attrs, env, m)
    c.run("xattrs", t_xattr, env, m)
    c.run("mkdir, rmdir, readdir of 2,000 entries", t_dirs, env, m, 2000)
    c.run("O_TRUNC", t_otrunc, env, m)
    c.run("open flags, mmap, names", t_open_mmap, env, m)
    c.run("8 threads at once", t_parallel, env, m, rng)
    c.run("edges: sizes at chunk edges, 100 directories deep", t_edges, env, m)
    c.run("readdir while unlinking", t_readdir_unlink, env, m)
    c.run("rm -rf", t_rm_rf, env, m)
    state = {"unmounted": False}
    c.run("everything survives unmount and mount on the same --data", t_remount, env, m, state)
    if not state["unmounted"]:
        c.run("unmount", m.unmount)
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=400)
