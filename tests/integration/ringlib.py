"""ringlib.py — shared helpers for the coopfs integration tests.

The tests start real `coopfs node` processes and talk to them only through
the documented interfaces (docs/operations.md): DIR/node.json, `coopfs
status --json` and `coopfs lookup-key --json -`, plus raw TCP frames
(docs/protocol.md) in test_badinput.py.

What this module gives a test:

- `Cluster`: a temporary root directory, the nodes started in it, and the
  checks every test needs (ring correctness from status, lookups against
  the true successor computed here).
- `Node`: one `coopfs node` process in its own data directory and process
  group, its stderr captured to a log file.
- `run(main)`: runs a test's main function, turns `Failure` into exit 1 and
  `Skip` into exit 77 (meson's "skipped"), and cleans up on every path:
  every process started (SIGKILL to its process group), registered cleanup
  hooks (network namespaces), temporary directories. SIGINT, SIGTERM and
  SIGHUP take the same path, and so does interpreter exit (atexit); nodes
  also get PR_SET_PDEATHSIG so they die with the test even after SIGKILL.

Environment:
  COOPFS                 the coopfs executable (default: BUILD/tools/coopfs
                         next to this source tree)
  COOPFS_IT_SEED         seed of the random keys and choices (printed)
  COOPFS_IT_TIME_FACTOR  multiplies every deadline (default 1, or 3 when
                         the binary is built with AddressSanitizer)
  COOPFS_IT_KEEP=1       keep the temporary directory (logs, node.json)

Timings are printed but never decide pass or fail: deadlines only bound
waiting, and are generous.
"""

import atexit
import bisect
import ctypes
import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

RING = 1 << 256

FRAME_MAGIC = 0x434F4F50
FRAME_VERSION = 1
FRAME_HEADER = struct.Struct(">IBBHQI")  # 20 bytes
FRAME_MAX_PAYLOAD = 1024 * 1024

T0 = time.monotonic()


class Failure(Exception):
    """A check failed; the message says what was expected and what was found."""


class Skip(Exception):
    """The machine lacks something the test needs; exit 77."""


# ---------------------------------------------------------------- output


def say(msg=""):
    print(f"[{time.monotonic() - T0:7.2f}s] {msg}", flush=True)


def section(title):
    print(flush=True)
    say(f"== {title}")


def check(cond, ok_msg, fail_msg):
    """Prints ok_msg when cond holds, else raises Failure(fail_msg)."""
    if not cond:
        raise Failure(fail_msg)
    say(f"ok: {ok_msg}")


# ---------------------------------------------------------------- setup


def _find_coopfs():
    path = os.environ.get("COOPFS")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "tools", "coopfs")
    path = os.path.abspath(path)
    return path


COOPFS = _find_coopfs()


def _detect_time_factor():
    env = os.environ.get("COOPFS_IT_TIME_FACTOR")
    if env:
        return float(env)
    try:
        with open(COOPFS, "rb") as f:
            data = f.read()
        if b"__asan_init" in data or b"AddressSanitizer" in data:
            return 3.0
    except OSError:
        pass
    return 1.0


TIME_FACTOR = _detect_time_factor()


def scaled(seconds):
    """A deadline in seconds, stretched for slow (sanitizer) builds."""
    return seconds * TIME_FACTOR


def make_rng():
    seed = os.environ.get("COOPFS_IT_SEED")
    seed = int(seed) if seed else random.SystemRandom().randrange(1 << 32)
    say(f"seed {seed} (replay with COOPFS_IT_SEED={seed})")
    return random.Random(seed)


def check_binary():
    if not (os.path.isfile(COOPFS) and os.access(COOPFS, os.X_OK)):
        raise Failure(f"coopfs executable not found at {COOPFS} (set COOPFS=path)")
    say(f"coopfs: {COOPFS} (deadlines x{TIME_FACTOR:g})")


# ---------------------------------------------------------------- cleanup

_lock = threading.Lock()
_procs = []  # every Popen of a node we started
_hooks = []  # cleanup callables, run in reverse order after processes die
_dirs = []  # temporary directories to remove
_cleaned = False

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup():
    # Runs in the child between fork and exec: die with the test even if it
    # is SIGKILLed and cannot clean up. Only the spawning (main) thread
    # counts as the parent, so nodes are only ever started from it.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def add_cleanup(fn):
    """Registers fn to run at cleanup, after every process is killed."""
    with _lock:
        _hooks.append(fn)


def _kill_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass


