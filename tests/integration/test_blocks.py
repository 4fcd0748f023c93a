#!/usr/bin/env python3
"""test_blocks.py — the block store of real node processes on loopback.

Two rings, each of `coopfs node` processes with their own data directory
and a DHT API on port 0 (--api HOST:0), keys made with `coopfs keygen` in a
temporary COOPFS_KEYS directory. The disk is the truth: copies of a block
are counted by listing DATA/store/blocks/XY/<key> on every live node.

Ring A, 8 nodes with ample --capacity:
  big file    a random file of COOPFS_BIG_MB MiB (default 1024; 256 in a
              sanitizer build, which says so) is inserted through n00;
              every chunk and the manifest are on disk (the file's block
              keys: every name in any blocks/ right after the insert, since
              the ring held nothing before, and exactly ceil(size/256 KiB)
              + 1 of them); SIGKILL of 2 nodes other than n00; at once,
              before the ring has noticed (or, with
              COOPFS_IT_LOOKUP_AT_ONCE=0, once the ring of the live nodes
              is correct again), `coopfs lookup -o` returns
              bytes with the same SHA-256; within a bound every block is
              back to 3 copies among the live nodes (the time it took is
              printed).
  corruption  a 16 MiB file is inserted; one byte of one copy of one of
              its blocks is flipped on one node's disk (n00, for a block
              whose first replica it is, so that its own reads meet it); a
              lookup still returns identical bytes, and so does a get of
              that block through n00; afterwards the bad copy has
              left blocks/ (quarantine/ holds it) and, within a bound, a
              good copy is back on that node. Which path repaired it (the
              get path's repair, or maintenance) is printed.

Ring B, 6 nodes, one of them (tiny) with --capacity 2M and 8 vnodes (so it
is in most replica sets):
  diversion   a file of 40 MiB, far more than tiny can take, is inserted;
              it succeeds, tiny is in more replica sets than it holds
              blocks (so diversion happened), tiny's store (blocks + roots
              + kv, sampled every 50 ms, through a maintenance round) never
              exceeds 2 MiB, and every block has 3 copies.
  roots       `coopfs root put` of version 1, then 2 (--expect 1) succeed;
              version 1 sent again (valid signature, stale) is refused, so
              are three forged roots (signature bit flipped, payload bit
              flipped, signed by another key under the owner's public key,
              made by forge_root); a compare-and-swap with a wrong --expect
              exits 3 naming version 2; `coopfs root get` (by name and by
              public key, through another node) returns version 2; no
              node's roots/ file holds anything but version 2.
  reclaim     owners A and B insert the same file (identical blocks); A
              reclaims; B's lookup still returns identical bytes; B
              reclaims; within a bound the file's blocks are gone from
              every node's disk.
  DHT API     `coopfs kv put` through one node, `kv get` through another
              returns the value; `kv get` of an unknown key exits 1;
              garbage on the API port (too short, unknown type, a GET body
              of the wrong size) closes that connection and the node stays
              up and answers.

Timings are printed; they never decide pass or fail: deadlines only bound
the waiting (scaled x3 in sanitizer builds). Every process and directory
is removed on every exit path (ringlib.run).

Environment (besides ringlib's): COOPFS_BIG_MB (the big file's size in MiB),
COOPFS_FORGE_ROOT (the forge_root helper; default next to COOPFS in the
build tree), COOPFS_IT_LOOKUP_AT_ONCE=0 (wait for the ring to repair before the lookup;
by default the big file is looked up right after the SIGKILLs, the harder
case: a get that meets a dead node or a vnode that is not yet responsible
starts over from fresh lookups for about 4 s, which outlasts the repair).
"""

import bisect
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
import ringlib as rl  # noqa: E402
from ctllib import (BS_ERR_BAD_BLOCK, CTL_BLOCK_GET, CTL_BLOCK_PUT, CTL_ROOT_PUT,  # noqa: E402
                    STORE_CONTENT, Ctl, bs_reply, err_name)

CHUNK = 256 * 1024
K = 3
SYNC_PERIOD_S = 10  # BS_SYNC_PERIOD_MS, blockstore/bs.h
ROOT_ANY = (1 << 64) - 1


# DHT API
API_PUT, API_GET, API_SUCCESS, API_FAILURE = 650, 651, 652, 653

say = rl.say


