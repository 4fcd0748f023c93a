#!/usr/bin/env python3
"""test_faults.py — a coopfs mount while ring nodes die.

A ring of 4 `coopfs node` processes on 127.0.47.x; the mount under test M
(--key alice, --capacity 64 KiB: its own node can hold none of the 256 KiB
chunks, so every read of a file it did not write needs the ring) and a
second writer W (--key alice, its own --data).

  one dies    a thread writes files of 10 B .. 4 MiB to M continuously;
              after a few files one ring node gets SIGKILL and the writes
              go on for 12 s or up to 160 MiB in all (40 under ASan). Every close succeeds, and afterwards every
              file reads back identical, through M and through a mount with
              an empty --data (nothing cached: it reads from the ring; it
              is given a bound to see the last file, as a close is
              published within about a second).
  uncached    W writes uncached.bin (1 MiB) and fsyncs; M lists it with its
              size (poll) without reading it; W is unmounted.
  all die     every ring node gets SIGKILL; M's node is alone. A read of
              uncached.bin fails with EIO (errno 5), a write of 1 MiB +
              close fails with EIO or ENOSPC (M's node is full).
  after       M's process is still alive; fusermount3 -u unmounts it and
              it exits by itself (its exit code is printed: publishing
              fails with the ring gone).
  alone       a new ring of 2 nodes on 127.0.47.11-12 and a mount N
              (--key alice, room on its node) that writes 1 MiB and
              fsyncs; both ring nodes get SIGKILL; a write of 1 MiB + close
              to N fails with EIO: its node alone holds one copy, fewer
              than min_copies = 2. Then as "after" for N.

Each failure must come within 30 s (x3 in a sanitizer build); a call that
succeeds, or is still blocked at the bound, is a failure.
"""

import errno
import os
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure = fl.say, fl.check, fl.Failure
rl = fl.rl
MiB = 1 << 20
BIG = fl.size_for(4 * MiB, MiB)  # some files span several chunks
BOUND = fl.scaled(30)  # contract: EIO within 30 s, not a hang


def ops_fail(ops):
    """Runs each (what, fn, errnos) with fl.bounded; returns the list of
    what went wrong (a success, another error, a hang, or too late)."""
    bad = []
    hung = False
    for what, fn, want in ops:
        wants = "/".join(fl.errname(e) for e in want)
        if hung:
            bad.append(f"{what}: not tried (an earlier call still blocks the mount)")
            continue
        kind, val, secs = fl.bounded(fn, BOUND + 5)
        if kind == "hung":
            hung = True
            bad.append(f"{what}: still blocked after {secs:.0f} s (expected {wants} within "
                       f"{BOUND:.0f} s)")
        elif kind == "ok":
            bad.append(f"{what}: succeeded after {secs:.1f} s (returned {val}) with the ring "
                       "gone")
        elif not isinstance(val, OSError) or val.errno not in want:
            got = fl.errname(val.errno) if isinstance(val, OSError) else repr(val)
            bad.append(f"{what}: failed with {got} after {secs:.1f} s, expected {wants}")
        elif secs > BOUND:
            bad.append(f"{what}: {fl.errname(val.errno)} only after {secs:.1f} s "
                       f"(bound {BOUND:.0f} s)")
        else:
            say(f"ok: {what}: {fl.errname(val.errno)} after {secs:.1f} s")
            continue
        say(f"FAILED: {bad[-1]}")
    return bad


