#!/usr/bin/env python3
"""test_persist.py — what a coopfs mount wrote survives unmount, a crash of
the mount process, and the loss of its local data directory; old versions
stay readable under .snapshots/.

A ring of 4 `coopfs node` processes on 127.0.45.x and `coopfs mount -f
--key alice` processes joining it.

  remount     a tree of random files (some empty, some over a 256 KiB
              chunk, modes and mtimes set) is copied in; fusermount3 -u
              (exit 0); a mount on the same --data shows the identical tree
              (type, mode, size, SHA-256, mtime to the second).
  from ring   a mount with the same key and a new, empty --data shows the
              same tree (poll, bounded): the data is on the ring, not only
              in the first mount's directory.
  fsync       a file written and fsync'd shows at once on a mount with
              the same key and an empty --data started after the fsync.
  SIGTERM     files written (and closed) just before SIGTERM to the
              mount, which must unmount and exit 0, show at once on a
              mount with an empty --data; the mount is started again.
  crash       hist.txt is written ("old"), fsync'd (which waits for the
              publish) and a few seconds pass; then hist.txt is rewritten
              ("new"), crash.bin (random bytes) is written and closed,
              the directory tree/d1 is renamed, a file unlinked and one
              chmod'ed, and at once the mount process gets SIGKILL (journaled,
              perhaps not published); fusermount3 -uz; a mount on the same
              --data shows hist.txt "new", crash.bin identical, and the
              tree with exactly those three changes; within a bound a mount with an
              empty --data shows them too (the replayed journal is
              published).
  snapshots   .snapshots/ lists v1, v2, ... (at least 2), each a
              directory; some version holds hist.txt with "old"; within a
              bound the newest version equals the live tree (types, sizes,
              contents, mtimes, modes less the write bits); a snapshot
              refuses writes.
  versions    20 (10 under ASan) rewrites of one file, each fsync'd:
              every value shows in a version of its own under .snapshots,
              in order of the version numbers.
"""

import errno
import os
import re
import shutil
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure = fl.say, fl.check, fl.Failure
rl = fl.rl


def snapshot_versions(m):
    names = os.listdir(m.path(".snapshots"))
    vers = sorted(int(n[1:]) for n in names if re.fullmatch(r"v[1-9][0-9]*", n))
    other = [n for n in names if not re.fullmatch(r"v[1-9][0-9]*", n)]
    return vers, other


