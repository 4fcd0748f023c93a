#!/usr/bin/env python3
"""test_share.py — two writers with one key converge; followers read.

A ring of 4 `coopfs node` processes on 127.0.46.x; mounts A and B with
--key alice and their own --data; followers F (--follow with the hex
public key) and G (--follow with the path of alice.pub).

  base        A writes same.txt ("base") and fsyncs; B sees it (poll).
  at once     in two threads, A writes a/0..N-1 and same.txt ("from A"),
              B writes b/0..N-1 and same.txt ("from B"), each file closed,
              then both fsync. Within a bound (poll) both mounts show the
              same tree: every a/ and b/ file with its content, same.txt
              and exactly one same.txt.conflict-TAG, which between them
              hold "from A" and "from B".
  more        from a common base, at once: A deletes de.txt while B edits
              it, A renames movedir while B writes a file inside it, both create new.txt with different bytes, both make
              files in shared/. Within a bound both mounts show the same
              tree: shared/ holds both sides' files, new.txt and its
              .conflict- copy hold both contents, and B's edit of de.txt
              is kept (under de.txt or a .conflict- name), and so is the
              file B wrote into movedir/sub while A renamed movedir to
              moved: nothing lost.
  follow      F shows the converged tree (poll); A writes late.txt; F
              sees it within 20 s (poll); creating, writing, truncating,
              unlinking, renaming, mkdir, chmod and setxattr in F fail
              with EROFS, and F's tree is unchanged.
  .pub path   the same for G (A writes later.txt), and a create in G
              fails with EROFS.
  -o ro       a mount with --key alice -o ro shows A's tree; create and
              unlink fail with EROFS.

All mounts are unmounted with fusermount3 -u and must exit 0.
"""

import errno
import hashlib
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure = fl.say, fl.check, fl.Failure
rl = fl.rl


def poll_same(mounts, want_fn, timeout, what):
    """Waits until every mount's tree_digest is the same and want_fn(digest)
    returns None (else a string saying what is missing). Returns the digest."""
    last = {}

    def done():
        digests = []
        for m in mounts:
            try:
                digests.append(fl.tree_digest(m.mountpoint))
            except OSError as e:
                return False, f"{m.name}: {fl.errname(e.errno)} on {e.filename}"
        for m, d in zip(mounts[1:], digests[1:]):
            diffs = fl.diff_digests(digests[0], d, (mounts[0].name, m.name))
            if diffs:
                return False, f"{len(diffs)} differences: {diffs[:4]}"
        why = want_fn(digests[0])
        last["d"] = digests[0]
        return why is None, why

    secs, _ = fl.wait_until(done, timeout, what, 0.5)
    say(f"ok: {what} after {secs:.1f} s")
    return last["d"]


