#!/usr/bin/env python3
"""test_renew.py — a writable mount renews the leases of its blocks.

Every block a mount stores is leased for 399 days; without renewal the
ring would delete a file system nobody changed for that long. A ring of 4
`coopfs node` processes on 127.0.49.x and one `coopfs mount -f --key alice
-o renew_s=3`: after a 2 MiB file (8 chunks, a manifest), a directory of
small files and a publish, the mount's log shows a complete renewal that
sent a lease for at least the commit, the file's manifest and its 8
chunks; a second one follows a period later; and the file still reads
back.
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check = fl.say, fl.check
rl = fl.rl

MiB = 1 << 20
RENEWED = re.compile(r"lease renewal of version (\d+): (\d+) blocks, done")


def renewals(m):
    return [(int(v), int(n)) for v, n in RENEWED.findall(m.log_text())]


def main():
    fl.preflight()
    env = fl.FsEnv("renew", 49)
    env.keygen("alice")
    env.start_ring()
    m = env.mount(key="alice", opts=["renew_s=3"])
    data = os.urandom(2 * MiB)
    c = fl.Checks()

    rl.section("a file, a directory, published")
    with open(m.path("big.bin"), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.mkdir(m.path("d"))
    for i in range(20):
        with open(m.path(f"d/s{i}"), "w") as f:
            f.write(f"small {i}\n")
    fd = os.open(m.path("d"), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    before = len(renewals(m))

    rl.section("renewals every 3 s")
    rl.wait_until(lambda: (len(renewals(m)) >= before + 2, f"{len(renewals(m))} so far"), 40,
                  "two complete renewals")
    got = renewals(m)
    say(f"renewals so far (version, blocks): {got}")
    v, n = got[-1]
    check(n >= 10, f"the last renewal sent {n} leases (>= commit + manifest + 8 chunks)",
          f"the last renewal sent {n} leases; the tree has at least 10 blocks")
    c.run("the file reads back", lambda: check(open(m.path("big.bin"), "rb").read() == data,
                                               "big.bin identical", "big.bin differs"))

    c.run("unmount", m.unmount)
    c.finish()


if __name__ == "__main__":
    fl.run(main, budget=240)