def main():
    fl.preflight()
    rng = rl.make_rng()
    env = fl.FsEnv("persist", 45)
    env.keygen("alice")
    env.start_ring()
    c = fl.Checks()

    src = os.path.join(env.root, "tree-src")
    fl.make_tree(src, rng, files=fl.size_for(60, 25))
    for i, (dirpath, _, files) in enumerate(os.walk(src)):
        for j, f in enumerate(files):
            p = os.path.join(dirpath, f)
            os.chmod(p, [0o644, 0o600, 0o755][(i + j) % 3])
            os.utime(p, (1_650_000_000 + i * 100 + j, 1_650_000_000 + i * 100 + j))
    want = fl.tree_digest(src)
    data = os.path.join(env.root, "data-main")
    m = env.mount(name="main", key="alice", data=data)
    state = {}

    def remount():
        fl.sh(["cp", "-a", src, m.path("tree")], "cp -a the tree into the mount")
        got = fl.tree_digest(m.path("tree"))
        diffs = fl.diff_digests(want, got, ("source", "mount"))
        check(not diffs, f"{len(want)} entries copied in", f"right after cp -a: {diffs[:8]}")
        m.unmount()
        m.start()
        got = fl.tree_digest(m.path("tree"))
        diffs = fl.diff_digests(want, got, ("source", "remount"))
        check(not diffs, f"after unmount and mount on the same --data: {len(want)} entries "
              "identical (type, mode, size, SHA-256, mtime)",
              f"after the remount: {len(diffs)} differences: {diffs[:8]}")

    def from_ring():
        m2 = env.mount(name="fresh", key="alice")
        last = {}

        def same():
            try:
                got = fl.tree_digest(m2.path("tree"))
            except OSError as e:
                return False, f"{fl.errname(e.errno)} on {e.filename}"
            last["d"] = fl.diff_digests(want, got, ("source", "fresh mount"))
            return not last["d"], f"{len(last['d'])} differences: {last['d'][:4]}"

        secs, _ = fl.wait_until(same, fl.scaled(30), "a mount with a new --data shows the tree",
                                0.5)
        say(f"ok: a mount with the same key and an empty --data shows the identical tree "
            f"after {secs:.1f} s")
        m2.unmount()

    def fresh_mount_sees(name, files, what, poll=0):
        """A mount with the same key and an empty --data must show files
        ({name: bytes}) at once (poll=0) or within poll seconds."""
        m3 = env.mount(name=name, key="alice")
        last = {}

        def there():
            for rel, want in files.items():
                try:
                    got = fl.read_file(m3.path(rel))
                except FileNotFoundError:
                    last["why"] = f"{rel} missing"
                    return False, last["why"]
                if got != want:
                    last["why"] = f"{rel}: {len(got)} bytes, not the {len(want)} written"
                    return False, last["why"]
            return True, None

        if poll:
            secs, _ = fl.wait_until(there, poll, f"{what}: a mount with an empty --data shows "
                                    f"{len(files)} files", 0.5)
            say(f"ok: {what}: a mount with an empty --data shows all {len(files)} files after "
                f"{secs:.1f} s")
        else:
            ok, _ = there()
            check(ok, f"{what}: a mount with an empty --data shows all {len(files)} files at "
                  "once", f"{what}: a mount with an empty --data, ready after, does not show "
                  f"them: {last.get('why')}")
        m3.unmount()

    def fsync_publishes():
        data = os.urandom(100_000)
        with open(m.path("fsynced.bin"), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fresh_mount_sees("after-fsync", {"fsynced.bin": data}, "right after fsync")

    def sigterm_publishes():
        files = {f"burst/{i:03d}": os.urandom(rng.choice([10, 5000, 300_000]))
                 for i in range(fl.size_for(30, 12))}
        os.mkdir(m.path("burst"))
        for rel, d in files.items():
            fl.write_file(m.path(rel), d)
        m.stop(signal.SIGTERM)
        fresh_mount_sees("after-sigterm", files, "after SIGTERM right after the writes")
        m.start()

    def crash():
        fl.write_file(m.path("hist.txt"), b"old", fsync=True)
        time.sleep(2)  # lets the publish of "old" be its own version
        vers, _ = snapshot_versions(m)
        state["vers_before"] = vers
        say(f".snapshots before the crash: {['v%d' % v for v in vers]}")
        fl.write_file(m.path("hist.txt"), b"new")
        state["crash"] = os.urandom(300_000)
        fl.write_file(m.path("crash.bin"), state["crash"])
        # a directory rename, an unlink and a chmod in the same unpublished window
        os.rename(m.path("tree", "d1"), m.path("tree", "d1-renamed"))
        victim = sorted(k for k in want if k.startswith("d2/") and want[k][0] == "f")[0]
        os.unlink(m.path("tree", victim))
        chm = sorted(k for k in want if k.startswith("d3/") and want[k][0] == "f")[0]
        os.chmod(m.path("tree", chm), 0o640)
        expect = {}
        for k, v in want.items():
            if k == victim:
                continue
            if k == chm:
                v = (v[0], 0o640) + v[2:]
            if k == "d1" or k.startswith("d1/"):
                k = "d1-renamed" + k[2:]
            expect[k] = v
        state["expect"] = expect
        m.kill()
        say("SIGKILL to the mount right after close")
        fl.lazy_unmount(m.mountpoint)
        check(fl.mountinfo(m.mountpoint) is None, "fusermount3 -uz detached the dead mount",
              "the dead mount is still in mountinfo after fusermount3 -uz")
        m.start()
        got = fl.read_file(m.path("crash.bin"))
        check(got == state["crash"], "crash.bin (closed just before the SIGKILL) is there, "
              "identical", f"after the crash and remount crash.bin has {len(got)} bytes, "
              f"{'identical' if got == state['crash'] else 'different'}")
        got = fl.read_file(m.path("hist.txt"))
        check(got == b"new", "hist.txt holds the last content", f"hist.txt holds {got!r}")
        got = fl.tree_digest(m.path("tree"))
        diffs = fl.diff_digests(state["expect"], got, ("expected", "after crash"))
        check(not diffs, "the tree shows the rename of d1, the unlink and the chmod made "
              "just before the SIGKILL, and nothing else changed",
              f"after the crash: {len(diffs)} differences: {diffs[:8]}")
        fresh_mount_sees("after-crash", {"crash.bin": state["crash"], "hist.txt": b"new"},
                         "the journal replayed after the crash is published",
                         poll=fl.scaled(15))

    def snapshots():
        vers, other = snapshot_versions(m)
        say(f".snapshots: {['v%d' % v for v in vers]} {other or ''}")
        check(len(vers) >= 2 and not other, f"{len(vers)} versions listed",
              f".snapshots lists {vers} and {other}; expected v1, v2, ... (at least 2)")
        check(all(os.path.isdir(m.path(".snapshots", f"v{v}")) for v in vers),
              "each one a directory", "a .snapshots entry is not a directory")
        old = []
        for v in vers:
            try:
                if fl.read_file(m.path(".snapshots", f"v{v}", "hist.txt")) == b"old":
                    old.append(v)
            except FileNotFoundError:
                pass
        check(old, f"hist.txt is 'old' in {['v%d' % v for v in old]}",
              f"no version of {vers} holds hist.txt with 'old'")
        # A snapshot may show its entries without write permission: compare
        # the live modes less the write bits.
        live = {k: (v[0], v[1] & ~0o222) + v[2:] for k, v in fl.tree_digest(m.mountpoint).items()}

        def newest_is_live():
            vs, _ = snapshot_versions(m)
            snap = fl.tree_digest(m.path(".snapshots", f"v{vs[-1]}"))
            snap = {k: (v[0], v[1] & ~0o222) + v[2:] for k, v in snap.items()}
            d = fl.diff_digests(live, snap, ("live", f"v{vs[-1]}"))
            return not d, f"v{vs[-1]}: {d[:4]}"

        secs, _ = fl.wait_until(newest_is_live, fl.scaled(20),
                                "the newest snapshot equals the live tree", 0.5)
        say(f"ok: the newest version equals the live tree (after {secs:.1f} s)")
        v = vers[-1]
        fl.expect_errno(lambda: fl.write_file(m.path(".snapshots", f"v{v}", "new-file"), b"x"),
                        (errno.EROFS, errno.EACCES, errno.EPERM), "creating a file in a snapshot")
        fl.expect_errno(lambda: fl.write_file(m.path(".snapshots", f"v{v}", "hist.txt"), b"x"),
                        (errno.EROFS, errno.EACCES, errno.EPERM), "writing a file of a snapshot")
        fl.expect_errno(lambda: os.mkdir(m.path(".snapshots", "v999999")),
                        (errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST),
                        "mkdir in .snapshots")

    def many_versions():
        n = fl.size_for(20, 10)
        for i in range(1, n + 1):
            fl.write_file(m.path("counter"), str(i).encode(), fsync=True)
        vers, _ = snapshot_versions(m)
        seen = {}
        for v in vers:
            try:
                seen[v] = int(fl.read_file(m.path(".snapshots", f"v{v}", "counter")))
            except FileNotFoundError:
                seen[v] = 0
        values = [seen[v] for v in vers]
        missing = [i for i in range(1, n + 1) if i not in values]
        check(not missing and values == sorted(values), f"{n} fsync'd rewrites of counter: each "
              f"value is in its own version among {len(vers)}, in order",
              f"counter per version {[(v, seen[v]) for v in vers][-n - 3:]}: values never "
              f"published {missing}, in order: {values == sorted(values)}")

    if c.run("remount on the same --data", remount):
        c.run("a mount with a new --data reads the tree from the ring", from_ring)
        c.run("fsync waits for the publish", fsync_publishes)
        c.run("SIGTERM publishes what is pending", sigterm_publishes)
        if c.run("SIGKILL of the mount right after close", crash):
            c.run(".snapshots", snapshots)
            c.run(".snapshots after many fsync'd versions", many_versions)
    if m.alive():
        c.run("unmount", m.unmount)
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=300)