def main():
    fl.preflight()
    rng = rl.make_rng()
    env = fl.FsEnv("share", 46)
    pub = env.keygen("alice")
    env.start_ring()
    a = env.mount(name="A", key="alice")
    b = env.mount(name="B", key="alice")
    c = fl.Checks()
    n = fl.size_for(20, 8)
    contents = {}
    for who in ("a", "b"):
        for i in range(n):
            contents[f"{who}/{i}"] = rng.randbytes(rng.choice([10, 5000, 300_000]))

    def base():
        fl.write_file(a.path("same.txt"), b"base", fsync=True)

        def seen():
            try:
                return fl.read_file(b.path("same.txt")) == b"base", "not yet"
            except FileNotFoundError:
                return False, "B has no same.txt yet"

        secs, _ = fl.wait_until(seen, fl.scaled(20), "B sees A's same.txt", 0.3)
        say(f"ok: B reads same.txt 'base' {secs:.1f} s after A's fsync")

    def at_once():
        errors = []

        def writer(m, who, text):
            try:
                os.makedirs(m.path(who), exist_ok=True)
                for i in range(n):
                    fl.write_file(m.path(who, str(i)), contents[f"{who}/{i}"])
                    if i == n // 2:
                        fl.write_file(m.path("same.txt"), text)
                fd = os.open(m.path("same.txt"), os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            except OSError as e:
                errors.append(f"{m.name}: {fl.errname(e.errno)} on {e.filename}")

        ts = [threading.Thread(target=writer, args=(a, "a", b"from A"), daemon=True),
              threading.Thread(target=writer, args=(b, "b", b"from B"), daemon=True)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        for t in ts:
            t.join(fl.scaled(120))
        check(not any(t.is_alive() for t in ts), "both writers finished",
              "a writer is still blocked in the mount after 120 s")
        check(not errors, f"A and B wrote {n} files each and same.txt at once "
              f"({time.monotonic() - t0:.1f} s)", f"writes failed: {errors}")

        def want(d):
            missing = [k for k in contents if k not in d]
            if missing:
                return f"missing {missing[:5]}"
            wrong = [k for k, v in contents.items() if d[k][3] != hashlib.sha256(v).hexdigest()]
            if wrong:
                return f"wrong content in {wrong[:5]}"
            conf = [k for k in d if k.startswith("same.txt.conflict-")]
            if "same.txt" not in d or len(conf) != 1:
                return f"same.txt {'present' if 'same.txt' in d else 'missing'}, conflict " \
                       f"copies {conf}"
            return None

        d = poll_same([a, b], want, fl.scaled(30),
                      "A and B show the same tree with every file and one conflict copy")
        conf = [k for k in d if k.startswith("same.txt.conflict-")][0]
        pair = {fl.read_file(a.path("same.txt")), fl.read_file(a.path(conf))}
        check(pair == {b"from A", b"from B"}, f"same.txt and {conf} hold 'from A' and 'from B'",
              f"same.txt and {conf} hold {pair}, expected 'from A' and 'from B'")
        extra = [k for k in d if k not in contents and k not in ("a", "b", "same.txt", conf)]
        check(not extra, "nothing else in the tree", f"unexpected entries: {extra[:8]}")

    def more_at_once():
        fl.write_file(a.path("de.txt"), b"base de")
        os.makedirs(a.path("movedir", "sub"))
        fl.write_file(a.path("movedir", "sub", "old"), b"old")
        os.mkdir(a.path("shared"))
        fl.write_file(a.path("shared", "base"), b"base", fsync=True)

        def seen():
            try:
                return fl.read_file(b.path("de.txt")) == b"base de", "not yet"
            except FileNotFoundError:
                return False, "B has no de.txt yet"

        fl.wait_until(seen, fl.scaled(20), "B sees A's de.txt", 0.3)
        files = {"shared/base": b"base"}
        for who in "ab":
            for i in (1, 2):
                files[f"shared/{who}{i}"] = rng.randbytes(rng.choice([10, 300_000]))
        errors = []

        def writer(m, who):
            try:
                if who == "a":
                    os.unlink(m.path("de.txt"))
                    os.rename(m.path("movedir"), m.path("moved"))
                else:
                    fl.write_file(m.path("de.txt"), b"edited by B")
                    fl.write_file(m.path("movedir", "sub", "new-by-B"), b"new by B")
                fl.write_file(m.path("new.txt"), f"new from {who.upper()}".encode())
                for i in (1, 2):
                    fl.write_file(m.path("shared", f"{who}{i}"), files[f"shared/{who}{i}"])
                fd = os.open(m.path("shared", f"{who}2"), os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            except OSError as e:
                errors.append(f"{m.name}: {fl.errname(e.errno)} on {e.filename}")

        ts = [threading.Thread(target=writer, args=(mnt, who), daemon=True)
              for mnt, who in ((a, "a"), (b, "b"))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(fl.scaled(120))
        check(not any(t.is_alive() for t in ts) and not errors, "A deleted de.txt while B "
              "edited it; both created new.txt and files in shared/",
              f"the writers: {errors or 'one is still blocked after 120 s'}")
        sha = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
        h = lambda b_: hashlib.sha256(b_).hexdigest()  # noqa: E731

        def group(d, name):
            return sorted(d[k][3] for k in d if k == name or k.startswith(name + ".conflict-"))

        def want(d):
            bad = [k for k in files if k not in d or d[k][3] != sha[k]]
            if bad:
                return f"shared/ lacks or has other bytes in {bad}"
            if group(d, "new.txt") != sorted([h(b"new from A"), h(b"new from B")]):
                return f"new.txt and its conflict copies: {[k for k in d if 'new.txt' in k]}"
            if h(b"edited by B") not in group(d, "de.txt"):
                return f"B's edit of de.txt is gone (entries {[k for k in d if 'de.txt' in k]})"
            nb = [k for k in d if os.path.basename(k) == "new-by-B" and d[k][3] == h(b"new by B")]
            if not nb:
                return ("B's file written into movedir/sub while A renamed movedir to moved "
                        f"is gone: {[k for k in d if k.startswith(('moved', 'movedir'))]}")
            return None

        d = poll_same([a, b], want, fl.scaled(30), "A and B converge: shared/ merged, both "
                      "new.txt kept, B's edit of the file A deleted kept")
        say(f"info: de.txt entries {[k for k in d if 'de.txt' in k]}, new.txt entries "
            f"{[k for k in d if 'new.txt' in k]}, after the rename "
            f"{sorted(k for k in d if k.startswith(('moved', 'movedir')))}")

    def follower(name, pubkey, late, how):
        f = env.mount(name=name, follow=pubkey)
        poll_same([a, f], lambda d: None, fl.scaled(20), f"follower {name} ({how}) shows "
                  "A's tree")
        fl.write_file(a.path(late), late.encode(), fsync=True)
        t0 = time.monotonic()

        def seen():
            try:
                return fl.read_file(f.path(late)) == late.encode(), "different bytes"
            except FileNotFoundError:
                return False, "not there"

        fl.wait_until(seen, 20, f"follower {name} sees {late}", 0.3)
        say(f"ok: {name} reads {late} {time.monotonic() - t0:.1f} s after A's fsync")
        return f

    def follow():
        f = follower("F", pub, "late.txt", "hex public key")
        live = fl.tree_digest(f.mountpoint)
        P = f.path
        ro = (errno.EROFS,)
        fl.expect_errno(lambda: fl.write_file(P("new.txt"), b"x"), ro, "create in a follower")
        fl.expect_errno(lambda: os.open(P("late.txt"), os.O_WRONLY), ro,
                        "open for writing in a follower")
        fl.expect_errno(lambda: os.truncate(P("late.txt"), 0), ro, "truncate in a follower")
        fl.expect_errno(lambda: os.unlink(P("late.txt")), ro, "unlink in a follower")
        fl.expect_errno(lambda: os.rename(P("late.txt"), P("x.txt")), ro, "rename in a follower")
        fl.expect_errno(lambda: os.mkdir(P("dir")), ro, "mkdir in a follower")
        fl.expect_errno(lambda: os.chmod(P("late.txt"), 0o600), ro, "chmod in a follower")
        fl.expect_errno(lambda: os.setxattr(P("late.txt"), "user.x", b"1"), ro,
                        "setxattr in a follower")
        diffs = fl.diff_digests(live, fl.tree_digest(f.mountpoint), ("before", "after"))
        check(not diffs, "the follower's tree is unchanged", f"follower changed: {diffs[:5]}")
        f.unmount()

    def read_only():
        r = env.mount(name="R", key="alice", opts=["ro"])
        poll_same([a, r], lambda d: None, fl.scaled(20), "a -o ro mount with the key shows "
                  "A's tree")
        fl.expect_errno(lambda: fl.write_file(r.path("ro.txt"), b"x"), (errno.EROFS,),
                        "create in a -o ro mount")
        fl.expect_errno(lambda: os.unlink(r.path("late.txt")), (errno.EROFS,),
                        "unlink in a -o ro mount")
        r.unmount()

    def follow_pub_path():
        g = follower("G", env.pubfile("alice"), "later.txt", "path of alice.pub")
        fl.expect_errno(lambda: fl.write_file(g.path("new.txt"), b"x"), (errno.EROFS,),
                        "create in a follower")
        g.unmount()

    if c.run("A writes, B reads", base):
        if c.run("A and B write at once", at_once):
            c.run("delete/edit, create/create and one directory made twice, at once",
                  more_at_once)
            c.run("follower by hex public key", follow)
            c.run("follower by the path of a .pub file", follow_pub_path)
            c.run("-o ro with the key", read_only)
    for m in (a, b):
        if m.alive():
            c.run(f"unmount {m.name}", m.unmount)
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=300)
