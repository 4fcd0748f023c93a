#!/usr/bin/env python3
"""test_ring.py — a ring of real `coopfs node` processes on loopback.

1. 16 nodes on 127.0.1.1..16 (port 0, some with --vnodes 2), each joining
   through a different member that is already in the ring. Waits until
   every vnode's first successor and predecessor are the true ones (from
   `coopfs status --json` and the ids recomputed here), then every node
   looks up 1,000 random keys and every answer must be the true successor.
2. SIGKILL 4 nodes at once, start 4 new ones; the ring must become correct
   again and every node's 1,000 lookups agree.
3. SIGTERM one node: it exits 0 (within 5 s, stretched for sanitizer
   builds), its node.json is removed, the ring is correct without it, and
   lookups agree.
"""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
import ringlib as rl  # noqa: E402

LOOKUPS = 1000
FIRST = 16
KILL = 4
TWO_VNODES = {2, 5, 9, 13}  # node indexes started with --vnodes 2


def host(i):
    return f"127.0.1.{i + 1}"


def main():
    rl.check_binary()
    rng = rl.make_rng()
    c = rl.Cluster("ring")

    # ---------------------------------------------------------------- 1
    rl.section(f"1. {FIRST} nodes join one by one, each through a different member")
    t_form = time.monotonic()
    for i in range(FIRST):
        # Through the newest member: every join goes through a different
        # node that is already in the ring (15 distinct members for 15 joins
        # leaves no other choice), never all through the first.
        via = [c.nodes[-1]] if c.nodes else []
        n = c.add(host(i), vnodes=2 if i in TWO_VNODES else 1, join=via)
        c.wait_joined([n])
    joins = [n.join[0].name for n in c.nodes if n.join]
    rl.check(len(set(joins)) == len(joins), f"{FIRST - 1} joins went through {len(set(joins))} "
             "different members", f"some member was used twice to join: {joins}")
    rl.say(f"all {FIRST} nodes joined after {time.monotonic() - t_form:.1f} s:")
    c.describe(c.nodes)
    t = c.wait_stable(c.nodes, f"{FIRST}-node ring stable")
    rl.say(f"measured: ring formed and stable {time.monotonic() - t_form:.1f} s after the "
           f"first start ({t:.1f} s after the last join)")
    checked = c.check_lookups(c.nodes, c.nodes, rng, LOOKUPS, f"{FIRST}-node ring lookups")

    # ---------------------------------------------------------------- 2
    rl.section(f"2. SIGKILL {KILL} nodes at once, start {KILL} new ones")
    victims = rng.sample(c.nodes, KILL)
    for n in victims:
        n.signal(signal.SIGKILL)
    t_kill = time.monotonic()
    for n in victims:
        n.kill()  # reaps it
    rl.say("killed " + ", ".join(f"{n.name} {n.addr}" for n in victims))
    survivors = c.live()
    fresh = []
    for k in range(KILL):
        via = survivors[(k * 5 + 1) % len(survivors)]  # four different survivors
        fresh.append(c.add(host(FIRST + k), vnodes=2 if k == 1 else 1, join=[via]))
    rl.say("started " + ", ".join(f"{n.name} {n.addr} via {n.join[0].name}" for n in fresh))
    c.wait_joined(fresh)
    members = c.live()
    t = c.wait_stable(members, f"ring of {len(members)} nodes after {KILL} crashes and "
                      f"{KILL} joins")
    rl.say(f"measured: stable again {time.monotonic() - t_kill:.1f} s after the SIGKILLs")
    checked += c.check_lookups(members, members, rng, LOOKUPS, "lookups after crashes and joins")

    # ---------------------------------------------------------------- 3
    rl.section("3. SIGTERM one node: it leaves the ring and exits 0")
    two = [n for n in members if n.vnodes == 2]
    leaver = rng.choice(two or members)
    rest = [n for n in members if n is not leaver]
    owner = {i: n for n in members for i in n.ids}
    ids = sorted(owner)
    neigh = set()
    for i in leaver.ids:
        j = ids.index(i)
        neigh.add(owner[ids[j - 1]])
        neigh.add(owner[ids[(j + 1) % len(ids)]])
    neigh.discard(leaver)
    rl.say(f"SIGTERM to {leaver.name} {leaver.addr} ({leaver.vnodes} vnodes); its ring "
           f"neighbours: {', '.join(n.name for n in sorted(neigh, key=lambda n: n.name))}")
    limit = rl.scaled(5)
    t_term = time.monotonic()
    rc, secs = leaver.terminate(timeout=limit + rl.scaled(10))
    if rc is None:
        raise rl.Failure(f"{leaver.name} still running {limit + rl.scaled(10):.0f} s after "
                         "SIGTERM")
    rl.check(rc == 0, f"{leaver.name} exited 0 after SIGTERM", f"{leaver.name} exited with {rc} "
             f"after SIGTERM (spec: 0 after a leave); log:\n{leaver.log_tail(15)}")
    rl.check(secs <= limit, f"it exited in {secs:.2f} s (limit {limit:.0f} s)",
             f"{leaver.name} took {secs:.2f} s to exit after SIGTERM (limit {limit:.0f} s)")
    nj = os.path.join(leaver.dir, "node.json")
    rl.check(not os.path.exists(nj), "its node.json was removed",
             f"{nj} still exists after the node exited (operations.md: removed on exit)")
    c.wait_stable(rest, f"ring of {len(rest)} nodes without {leaver.name}")
    rl.say(f"measured: neighbours point past {leaver.name} "
           f"{time.monotonic() - t_term:.1f} s after the SIGTERM")
    checked += c.check_lookups(rest, rest, rng, LOOKUPS, "lookups after the leave")

    for n in c.nodes:
        if n not in victims and n is not leaver and not n.alive():
            raise rl.Failure(f"{n.name} exited with {n.returncode()}")
    rl.section("summary")
    rl.say(f"{len(c.nodes)} nodes started, {KILL} killed, 1 left; {checked} lookups checked, "
           "all correct")


if __name__ == "__main__":
    rl.run(main)