def _sanitized():
    try:
        with open(rl.COOPFS, "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"AddressSanitizer" in data
    except OSError:
        return False


SANITIZED = _sanitized()


def _forge_path():
    p = os.environ.get("COOPFS_FORGE_ROOT")
    if p:
        return os.path.abspath(p)
    build = os.path.dirname(os.path.dirname(rl.COOPFS))
    return os.path.join(build, "tests", "integration", "forge_root")


FORGE = _forge_path()


# ---------------------------------------------------------------- nodes


class BNode(rl.Node):
    """A node with a store: --capacity, and its DHT API on its own IP, port 0."""

    def __init__(self, cluster, name, host, join=(), capacity="20G", vnodes=1):
        super().__init__(cluster, name, host, vnodes=vnodes, join=join)
        self.capacity = capacity

    def argv(self):
        return super().argv() + ["--capacity", self.capacity, "--api", f"{self.host}:0"]

    @property
    def store(self):
        return os.path.join(self.dir, "store")

    def api_addr(self):
        return rl.parse_addr(self.node_json["api"])


def start_ring(cluster, hosts, capacities=None, vnodes=None):
    """Starts one node per host (the first alone, the others joining it),
    waits for node.json and a correct ring. capacities and vnodes map a
    node's index to its --capacity and --vnodes. Returns the nodes."""
    capacities = capacities or {}
    vnodes = vnodes or {}
    nodes = []
    for i, h in enumerate(hosts):
        n = BNode(cluster, f"n{i:02d}", h, join=[nodes[0]] if nodes else (),
                  capacity=capacities.get(i, "20G"), vnodes=vnodes.get(i, 1))
        cluster.nodes.append(n)
        n.start()
        n.wait_ready()
        if n.node_json.get("api") in (None, ""):
            raise rl.Failure(f"{n.name}: node.json has no api address although --api was given")
        nodes.append(n)
    cluster.wait_stable(nodes, f"ring of {len(nodes)}")
    return nodes


# ---------------------------------------------------------------- tools

KEYS_ENV = dict(os.environ)


def tool(args, timeout, input_=None):
    """Runs `coopfs ARGS` with COOPFS_KEYS set; returns the CompletedProcess
    (bytes). A tool that outlives timeout is a Failure."""
    try:
        return subprocess.run([rl.COOPFS] + args, input=input_, capture_output=True,
                              timeout=timeout, env=KEYS_ENV)
    except subprocess.TimeoutExpired:
        raise rl.Failure(f"coopfs {' '.join(args[:3])} did not finish within {timeout:.0f} s")


def text(b):
    return b.decode("utf-8", "replace").strip()


def tool_ok(args, timeout, what, input_=None):
    r = tool(args, timeout, input_)
    if r.returncode != 0:
        raise rl.Failure(f"{what}: coopfs {args[0]} exited {r.returncode}: {text(r.stderr)[-800:]}")
    return r


def keygen(name):
    tool_ok(["keygen", name], rl.scaled(15), f"keygen {name}")
    d = KEYS_ENV["COOPFS_KEYS"]
    for suffix in (".key", ".pub"):
        if not os.path.isfile(os.path.join(d, name + suffix)):
            raise rl.Failure(f"coopfs keygen {name} made no {name}{suffix} in {d}")
    mode = os.stat(os.path.join(d, name + ".key")).st_mode & 0o777
    if mode != 0o600:
        raise rl.Failure(f"{name}.key has mode {mode:o}, operations.md says 0600")


def pub_hex(name):
    with open(os.path.join(KEYS_ENV["COOPFS_KEYS"], name + ".pub")) as f:
        lines = f.read().split()
    return lines[-1]


def insert(node, path, key_name, timeout, what):
    start = time.monotonic()
    r = tool_ok(["insert", "--data", node.dir, "--key", key_name, path], timeout, what)
    secs = time.monotonic() - start
    lines = text(r.stdout).splitlines()
    fkey = lines[-1].strip() if lines else ""
    if len(fkey) != 64 or any(c not in "0123456789abcdef" for c in fkey):
        raise rl.Failure(f"{what}: insert printed no file key on its last line: "
                         f"{text(r.stdout)[-200:]!r}")
    return fkey, secs


def lookup_check(node, fkey, out, want_sha, timeout, what):
    """`coopfs lookup -o out` through node; the bytes must hash to want_sha."""
    if os.path.exists(out):
        os.unlink(out)
    start = time.monotonic()
    tool_ok(["lookup", "--data", node.dir, fkey, "-o", out], timeout, what)
    secs = time.monotonic() - start
    got = sha256_file(out)
    size = os.path.getsize(out)
    os.unlink(out)
    rl.check(got == want_sha, f"{what}: {size / 2**20:.1f} MiB identical (SHA-256 "
             f"{got[:16]}…) in {secs:.1f} s ({size / 2**20 / max(secs, 1e-6):.1f} MiB/s)",
             f"{what}: SHA-256 of the bytes is {got}, the file's is {want_sha}")
    return secs


# ---------------------------------------------------------------- files


def make_file(path, size):
    """A file of fresh random bytes (os.urandom: Python's seeded generator
    makes 1 GiB three times slower, and no check depends on the bytes)."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            b = os.urandom(n)
            h.update(b)
            f.write(b)
            left -= n
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------- the disk


def _is_key(name):
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def disk_blocks(node):
    """{key hex: size} of the content blocks in node's blocks/ (the disk is
    the truth)."""
    out = {}
    base = os.path.join(node.store, "blocks")
    try:
        subs = os.listdir(base)
    except FileNotFoundError:
        return out
    for sub in subs:
        d = os.path.join(base, sub)
        try:
            names = os.listdir(d)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if not _is_key(name):
                continue
            try:
                out[name] = os.stat(os.path.join(d, name)).st_size
            except FileNotFoundError:
                pass  # removed while we listed
    return out


def store_used(node):
    """Bytes of the block, root and kv files: what --capacity bounds."""
    total = sum(disk_blocks(node).values())
    for sub in ("roots", "kv"):
        d = os.path.join(node.store, sub)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for name in names:
            if _is_key(name):
                try:
                    total += os.stat(os.path.join(d, name)).st_size
                except FileNotFoundError:
                    pass
    return total


def quarantined(node):
    d = os.path.join(node.store, "quarantine")
    try:
        return os.listdir(d)
    except FileNotFoundError:
        return []


def copies(nodes, keys):
    """{key: number of nodes among `nodes` holding it on disk}."""
    count = dict.fromkeys(keys, 0)
    for n in nodes:
        for k in disk_blocks(n):
            if k in count:
                count[k] += 1
    return count


def histogram(count):
    h = {}
    for c in count.values():
        h[c] = h.get(c, 0) + 1
    return ", ".join(f"{c} copies: {h[c]}" for c in sorted(h))


def wait_copies(nodes, keys, want, timeout, what):
    """Waits until every key has at least `want` copies among nodes; returns
    the seconds it took."""

    def enough():
        count = copies(nodes, keys)
        short = [k for k, c in count.items() if c < want]
        return not short, (f"{len(short)} of {len(keys)} blocks below {want} copies "
                           f"({histogram(count)})")

    secs, _ = rl.wait_until(enough, timeout, what, interval=1.0)
    return secs


def replica_set(nodes, key_hex, k=K):
    """The first k distinct nodes that succeed key on the ring of nodes."""
    owner = {}
    for n in nodes:
        for i in n.ids:
            owner[i] = n
    ids = sorted(owner)
    j = bisect.bisect_left(ids, int(key_hex, 16))
    out = []
    for d in range(len(ids)):
        n = owner[ids[(j + d) % len(ids)]]
        if n not in out:
            out.append(n)
            if len(out) == k:
                break
    return out


def primary_node(nodes, key_hex):
    """The node of the vnode responsible for key (first id >= key) among nodes."""
    owner = {}
    for n in nodes:
        for i in n.ids:
            owner[i] = n
    ids = sorted(owner)
    return owner[rl.successor(ids, int(key_hex, 16))]


def check_logs(cluster):
    """No node wrote a sanitizer report (UBSan's "runtime error" does not
    stop the process, so nothing else would notice it)."""
    bad = []
    for n in cluster.nodes:
        for line in n.log_text().splitlines():
            if "runtime error:" in line or "Sanitizer" in line:
                bad.append(f"{n.name}: {line.strip()[:300]}")
    rl.check(not bad, f"no sanitizer reports in the logs of {len(cluster.nodes)} nodes",
             "sanitizer reports in node logs:\n    " + "\n    ".join(bad[:10]))


def forge(mode, key_name, version, payload_hex):
    keyfile = os.path.join(KEYS_ENV["COOPFS_KEYS"], key_name + ".key")
    try:
        r = subprocess.run([FORGE, mode, keyfile, str(version), payload_hex],
                           capture_output=True, timeout=rl.scaled(10))
    except subprocess.TimeoutExpired:
        raise rl.Failure("forge_root hung")
    if r.returncode != 0:
        raise rl.Failure(f"forge_root {mode} exited {r.returncode}: {text(r.stderr)}")
    return bytes.fromhex(text(r.stdout))


def root_put_raw(node, block, expect, what):
    c = Ctl(node, rl.scaled(40))
    try:
        t, body = c.call(CTL_ROOT_PUT, struct.pack(">Q", expect) + block)
    finally:
        c.close()
    return bs_reply(t, body, what, error_ok=True)


# ---------------------------------------------------------------- DHT API


def api_connect(node):
    s = socket.create_connection(node.api_addr(), timeout=rl.scaled(10))
    return s


def api_closes(node, data, what):
    """Sends data on a fresh API connection; the node must close it."""
    s = api_connect(node)
    try:
        s.sendall(data)
        how, secs, got = _wait_closed(s, rl.scaled(10))
    finally:
        s.close()
    rl.check(how is not None, f"DHT API: {what}: connection closed ({how}, {secs:.2f} s)",
             f"DHT API: {what}: the node kept the connection open {rl.scaled(10):.0f} s")


def _wait_closed(s, timeout):
    import select
    start = time.monotonic()
    end = start + timeout
    got = 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None, time.monotonic() - start, got
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return "ECONNRESET", time.monotonic() - start, got
        if not b:
            return "EOF", time.monotonic() - start, got
        got += len(b)


# ================================================================ ring A


def ring_a(rng, root):
    rl.section("ring A: 8 nodes, a big file, 2 SIGKILLs, corruption")
    big_mb = int(os.environ.get("COOPFS_BIG_MB", "0") or 0)
    if not big_mb:
        big_mb = 256 if SANITIZED else 1024
        if SANITIZED:
            say("sanitizer build: the big file is 256 MiB instead of 1024 (COOPFS_BIG_MB "
                "overrides)")
    size = big_mb * 2**20
    free = shutil.disk_usage(root).free
    need = size * (K + 3)
    if free < need:
        raise rl.Skip(f"{free / 2**30:.1f} GiB free under {root}, the big-file scenario needs "
                      f"about {need / 2**30:.1f} (set COOPFS_BIG_MB lower)")

    c = rl.Cluster("blocksA")
    hosts = [f"127.0.4.{i + 1}" for i in range(8)]
    t = time.monotonic()
    nodes = start_ring(c, hosts)
    say(f"8 nodes up and the ring correct in {time.monotonic() - t:.1f} s")
    tn = nodes[0]  # the node the tools talk to

    path = os.path.join(c.root, "big.bin")
    t = time.monotonic()
    want_sha = make_file(path, size)
    say(f"made a random file of {big_mb} MiB in {time.monotonic() - t:.1f} s, "
        f"SHA-256 {want_sha[:16]}…")

    fkey, secs = insert(tn, path, "alice", rl.scaled(900), "insert of the big file")
    say(f"ok: inserted {big_mb} MiB in {secs:.1f} s ({big_mb / secs:.1f} MiB/s), key {fkey[:16]}…")

    nchunks = -(-size // CHUNK)
    keys = set()
    for n in nodes:
        keys |= set(disk_blocks(n))
    rl.check(len(keys) == nchunks + 1 and fkey in keys,
             f"the disks hold {len(keys)} distinct blocks = {nchunks} chunks + the manifest",
             f"the disks hold {len(keys)} distinct blocks (manifest among them: {fkey in keys}), "
             f"the file has {nchunks} chunks + 1 manifest")
    count = copies(nodes, keys)
    say(f"copies right after the insert: {histogram(count)}")
    low = [k for k, n in count.items() if n < K]
    rl.check(not low, f"every block has at least {K} copies after the insert",
             f"{len(low)} blocks have fewer than {K} copies after insert returned 0, "
             f"e.g. {low[0] if low else ''}")
    per_node = {n.name: len(disk_blocks(n)) for n in nodes}
    say(f"blocks per node: {per_node}")

    victims = rng.sample(nodes[1:], 2)
    for v in victims:
        v.kill()
    live = [n for n in nodes if n not in victims]
    say(f"SIGKILLed {', '.join(v.name for v in victims)}")
    count = copies(live, keys)
    say(f"copies among the {len(live)} live nodes right after: {histogram(count)}")
    lost = [k for k, n in count.items() if n == 0]
    rl.check(not lost, "no block lost its every copy",
             f"{len(lost)} blocks have no copy among the live nodes although k = {K}")
    t_kill = time.monotonic()

    if os.environ.get("COOPFS_IT_LOOKUP_AT_ONCE", "1") == "0":
        c.wait_stable(live, "the ring of the 6 live nodes repaired")
    out = os.path.join(c.root, "big.out")
    lookup_check(tn, fkey, out, want_sha, rl.scaled(600),
                 f"lookup {time.monotonic() - t_kill:.1f} s after 2 SIGKILLs")

    secs = wait_copies(live, keys, K, rl.scaled(300), f"{K} copies of every block among "
                       f"the {len(live)} live nodes")
    total = time.monotonic() - t_kill
    say(f"ok: every block back to {K} copies among the live nodes, {total:.1f} s after the "
        f"SIGKILLs ({secs:.1f} s of polling after the lookup); {histogram(copies(live, keys))}")

    # --- corruption
    rl.section("ring A: one copy of one block damaged on disk")
    # A small file of its own, so the lookup that meets the damage is quick.
    os.unlink(path)
    path = os.path.join(c.root, "small.bin")
    small = 16 * 2**20
    want_sha = make_file(path, small)
    before = set()
    for n in live:
        before |= set(disk_blocks(n))
    fkey, _ = insert(tn, path, "alice", rl.scaled(120), "insert of a 16 MiB file")
    mine = disk_blocks(tn)
    chunk_keys = sorted(k for k in mine if k != fkey and k not in before)
    if not chunk_keys:
        raise rl.Failure(f"{tn.name} holds no chunk of the 16 MiB file")
    firsts = [k for k in chunk_keys if primary_node(live, k) is tn]
    victim_key = rng.choice(firsts or chunk_keys)
    bpath = os.path.join(tn.store, "blocks", victim_key[:2], victim_key)
    with open(bpath, "r+b") as f:
        f.seek(0, 2)
        fsize = f.tell()
        off = 8 + (fsize - 8) // 2
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x40]))
        f.flush()
        os.fsync(f.fileno())
    say(f"flipped a bit at offset {off} of block {victim_key[:16]}… on {tn.name} "
        f"({'its first replica' if firsts else 'one of its replicas'}; the other holders: "
        f"{[n.name for n in live if n is not tn and victim_key in disk_blocks(n)]})")
    q_before = set(quarantined(tn))
    t_corrupt = time.monotonic()
    seen = {}  # "quarantined", "good": when first seen (monotonic)
    stop = threading.Event()

    def good_on_disk():
        try:
            with open(bpath, "rb") as f:
                return hashlib.sha256(f.read()).hexdigest() == victim_key
        except FileNotFoundError:
            return False

    def watch():
        # Watches the disk every 0.1 s: when the bad copy went to quarantine/
        # and when a good copy came back, to tell which path repaired it.
        while not stop.is_set():
            now = time.monotonic()
            if "quarantined" not in seen and any(victim_key in q for q in
                                                 set(quarantined(tn)) - q_before):
                seen["quarantined"] = now
            if "quarantined" in seen and "good" not in seen and good_on_disk():
                seen["good"] = now
            if "good" in seen:
                return
            stop.wait(0.1)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        lookup_check(tn, fkey, out, want_sha, rl.scaled(120), "lookup with a damaged copy")
        # And the block alone, through the node that holds the bad copy.
        c_ = Ctl(tn, rl.scaled(40))
        try:
            rep = bs_reply(*c_.call(CTL_BLOCK_GET, bytes([STORE_CONTENT]) +
                                    bytes.fromhex(victim_key)), "get of the damaged block")
        finally:
            c_.close()
        got_sha = hashlib.sha256(rep["bytes"]).hexdigest()
        rl.check(rep["status"] == 0 and got_sha == victim_key,
                 "a get of the damaged block through its holder returns the good bytes",
                 f"get of the damaged block: status {err_name(rep['status'])} "
                 f"({rep['reason']!r}), bytes hash to {got_sha[:16]}…")
        rl.wait_until(lambda: ("quarantined" in seen, f"in blocks/: "
                               f"{victim_key in disk_blocks(tn)}; quarantine/: "
                               f"{sorted(set(quarantined(tn)) - q_before)[:3]}"),
                      rl.scaled(3 * SYNC_PERIOD_S + 30),
                      f"the damaged copy on {tn.name} moved to quarantine/", interval=0.2)
        tq = seen["quarantined"] - t_corrupt
        say(f"ok: the damaged copy left blocks/ for quarantine/ {tq:.1f} s after the damage")
        rl.wait_until(lambda: ("good" in seen, "no good copy on disk yet"),
                      rl.scaled(6 * SYNC_PERIOD_S + 30),
                      f"a good copy of {victim_key[:16]}… back on {tn.name}", interval=0.2)
    finally:
        stop.set()
        th.join()
    gap = seen["good"] - seen["quarantined"]
    how = ("the get path (the reader's repair came right after the bad read)" if gap < 2.0
           else f"maintenance (it came {gap:.1f} s after the bad read)")
    say(f"ok: a good copy is back on {tn.name} {seen['good'] - t_corrupt:.1f} s after the "
        f"damage, {gap:.1f} s after it was quarantined: repaired by {how}")
    st = tn.status()
    bsj = st.get("store") or st.get("blocks") or {}
    if isinstance(bsj, dict) and bsj:
        keys_of_interest = {k: bsj[k] for k in ("reads_bad", "repairs_sent", "sync_pushed",
                                                 "sync_pulled") if k in bsj}
        if keys_of_interest:
            say(f"{tn.name} counters: {keys_of_interest}")
    count = copies(live, keys)
    low = [k for k, n in count.items() if n < K]
    rl.check(not low, f"still {K} copies of every block", f"{len(low)} blocks below {K} copies")

    t = time.monotonic()
    for n in c.nodes:
        if n.alive():
            n.kill()
    say(f"ring A killed in {time.monotonic() - t:.1f} s")
    check_logs(c)
    # Free the disk while ring B runs (the logs stay for the report):
    # unlinking thousands of files is slow on a file system mounted with
    # "discard" (about 4 ms a file on the VM this was written on).
    os.unlink(path)
    if os.environ.get("COOPFS_IT_KEEP") == "1":
        return None
    stores = [n.store for n in c.nodes]

    def remove():
        t = time.monotonic()
        for d in stores:
            shutil.rmtree(d, ignore_errors=True)
        say(f"(ring A's stores removed in the background in {time.monotonic() - t:.1f} s)")

    th = threading.Thread(target=remove, daemon=True)
    th.start()
    return th


# ================================================================ ring B


def ring_b(rng):
    rl.section("ring B: 6 nodes, one with --capacity 2M and 8 vnodes")
    c = rl.Cluster("blocksB")
    hosts = [f"127.0.5.{i + 1}" for i in range(6)]
    tiny_i = 3
    cap = 2 * 2**20
    # tiny has 8 vnodes, so it sits in most replica sets and must divert.
    nodes = start_ring(c, hosts, capacities={tiny_i: "2M"}, vnodes={tiny_i: 8})
    tiny = nodes[tiny_i]
    tn = nodes[0]

    # --- diversion
    rl.section("capacity: a node with 2 MiB in a ring storing 40 MiB")
    size = 40 * 2**20
    path = os.path.join(c.root, "div.bin")
    want_sha = make_file(path, size)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], store_used(tiny))
            stop.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        before = set()
        for n in nodes:
            before |= set(disk_blocks(n))
        fkey, secs = insert(tn, path, "alice", rl.scaled(300), "insert beside a full node")
        say(f"ok: inserted 40 MiB in {secs:.1f} s although {tiny.name} donates 2 MiB")
        keys = set()
        for n in nodes:
            keys |= set(disk_blocks(n))
        keys -= before
        nchunks = -(-size // CHUNK)
        rl.check(len(keys) == nchunks + 1, f"{len(keys)} new blocks on the disks",
                 f"{len(keys)} new blocks on the disks, the file has {nchunks} + 1")
        count = copies(nodes, keys)
        member = sum(1 for k in keys if tiny in replica_set(nodes, k))
        held = sum(1 for k in disk_blocks(tiny) if k in keys)
        rl.check(member > held,
                 f"{tiny.name} is in the replica set of {member} blocks and holds {held}: "
                 f"{member - held} were diverted to the next successor",
                 f"{tiny.name} is in the replica set of {member} blocks and holds {held}: "
                 "no diversion was needed, the scenario tested nothing")
        low = [k for k, n in count.items() if n < K]
        rl.check(not low, f"every block has {K} copies ({histogram(count)})",
                 f"{len(low)} blocks have fewer than {K} copies ({histogram(count)})")
        lookup_check(nodes[1], fkey, os.path.join(c.root, "div.out"), want_sha, rl.scaled(120),
                     "lookup of the diverted file")
        # A maintenance round must not push past the cap either.
        time.sleep(min(SYNC_PERIOD_S + 2, rl.scaled(SYNC_PERIOD_S + 2)))
    finally:
        stop.set()
        th.join()
    held = len(disk_blocks(tiny))
    rl.check(peak[0] <= cap,
             f"{tiny.name}'s store peaked at {peak[0]} bytes <= 2 MiB ({held} blocks now)",
             f"{tiny.name}'s store reached {peak[0]} bytes, above its --capacity {cap}")
    rl.check(tiny.alive(), f"{tiny.name} still running", f"{tiny.name} exited")
    os.unlink(path)

    # --- roots
    rl.section("roots: versions, compare-and-swap, forgeries")
    p1, p2 = "aa" * 32, "bb" * 32
    tool_ok(["root", "--data", tn.dir, "put", "--key", "alice", "--version", "1", p1],
            rl.scaled(40), "root put version 1")
    say("ok: root version 1 stored")
    tool_ok(["root", "--data", tn.dir, "put", "--key", "alice", "--version", "2", "--expect",
             "1", p2], rl.scaled(40), "root put version 2 --expect 1")
    say("ok: root version 2 (--expect 1) stored")

    stale = forge("valid", "alice", 1, p1)
    rep = root_put_raw(tn, stale, ROOT_ANY, "stale root")
    rl.check(rep["status"] != 0,
             f"version 1 sent again (valid signature) refused: {err_name(rep['status'])} "
             f"({rep['reason']})",
             "version 1 sent again after version 2 was accepted")
    r = tool(["root", "--data", tn.dir, "put", "--key", "alice", "--version", "1", "--any", p1],
             rl.scaled(40))
    rl.check(r.returncode in (1, 3),
             f"coopfs root put --version 1 --any refused too (exit {r.returncode}: "
             f"{text(r.stderr)[:120]})",
             f"coopfs root put of a stale version exited {r.returncode}: {text(r.stderr)}")

    for mode in ("flip", "tamper", "otherkey"):
        for expect in (2, ROOT_ANY):
            bad = forge(mode, "alice", 3, "cc" * 32)
            rep = root_put_raw(nodes[2], bad, expect, f"forged root ({mode})")
            rl.check(rep["status"] == BS_ERR_BAD_BLOCK,
                     f"forged root ({mode}, expect {'any' if expect == ROOT_ANY else expect}) "
                     f"refused: {err_name(rep['status'])}"
                     f"{' (an ERROR reply)' if rep.get('error') else ''}",
                     f"forged root ({mode}) answered {err_name(rep['status'])} "
                     f"({rep['reason']!r}), not BAD_BLOCK")

    r = tool(["root", "--data", tn.dir, "put", "--key", "alice", "--version", "3", "--expect",
              "1", "cc" * 32], rl.scaled(40))
    err = text(r.stderr)
    rl.check(r.returncode == 3 and "2" in err,
             f"CAS with --expect 1 exits 3: {err[:160]}",
             f"CAS with a wrong --expect exited {r.returncode} (want 3, naming version 2): {err}")

    for via, args in ((nodes[4], ["--key", "alice"]), (nodes[5], [pub_hex("alice")])):
        r = tool_ok(["root", "--data", via.dir, "get"] + args, rl.scaled(40),
                    f"root get via {via.name}")
        out = text(r.stdout)
        rl.check("version 2" in out and p2 in out,
                 f"coopfs root get {args[0][:10]}… via {via.name}: version 2, its payload",
                 f"coopfs root get via {via.name} printed {out!r}, want version 2 / {p2}")

    rkey = hashlib.sha256(bytes.fromhex(pub_hex("alice"))).hexdigest()
    holders = 0
    for n in nodes:
        try:
            with open(os.path.join(n.store, "roots", rkey), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        holders += 1
        ver = struct.unpack(">Q", data[36:44])[0]
        payload = data[44:44 + struct.unpack(">H", data[2:4])[0]]
        if ver != 2 or payload.hex() != p2:
            raise rl.Failure(f"{n.name} holds root version {ver} payload {payload.hex()[:16]} "
                             "on disk, want version 2")
    rl.check(holders >= 2, f"{holders} nodes hold version 2 of the root on disk, nothing else",
             f"only {holders} nodes hold the root on disk")

    # --- a block put over the control socket that does not verify
    rl.section("control socket: block puts whose key or lease does not verify")
    data = os.urandom(4096)
    block = bytes([1, 1, 0, 0]) + struct.pack(">I", len(data)) + data  # DATA, raw
    good_key = hashlib.sha256(block).digest()
    wrong_key = hashlib.sha256(block + b"x").digest()
    now_ms = int(time.time() * 1000)
    # Owner, stamp, expiry a day out, and a signature that cannot verify. The
    # owner is random bytes: an all-zero key is a point of small order, for
    # which an all-zero signature verifies for one message in four
    # (cofactorless Ed25519, as OpenSSL checks it).
    lease = (os.urandom(32) + struct.pack(">QQ", now_ms, now_ms // 1000 + 86400)
             + bytes(64))
    ctl = Ctl(tn, rl.scaled(40))
    try:
        for what, key, why in (("a key that is not the block's SHA-256", wrong_key, "hash"),
                               ("a lease whose signature does not verify", good_key,
                                "signature")):
            t, body = ctl.call(CTL_BLOCK_PUT, key + lease + block)
            rep = bs_reply(t, body, what, error_ok=True)
            rl.check(rep["status"] == BS_ERR_BAD_BLOCK and why in rep["reason"],
                     f"{what}: refused, {err_name(rep['status'])} ({rep['reason']})",
                     f"{what}: answered {err_name(rep['status'])} ({rep['reason']})")
    finally:
        ctl.close()
    held = copies(nodes, [good_key.hex(), wrong_key.hex()])
    rl.check(sum(held.values()) == 0, "neither key is on any disk",
             f"a put that did not verify was stored: {held}")
    rl.check(tn.alive(), f"{tn.name} still running", f"{tn.name} died")

    # --- reclaim
    rl.section("reclaim: two owners, one file")
    keygen("bob")
    path = os.path.join(c.root, "shared.bin")
    size = 8 * 2**20
    want_sha = make_file(path, size)
    before = set()
    for n in nodes:
        before |= set(disk_blocks(n))
    fa, _ = insert(tn, path, "alice", rl.scaled(120), "insert by alice")
    fb, _ = insert(nodes[1], path, "bob", rl.scaled(120), "insert by bob")
    rl.check(fa == fb, f"both owners' inserts give the same file key {fa[:16]}…",
             f"the same bytes gave two file keys {fa} and {fb}")
    keys = set()
    for n in nodes:
        keys |= set(disk_blocks(n))
    keys -= before
    rl.check(len(keys) == -(-size // CHUNK) + 1, f"{len(keys)} blocks of the shared file",
             f"{len(keys)} new blocks, want {-(-size // CHUNK) + 1}")
    tool_ok(["reclaim", "--data", tn.dir, "--key", "alice", fa], rl.scaled(120), "alice reclaims")
    say("alice reclaimed")
    # Give deletion a chance to happen wrongly: a maintenance round.
    time.sleep(min(SYNC_PERIOD_S + 2, rl.scaled(SYNC_PERIOD_S + 2)))
    count = copies(nodes, keys)
    low = [k for k, n in count.items() if n < K]
    rl.check(not low, f"after alice's reclaim and a maintenance round every block still has "
             f"{K} copies", f"{len(low)} blocks lost copies after alice's reclaim "
             f"({histogram(count)})")
    lookup_check(nodes[2], fb, os.path.join(c.root, "shared.out"), want_sha, rl.scaled(120),
                 "bob's lookup after alice's reclaim")
    tool_ok(["reclaim", "--data", nodes[1].dir, "--key", "bob", fb], rl.scaled(120),
            "bob reclaims")
    t = time.monotonic()

    def gone():
        count = copies(nodes, keys)
        left = sum(count.values())
        return left == 0, f"{left} copies of {sum(1 for v in count.values() if v)} blocks left"

    secs, _ = rl.wait_until(gone, rl.scaled(60), "the reclaimed blocks deleted everywhere",
                            interval=0.5)
    say(f"ok: after bob's reclaim every block of the file is gone from every disk in "
        f"{time.monotonic() - t:.1f} s")
    r = tool(["lookup", "--data", tn.dir, fa, "-o", os.path.join(c.root, "gone.out")],
             rl.scaled(60))
    rl.check(r.returncode != 0, f"a lookup of the reclaimed file fails (exit {r.returncode})",
             "a lookup of the reclaimed file succeeded")
    os.unlink(path)

    # --- DHT API
    rl.section("DHT API")
    value = rng.randbytes(48).hex()
    tool_ok(["kv", "--data", nodes[1].dir, "put", "it-key-1", value], rl.scaled(30), "kv put")
    r = tool_ok(["kv", "--data", nodes[4].dir, "get", "it-key-1"], rl.scaled(30), "kv get")
    rl.check(r.stdout.decode() == value, f"kv get via {nodes[4].name} returns the value put via "
             f"{nodes[1].name}", f"kv get returned {r.stdout[:100]!r}, want {value!r}")
    r = tool(["kv", "--data", nodes[2].dir, "get", "no-such-key-" + rng.randbytes(8).hex()],
             rl.scaled(30))
    rl.check(r.returncode == 1, f"kv get of an unknown key exits 1 ({text(r.stderr)})",
             f"kv get of an unknown key exited {r.returncode}, stdout {r.stdout[:60]!r}")
    target = nodes[2]
    api_closes(target, struct.pack(">HH", 2, API_GET), "a size below the header")
    api_closes(target, struct.pack(">HH", 40, 999) + bytes(36), "an unknown type")
    api_closes(target, struct.pack(">HH", 14, API_GET) + bytes(10), "a GET body of 10 bytes")
    api_closes(target, struct.pack(">HH", 8, API_PUT) + bytes(4), "a PUT without key")
    r = tool_ok(["kv", "--data", target.dir, "get", "it-key-1"], rl.scaled(30),
                "kv get after garbage")
    rl.check(target.alive() and r.stdout.decode() == value,
             f"{target.name} is up and answers after the garbage",
             f"{target.name} after the garbage: alive {target.alive()}, get {r.stdout[:60]!r}")
    # A well-formed GET on a raw connection: SUCCESS with the value.
    s = api_connect(target)
    try:
        key = hashlib.sha256(b"it-key-1").digest()
        s.sendall(struct.pack(">HH", 36, API_GET) + key)
        hdr = b""
        while len(hdr) < 4:
            x = s.recv(4 - len(hdr))
            if not x:
                break
            hdr += x
        size_, type_ = struct.unpack(">HH", hdr) if len(hdr) == 4 else (0, 0)
        body = b""
        while len(body) < size_ - 4:
            x = s.recv(size_ - 4 - len(body))
            if not x:
                break
            body += x
    finally:
        s.close()
    rl.check(type_ == API_SUCCESS and body[:32] == key and body[32:].decode() == value,
             "a raw DHT GET answers SUCCESS with key and value",
             f"raw DHT GET answered type {type_} size {size_}: {body[:60]!r}")

    for n in nodes:
        rl.check(n.alive(), f"{n.name} still running", f"{n.name} exited with {n.returncode()}")
    check_logs(c)


def main():
    rl.check_binary()
    if not os.access(FORGE, os.X_OK):
        raise rl.Failure(f"forge_root not found at {FORGE} (set COOPFS_FORGE_ROOT)")
    rng = rl.make_rng()
    keys = rl.Cluster("blockskeys")
    KEYS_ENV["COOPFS_KEYS"] = os.path.join(keys.root, "keys")
    os.makedirs(KEYS_ENV["COOPFS_KEYS"], mode=0o700)
    keygen("alice")
    say(f"keys in {KEYS_ENV['COOPFS_KEYS']}")
    t0 = time.monotonic()
    remover = ring_a(rng, keys.root)
    ta = time.monotonic() - t0
    t0 = time.monotonic()
    ring_b(rng)
    say(f"timings: ring A {ta:.1f} s, ring B {time.monotonic() - t0:.1f} s")
    if remover:
        remover.join(rl.scaled(300))


if __name__ == "__main__":
    rl.run(main)