def main():
    fl.preflight()
    rng = rl.make_rng()
    env = fl.FsEnv("faults", 47)
    env.keygen("alice")
    ring = env.start_ring()
    m = env.mount(name="M", key="alice", extra=["--capacity", "65536"])
    c = fl.Checks()
    written = {}
    state = {}

    def one_dies():
        stop = threading.Event()
        errors = []
        count = [0]

        cap = fl.size_for(160, 40) * MiB  # bounds the disk the ring fills

        def writer():
            i = 0
            total = 0
            while not stop.is_set() and total < cap:
                data = rng.randbytes(rng.choice([10, 4096, 100_000, 600_000, BIG]))
                p = m.path("w", f"f{i:04d}")
                t0 = time.monotonic()
                try:
                    fl.write_file(p, data)
                except OSError as e:
                    errors.append(f"f{i:04d} ({len(data)} B): {fl.errname(e.errno)} after "
                                  f"{time.monotonic() - t0:.1f} s")
                else:
                    written[p] = data
                    total += len(data)
                count[0] += 1
                i += 1

        os.mkdir(m.path("w"))
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        fl.wait_until(lambda: (count[0] >= 5 or not t.is_alive(), count[0]), fl.scaled(60),
                      "the first 5 files written", 0.1)
        victim = ring[2]
        victim.kill()
        say(f"SIGKILL to {victim.name} ({victim.addr}) after {count[0]} files")
        t.join(fl.size_for(12, 15))  # the writer ends early at its cap
        stop.set()
        t.join(fl.scaled(60))
        check(not t.is_alive(), "the writer stopped", "the writer is blocked in the mount "
              "for over 60 s after being asked to stop")
        check(not errors, f"{count[0]} files written, every close succeeded",
              f"{len(errors)} of {count[0]} writes failed while one ring node died: {errors[:6]}")
        bad = [p for p, d in written.items() if fl.read_file(p) != d]
        check(not bad, f"all {len(written)} files read back identical",
              f"{len(bad)} files read back different: {[os.path.basename(p) for p in bad[:6]]}")
        # a mount with an empty --data has nothing cached: it reads from the
        # ring, where one holder of about 3/4 of the blocks is gone
        # closes are journaled and published within about a second: wait
        # for the last ones to show, then compare every byte
        fresh = env.mount(name="fresh", key="alice")
        last = os.path.relpath(max(written), m.mountpoint)
        fl.wait_until(lambda: (os.path.exists(fresh.path(last)), "not yet"), fl.scaled(20),
                      f"the fresh mount lists {last}, the last file written", 0.3)
        bad, total, t0 = [], 0, time.monotonic()
        for p, d in written.items():
            rel = os.path.relpath(p, m.mountpoint)
            try:
                got = fl.read_file(fresh.path(rel))
            except OSError as e:
                bad.append(f"{rel}: {fl.errname(e.errno)}")
                continue
            total += len(d)
            if got != d:
                bad.append(f"{rel}: {len(got)} bytes, different")
        check(not bad, f"a mount with an empty --data reads all {len(written)} files identical "
              f"({total / MiB:.0f} MiB in {time.monotonic() - t0:.1f} s) with {victim.name} dead",
              f"through a fresh mount, {len(bad)} files fail: {bad[:6]}")
        fresh.unmount()

    def uncached():
        w = env.mount(name="W", key="alice")
        data = os.urandom(MiB)
        fl.write_file(w.path("uncached.bin"), data, fsync=True)
        w.unmount()

        def listed():
            try:
                return os.stat(m.path("uncached.bin")).st_size == MiB, "size differs"
            except FileNotFoundError:
                return False, "not listed yet"

        secs, _ = fl.wait_until(listed, fl.scaled(30), "M lists W's uncached.bin", 0.3)
        say(f"ok: M lists uncached.bin (1 MiB) {secs:.1f} s after W's fsync")
        holders = os.getxattr(m.path("uncached.bin"), "user.coopfs.holders").decode().split()
        blocks = os.path.join(m.data, "store", "blocks")
        n_blocks = sum(len(f) for _, _, f in os.walk(blocks))
        say(f"uncached.bin held by {holders}; M's node {m.addr()} has {n_blocks} files in "
            f"{blocks}")

    def all_die():
        live = [n for n in ring if n.alive()]
        for n in live:
            n.kill()
        say(f"SIGKILL to every ring node: {', '.join(n.name for n in live)}; M's node is alone")
        # M's node is full: its write may fail as ENOSPC (the only node left
        # refused the chunks) as well as EIO.
        bad = ops_fail([("M: read of uncached.bin", lambda: len(fl.read_file(m.path(
                            "uncached.bin"))), (errno.EIO,)),
                        ("M: write+close of 1 MiB", lambda: fl.write_file(m.path(
                            "after-ring.bin"), os.urandom(MiB)), (errno.EIO, errno.ENOSPC))])
        check(not bad, "with the ring gone, M's uncached read and write fail within "
              f"{BOUND:.0f} s", "; ".join(bad))

    def after(mnt):
        check(mnt.alive(), f"{mnt.name}: the mount process is still alive",
              f"{mnt.name}: the mount process exited with {mnt.proc.poll()}; "
              f"log:\n{mnt.log_tail(15)}")
        rc, how = mnt.unmount(timeout=fl.scaled(60), check_clean=False)
        check(how == "fusermount3 -u", f"{mnt.name}: fusermount3 -u unmounted it and it "
              f"exited {rc} by itself", f"{mnt.name}: unmount with the ring gone took "
              f"{how} (exit {rc}); expected fusermount3 -u to end it")

    def alone():
        ring2 = env.start_ring(2, prefix="r", first_host=11)
        state["n"] = nm = env.mount(name="N", key="alice")
        fl.write_file(nm.path("before.bin"), os.urandom(MiB), fsync=True)
        say("ok: N wrote 1 MiB while its ring was up")
        for n in ring2:
            n.kill()
        say(f"SIGKILL to {', '.join(n.name for n in ring2)}; N's node is alone")
        bad = ops_fail([("N: write+close of 1 MiB", lambda: fl.write_file(nm.path(
            "after-ring.bin"), os.urandom(MiB)), (errno.EIO,))])
        check(not bad, f"N's write+close fails with EIO within {BOUND:.0f} s", "; ".join(bad))

    c.run("one ring node dies during writes", one_dies)
    if c.run("a file M has not read", uncached):
        c.run("every ring node dies", all_die)
    c.run("M after the ring is gone", after, m)
    if c.run("a new ring of 2 and mount N; the 2 die", alone):
        c.run("N after its ring is gone", after, state["n"])
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=300)