def cleanup():
    global _cleaned
    with _lock:
        if _cleaned:
            return
        _cleaned = True
        procs, hooks, dirs = list(_procs), list(_hooks), list(_dirs)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(s, signal.SIG_IGN)
        except (ValueError, OSError):
            pass  # not the main thread
    for p in procs:
        if p.poll() is None:
            _kill_group(p, signal.SIGKILL)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print(f"cleanup: pid {p.pid} did not die after SIGKILL", file=sys.stderr)
    for fn in reversed(hooks):
        try:
            fn()
        except Exception as e:  # keep cleaning whatever else is left
            print(f"cleanup: {fn}: {e}", file=sys.stderr)
    for d in dirs:
        if os.environ.get("COOPFS_IT_KEEP") == "1":
            print(f"cleanup: kept {d} (COOPFS_IT_KEEP=1)", file=sys.stderr)
        else:
            shutil.rmtree(d, ignore_errors=True)


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def run(main):
    """Runs main() and exits: 0 on success, 1 on Failure (or any error),
    77 on Skip, 128+n on a signal. Cleans up on every path."""
    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    rc = 1
    try:
        main()
        rc = 0
        print(flush=True)
        say("PASS")
    except Skip as e:
        rc = 77
        say(f"SKIP: {e}")
    except Failure as e:
        print(flush=True)
        say(f"FAIL: {e}")
        dump_logs()
    except Interrupted as e:
        say(f"interrupted by {e}; cleaning up")
        rc = 128 + int(getattr(signal, str(e), signal.SIGTERM))
    except Exception:
        traceback.print_exc()
        say("FAIL: unexpected error in the test (traceback above)")
        dump_logs()
    finally:
        cleanup()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


_clusters = []


def dump_logs(lines=25):
    for c in _clusters:
        for n in c.nodes:
            tail = n.log_tail(lines)
            state = "running" if n.proc and n.proc.poll() is None else f"exit {n.returncode()}"
            print(f"---- {n.name} ({n.addr or n.host}, {state}) last lines of {n.log_path}:",
                  flush=True)
            print(tail, flush=True)


# ---------------------------------------------------------------- ids


def parse_addr(s):
    """'1.2.3.4:5' or '[::1]:5' -> (host, port)."""
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
    else:
        host, _, port = s.rpartition(":")
    return host, int(port)


def vnode_id(host, port, index):
    """SHA-256(family u8 | 16 address bytes | port u16 | index u32), as an int."""
    ip = ipaddress.ip_address(host)
    if ip.version == 4:
        raw = bytes([4]) + ip.packed + bytes(12)
    else:
        raw = bytes([6]) + ip.packed
    raw += struct.pack(">HI", port, index)
    return int.from_bytes(hashlib.sha256(raw).digest(), "big")


def hexid(i):
    return f"{i:064x}"


def short(i):
    return hexid(i)[:10] if isinstance(i, int) else str(i)[:10]


def successor(ids_sorted, key):
    """First id >= key on the ring (wrapping), ids_sorted ascending."""
    j = bisect.bisect_left(ids_sorted, key)
    return ids_sorted[j % len(ids_sorted)]


def frame(type_, payload=b"", *, magic=FRAME_MAGIC, version=FRAME_VERSION, flags=0,
          req_id=None, length=None):
    if req_id is None:
        req_id = random.getrandbits(64)
    if length is None:
        length = len(payload)
    return FRAME_HEADER.pack(magic, version, flags, type_, req_id, length) + payload


# ---------------------------------------------------------------- waiting


def wait_until(fn, timeout, what, interval=0.3):
    """Calls fn() until it returns (True, detail); returns (seconds, detail).
    On timeout raises Failure naming `what` and the last detail."""
    start = time.monotonic()
    end = start + timeout
    detail = None
    while True:
        done, detail = fn()
        if done:
            return time.monotonic() - start, detail
        if time.monotonic() >= end:
            raise Failure(f"{what}: not reached within {timeout:.0f} s; last state: {detail}")
        time.sleep(interval)


# ---------------------------------------------------------------- nodes


class CommandError(Exception):
    pass


