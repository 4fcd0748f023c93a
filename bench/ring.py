#!/usr/bin/env python3
"""ring.py: a ring of real `coopfs node` processes on loopback, measured.

Reproduces the testbed of seed 004 (Iancu & Tapus, "Towards a Highly
Available Model for Processing Service Requests Based on Distributed Hash
Tables", Mathematics 10(5):831, 2022): Chord on 128 peers in a datacenter,
which reported at most 7 = log2 128 hops per lookup, at most 8 ms of
routing time, and at most 2 s until every peer's routing state reflected a
join or a failure. Chord itself expects a mean of 1/2 log2 N hops.

Phases: form the ring in waves and wait until it is ideal (every vnode's
first successor and predecessor are the true ones, computed from the ids in
node.json); warm up; look up random keys from several nodes and check each
answer against the true successor; join one node at a time and time how
long the routing state that must change takes to reflect it; SIGKILL one
node at a time and time the repair; resident memory and idle CPU; the HTTP
endpoints of one node and a screenshot of its /ring.svg.

    bench/ring.py --build BUILD_DIR [--nodes N] [--screenshot FILE] ...

The table goes to stdout, progress to stderr. Timings never fail the run;
the exit status is 1 only when something is wrong (a wrong lookup answer, a
node that crashed or exited badly, a ring that does not converge, bad
/status or /metrics), 2 on a usage error. Every node process and temporary
directory is removed on every exit path. Python 3.11 standard library only;
every address used is a loopback address.
"""

import argparse
import atexit
import bisect
import collections
import concurrent.futures as cf
import hashlib
import ipaddress
import json
import math
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import xml.etree.ElementTree as ET
import zlib

RING = 1 << 256
SUCC_LEN = 16           # r, chord/chord.h CHORD_SUCC_LEN
FINGER_LOW_BIT = 192    # finger i starts at n + 2^(192 + i), protocol.md
STABILIZE_S = 0.5       # chord/chord.h CHORD_STABILIZE_MS

T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class Fatal(Exception):
    """The run cannot go on (a stuck ring, a node that never starts)."""


