#!/usr/bin/env python3
"""test_sparse.py — a 5 GiB sparse file on a coopfs mount.

A ring of 4 `coopfs node` processes on 127.0.44.x and one `coopfs mount -f
--key alice`. One file gets 1 MiB of random bytes at offset 0 and at
4.5 GiB, is truncated to 5 GiB, and gets 1 MiB more ending at 5 GiB. Then,
through a fresh open and again after unmount and mount on the same
--data: its size is 5 GiB, st_blocks covers far less than that (under
64 MiB), the three pieces read back identical, and 1 MiB in each hole (at
1 MiB, at 2 GiB, just before 4.5 GiB and just after 4.5 GiB + 1 MiB) reads
as zeros, as does a read spanning the edge from data to hole.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure = fl.say, fl.check, fl.Failure
rl = fl.rl

MiB, GiB = 1 << 20, 1 << 30
SIZE = 5 * GiB


def check_file(p, pieces, what):
    st = os.stat(p)
    check(st.st_size == SIZE, f"{what}: size {st.st_size} = 5 GiB",
          f"{what}: size {st.st_size}, expected {SIZE}")
    fd = os.open(p, os.O_RDONLY)
    try:
        for off, data in pieces.items():
            got = os.pread(fd, len(data), off)
            check(got == data, f"{what}: 1 MiB at {off / GiB:.3f} GiB identical",
                  f"{what}: the 1 MiB written at {off} reads back different "
                  f"({len(got)} bytes, first difference at "
                  f"{next((i for i in range(min(len(got), len(data))) if got[i] != data[i]), None)})")
        for off in (MiB, 2 * GiB, 4 * GiB + GiB // 2 - MiB, 4 * GiB + GiB // 2 + MiB,
                    SIZE - 2 * MiB):
            got = os.pread(fd, MiB, off)
            check(got == bytes(MiB), f"{what}: hole at {off / GiB:.3f} GiB reads 1 MiB of zeros",
                  f"{what}: 1 MiB at {off} in a hole: {len(got)} bytes, "
                  f"{sum(1 for b in got if b)} non-zero")
        got = os.pread(fd, 2 * MiB, MiB // 2)
        want = pieces[0][MiB // 2:] + bytes(MiB + MiB // 2)
        check(got == want, f"{what}: a read across the edge from data to hole",
              f"{what}: 2 MiB at 512 KiB (data then hole) differ from the expected bytes")
        got = os.pread(fd, MiB, SIZE - MiB // 2)
        check(got == pieces[SIZE - MiB][MiB // 2:], f"{what}: a read past the end stops at "
              "5 GiB", f"{what}: read at 5 GiB - 512 KiB returned {len(got)} bytes")
    finally:
        os.close(fd)
    used = st.st_blocks * 512
    check(used < 64 * MiB, f"{what}: st_blocks {st.st_blocks} ({used / MiB:.1f} MiB) far below "
          "5 GiB", f"{what}: st_blocks {st.st_blocks} = {used / MiB:.0f} MiB; a sparse file of "
          "3 MiB of data should use far less than 64 MiB (contents and holes read back right)")


def main():
    fl.preflight()
    env = fl.FsEnv("sparse", 44)
    env.keygen("alice")
    env.start_ring()
    m = env.mount(key="alice")
    p = m.path("sparse.img")
    pieces = {0: os.urandom(MiB), 4 * GiB + GiB // 2: os.urandom(MiB),
              SIZE - MiB: os.urandom(MiB)}

    rl.section("write 1 MiB at 0 and at 4.5 GiB, truncate to 5 GiB, write the last 1 MiB")
    # (a failure here ends the test: nothing else can be checked)
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.pwrite(fd, pieces[0], 0)
        os.pwrite(fd, pieces[4 * GiB + GiB // 2], 4 * GiB + GiB // 2)
        os.ftruncate(fd, SIZE)
        os.pwrite(fd, pieces[SIZE - MiB], SIZE - MiB)
    finally:
        os.close(fd)
    c = fl.Checks()
    c.run("read back after close", check_file, p, pieces, "after close")
    c.run("unmount", m.unmount)
    rl.section("mount on the same --data")
    m.start()
    c.run("read back after the remount", check_file, p, pieces, "after the remount")
    c.run("unmount", m.unmount)
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=300)