class Node:
    """One `coopfs node` process. `netns` runs it through `ip netns exec`."""

    def __init__(self, cluster, name, host, vnodes=1, join=(), netns=None, log_level="info"):
        self.cluster = cluster
        self.name = name
        self.host = host
        self.vnodes = vnodes
        self.join = list(join)
        self.netns = netns
        self.log_level = log_level
        self.dir = os.path.join(cluster.root, name)
        self.log_path = os.path.join(cluster.root, "logs", name + ".log")
        self.proc = None
        self.addr = None  # "host:port" from node.json
        self.port = None
        self.ids = []  # vnode ids (ints), index order
        self.started_at = None
        self.exited_at = None
        self._rc = None

    def __repr__(self):
        return f"{self.name}({self.addr or self.host})"

    # -- process

    def argv(self):
        # Every node its own DHT API port: the default one is taken by the first.
        a = [COOPFS, "node", "--data", self.dir, "--listen", f"{self.host}:0",
             "--api", f"{self.host}:0",
             "--vnodes", str(self.vnodes), "--log-level", self.log_level]
        for j in self.join:
            a += ["--join", j.addr if isinstance(j, Node) else j]
        if self.netns:
            a = ["ip", "netns", "exec", self.netns] + a
        return a

    def start(self):
        assert threading.current_thread() is threading.main_thread(), \
            "nodes are started from the main thread (PR_SET_PDEATHSIG)"
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        logf = open(self.log_path, "ab")
        with _lock:
            if _cleaned:
                raise Interrupted("cleanup")
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_child_setup)
            _procs.append(self.proc)
        logf.close()
        self.started_at = time.monotonic()
        return self

    def returncode(self):
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return rc

    def alive(self):
        return self.proc is not None and self.returncode() is None

    def wait_ready(self, timeout=None):
        """Waits for node.json (with a real port) and the control socket;
        checks node.json against the spec. Returns the seconds it took."""
        timeout = timeout or scaled(20)
        nj = os.path.join(self.dir, "node.json")

        def ready():
            rc = self.returncode()
            if rc is not None:
                raise Failure(f"{self.name}: coopfs node exited with {rc} before it was ready; "
                              f"log:\n{self.log_tail(15)}")
            try:
                with open(nj) as f:
                    info = json.load(f)
            except (OSError, ValueError) as e:
                return False, f"no readable node.json yet ({e.__class__.__name__})"
            if not os.path.exists(info.get("control") or os.path.join(self.dir, "control.sock")):
                return False, "control socket not there yet"
            return True, info

        secs, info = wait_until(ready, timeout, f"{self.name}: node.json and control socket")
        self.node_json = info
        self.addr = info["listen"]
        host, self.port = parse_addr(self.addr)
        if host != self.host or self.port == 0:
            raise Failure(f"{self.name}: node.json listen is {self.addr!r}, expected "
                          f"{self.host}:<non-zero port>")
        if info.get("pid") != self.proc.pid:
            raise Failure(f"{self.name}: node.json pid {info.get('pid')} is not the node's pid "
                          f"{self.proc.pid}")
        got = [int(x, 16) for x in info.get("vnodes", [])]
        want = [vnode_id(self.host, self.port, i) for i in range(self.vnodes)]
        if got != want:
            raise Failure(f"{self.name}: node.json vnodes {[short(x) for x in got]} differ from "
                          f"SHA-256(family|ip|port|index) = {[short(x) for x in want]}")
        self.ids = want
        return secs

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, sig)

    def kill(self):
        """SIGKILL to the node's process group; waits for it to die."""
        self.signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise Failure(f"{self.name}: still alive 10 s after SIGKILL")
        self.returncode()

    def terminate(self, timeout):
        """SIGTERM to the node only; returns (exit code or None if it is still
        running after timeout, seconds waited)."""
        start = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - start
        self.returncode()
        return rc, time.monotonic() - start

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=20):
        lines = self.log_text().splitlines()
        return "\n".join("    " + x for x in lines[-n:]) or "    (empty)"

    # -- tools

    def _tool(self, args, input_=None, timeout=None):
        timeout = timeout or scaled(15)
        try:
            r = subprocess.run([COOPFS] + args, input=input_, capture_output=True,
                               timeout=timeout, text=True)
        except subprocess.TimeoutExpired:
            raise CommandError(f"coopfs {args[0]} for {self.name} did not answer within "
                               f"{timeout:.0f} s")
        return r

    def status(self, timeout=None):
        """The node's `coopfs status --json` as a dict; CommandError if the
        command fails or prints something that is not one JSON object."""
        r = self._tool(["status", "--data", self.dir, "--json"], timeout=timeout)
        if r.returncode != 0:
            raise CommandError(f"coopfs status for {self.name} exited {r.returncode}: "
                               f"{r.stderr.strip()[:300]}")
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise CommandError(f"coopfs status --json for {self.name} printed invalid JSON "
                               f"({e}): {r.stdout[:300]!r}")

    def lookup(self, keys, timeout=None):
        """Runs `coopfs lookup-key --json -` with keys (ints) on stdin.
        Returns (exit code, {key int: result dict}, stderr). Raises Failure
        on output that breaks the spec (bad JSON, a missing key)."""
        timeout = timeout or scaled(90)
        stdin = "".join(hexid(k) + "\n" for k in keys)
        try:
            r = self._tool(["lookup-key", "--data", self.dir, "--json", "-"], input_=stdin,
                           timeout=timeout)
        except CommandError as e:
            raise Failure(str(e))
        results = {}
        for line in r.stdout.splitlines():
            if not line.strip():
                continue
            try:
                o = json.loads(line)
                k = int(o["key"], 16)
            except (ValueError, KeyError, TypeError) as e:
                raise Failure(f"lookup-key --json from {self.name} printed a bad line ({e}): "
                              f"{line[:200]!r}")
            results[k] = o
        missing = [k for k in keys if k not in results]
        if missing:
            raise Failure(f"lookup-key from {self.name} (exit {r.returncode}) printed no answer "
                          f"for {len(missing)} of {len(keys)} keys, e.g. {hexid(missing[0])}; "
                          f"stderr: {r.stderr.strip()[:300]}")
        return r.returncode, results, r.stderr


