#!/usr/bin/env python3
"""test_netns.py — a ring across 8 network namespaces, cut and healed.

Topology (nothing in the host's own network namespace is touched):

    cfs<pid>br : bridge br0, ports v0..v7
    cfs<pid>n0 .. cfs<pid>n7 : eth0 = 10.213.0.1..8/24, veth peer of vK

One `coopfs node` runs in each node namespace (`ip netns exec`). Its
control socket is a Unix socket in the shared filesystem, so `coopfs
status` and `coopfs lookup-key` run from here.

1. The 8 nodes form a ring (each joining through a different member);
   every vnode's successor and predecessor are the true ones, and every
   node's lookups return the true successor.
2. One node is cut off: its bridge port goes down. The other 7 must route
   around it: their ring becomes correct without it and their lookups
   agree with the true successor among the reachable nodes. The cut node
   must give up on them too (its vnodes end up knowing only each other).
3. The port comes back up: the two rings must merge back into one of all
   8 nodes, and every node's lookups agree.

COOPFS_IT_CUT=K cuts node K (1..7) instead of a random one (nodes 3 and 6
run 2 vnodes). Needs root and `ip netns`; otherwise exits 77 (skipped) and
says why. Namespaces are removed on every exit path; namespaces left by an earlier
run that was SIGKILLed (its pid gone) are removed at the start.
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
import ringlib as rl  # noqa: E402

NODES = 8
LOOKUPS = 1000
PREFIX = f"cfs{os.getpid()}"
BR = PREFIX + "br"
SUBNET = "10.213.0"


def ns(i):
    return f"{PREFIX}n{i}"


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def our_namespaces():
    r = ip("netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def remove_stale():
    """Removes namespaces of earlier runs whose test process is gone."""
    for name in our_namespaces():
        m = re.fullmatch(r"cfs(\d+)(br|n\d+)", name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        if os.path.exists(f"/proc/{m.group(1)}"):
            continue
        ip("netns", "del", name, check=False)
        rl.say(f"removed stale namespace {name} (its test, pid {m.group(1)}, is gone)")


created = []


def root_links():
    r = ip("-o", "link", "show", check=False)
    return sorted(line.split(":")[1].strip().split("@")[0] for line in r.stdout.splitlines())


def teardown():
    for name in reversed(created):
        ip("netns", "del", name, check=False)
    left = [n for n in our_namespaces() if n.startswith(PREFIX)]
    if left:
        print(f"cleanup: namespaces still present: {left}", file=sys.stderr)
    else:
        print(f"cleanup: removed namespaces {', '.join(created) or '(none)'}", file=sys.stderr)


def setup_network():
    if os.geteuid() != 0:
        raise rl.Skip("needs root to create network namespaces (ip netns)")
    if not shutil.which("ip"):
        raise rl.Skip("the ip command (iproute2) is not installed")
    remove_stale()
    rl.add_cleanup(teardown)
    try:
        ip("netns", "add", BR)
        created.append(BR)
        ip("-n", BR, "link", "add", "br0", "type", "bridge")
        ip("-n", BR, "link", "set", "br0", "up")
        for i in range(NODES):
            ip("netns", "add", ns(i))
            created.append(ns(i))
            ip("-n", ns(i), "link", "set", "lo", "up")
            ip("-n", ns(i), "link", "add", "eth0", "type", "veth", "peer", "name", f"v{i}",
               "netns", BR)
            ip("-n", BR, "link", "set", f"v{i}", "master", "br0")
            ip("-n", BR, "link", "set", f"v{i}", "up")
            ip("-n", ns(i), "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", "eth0")
            ip("-n", ns(i), "link", "set", "eth0", "up")
        ip("netns", "exec", ns(0), "true")  # may we run programs inside?
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        raise rl.Skip(f"cannot build the namespace network: {e}")
    rl.say(f"namespaces {BR} (bridge br0) and {ns(0)}..{ns(NODES - 1)} "
           f"({SUBNET}.1..{NODES}/24), none connected to the host")


def main():
    rl.check_binary()
    rl.section("network namespaces")
    host_links = root_links()
    setup_network()
    rl.check(root_links() == host_links, "the host's own namespace has the same links as before "
             f"({len(host_links)})", "links of the host's namespace changed: "
             f"{sorted(set(root_links()) ^ set(host_links))}")
    rng = rl.make_rng()
    c = rl.Cluster("netns")
    try:
        scenario(c, rng)
    except rl.Failure:
        print_tcp_state()
        raise


snapshots = []  # (label, lines) taken during the run, printed on failure


def tcp_backlog():
    """Every namespace's TCP streams that have unacknowledged data, with
    their retransmission timers: a stream stuck in backoff shows up here as
    timer:(on,<seconds to the next try>,<retransmissions>)."""
    out = []
    for i in range(NODES):
        r = subprocess.run(["ip", "netns", "exec", ns(i), "ss", "-tnoH"], capture_output=True,
                           text=True, timeout=10)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) >= 3 and f[2] != "0":  # Send-Q
                out.append(f"{ns(i)}: {' '.join(f)}")
    return out


def print_tcp_state():
    for label, lines in snapshots + [("at the failure", tcp_backlog())]:
        print(f"---- TCP streams with unacknowledged data, {label} ({len(lines)}):", flush=True)
        for line in lines:
            print(f"    {line}", flush=True)


def scenario(c, rng):
    rl.section(f"1. {NODES} nodes, one per namespace")
    t_form = time.monotonic()
    for i in range(NODES):
        via = [c.nodes[-1]] if c.nodes else []  # a different member each time
        n = c.add(f"{SUBNET}.{i + 1}", vnodes=2 if i in (3, 6) else 1, join=via, netns=ns(i))
        c.wait_joined([n])
    c.describe(c.nodes)
    c.wait_stable(c.nodes, f"{NODES}-node ring across namespaces stable")
    rl.say(f"measured: formed and stable {time.monotonic() - t_form:.1f} s after the first start")
    c.check_lookups(c.nodes, c.nodes, rng, LOOKUPS, f"{NODES}-node ring lookups")

    rl.section("2. cut one node off the bridge")
    k = rng.randrange(1, NODES)
    k = int(os.environ.get("COOPFS_IT_CUT", k))  # to replay one choice
    cut = c.nodes[k]
    rest = [n for n in c.nodes if n is not cut]
    ip("-n", BR, "link", "set", f"v{k}", "down")
    t_cut = time.monotonic()
    rl.say(f"bridge port v{k} down: {cut.name} {cut.addr} ({ns(k)}) is unreachable")
    c.wait_stable(rest, f"the other {len(rest)} nodes route around {cut.name}",
                  timeout=rl.scaled(60))
    rl.say(f"measured: ring of {len(rest)} correct {time.monotonic() - t_cut:.1f} s after the cut")
    c.check_lookups(rest, rest, rng, LOOKUPS, f"lookups from the {len(rest)} reachable nodes")
    rl.check(cut.alive(), f"{cut.name} is still running while cut off",
             f"{cut.name} exited with {cut.returncode()} while cut off")
    # The cut node, on its side, must give up on everyone else: its vnodes
    # end up in a correct ring of their own (a lone vnode has no successor
    # and no predecessor, or itself). Then reconnecting is a real merge of
    # two rings, through long-term memory.
    own = set(cut.ids)

    def alone():
        if not cut.alive():
            raise rl.Failure(f"{cut.name} exited with {cut.returncode()} while cut off")
        try:
            vs = cut.status()["vnodes"]
        except rl.CommandError as e:
            return False, str(e)
        view = []
        done = True
        for v in vs:
            succ = v.get("successors") or []
            pred = v.get("predecessor")
            first = int(succ[0]["id"], 16) if succ else None
            p = int(pred["id"], 16) if pred else None
            done &= (first is None or first in own) and (p is None or p in own)
            view.append(f"v{v['index']}: first successor {succ[0]['addr'] if succ else None}, "
                        f"predecessor {pred['addr'] if pred else None}")
        if done and len(own) > 1:  # its vnodes must form a ring of their own
            problems, _ = c.ring_problems([cut])
            done = not problems
        return done, "; ".join(view)

    _, view = rl.wait_until(alone, rl.scaled(60), f"{cut.name}, cut off, gives up on the "
                            "others and forms a ring of its own", interval=0.5)
    rl.say(f"ok: {cut.name}, cut off, knows only itself after {time.monotonic() - t_cut:.1f} s "
           f"({view})")

    rl.section("3. reconnect it: the ring merges back")
    ip("-n", BR, "link", "set", f"v{k}", "up")
    t_up = time.monotonic()
    rl.say(f"bridge port v{k} up again")
    c.wait_stable(c.nodes, f"all {NODES} nodes in one ring again", timeout=rl.scaled(90))
    rl.say(f"measured: merged {time.monotonic() - t_up:.1f} s after the reconnect")
    snapshots.append(("when the merge was seen", tcp_backlog()))
    c.check_lookups(c.nodes, c.nodes, rng, LOOKUPS, "lookups after the merge")
    for n in c.nodes:
        rl.check(n.alive(), f"{n.name} still running", f"{n.name} exited with {n.returncode()}")


if __name__ == "__main__":
    rl.run(main)