class Interrupted(BaseException):
    """A signal asked us to stop; BaseException so no helper swallows it."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class TimeLimit(BaseException):
    pass


# ---------------------------------------------------------------- ring math

def hexid(x):
    return f"{x:064x}"


def spec_vnode_id(ip, port, index):
    """vnode id = SHA-256(family u8 | 16 address bytes | port u16 | index u32)."""
    a = ipaddress.ip_address(ip)
    fam, raw = (4, a.packed + bytes(12)) if a.version == 4 else (6, a.packed)
    return int.from_bytes(hashlib.sha256(
        bytes([fam]) + raw + struct.pack(">HI", port, index)).digest(), "big")


class Ring:
    """The true ring: every live vnode id, sorted, and who owns each."""

    def __init__(self, owners):
        self.owner = dict(owners)            # vnode id -> Node
        self.ids = sorted(self.owner)

    def successor(self, key):
        """The vnode responsible for key: the first id >= key, cyclically."""
        i = bisect.bisect_left(self.ids, key)
        return self.ids[i % len(self.ids)]

    def next_after(self, vid):
        i = bisect.bisect_right(self.ids, vid)
        return self.ids[i % len(self.ids)]

    def prev_before(self, vid):
        i = bisect.bisect_left(self.ids, vid)
        return self.ids[i - 1]

    def succ_list(self, vid, r=SUCC_LEN):
        out, x = [], vid
        for _ in range(min(r, len(self.ids) - 1)):
            x = self.next_after(x)
            out.append(x)
        return out

    def preceding(self, vid, r=SUCC_LEN):
        out, x = [], vid
        for _ in range(min(r, len(self.ids) - 1)):
            x = self.prev_before(x)
            out.append(x)
        return out


def key_between(rng, lo, hi):
    """A random key in (lo, hi] on the ring."""
    dist = (hi - lo) % RING or RING
    return (lo + 1 + rng.randrange(dist)) % RING


def vnode_view(st):
    """status JSON -> {vnode id: (joined, pred id|None, [succ ids], [(i, finger id)])}."""
    out = {}
    for v in st.get("vnodes", []):
        p = v.get("predecessor")
        out[int(v["id"], 16)] = (
            bool(v.get("joined")),
            int(p["id"], 16) if p else None,
            [int(s["id"], 16) for s in v.get("successors") or []],
            [(int(f["i"]), int(f["id"], 16)) for f in v.get("fingers") or []])
    return out


STATUS_SCHEMA = {"version": str, "pid": int, "uptime_s": (int, float), "listen": str,
                 "http": (str, type(None)), "vnodes": list, "peers": dict, "stats": dict, "rates": dict}
VNODE_SCHEMA = {"index": int, "id": str, "joined": bool, "predecessor": (dict, type(None)),
                "successors": list, "fingers": list}
STATS_KEYS = ("msgs_in", "msgs_out", "bytes_in", "bytes_out", "rpc_timeouts", "lookups_started",
              "lookups_ok", "lookups_failed", "bad_frames")
RATES_KEYS = ("msgs_in_per_s", "msgs_out_per_s", "bytes_in_per_s", "bytes_out_per_s")
ANSWER_SCHEMA = {"key": str, "ok": bool, "id": str, "addr": str, "hops": int, "ms": (int, float),
                 "iterative": bool}


def schema_errors(st):
    """Where a status JSON differs from operations.md ("Status JSON")."""
    errs = []

    def check(obj, schema, where):
        for k, t in schema.items():
            if k not in obj:
                errs.append(f"{where} has no {k!r}")
            elif not isinstance(obj[k], t) or (t is int and isinstance(obj[k], bool)):
                errs.append(f"{where}.{k} is {type(obj[k]).__name__}")

    check(st, STATUS_SCHEMA, "status")
    for v in st.get("vnodes") or []:
        check(v, VNODE_SCHEMA, "vnode")
        for x in ([v.get("predecessor")] if v.get("predecessor") else []) + (v.get("successors") or []):
            check(x, {"id": str, "addr": str}, "peer")
        for x in v.get("fingers") or []:
            check(x, {"i": int, "id": str, "addr": str}, "finger")
        break
    if isinstance(st.get("peers"), dict) and "connections" not in st["peers"]:
        errs.append("peers has no 'connections'")
    for k in STATS_KEYS:
        if isinstance(st.get("stats"), dict) and k not in st["stats"]:
            errs.append(f"stats has no {k!r}")
    for k in RATES_KEYS:
        if isinstance(st.get("rates"), dict) and k not in st["rates"]:
            errs.append(f"rates has no {k!r}")
    return errs


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


# ---------------------------------------------------------------- processes

class Node:
    def __init__(self, idx, ip, data, logpath):
        self.idx, self.ip, self.data, self.logpath = idx, ip, data, logpath
        self.proc = None
        self.state = "new"      # running | killed | crashed | stopped
        self.listen = None      # "ip:port" from node.json
        self.ids = []           # vnode ids (ints) from node.json
        self.http = None
        self.t_spawn = None
        self.t_joined = None

    def __repr__(self):
        return f"node {self.idx} ({self.listen or self.ip})"

    def log_tail(self, n=15):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join("    | " + x for x in lines[-n:])
        except OSError:
            return "    | (no log)"


class Cluster:
    def __init__(self, exe, args):
        self.exe, self.args = exe, args
        self.remove_stale()
        self.tmp = tempfile.mkdtemp(prefix="coopfs-ring-")
        with open(os.path.join(self.tmp, "bench.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        # run a private copy, so a rebuild during the run changes nothing
        self.exe = os.path.join(self.tmp, "coopfs")
        for attempt in range(10):
            try:
                shutil.copy2(exe, self.exe)
                if subprocess.run([self.exe, "--version"], capture_output=True).returncode == 0:
                    break
            except OSError:
                pass
            time.sleep(1)           # being relinked right now
        os.makedirs(os.path.join(self.tmp, "logs"))
        self.nodes = []
        self.extra = []         # other processes we started (chromium)
        self.pool = cf.ThreadPoolExecutor(max_workers=args.parallel)
        self.setpriv = shutil.which("setpriv")
        self.problems = []
        self.notes = []
        self.cleaned = False
        self.once = set()

    @staticmethod
    def remove_stale():
        """Temporary directories of earlier runs that were SIGKILLed (their nodes
        died with them, through the parent-death signal)."""
        for d in os.scandir(tempfile.gettempdir()):
            if not d.name.startswith("coopfs-ring-") or not d.is_dir():
                continue
            try:
                with open(os.path.join(d.path, "bench.pid")) as f:
                    pid = int(f.read())
                os.kill(pid, 0)
            except ProcessLookupError:
                shutil.rmtree(d.path, ignore_errors=True)
            except (OSError, ValueError):
                pass

    # -- bookkeeping
    def problem(self, msg):
        self.problems.append(msg)
        log("PROBLEM: " + msg)

    def live(self):
        return [n for n in self.nodes if n.state == "running"]

    def ring(self, exclude=()):
        return Ring({vid: n for n in self.live() if n not in exclude for vid in n.ids})

    @staticmethod
    def ip_for(i):
        return f"127.0.{2 + i // 254}.{1 + i % 254}"

    # -- starting and stopping nodes
    def spawn(self, joins, http=None):
        i = len(self.nodes)
        n = Node(i, self.ip_for(i), os.path.join(self.tmp, f"n{i:03d}"),
                 os.path.join(self.tmp, "logs", f"n{i:03d}.log"))
        cmd = [self.exe, "node", "--data", n.data, "--listen", f"{n.ip}:{self.args.port}",
               "--api", f"{n.ip}:0", "--vnodes", str(self.args.vnodes)]
        for j in joins:
            cmd += ["--join", j]
        if http:
            cmd += ["--http", http]
        if self.args.log_level:
            cmd += ["--log-level", self.args.log_level]
        if self.setpriv:
            # the node dies with this process even on SIGKILL of the bench
            cmd = [self.setpriv, "--pdeathsig", "KILL", "--"] + cmd
        with open(n.logpath, "wb") as lf:
            n.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        n.t_spawn = time.monotonic()
        n.state = "running"
        self.nodes.append(n)
        return n

    def read_node_json(self, n):
        try:
            with open(os.path.join(n.data, "node.json")) as f:
                j = json.load(f)
        except (OSError, ValueError):
            return False
        if j.get("pid") != n.proc.pid:
            return False
        n.listen = j["listen"]
        n.ids = [int(v, 16) for v in j["vnodes"]]
        n.http = j.get("http")
        if len(n.ids) != self.args.vnodes:
            self.problem(f"{n}: node.json lists {len(n.ids)} vnodes, asked for {self.args.vnodes}")
        host, port = n.listen.rsplit(":", 1)
        if host != n.ip:
            self.problem(f"{n}: node.json listen {n.listen}, asked for {n.ip}")
        want = [spec_vnode_id(host, int(port), k) for k in range(len(n.ids))]
        if want != n.ids and "ids" not in self.once:
            self.once.add("ids")
            self.problem(f"{n}: vnode ids in node.json are not SHA-256(family|addr|port|index) "
                         f"as protocol.md says (first: {hexid(n.ids[0])[:16]}..., "
                         f"expected {hexid(want[0])[:16]}...)")
        return True

    def wait_bound(self, nodes, timeout):
        """Waits until each node has written node.json."""
        end = time.monotonic() + timeout
        todo = [n for n in nodes if not n.listen]
        while todo:
            self.check_crashes()
            todo = [n for n in todo if n.state == "running" and not self.read_node_json(n)]
            if not todo:
                break
            if time.monotonic() > end:
                raise Fatal(f"{len(todo)} node(s) wrote no node.json within {timeout:.0f} s, "
                            f"e.g. {todo[0]}:\n{todo[0].log_tail()}")
            time.sleep(0.02)

    def wait_joined(self, nodes, timeout):
        """Waits until every vnode of the nodes reports joined."""
        self.wait_bound(nodes, timeout)
        end = time.monotonic() + timeout
        todo = [n for n in nodes if n.state == "running"]
        while True:
            sts = self.statuses(todo)
            now = time.monotonic()
            rest = []
            for n in todo:
                st = sts.get(n)
                if st and st.get("vnodes") and all(v.get("joined") for v in st["vnodes"]):
                    n.t_joined = now
                else:
                    rest.append(n)
            todo = [n for n in rest if n.state == "running"]
            if not todo:
                return
            if now > end:
                raise Fatal(f"{len(todo)} node(s) not joined after {timeout:.0f} s, "
                            f"e.g. {todo[0]}:\n{todo[0].log_tail()}")
            time.sleep(0.1)
            self.check_crashes()

    def kill(self, n):
        try:
            os.killpg(n.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        n.proc.wait()
        n.state = "killed"

    def check_crashes(self):
        """A node we did not stop has exited: a problem; the ring must cope."""
        for n in self.nodes:
            if n.state == "running" and n.proc.poll() is not None:
                n.state = "crashed"
                rc = n.proc.returncode
                how = (f"was killed by signal {-rc} (not ours)" if rc < 0 else
                       "exited 0 (it left: did something else send it SIGTERM?)" if rc == 0 else
                       f"exited with status {rc}")
                self.problem(f"{n} {how}:\n{n.log_tail()}")

    # -- the tools
    def cli(self, argv, stdin=None, timeout=5.0):
        try:
            return subprocess.run([self.exe] + argv, input=stdin, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def status(self, n, timeout=5.0):
        r = self.cli(["status", "--data", n.data, "--json"], timeout=timeout)
        if r is None or r.returncode != 0:
            return None
        try:
            st = json.loads(r.stdout)
            vnode_view(st)
        except (ValueError, KeyError, TypeError, AttributeError):
            self.note_once("status-json", f"`coopfs status --json` printed something unusable: "
                           f"{r.stdout[:200]!r}")
            return None
        if "status-schema" not in self.once:
            errs = schema_errors(st)
            if errs:
                self.note_once("status-schema", "status JSON differs from operations.md: " +
                               "; ".join(errs[:8]))
            self.once.add("status-schema")
        return st

    def note_once(self, tag, msg):
        if tag not in self.once:
            self.once.add(tag)
            self.notes.append(msg)
            log("NOTE: " + msg)

    def statuses(self, nodes, timeout=5.0):
        nodes = list(nodes)
        return dict(zip(nodes, self.pool.map(lambda n: self.status(n, timeout), nodes)))

    def lookup(self, n, keys, timeout=60.0):
        """Looks the keys up from node n. Returns {key: answer dict} or None."""
        r = self.cli(["lookup-key", "--data", n.data, "--json", "-"],
                     stdin="".join(hexid(k) + "\n" for k in keys), timeout=timeout)
        if r is None:
            return None
        out = {}
        for line in r.stdout.splitlines():
            try:
                a = json.loads(line)
                out[int(a["key"], 16)] = a
            except (ValueError, KeyError, TypeError):
                self.note_once("lookup-line", f"lookup-key printed a line that is not an answer: {line[:200]!r}")
                continue
            if a.get("ok") and "lookup-schema" not in self.once:
                self.once.add("lookup-schema")
                bad = [k for k, t in ANSWER_SCHEMA.items() if not isinstance(a.get(k), t)]
                if bad:
                    self.note_once("lookup-schema2", f"lookup-key --json answer lacks or mistypes {bad}: {line[:200]}")
            if a.get("ok"):
                try:
                    int(a["id"], 16), int(a["hops"]), float(a["ms"])
                except (KeyError, TypeError, ValueError):
                    a["ok"] = False
                    a["error"] = "answer without id, hops or ms"
        return out

    def check_answers(self, ring, keys, ans, origin, what):
        """Counts answers that are not the true successor; each is a problem."""
        wrong = 0
        for k in keys:
            a = ans.get(k) if ans is not None else None
            want = ring.successor(k)
            if a is None:
                wrong += 1
                msg = f"no answer for key {hexid(k)[:16]}..."
            elif not a.get("ok"):
                wrong += 1
                msg = f"key {hexid(k)[:16]}... failed: {a.get('error')}"
            elif int(a["id"], 16) != want or a.get("addr") != ring.owner[want].listen:
                wrong += 1
                msg = (f"key {hexid(k)[:16]}... answered {a['id'][:16]}... at {a.get('addr')}, "
                       f"true successor {hexid(want)[:16]}... at {ring.owner[want].listen}")
            else:
                continue
            if wrong <= 3:
                self.problem(f"{what}: lookup from {origin}: {msg}")
        if wrong > 3:
            self.problem(f"{what}: lookup from {origin}: {wrong} wrong or missing answers in all")
        return wrong

    # -- the ring as the nodes see it
    def ring_errors(self, ring, sts):
        """Vnodes whose first successor or predecessor is not the true one."""
        bad = []
        for n in self.live():
            view = vnode_view(sts[n]) if sts.get(n) else None
            for vid in n.ids:
                v = view.get(vid) if view else None
                if v is None:
                    bad.append((n, vid, "no status"))
                elif not v[0]:
                    bad.append((n, vid, "not joined"))
                elif not v[2] or v[2][0] != ring.next_after(vid):
                    bad.append((n, vid, "successor"))
                elif v[1] != ring.prev_before(vid):
                    bad.append((n, vid, "predecessor"))
        return bad

    def table_quality(self, ring, sts):
        """(fraction of vnodes with a fully right successor list, of right fingers)."""
        lists_ok = lists = fing_ok = fing = 0
        for n in self.live():
            view = vnode_view(sts[n]) if sts.get(n) else {}
            for vid in n.ids:
                v = view.get(vid)
                lists += 1
                if v is None:
                    continue
                want = ring.succ_list(vid)
                if v[2][:len(want)] == want:
                    lists_ok += 1
                for i, fid in v[3]:
                    fing += 1
                    if fid == ring.successor((vid + (1 << (FINGER_LOW_BIT + i))) % RING):
                        fing_ok += 1
        return lists_ok / max(lists, 1), fing_ok / max(fing, 1)

    def wait_stable(self, timeout, what):
        """Sweeps every node until the ring is ideal. Returns (seconds, statuses)."""
        t0 = time.monotonic()
        t_report = t0 + 5
        while True:
            self.check_crashes()
            ring = self.ring()
            sts = self.statuses(self.live())
            bad = self.ring_errors(ring, sts)
            if not bad:
                return time.monotonic() - t0, sts
            if time.monotonic() > t_report:
                t_report += 5
                kinds = collections.Counter(b[2] for b in bad)
                log(f"  {what}: {len(bad)} of {len(ring.ids)} vnodes still wrong "
                    + ", ".join(f"{k} {c}" for k, c in sorted(kinds.items())))
            if time.monotonic() - t0 > timeout:
                kinds = collections.Counter(b[2] for b in bad)
                n = bad[0][0]
                raise Fatal(f"{what}: ring not stable after {timeout:.0f} s: {len(bad)} vnodes wrong "
                            f"({dict(kinds)}), e.g. {n}:\n{n.log_tail()}")
            time.sleep(0.2)

    # -- cleanup, on every path
    def cleanup(self, graceful=False):
        if self.cleaned:
            return
        self.cleaned = True
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        signal.alarm(0)
        if graceful:
            try:
                self.stop_graceful()
            except Exception:
                self.problem("stopping the nodes failed:\n" + traceback.format_exc())
        for p in self.extra:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                try:
                    os.killpg(n.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                n.proc.wait()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.args.keep:
            try:
                os.unlink(os.path.join(self.tmp, "bench.pid"))   # not stale: kept on purpose
            except OSError:
                pass
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop_graceful(self, timeout=15.0):
        """SIGTERM: each node leaves and must exit 0 within a few seconds."""
        live = self.live()
        log(f"stopping {len(live)} nodes with SIGTERM (leave)")
        for n in live:
            n.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for n in live:
            try:
                n.proc.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        late = [n for n in live if n.proc.poll() is None]
        bad = [n for n in live if n.proc.poll() not in (None, 0)]
        for n in live:
            n.state = "stopped"
        if late:
            self.problem(f"{len(late)} node(s) still running {timeout:.0f} s after SIGTERM, "
                         f"e.g. {late[0]}:\n{late[0].log_tail()}")
        if bad:
            codes = collections.Counter(n.proc.returncode for n in bad)
            self.problem(f"{len(bad)} node(s) exited non-zero after SIGTERM {dict(codes)}, "
                         f"e.g. {bad[0]}:\n{bad[0].log_tail()}")
        if not late and not bad:
            log(f"all {len(live)} nodes left and exited 0")


# ---------------------------------------------------------------- checks of outputs

PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$')
PROM_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\[\\"n])*)"[ \t]*(,|$)')
PROM_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_prometheus(text):
    """Checks Prometheus text format 0.0.4. Returns (families {name: type}, samples, errors)."""
    errors, types, samples = [], {}, []
    for no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                if len(parts) < 3 or not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", parts[2]):
                    errors.append(f"line {no}: bad {parts[1]} comment: {line!r}")
                elif parts[1] == "TYPE":
                    t = parts[3].strip() if len(parts) > 3 else ""
                    if t not in PROM_TYPES:
                        errors.append(f"line {no}: unknown type {t!r}")
                    elif parts[2] in types:
                        errors.append(f"line {no}: second TYPE for {parts[2]}")
                    elif any(s[0] == parts[2] for s in samples):
                        errors.append(f"line {no}: TYPE for {parts[2]} after its samples")
                    types[parts[2]] = t
            continue
        m = PROM_SAMPLE.match(line)
        if not m:
            errors.append(f"line {no}: not a sample: {line!r}")
            continue
        name, lbl, val = m.group(1), m.group(2), m.group(3)
        labels, pos = {}, 0
        while lbl and pos < len(lbl):
            lm = PROM_LABEL.match(lbl, pos)
            if not lm:
                errors.append(f"line {no}: bad labels: {lbl!r}")
                break
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        try:
            v = float(val)
        except ValueError:
            errors.append(f"line {no}: bad value {val!r}")
            continue
        samples.append((name, labels, v))
    # histograms: cumulative buckets ending in +Inf, which equals _count
    for fam, t in types.items():
        if t != "histogram":
            continue
        series = collections.defaultdict(list)
        counts = {}
        for name, labels, v in samples:
            rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            if name == fam + "_bucket":
                if "le" not in labels:
                    errors.append(f"{fam}_bucket without le")
                    continue
                series[rest].append((float(labels["le"]), v))
            elif name == fam + "_count":
                counts[rest] = v
        if not series:
            errors.append(f"histogram {fam} has no buckets")
        for rest, bs in series.items():
            bs.sort()
            if bs[-1][0] != math.inf:
                errors.append(f"histogram {fam}{dict(rest)} has no +Inf bucket")
            if any(b[1] < a[1] for a, b in zip(bs, bs[1:])):
                errors.append(f"histogram {fam}{dict(rest)} buckets are not cumulative")
            if rest in counts and bs[-1][1] != counts[rest]:
                errors.append(f"histogram {fam}{dict(rest)}: +Inf bucket {bs[-1][1]} != _count {counts[rest]}")
    return types, samples, errors


def png_check(path):
    """(width, height, distinct colours, fraction of pixels unlike the most common one)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        pos += 12 + ln
        if typ == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat.append(body)
        elif typ == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = hdr
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or bpp is None or interlace:
        return w, h, None, None
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    colours = collections.Counter()
    for y in range(h):
        ft = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 255
        elif ft == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, prev))
        elif ft == 3:
            for i in range(stride):
                row[i] = (row[i] + ((row[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif ft == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(row[i:i + bpp]) for i in range(0, stride, bpp))
        prev = row
    top = colours.most_common(1)[0][1]
    return w, h, len(colours), 1 - top / (w * h)


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, cl, args):
        self.cl, self.args = cl, args
        self.rng = random.Random(args.seed)
        self.r = {}             # results for the table

    def keys(self, n):
        return [self.rng.getrandbits(256) for _ in range(n)]

    def pick_joins(self, k=3):
        members = [n for n in self.cl.live() if n.listen]
        return [m.listen for m in self.rng.sample(members, min(k, len(members)))]

    # -- forming
    def form(self):
        a, cl = self.args, self.cl
        log(f"forming a ring of {a.nodes} nodes x {a.vnodes} vnode(s) in waves of at most "
            f"{a.wave} and at most the ring's size, " +
            ("each waiting for an ideal ring" if a.settle else "each waiting only for its joins") +
            f" (data and logs in {cl.tmp})")
        t0 = time.monotonic()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            http_port = s.getsockname()[1]
        self.http_node = cl.spawn([], http=f"127.0.0.1:{http_port}")
        cl.wait_joined([self.http_node], 30)
        while len(cl.nodes) < a.nodes:
            k = min(a.wave, len(cl.live()), a.nodes - len(cl.nodes))
            tw = time.monotonic()
            wave = [cl.spawn(self.pick_joins()) for _ in range(k)]
            cl.wait_joined(wave, 60)
            tj = time.monotonic() - tw
            if a.settle:
                cl.wait_stable(60, f"wave to {len(cl.nodes)} nodes")
            log(f"  {len(cl.nodes)} nodes: {k} joined in {tj * 1000:.0f} ms" +
                (f", ring ideal after {time.monotonic() - tw:.1f} s" if a.settle else ""))
        t_joined = time.monotonic() - t0
        dt, sts = cl.wait_stable(180, "forming")
        t_stable = time.monotonic() - t0
        joins = [n.t_joined - n.t_spawn for n in cl.nodes[1:]]
        log(f"ring formed: all joined after {t_joined:.1f} s, stable after {t_stable:.1f} s "
            f"(join of one node: median {statistics.median(joins) * 1000:.0f} ms)")
        self.r["form_joined"], self.r["form_stable"] = t_joined, t_stable
        self.r["join_one"] = statistics.median(joins)
        return sts

    def warm_up(self):
        """Until every successor list and finger is right (or 60 s), then some lookups."""
        cl = self.cl
        t0 = time.monotonic()
        while True:
            ring = cl.ring()
            sts = cl.statuses(cl.live())
            lists, fingers = cl.table_quality(ring, sts)
            bad = cl.ring_errors(ring, sts)
            if not bad and lists == 1 and fingers == 1:
                break
            if time.monotonic() - t0 > 60:
                log(f"  warm-up ends at 60 s with {lists:.1%} lists and {fingers:.1%} fingers right")
                break
            time.sleep(0.5)
        t = time.monotonic() - t0
        log(f"warm-up: successor lists {lists:.1%} right, fingers {fingers:.1%} right, "
            f"{t:.1f} s after the ring was stable")
        self.r["tables_ok_after"] = t if lists == 1 and fingers == 1 else None
        self.r["lists_ok"], self.r["fingers_ok"] = lists, fingers
        for o in self.rng.sample(cl.live(), 2):
            ks = self.keys(100)
            cl.check_answers(cl.ring(), ks, cl.lookup(o, ks), o, "warm-up")

    # -- lookups
    def lookups(self):
        a, cl = self.args, self.cl
        ring = cl.ring()
        origins = self.rng.sample(cl.live(), min(a.origins, len(cl.live())))
        hops, ms, wall, wrong, total = [], [], 0.0, 0, 0
        log(f"lookups: {a.keys} random keys from each of {len(origins)} nodes, one node at a time")
        for o in origins:
            ks = self.keys(a.keys)
            t = time.monotonic()
            ans = cl.lookup(o, ks)
            wall += time.monotonic() - t
            total += len(ks)
            wrong += cl.check_answers(ring, ks, ans, o, "lookups")
            for k in ks:
                x = (ans or {}).get(k)
                if x and x.get("ok"):
                    hops.append(int(x["hops"]))
                    ms.append(float(x["ms"]))
        cl.check_crashes()
        self.r.update(lk_total=total, lk_wrong=wrong, hops=hops, ms=ms,
                      lk_rate=total / wall if wall else None)
        if hops:
            log(f"  {total - wrong}/{total} right; hops mean {statistics.mean(hops):.2f} max {max(hops)}; "
                f"ms p50 {pct(ms, 50):.2f} p99 {pct(ms, 99):.2f} max {max(ms):.2f}; "
                f"{total / wall:.0f} lookups/s")
        self.lookups_paced(ring)

    def lookups_paced(self, ring, count=200):
        """One key at a time through one lookup-key process: latency without queueing.
        Only if lookup-key answers a line before its input ends."""
        cl = self.cl
        o = self.rng.choice(cl.live())
        ks = self.keys(count)
        p = subprocess.Popen([cl.exe, "lookup-key", "--data", o.data, "--json", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        cl.extra.append(p)
        ans, buf, streamed = {}, b"", True
        try:
            for k in ks:
                p.stdin.write((hexid(k) + "\n").encode())
                p.stdin.flush()
                end = time.monotonic() + 3
                while b"\n" not in buf:
                    left = end - time.monotonic()
                    if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
                        streamed = False
                        break
                    chunk = os.read(p.stdout.fileno(), 65536)
                    if not chunk:
                        streamed = False
                        break
                    buf += chunk
                if not streamed:
                    break
                line, buf = buf.split(b"\n", 1)
                try:
                    x = json.loads(line)
                    ans[int(x["key"], 16)] = x
                except (ValueError, KeyError):
                    pass
            p.stdin.close()
            p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            streamed = False
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if not streamed:
            # one lookup-key process per key instead
            ans = {}
            for k in ks:
                r = cl.cli(["lookup-key", "--data", o.data, "--json", hexid(k)], timeout=10)
                if r is not None:
                    for line in r.stdout.splitlines():
                        try:
                            x = json.loads(line)
                            ans[int(x["key"], 16)] = x
                        except (ValueError, KeyError, TypeError):
                            pass
            how = "one lookup-key process per key"
        else:
            how = "one key at a time through `lookup-key -`"
        cl.check_answers(ring, ks, ans, o, "lookups one at a time")
        ms = [float(x["ms"]) for x in ans.values() if x.get("ok")]
        if not ms:
            return
        self.r["ms_paced"] = ms
        log(f"  one at a time from {o} ({how}, {len(ms)} keys): ms p50 {pct(ms, 50):.2f} "
            f"p99 {pct(ms, 99):.2f} max {max(ms):.2f}")

    # -- convergence after a join or a failure
    def poll_round(self, nodes, lookups):
        """Status of nodes and lookups [(origin, keys)], all at once.
        Returns ({node: status}, [answers], time at the end of the round)."""
        fs = [self.cl.pool.submit(self.cl.status, n, 2.0) for n in nodes]
        fl = [self.cl.pool.submit(self.cl.lookup, o, ks, 1.0) for o, ks in lookups]
        sts = {n: f.result() for n, f in zip(nodes, fs)}
        ans = [f.result() for f in fl]
        return sts, ans, time.monotonic()

    @staticmethod
    def looked_up(ans, keys, want):
        if ans is None:
            return False
        return all(k in ans and ans[k].get("ok") and int(ans[k]["id"], 16) == want[k] for k in keys)

    def verify_lookups(self, what, n=100):
        cl = self.cl
        ring = cl.ring()
        for o in self.rng.sample(cl.live(), 2):
            ks = self.keys(n)
            cl.check_answers(ring, ks, cl.lookup(o, ks), o, what)

    def join_trials(self):
        a, cl = self.args, self.cl
        poll = a.poll_ms / 1000
        res = []
        for t in range(a.joins):
            n = cl.spawn(self.pick_joins())
            t0 = n.t_spawn
            cl.wait_bound([n], 10)
            ring = cl.ring()
            want, keys, polled = {}, [], {n}
            conds = []          # (node, vnode, "succ" | "pred", expected)
            for v in n.ids:
                p, s = ring.prev_before(v), ring.next_after(v)
                conds += [(ring.owner[p], p, "succ", v), (ring.owner[s], s, "pred", v)]
                polled |= {ring.owner[p], ring.owner[s]}
                ks = [v, key_between(self.rng, p, v), key_between(self.rng, p, v)]
                keys += ks
                want.update({k: ring.successor(k) for k in ks})
            others = [m for m in cl.live() if m not in polled]
            lk = [(o, keys) for o in self.rng.sample(others, min(2, len(others)))]
            first = {}
            while True:
                sts, ans, now = self.poll_round(sorted(polled, key=lambda x: x.idx), lk)
                el = now - t0
                ok_s = ok_p = True
                for m, vid, kind, exp in conds:
                    view = vnode_view(sts[m]) if sts.get(m) else {}
                    v = view.get(vid)
                    if kind == "succ":
                        ok_s &= bool(v and v[2] and v[2][0] == exp)
                    else:
                        ok_p &= bool(v and v[1] == exp)
                ok_l = all(self.looked_up(x, keys, want) for x in ans)
                for name, ok in (("succ", ok_s), ("pred", ok_p), ("lookup", ok_l)):
                    if ok and name not in first:
                        first[name] = el
                if ok_s and ok_p and ok_l:
                    break
                if el > 30:
                    raise Fatal(f"join {t + 1}: {n} not reflected after 30 s "
                                f"(pred's successor {ok_s}, succ's predecessor {ok_p}, lookups {ok_l}):\n"
                                f"{n.log_tail()}")
                cl.check_crashes()
                time.sleep(poll)
            res.append(el)
            log(f"join {t + 1}/{a.joins}: {n} reflected after {el * 1000:.0f} ms "
                f"(pred's successor {first['succ'] * 1000:.0f}, succ's predecessor "
                f"{first['pred'] * 1000:.0f}, lookups {first['lookup'] * 1000:.0f} ms)")
            cl.wait_stable(60, f"after join {t + 1}")
            self.verify_lookups(f"after join {t + 1}")
        self.r["join"] = res

    def fail_trials(self):
        a, cl = self.args, self.cl
        poll = a.poll_ms / 1000
        res, res_full, res_fixed = [], [], []
        for t in range(a.fails):
            cands = [n for n in cl.live() if n is not self.http_node]
            victim = self.rng.choice(cands)
            rest = cl.ring(exclude=(victim,))
            dead = set(victim.ids)
            want, keys, near, polled = {}, [], set(), set()
            conds = []          # (P node, P, S node, S)
            for v in victim.ids:
                i = bisect.bisect_left(rest.ids, v)
                s = rest.ids[i % len(rest.ids)]
                p = rest.ids[i - 1]
                conds.append((rest.owner[p], p, rest.owner[s], s))
                near |= {rest.owner[x] for x in rest.preceding(s)}
                polled |= {rest.owner[p], rest.owner[s]}
                ks = [v, key_between(self.rng, p, v), key_between(self.rng, p, v)]
                keys += ks
                want.update({k: rest.successor(k) for k in ks})
            polled |= near
            others = [m for m in cl.live() if m not in polled and m is not victim]
            lk = [(o, keys) for o in self.rng.sample(others, min(2, len(others)))]
            t0 = time.monotonic()
            cl.kill(victim)
            first = {}
            while True:
                sts, ans, now = self.poll_round(sorted(polled, key=lambda x: x.idx), lk)
                el = now - t0
                views = {m: vnode_view(sts[m]) if sts.get(m) else None for m in polled}
                # nobody polled has a dead vnode as first successor or predecessor
                ok_ref = all(vw is not None and all(
                    not (x[2] and x[2][0] in dead) and x[1] not in dead for x in vw.values())
                    for vw in views.values())
                ok_fix = all(views[pn] and views[sn] and views[pn].get(p) and views[sn].get(s)
                             and views[pn][p][2][:1] == [s] and views[sn][s][1] == p
                             for pn, p, sn, s in conds)
                ok_full = all(vw is not None and not any(dead & set(x[2]) for x in vw.values())
                              for vw in views.values())
                ok_l = all(self.looked_up(x, keys, want) for x in ans)
                for name, ok in (("ref", ok_ref), ("fix", ok_fix), ("lookup", ok_l),
                                 ("full", ok_full), ("main", ok_ref and ok_l)):
                    if ok and name not in first:
                        first[name] = el
                if ok_ref and ok_l and ok_fix and ok_full:
                    break
                if el > 60:
                    raise Fatal(f"failure {t + 1}: {victim} killed, not repaired after 60 s "
                                f"(references gone {ok_ref}, pred/succ linked {ok_fix}, "
                                f"lookups {ok_l}, successor lists clean {ok_full})")
                cl.check_crashes()
                time.sleep(poll)
            # the fuller measure, checked over every node: nobody mentions it anywhere
            sts = cl.statuses(cl.live())
            left = [m for m in cl.live() if sts.get(m) is None or any(
                dead & (set(x[2]) | {x[1]}) for x in vnode_view(sts[m]).values())]
            if left:
                log(f"  {len(left)} node(s) outside the {len(polled)} polled still mention it; "
                    "polling every node")
                while left:
                    if time.monotonic() - t0 > 90:
                        raise Fatal(f"failure {t + 1}: {left[0]} still lists {victim} 90 s later")
                    time.sleep(poll)
                    sts = cl.statuses(left)
                    left = [m for m in left if m.state == "running" and (sts.get(m) is None or any(
                        dead & (set(x[2]) | {x[1]}) for x in vnode_view(sts[m]).values()))]
                first["full"] = time.monotonic() - t0
            res.append(first["main"])
            res_fixed.append(first["fix"])
            res_full.append(first["full"])
            log(f"failure {t + 1}/{a.fails}: {victim} killed; no pred/first succ points to it and "
                f"its keys resolve after {first['main'] * 1000:.0f} ms (neighbours linked "
                f"{first['fix'] * 1000:.0f} ms); gone from every successor list after "
                f"{first['full'] * 1000:.0f} ms")
            cl.wait_stable(60, f"after failure {t + 1}")
            self.verify_lookups(f"after failure {t + 1}")
        self.r.update(fail=res, fail_fixed=res_fixed, fail_full=res_full)

    # -- cost
    def idle_cost(self):
        a, cl = self.args, self.cl
        cl.wait_stable(60, "before the idle window")
        time.sleep(2)
        live = cl.live()
        hz = os.sysconf("SC_CLK_TCK")

        def ticks(n):
            with open(f"/proc/{n.proc.pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            return int(rest[11]) + int(rest[12])

        log(f"idle: {len(live)} nodes, measuring CPU over {a.idle:.0f} s without touching them")
        c0, t0 = {n: ticks(n) for n in live}, time.monotonic()
        time.sleep(a.idle)
        cl.check_crashes()
        live = [n for n in live if n.state == "running"]
        c1, t1 = {n: ticks(n) for n in live}, time.monotonic()
        cpu = sum(c1[n] - c0[n] for n in live) / hz / (t1 - t0)
        rss = []
        for n in live:
            with open(f"/proc/{n.proc.pid}/status") as f:
                rss += [int(x.split()[1]) for x in f if x.startswith("VmRSS:")]
        self.r.update(cpu=cpu, cpu_nodes=len(live), rss=rss)
        sts = cl.statuses(live)
        stats = collections.Counter()
        rates = collections.Counter()
        for st in sts.values():
            if st:
                stats.update({k: v for k, v in (st.get("stats") or {}).items()
                              if isinstance(v, (int, float))})
                rates.update({k: v for k, v in (st.get("rates") or {}).items()
                              if isinstance(v, (int, float))})
        self.r["msgs_per_node_s"] = (rates.get("msgs_out_per_s", 0) / len(live)) if rates else None
        self.r["stats"] = dict(stats)
        log(f"  CPU {cpu * 100:.1f} % of one core ({cpu * 100 / len(live):.3f} % per node); "
            f"RSS median {statistics.median(rss) / 1024:.1f} MiB max {max(rss) / 1024:.1f} MiB")
        if stats.get("bad_frames"):
            cl.problem(f"nodes counted {stats['bad_frames']} bad frames among themselves")

    # -- HTTP and the picture
    def http(self):
        a, cl = self.args, self.cl
        h = self.http_node.http
        if not h:
            cl.problem(f"{self.http_node} was started with --http but node.json has http null")
            return
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only

        def get(path):
            with opener.open(f"http://{h}{path}", timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()

        try:
            code, ctype, body = get("/status")
            st = json.loads(body)
            ok = code == 200 and isinstance(st.get("vnodes"), list) and len(st["vnodes"]) == a.vnodes
            self.r["http_status"] = "JSON, %d vnodes" % len(st.get("vnodes", []))
            if not ok:
                cl.problem(f"/status: HTTP {code}, vnodes {st.get('vnodes')!r:.80}")
            errs = schema_errors(st)
            if errs:
                cl.note_once("http-schema", "/status JSON differs from operations.md: " + "; ".join(errs[:8]))
            log(f"/status: HTTP {code} {ctype}, JSON with {len(st.get('vnodes', []))} vnode(s)")
        except (OSError, ValueError) as e:
            cl.problem(f"/status on {h}: {e}")
        try:
            code, ctype, body = get("/metrics")
            types, samples, errs = parse_prometheus(body.decode())
            self.r["metrics"] = (len(types), len(samples), len(errs))
            log(f"/metrics: HTTP {code} {ctype}, {len(types)} families, {len(samples)} samples, "
                f"{len(errs)} format errors")
            for e in errs[:5]:
                cl.problem(f"/metrics: {e}")
            names = " ".join(types) + " " + " ".join(s[0] for s in samples)
            hist = [f for f, t in types.items() if t == "histogram"]
            for what, pat in (("lookups", "lookup"), ("messages", "msg|message"), ("bytes", "bytes"),
                              ("timeouts", "timeout"), ("connections", "conn")):
                if not re.search(pat, names):
                    cl.notes.append(f"/metrics has no metric about {what} (operations.md lists one)")
            for what, pat in (("lookup hops", "hop"), ("RPC round-trip times", "rtt|round_trip|rpc")):
                if not any(re.search(pat, f) for f in hist):
                    cl.notes.append(f"/metrics has no histogram of {what} (operations.md lists one)")
            if not samples:
                cl.problem("/metrics has no samples")
        except (OSError, ValueError, UnicodeDecodeError) as e:
            cl.problem(f"/metrics on {h}: {e}")
        try:
            code, ctype, body = get("/ring.svg")
            root = ET.fromstring(body)
            marks = sum(1 for e in root.iter() if e.tag.split("}")[-1] in ("circle", "line", "path"))
            log(f"/ring.svg: HTTP {code} {ctype}, {len(body)} bytes, {marks} circles/lines/paths")
            if not root.tag.endswith("svg"):
                cl.problem(f"/ring.svg: root element is {root.tag}")
        except (OSError, ET.ParseError) as e:
            cl.problem(f"/ring.svg on {h}: {e}")
            return
        self.screenshot(f"http://{h}/ring.svg")

    def screenshot(self, url):
        a, cl = self.args, self.cl
        chromium = shutil.which("chromium")
        if not chromium:
            log("chromium not found: no screenshot")
            cl.notes.append("chromium is not installed: no screenshot taken")
            return
        out = os.path.join(cl.tmp, "ring.png")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--no-proxy-server",
               f"--user-data-dir={os.path.join(cl.tmp, 'chromium')}",
               f"--screenshot={out}", "--window-size=900,900", url]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, cwd=cl.tmp)
        cl.extra.append(p)
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            cl.notes.append("chromium took more than 60 s; no screenshot")
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        else:
            try:
                os.killpg(p.pid, signal.SIGKILL)   # its helpers
            except ProcessLookupError:
                pass
        if not os.path.exists(out):
            cl.notes.append("chromium wrote no screenshot")
            return
        size = os.path.getsize(out)
        try:
            w, h, ncol, ink = png_check(out)
        except (ValueError, zlib.error, struct.error, TypeError) as e:
            cl.notes.append(f"screenshot is not a readable PNG: {e}")
            return
        desc = f"{w}x{h}, {size} bytes" + (f", {ncol} colours, {ink:.1%} non-background"
                                            if ncol is not None else "")
        blank = ncol is not None and (ncol < 3 or ink < 0.002)
        log(f"screenshot: {desc}" + (" -- BLANK" if blank else ""))
        self.r["png"] = desc + (" (blank)" if blank else "")
        if blank:
            cl.notes.append(f"the screenshot of /ring.svg looks blank ({desc})")
        if a.screenshot and not blank:
            os.makedirs(os.path.dirname(os.path.abspath(a.screenshot)), exist_ok=True)
            shutil.copyfile(out, a.screenshot)
            log(f"screenshot saved to {a.screenshot}")

    def run(self):
        self.form()
        self.warm_up()
        self.lookups()
        self.join_trials()
        self.fail_trials()
        self.idle_cost()
        self.http()
        self.cl.check_crashes()


# ---------------------------------------------------------------- the table

def fmt_ms(xs):
    return f"{statistics.median(xs) * 1000:.0f} / {max(xs) * 1000:.0f} ms" if xs else "n/a"


def table(r, a, cl):
    n = a.nodes
    lg = math.log2(n * a.vnodes)      # the ring has this many members
    rows = [("measure", "coopfs", "seed 004 paper", "Chord expectation")]

    def row(m, c, p="—", e="—"):
        rows.append((m, c, p, e))

    row("nodes x vnodes (loopback, 1 machine)", f"{n} x {a.vnodes}", "128 peers, 1 datacenter", "—")
    if "form_stable" in r:
        row("ring formed in waves" + (", each settled" if a.settle else " (not settled)") +
            ": all joined / stable", f"{r['form_joined']:.1f} s / {r['form_stable']:.1f} s",
            "— (waited for convergence)", "—")
    if "join_one" in r:
        row("one node's join (start → joined), median", f"{r['join_one'] * 1000:.0f} ms", "—", "—")
    if "lists_ok" in r:
        t = r.get("tables_ok_after")
        row("successor lists / fingers right before lookups",
            f"{r['lists_ok']:.1%} / {r['fingers_ok']:.1%}" +
            (f" ({t:.1f} s after stable)" if t is not None else ""), "—", "100 % in a stable ring")
    if r.get("hops"):
        h, ms = r["hops"], r["ms"]
        row("lookups answered by the true successor",
            f"{r['lk_total'] - r['lk_wrong']} / {r['lk_total']}", "—", "all (stable ring)")
        row("lookup hops, mean", f"{statistics.mean(h):.2f}", "—", f"½·log2 N = {lg / 2:.1f}")
        row("lookup hops, p99 / max", f"{pct(h, 99)} / {max(h)}", f"≤ {int(lg)} = log2 N",
            f"O(log N) w.h.p.; log2 N = {lg:.3g}")
        row(f"lookup latency p50 / p99 / max ({a.origins}x{a.keys} keys, 64 at once)",
            f"{pct(ms, 50):.2f} / {pct(ms, 99):.2f} / {max(ms):.2f} ms",
            "≤ 8 ms (max routing time)", "hops × one-way delay")
        if r.get("lk_rate"):
            row("lookups per second, one origin, 64 at once", f"{r['lk_rate']:.0f}", "—", "—")
    if r.get("ms_paced"):
        ms = r["ms_paced"]
        row(f"lookup latency p50 / p99 / max (one at a time, {len(ms)} keys)",
            f"{pct(ms, 50):.2f} / {pct(ms, 99):.2f} / {max(ms):.2f} ms", "≤ 8 ms", "—")
    if r.get("join"):
        row(f"join reflected, median / max of {len(r['join'])}", fmt_ms(r["join"]),
            "≤ 2 s (every peer aware)", f"≤ 1 stabilize period ({STABILIZE_S:.1f} s) after the join")
    if r.get("fail"):
        row(f"failure: no pred/succ points to it, keys moved; median / max of {len(r['fail'])}",
            fmt_ms(r["fail"]), "≤ 2 s", "detection + 1 stabilize: ≤ 1 s refused, ≈ 2 s silent")
        row("failure: neighbours linked to each other", fmt_ms(r["fail_fixed"]), "≤ 2 s",
            "the same, + the successor's check-predecessor")
        row("failure: gone from every successor list", fmt_ms(r["fail_full"]),
            "≤ 2 s (every peer aware)",
            f"+ {SUCC_LEN - 1} reconciliations × ½ period ≈ {(SUCC_LEN - 1) * STABILIZE_S / 2:.1f} s")
    if r.get("rss"):
        rss = r["rss"]
        row("resident memory per node, median / max",
            f"{statistics.median(rss) / 1024:.1f} / {max(rss) / 1024:.1f} MiB", "—", "—")
    if "cpu" in r:
        cpu = r["cpu"] * 100
        row(f"idle ring CPU over {a.idle:.0f} s: total / per node",
            f"{cpu:.1f} % / {cpu / r['cpu_nodes']:.3f} % of a core", "—", "—")
    if r.get("msgs_per_node_s") is not None:
        row("idle messages sent per node per second", f"{r['msgs_per_node_s']:.1f}", "—", "—")
    w = [max(len(x[i]) for x in rows) for i in range(4)]
    lines = ["| " + " | ".join(x[i].ljust(w[i]) for i in range(4)) + " |" for x in rows]
    lines.insert(1, "|" + "|".join("-" * (w[i] + 2) for i in range(4)) + "|")
    return "\n".join(lines)


def hop_histogram(hops):
    c = collections.Counter(hops)
    out = []
    for h in range(min(c), max(c) + 1):
        f = c[h] / len(hops)
        out.append(f"  {h:2d} hops {c[h]:6d}  {f:6.1%}  " + "#" * round(f * 50))
    return "\n".join(out)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="A ring of real coopfs nodes on loopback, measured.")
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("--coopfs", help="the coopfs binary (default BUILD/tools/coopfs)")
    ap.add_argument("--nodes", type=int, default=128)
    ap.add_argument("--vnodes", type=int, default=1)
    ap.add_argument("--wave", type=int, default=16,
                    help="nodes started at once, at most the ring's size (default 16)")
    ap.add_argument("--no-settle", dest="settle", action="store_false",
                    help="start the next wave as soon as the last one has joined, without "
                         "waiting for an ideal ring (converges slowly: linear in the joins per gap)")
    ap.add_argument("--origins", type=int, default=16, help="nodes the lookups start from")
    ap.add_argument("--keys", type=int, default=500, help="keys looked up from each origin")
    ap.add_argument("--joins", type=int, default=5)
    ap.add_argument("--fails", type=int, default=5)
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idleness for the CPU measure")
    ap.add_argument("--poll-ms", type=int, default=75, help="poll period while converging")
    ap.add_argument("--port", type=int, default=0, help="listen port of every node (0: kernel's choice)")
    ap.add_argument("--parallel", type=int, default=8, help="status/lookup tools run at once")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=540.0, help="whole run, seconds")
    ap.add_argument("--screenshot", help="save the /ring.svg screenshot here (PNG)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--log-level", default="warn", help="--log-level of the nodes (default warn)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = ap.parse_args()
    if not 8 <= a.nodes <= 1500 or not 1 <= a.vnodes <= 64 or a.origins < 1 or a.keys < 1:
        ap.error("--nodes 8..1500, --vnodes 1..64, --origins and --keys at least 1")
    exe = os.path.abspath(a.coopfs or os.path.join(a.build, "tools", "coopfs"))
    if not os.access(exe, os.X_OK):
        print(f"ring.py: {exe} not found; build first: ninja -C {a.build}", file=sys.stderr)
        return 2
    r = subprocess.run([exe, "node", "--help"], capture_output=True, text=True)
    if "unknown command" in r.stderr:
        print(f"ring.py: {exe} has no 'node' command yet", file=sys.stderr)
        return 2

    cl = Cluster(exe, a)
    atexit.register(cl.cleanup)

    def on_signal(signum, frame):
        raise Interrupted(signum)

    def on_alarm(signum, frame):
        raise TimeLimit()

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(a.time_limit)))

    try:
        rev = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                              "--always", "--dirty"], capture_output=True, text=True,
                             timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        rev = "?"
    ver = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "")
    except OSError:
        pass
    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}, {model}, load {os.getloadavg()[0]:.2f}")
    print(f"code: {ver} ({exe}, source tree {rev})")
    print(f"command: bench/ring.py " + " ".join(sys.argv[1:]))
    b = Bench(cl, a)
    status = 0
    try:
        b.run()
        cl.cleanup(graceful=True)
    except Fatal as e:
        cl.problem(str(e))
    except TimeLimit:
        cl.problem(f"the run took more than --time-limit {a.time_limit:.0f} s")
    except Exception:
        cl.problem("the bench itself failed:\n" + traceback.format_exc())
    except Interrupted as e:
        log(f"interrupted by signal {e.signum}; cleaning up")
        status = 128 + e.signum
    finally:
        cl.cleanup()
    r = b.r
    if r.get("hops"):
        print("\nhop distribution (%d lookups):" % len(r["hops"]))
        print(hop_histogram(r["hops"]))
    print()
    print(table(r, a, cl))
    for n in cl.notes:
        print(f"note: {n}")
    print(f"\nwall time {time.monotonic() - T0:.0f} s, load average at the end {os.getloadavg()[0]:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({k: v for k, v in r.items()}, f)
    if cl.problems:
        print(f"\n{len(cl.problems)} problem(s):")
        for p in cl.problems:
            print("  - " + p.splitlines()[0])
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