# ---------------------------------------------------------------- cluster


class Cluster:
    """A set of nodes under one temporary root directory."""

    def __init__(self, label):
        base = tempfile.gettempdir()
        if len(base) > 40:  # control.sock paths must stay under ~100 bytes
            base = "/tmp"
        self.root = tempfile.mkdtemp(prefix=f"coopfs-it-{label}-", dir=base)
        os.makedirs(os.path.join(self.root, "logs"))
        with _lock:
            _dirs.append(self.root)
        _clusters.append(self)
        self.nodes = []
        self.pool = ThreadPoolExecutor(max_workers=6)
        say(f"temporary directory {self.root}")

    def add(self, host, vnodes=1, join=(), netns=None, name=None, wait=True):
        name = name or f"n{len(self.nodes):02d}"
        n = Node(self, name, host, vnodes=vnodes, join=join, netns=netns)
        self.nodes.append(n)
        n.start()
        if wait:
            n.wait_ready()
        return n

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def statuses(self, nodes):
        """{node: status dict or CommandError}, asked in parallel."""

        def one(n):
            try:
                return n.status()
            except CommandError as e:
                return e

        return dict(zip(nodes, self.pool.map(one, nodes)))

    def wait_joined(self, nodes, timeout=None):
        timeout = timeout or scaled(30)

        def joined():
            bad = []
            for n, st in self.statuses(nodes).items():
                if not n.alive():
                    raise Failure(f"{n.name} exited with {n.returncode()} while joining; "
                                  f"log:\n{n.log_tail(15)}")
                if isinstance(st, Exception):
                    bad.append(str(st))
                    continue
                for v in st.get("vnodes", []):
                    if not v.get("joined"):
                        bad.append(f"{n.name} vnode {v.get('index')} not joined")
            return not bad, "; ".join(bad[:4])

        return wait_until(joined, timeout, "nodes joined")[0]

    # -- ring correctness

    def ring_problems(self, members, asked=None):
        """Compares the status of every node in `asked` (default: members)
        with the ring formed by `members`' vnodes. Returns (problems, info)."""
        asked = members if asked is None else asked
        owner = {}
        for n in members:
            for i in n.ids:
                owner[i] = n
        ids = sorted(owner)
        pos = {x: j for j, x in enumerate(ids)}
        problems = []
        stale = 0
        for n, st in self.statuses(asked).items():
            if isinstance(st, Exception):
                problems.append(str(st))
                continue
            vs = st.get("vnodes") or []
            got_ids = [int(v["id"], 16) for v in vs]
            if got_ids != n.ids:
                problems.append(f"{n.name}: status vnode ids {[short(x) for x in got_ids]} are "
                                f"not SHA-256(addr, index) {[short(x) for x in n.ids]}")
                continue
            for v in vs:
                me = int(v["id"], 16)
                j = pos[me]
                want_s, want_p = ids[(j + 1) % len(ids)], ids[j - 1]
                tag = f"{n.name}/v{v.get('index')} {short(me)}"
                if not v.get("joined"):
                    problems.append(f"{tag}: not joined")
                    continue
                succs = v.get("successors") or []
                s = int(succs[0]["id"], 16) if succs else None
                if s != want_s:
                    problems.append(f"{tag}: successor {short(s) if s else None} "
                                    f"({succs[0]['addr'] if succs else '-'}), true successor "
                                    f"{short(want_s)} ({owner[want_s].addr})")
                elif succs[0].get("addr") != owner[want_s].addr:
                    problems.append(f"{tag}: successor {short(s)} with address "
                                    f"{succs[0].get('addr')}, expected {owner[want_s].addr}")
                p = v.get("predecessor")
                pid = int(p["id"], 16) if p else None
                if pid != want_p:
                    problems.append(f"{tag}: predecessor {short(pid) if pid else None} "
                                    f"({p['addr'] if p else '-'}), true predecessor "
                                    f"{short(want_p)} ({owner[want_p].addr})")
                stale += sum(1 for e in succs if int(e["id"], 16) not in owner)
        return problems, {"vnodes": len(ids), "stale_succ_entries": stale}

    def wait_stable(self, members, what, timeout=None, asked=None):
        """Waits until every asked vnode's first successor and predecessor are
        the true ones among `members`. Returns seconds waited."""
        timeout = timeout or scaled(60)
        last = {}

        def stable():
            for n in members:
                if not n.alive():
                    raise Failure(f"{n.name} exited with {n.returncode()}; "
                                  f"log:\n{n.log_tail(15)}")
            problems, info = self.ring_problems(members, asked)
            last.update(info)
            if problems:
                return False, f"{len(problems)} problems: " + "; ".join(problems[:6])
            return True, info

        secs, info = wait_until(stable, timeout, what, interval=0.5)
        n_asked = len(asked if asked is not None else members)
        say(f"ok: {what}: {info['vnodes']} vnodes, every successor and predecessor of "
            f"{n_asked} nodes correct after {secs:.1f} s "
            f"(successor-list entries naming departed nodes: {info['stale_succ_entries']})")
        return secs

    # -- lookups

    def check_lookups(self, members, origins, rng, per_node=1000, what="lookups"):
        """Every node in origins looks up per_node random keys; each answer
        must be the true successor among members' vnodes (id and address).
        Raises Failure listing the first disagreements."""
        owner = {}
        for n in members:
            for i in n.ids:
                owner[i] = n
        ids = sorted(owner)
        batches = [(n, [rng.getrandbits(256) for _ in range(per_node)]) for n in origins]
        start = time.monotonic()
        outs = list(self.pool.map(lambda b: (b[0], b[1], b[0].lookup(b[1])), batches))
        secs = time.monotonic() - start
        bad = []
        hops = []
        ms = []
        iterative = 0
        for n, keys, (rc, res, err) in outs:
            for k in keys:
                o = res[k]
                want = successor(ids, k)
                if not o.get("ok"):
                    bad.append(f"{n.name}: key {short(k)} failed after {o.get('ms')} ms: "
                               f"{o.get('error')!r} (true successor {short(want)} "
                               f"{owner[want].addr})")
                    continue
                got = int(o["id"], 16)
                if got != want or o.get("addr") != owner[want].addr:
                    gn = owner.get(got)
                    bad.append(f"{n.name}: key {short(k)} -> {short(got)} {o.get('addr')}"
                               f"{'' if gn else ' (not a live vnode)'}, true successor "
                               f"{short(want)} {owner[want].addr}")
                    continue
                hops.append(o.get("hops", 0))
                ms.append(float(o.get("ms", 0.0)))
                iterative += bool(o.get("iterative"))
            if rc != 0 and not any(b.startswith(n.name + ":") for b in bad):
                bad.append(f"{n.name}: lookup-key exited {rc} although every answer was ok: "
                           f"{err.strip()[:200]}")
        total = sum(len(k) for _, k in batches)
        if bad:
            raise Failure(f"{what}: {len(bad)} of {total} lookups wrong; first ones:\n    "
                          + "\n    ".join(bad[:12]))
        ms.sort()
        say(f"ok: {what}: {total} lookups from {len(origins)} nodes all equal the true "
            f"successor among {len(ids)} vnodes ({secs:.1f} s; hops mean "
            f"{sum(hops) / len(hops):.2f} max {max(hops)}; ms p50 {ms[len(ms) // 2]:.2f} "
            f"p99 {ms[int(len(ms) * 0.99)]:.2f} max {ms[-1]:.0f}; iterative {iterative})")
        return total

    def describe(self, nodes):
        for n in nodes:
            say(f"   {n.name} {n.addr:<22} vnodes "
                + " ".join(short(i) for i in n.ids)
                + (f"  (joined via {', '.join(j.name for j in n.join)})" if n.join else
                   "  (first node)"))
