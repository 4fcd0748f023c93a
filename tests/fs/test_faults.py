#!/usr/bin/env python3
"""test_faults.py — a coopfs mount while ring nodes die.

A ring of 4 `coopfs node` processes on 127.0.47.x; the mount under test M
(--key alice, --capacity 64 KiB: its own node can hold none of the 256 KiB
chunks, so every read of a file it did not write needs the ring) and a
second writer W (--key alice, its own --data).

  one dies    a thread writes files of 10 B .. 600 KiB to M continuously;
              after a few files one ring node gets SIGKILL and the writes
              go on for a while. Every close succeeds, and afterwards every
              file reads back identical.
  uncached    W writes uncached.bin (1 MiB) and fsyncs; M lists it with its
              size (poll) without reading it; W is unmounted.
  all die     every ring node gets SIGKILL; M's node is alone. A write of
              1 MiB + close to M fails with EIO (errno 5), and a read of
              uncached.bin fails with EIO, each within 30 s (x3 in a
              sanitizer build); a write+close that succeeds or an
              operation still blocked at the bound is a failure.
  after       M's process is still alive; fusermount3 -u unmounts it and
              it exits by itself (its exit code is printed).
"""

import errno
import os
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure = fl.say, fl.check, fl.Failure
rl = fl.rl
MiB = 1 << 20


def main():
    fl.preflight()
    rng = rl.make_rng()
    env = fl.FsEnv("faults", 47)
    env.keygen("alice")
    ring = env.start_ring()
    m = env.mount(name="M", key="alice", extra=["--capacity", "65536"])
    c = fl.Checks()
    written = {}

    def one_dies():
        stop = threading.Event()
        errors = []
        count = [0]

        def writer():
            i = 0
            while not stop.is_set():
                data = rng.randbytes(rng.choice([10, 4096, 100_000, 600_000]))
                p = m.path("w", f"f{i:04d}")
                t0 = time.monotonic()
                try:
                    fl.write_file(p, data)
                except OSError as e:
                    errors.append(f"f{i:04d} ({len(data)} B): {fl.errname(e.errno)} after "
                                  f"{time.monotonic() - t0:.1f} s")
                else:
                    written[p] = data
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
        time.sleep(fl.size_for(12, 15))
        stop.set()
        t.join(fl.scaled(60))
        check(not t.is_alive(), "the writer stopped", "the writer is blocked in the mount "
              "for over 60 s after being asked to stop")
        check(not errors, f"{count[0]} files written, every close succeeded",
              f"{len(errors)} of {count[0]} writes failed while one ring node died: {errors[:6]}")
        bad = [p for p, d in written.items() if fl.read_file(p) != d]
        check(not bad, f"all {len(written)} files read back identical",
              f"{len(bad)} files read back different: {[os.path.basename(p) for p in bad[:6]]}")

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

    def all_die():
        live = [n for n in ring if n.alive()]
        for n in live:
            n.kill()
        say(f"SIGKILL to every ring node: {', '.join(n.name for n in live)}; M's node is alone")
        bound = fl.scaled(30)

        def write_close():
            fl.write_file(m.path("after-ring.bin"), os.urandom(MiB))

        def read_uncached():
            return len(fl.read_file(m.path("uncached.bin")))

        results = {}
        for what, fn in (("write+close of 1 MiB", write_close),
                         ("read of uncached.bin", read_uncached)):
            kind, val, secs = fl.bounded(fn, bound + 5)
            results[what] = (kind, val, secs)
            if kind == "hung":
                say(f"FAILED: {what}: still blocked after {secs:.0f} s")
                break  # the thread holds the mount; the next one would block too
            if kind == "ok":
                say(f"FAILED: {what}: succeeded after {secs:.1f} s (returned {val})")
            elif isinstance(val, OSError):
                say(f"{what}: {fl.errname(val.errno)} after {secs:.1f} s")
            else:
                say(f"{what}: {type(val).__name__}: {val} after {secs:.1f} s")
        bad = []
        for what, (kind, val, secs) in results.items():
            if kind == "hung":
                bad.append(f"{what}: still blocked after {secs:.0f} s (expected EIO within "
                           f"{bound:.0f} s)")
            elif kind == "ok":
                bad.append(f"{what}: succeeded (returned {val}) with every ring node dead; "
                           "expected EIO")
            elif not isinstance(val, OSError) or val.errno != errno.EIO:
                got = fl.errname(val.errno) if isinstance(val, OSError) else repr(val)
                bad.append(f"{what}: failed with {got}, expected EIO")
            elif secs > bound:
                bad.append(f"{what}: EIO only after {secs:.1f} s (bound {bound:.0f} s)")
        if len(results) < 2:
            bad.append("read of uncached.bin: not tried (the write still blocks the mount)")
        check(not bad, "with the ring gone, write+close and an uncached read fail with EIO "
              f"within {bound:.0f} s", "; ".join(bad))

    def after():
        check(m.alive(), "the mount process is still alive",
              f"the mount process exited with {m.proc.poll()}; log:\n{m.log_tail(15)}")
        rc, how = m.unmount(timeout=fl.scaled(60), check_clean=False)
        check(how == "fusermount3 -u", f"fusermount3 -u unmounted it and it exited {rc} by "
              "itself", f"unmount with the ring gone took {how} (exit {rc}); expected "
              "fusermount3 -u to end it")

    if c.run("one ring node dies during writes", one_dies):
        c.run("a file M has not read", uncached)
    c.run("every ring node dies", all_die)
    c.run("the mount after the ring is gone", after)
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=300)
