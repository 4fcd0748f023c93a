#!/usr/bin/env python3
"""blocks.py: the block store of real `coopfs node` processes, measured
against limits taken in the same run.

    bench/blocks.py --build BUILD_DIR [--mb 1024] [--runs 2] [--small 500]
                    [--dht-nodes 32] [--rounds 5] [--ops 100] ...

Phases, each printed as a markdown table:

1. Limits of this machine, measured now: the disk's durable write rate for
   256 KiB files written as the store writes them (temporary file, fsync,
   rename, fsync of the directory), by 1 writer and by as many writers as
   the ring has nodes, for --fsync-seconds; SHA-256 speed of one core
   (Python's hashlib, which is OpenSSL's, and `openssl speed sha256`).
   Every byte inserted is written durably k times, so the disk bounds an
   insert at (durable rate) / k.
2. A ring of --nodes (5) nodes with k = 3 on loopback: `coopfs insert` and
   `coopfs lookup -o` of a fresh random file of --mb MiB, --runs times
   (fresh bytes each run), MB/s next to the limits; the disk's rate with
   as many writers as nodes is taken again for 3 s right before each
   insert (the machine is shared), and each run is set against it. If the
   median insert is below half its limit and perf works, one more insert
   (128 MiB) runs under `perf record -a --call-graph dwarf` and where the
   coopfs processes spend their time is printed (--no-profile: never;
   --profile-always: whatever the ratio); the CPU seconds of the nodes and
   of the insert tool are counted for every run.
3. The same ring: latency of one 4 KiB block put (durable on 3 nodes) and
   one get, alone in flight, through the control socket (bench/blk_bench),
   p50 and p99.
4. DHT API on a ring of --dht-nodes (32) coopfs nodes, and OpenDHT's
   `dhtnode` (Debian package dhtnode; python3-opendht drives it) with as
   many processes on loopback: put and get of 64-byte values under fresh
   keys, one at a time, p50/p99, in --rounds rounds that alternate the two
   systems after a warm-up; each value is put through one node and read
   back through another; resident memory per node of both.

Times never fail the run; the exit status is 1 only when something is
wrong (an insert or lookup fails, bytes differ, a node dies), 2 on a usage
error. Every process and temporary directory is removed on every exit
path. Only loopback addresses are used.
"""

import argparse
import atexit
import ctypes
import hashlib
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

T0 = time.monotonic()
K = 3
CHUNK = 256 * 1024
API_PUT, API_GET, API_SUCCESS, API_FAILURE = 650, 651, 652, 653


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class Fatal(Exception):
    pass


class Interrupted(BaseException):
    pass


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(us):
    return f"{us / 1000:.2f}"


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)


def _pdeathsig():
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


class Procs:
    """Every process we start, killed (by pid, process group of its own) on
    every exit path."""

    def __init__(self):
        self.procs = []
        self.dirs = []
        self.lock = threading.Lock()
        self.done = False

    def spawn(self, argv, logpath, stdin=subprocess.DEVNULL, stdout=None):
        with open(logpath, "ab") as lf:
            p = subprocess.Popen(argv, stdin=stdin, stdout=stdout or lf, stderr=lf,
                                 start_new_session=True, preexec_fn=_pdeathsig)
        with self.lock:
            self.procs.append(p)
        return p

    def kill(self, p):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} still alive 10 s after SIGKILL")

    def cleanup(self, keep=False):
        with self.lock:
            if self.done:
                return
            self.done = True
            procs = list(self.procs)
        for p in procs:
            self.kill(p)
        for d in self.dirs:
            if keep:
                log(f"kept {d}")
            else:
                shutil.rmtree(d, ignore_errors=True)


PROCS = Procs()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_s(pid):
    """user + system CPU seconds of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_cpu():
    with open("/proc/stat") as f:
        return [float(x) for x in f.readline().split()[1:]]


class CpuMeter:
    """CPU seconds used by the nodes and by the tools we ran (children) over
    an interval, and how busy the whole machine was."""

    def __init__(self, ring):
        self.pids = [n.proc.pid for n in ring.nodes]
        self.n0 = [proc_cpu_s(p) for p in self.pids]
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = r.ru_utime + r.ru_stime
        self.m0 = machine_cpu()
        self.t0 = time.monotonic()

    def stop(self):
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        m1 = machine_cpu()
        d = [b - a for a, b in zip(self.m0, m1)]
        idle = d[3] + d[4]
        return {"wall": time.monotonic() - self.t0,
                "nodes": sum(proc_cpu_s(p) for p in self.pids) - sum(self.n0),
                "tool": r.ru_utime + r.ru_stime - self.c0,
                "busy": 1 - idle / sum(d) if sum(d) else 0.0}


# ---------------------------------------------------------------- limits


def fsync_rate(dirpath, seconds, writers):
    """MB/s of 256 KiB files made durable as the store makes them: write a
    temporary file, fsync it, rename it into a fan-out directory, fsync that
    directory. `writers` threads at once, each in its own directory tree."""
    data = os.urandom(CHUNK)
    stop = time.monotonic() + seconds
    counts = [0] * writers

    def one(w):
        base = os.path.join(dirpath, f"w{w}")
        tmp = os.path.join(base, "tmp")
        os.makedirs(tmp, exist_ok=True)
        i = 0
        while time.monotonic() < stop:
            sub = os.path.join(base, f"{i % 256:02x}")
            if i < 256:
                os.makedirs(sub, exist_ok=True)
            t = os.path.join(tmp, f"{i}")
            fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(t, os.path.join(sub, f"{i:016x}"))
            dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            i += 1
        counts[w] = i

    start = time.monotonic()
    th = [threading.Thread(target=one, args=(w,)) for w in range(writers)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    secs = time.monotonic() - start
    shutil.rmtree(dirpath, ignore_errors=True)
    return sum(counts) * CHUNK / 1e6 / secs, sum(counts) / secs


def sha256_rate(seconds=2.0):
    buf = os.urandom(CHUNK)
    n = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        hashlib.sha256(buf).digest()
        n += 1
    return n * CHUNK / 1e6 / (time.monotonic() - start)


def openssl_sha256():
    """MB/s of `openssl speed -seconds 2 sha256` at 16 KiB blocks, or None."""
    if not shutil.which("openssl"):
        return None
    try:
        r = subprocess.run(["openssl", "speed", "-seconds", "2", "sha256"], capture_output=True,
                           text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    for line in r.stdout.splitlines():
        if line.startswith("sha256"):
            vals = re.findall(r"([\d.]+)k", line)
            if vals:
                return float(vals[-1]) * 1000 / 1e6  # "k" = 1000 bytes/s
    return None


# ---------------------------------------------------------------- coopfs ring


class Node:
    def __init__(self, idx, ip, data, logpath):
        self.idx, self.ip, self.data, self.logpath = idx, ip, data, logpath
        self.proc = None
        self.listen = None
        self.api = None
        self.ids = []

    def __repr__(self):
        return f"n{self.idx}({self.listen or self.ip})"


class Ring:
    def __init__(self, exe, tmp, label, n, capacity, replicas=K, log_level="warn"):
        self.exe, self.tmp = exe, tmp
        self.nodes = []
        self.label = label
        os.makedirs(os.path.join(tmp, label, "logs"), exist_ok=True)
        start = time.monotonic()
        for i in range(n):
            ip = f"127.0.{20 + (i // 250)}.{1 + i % 250}" if label == "dht" else f"127.0.9.{i + 1}"
            node = Node(i, ip, os.path.join(tmp, label, f"n{i:02d}"),
                        os.path.join(tmp, label, "logs", f"n{i:02d}.log"))
            argv = [exe, "node", "--data", node.data, "--listen", f"{ip}:0",
                    "--capacity", capacity, "--replicas", str(replicas), "--api", f"{ip}:0",
                    "--log-level", log_level]
            if self.nodes:
                argv += ["--join", self.nodes[0].listen]
            node.proc = PROCS.spawn(argv, node.logpath)
            self.nodes.append(node)
            if i == 0:
                self.wait_json([node], 20)
        self.wait_json(self.nodes, 60)
        self.wait_ideal(120)
        self.form_s = time.monotonic() - start
        log(f"{label}: {n} nodes formed an ideal ring in {self.form_s:.1f} s")

    def wait_json(self, nodes, timeout):
        end = time.monotonic() + timeout
        for n in nodes:
            while True:
                if n.proc.poll() is not None:
                    raise Fatal(f"{n} exited with {n.proc.returncode}: {tail(n.logpath)}")
                try:
                    with open(os.path.join(n.data, "node.json")) as f:
                        j = json.load(f)
                    if j.get("pid") == n.proc.pid and os.path.exists(
                            os.path.join(n.data, "control.sock")):
                        n.listen = j["listen"]
                        host, port = j["api"].rsplit(":", 1)
                        n.api = (host, int(port))
                        n.ids = [int(v, 16) for v in j["vnodes"]]
                        break
                except (OSError, ValueError, KeyError, AttributeError):
                    pass
                if time.monotonic() > end:
                    raise Fatal(f"{n}: no node.json within {timeout} s")
                time.sleep(0.05)

    def status(self, n):
        r = subprocess.run([self.exe, "status", "--data", n.data, "--json"], capture_output=True,
                           text=True, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_ideal(self, timeout):
        ids = sorted(i for n in self.nodes for i in n.ids)
        want = {ids[j]: ids[(j + 1) % len(ids)] for j in range(len(ids))}
        end = time.monotonic() + timeout
        while True:
            bad = 0
            for n in self.nodes:
                st = self.status(n)
                for v in (st or {}).get("vnodes", [{}] * len(n.ids)):
                    s = v.get("successors") or []
                    if not v.get("joined") or not s or int(s[0]["id"], 16) != want[int(v["id"], 16)]:
                        bad += 1
            if bad == 0:
                return
            if time.monotonic() > end:
                raise Fatal(f"{self.label}: ring not ideal after {timeout} s ({bad} vnodes wrong)")
            time.sleep(0.5)

    def check_alive(self):
        for n in self.nodes:
            if n.proc.poll() is not None:
                raise Fatal(f"{n} exited with {n.proc.returncode}: {tail(n.logpath)}")

    def stop(self):
        for n in self.nodes:
            PROCS.kill(n.proc)
        shutil.rmtree(os.path.join(self.tmp, self.label), ignore_errors=True)


def tail(path, n=8):
    try:
        with open(path, "rb") as f:
            return "\n    " + "\n    ".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def make_file(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 1 << 20))
            h.update(b)
            f.write(b)
            left -= len(b)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            h.update(b)
    return h.hexdigest()


def run_tool(exe, args, timeout, env=None):
    start = time.monotonic()
    r = subprocess.run([exe] + args, capture_output=True, timeout=timeout, env=env)
    secs = time.monotonic() - start
    if r.returncode != 0:
        raise Fatal(f"coopfs {' '.join(args[:2])} exited {r.returncode}: "
                    f"{r.stderr.decode(errors='replace').strip()[-600:]}")
    return r, secs


# ---------------------------------------------------------------- DHT API client


class Api:
    """One connection to a coopfs node's DHT API (docs/protocol.md)."""

    def __init__(self, addr):
        self.s = socket.create_connection(addr, timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _read(self, n):
        b = b""
        while len(b) < n:
            x = self.s.recv(n - len(b))
            if not x:
                raise Fatal("the DHT API closed the connection")
            b += x
        return b

    def _answer(self, key):
        size, t = struct.unpack(">HH", self._read(4))
        body = self._read(size - 4)
        if body[:32] != key:
            raise Fatal("DHT API answer for another key")
        return t, body[32:]

    def put(self, key, value):
        self.s.sendall(struct.pack(">HHHBB", 4 + 4 + 32 + len(value), API_PUT, 0, 3, 0) + key
                       + value)
        t, _ = self._answer(key)
        return t == API_SUCCESS

    def get(self, key):
        self.s.sendall(struct.pack(">HH", 36, API_GET) + key)
        t, v = self._answer(key)
        return v if t == API_SUCCESS else None

    def close(self):
        self.s.close()


# OpenDHT's side runs under a Python that has the opendht module (Debian's
# python3-opendht is built for /usr/bin/python3): it joins the dhtnode
# network as one more node and runs batches on command.
OPENDHT_DRIVER = r"""
import json, os, sys, time
import opendht as dht
port, boot, netid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
r = dht.DhtRunner()
cfg = dht.DhtConfig()
cfg.setNetwork(netid)
r.run(port=port, config=cfg)
h, p = boot.rsplit(":", 1)
r.bootstrap(h, p)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = line.split()
    if not cmd or cmd[0] == "quit":
        break
    op, n, tag = cmd[0], int(cmd[1]), cmd[2]
    us, bad = [], 0
    for i in range(n):
        key = dht.InfoHash.get(f"{tag}-{i}")
        t = time.monotonic()
        if op == "put":
            ok = r.put(key, dht.Value(bytes([i % 256]) * 64))
        else:
            vs = r.get(key)
            ok = len(vs) == 1 and vs[0].data == bytes([i % 256]) * 64
        us.append((time.monotonic() - t) * 1e6)
        bad += not ok
    print(json.dumps({"us": us, "bad": bad}), flush=True)
r.join()
"""


def find_opendht_python():
    for py in (sys.executable, "/usr/bin/python3"):
        if py and os.access(py, os.X_OK):
            r = subprocess.run([py, "-c", "import opendht"], capture_output=True)
            if r.returncode == 0:
                return py
    return None


class OpenDht:
    """n dhtnode processes on loopback UDP ports, and two driver nodes that
    join them: one puts, the other gets (as a put through one coopfs node
    is read through another)."""

    def __init__(self, tmp, n, base_port, netid):
        self.dir = os.path.join(tmp, "opendht")
        os.makedirs(self.dir, exist_ok=True)
        self.procs = []
        start = time.monotonic()
        for i in range(n):
            argv = ["dhtnode", "-s", "-n", str(netid), "-p", str(base_port + i)]
            if i:
                argv += ["-b", f"127.0.0.1:{base_port}"]
            self.procs.append(PROCS.spawn(argv, os.path.join(self.dir, f"d{i:02d}.log")))
        py = find_opendht_python()
        drv = os.path.join(self.dir, "driver.py")
        with open(drv, "w") as f:
            f.write(OPENDHT_DRIVER)
        self.drivers = []
        for j in range(2):
            d = PROCS.spawn([py, drv, str(base_port + n + j), f"127.0.0.1:{base_port}",
                             str(netid)], os.path.join(self.dir, f"driver{j}.log"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            line = d.stdout.readline()
            if not line or not json.loads(line).get("ready"):
                raise Fatal("the OpenDHT driver did not start: "
                            + tail(os.path.join(self.dir, f"driver{j}.log")))
            self.drivers.append(d)
        time.sleep(5)  # let the routing tables fill (Kademlia has no "ideal" to wait for)
        self.form_s = time.monotonic() - start
        log(f"opendht: {n} dhtnode processes and 2 driver nodes up in {self.form_s:.1f} s")

    def _cmd(self, d, line):
        d.stdin.write(line.encode())
        d.stdin.flush()
        out = d.stdout.readline()
        if not out:
            raise Fatal(f"an OpenDHT driver died: {tail(os.path.join(self.dir, 'driver0.log'))}")
        return json.loads(out)

    def batch(self, n, tag):
        p = self._cmd(self.drivers[0], f"put {n} {tag}\n")
        g = self._cmd(self.drivers[1], f"get {n} {tag}\n")
        return {"put_us": p["us"], "get_us": g["us"], "bad": p["bad"] + g["bad"]}

    def check_alive(self):
        dead = [p for p in self.procs if p.poll() is not None]
        if dead:
            raise Fatal(f"{len(dead)} dhtnode processes exited")

    def stop(self):
        for d in self.drivers:
            try:
                d.stdin.write(b"quit\n")
                d.stdin.flush()
            except OSError:
                pass
        for p in self.procs + self.drivers:
            PROCS.kill(p)


def coopfs_batch(ring, n, tag):
    """n puts through the first node's DHT API, then n gets of the same keys
    through a node half-way round the list (not the one that put them)."""
    pa, ga = Api(ring.nodes[0].api), Api(ring.nodes[len(ring.nodes) // 2].api)
    put_us, get_us, bad = [], [], 0
    try:
        for i in range(n):
            key = hashlib.sha256(f"{tag}-{i}".encode()).digest()
            t = time.monotonic()
            ok = pa.put(key, bytes([i % 256]) * 64)
            put_us.append((time.monotonic() - t) * 1e6)
            bad += not ok
        for i in range(n):
            key = hashlib.sha256(f"{tag}-{i}".encode()).digest()
            t = time.monotonic()
            v = ga.get(key)
            get_us.append((time.monotonic() - t) * 1e6)
            bad += v != bytes([i % 256]) * 64
    finally:
        pa.close()
        ga.close()
    return {"put_us": put_us, "get_us": get_us, "bad": bad}


# ---------------------------------------------------------------- phases


class Bench:
    def __init__(self, a, exe, tmp):
        self.a, self.exe, self.tmp = a, exe, tmp
        self.r = {}
        self.problems = []
        self.rng = random.Random(a.seed)

    def limits(self):
        a = self.a
        d = os.path.join(self.tmp, "fsync")
        log(f"disk: durable 256 KiB writes, 1 writer, {a.fsync_seconds / 2:.0f} s")
        self.r["fsync1"] = fsync_rate(d, a.fsync_seconds / 2, 1)
        log(f"disk: {a.nodes} writers, {a.fsync_seconds / 2:.0f} s")
        self.r["fsyncN"] = fsync_rate(d, a.fsync_seconds / 2, a.nodes)
        self.r["sha"] = sha256_rate()
        self.r["openssl"] = openssl_sha256()
        log(f"limits: disk {self.r['fsync1'][0]:.0f} / {self.r['fsyncN'][0]:.0f} MB/s, "
            f"SHA-256 {self.r['sha']:.0f} MB/s")

    def files(self, ring):
        a = self.a
        keys = os.path.join(self.tmp, "keys")
        os.makedirs(keys, exist_ok=True)
        env = dict(os.environ, COOPFS_KEYS=keys)
        run_tool(self.exe, ["keygen", "bench"], 30, env)
        tn = ring.nodes[0]
        size = a.mb * 2**20
        ins, look, cpu, probes = [], [], [], []
        for run in range(a.runs):
            path = os.path.join(self.tmp, "f.bin")
            want = make_file(path, size)
            # The machine is shared and noisy: the disk's rate is taken
            # again right before each insert, and each run is set against it.
            probe = fsync_rate(os.path.join(self.tmp, "fsync"), 3, a.nodes)[0]
            probes.append(probe)
            cm = CpuMeter(ring)
            r, secs = run_tool(self.exe, ["insert", "--data", tn.data, "--key", "bench", path],
                               a.mb * 4 + 120, env)
            cpu.append(cm.stop())
            fkey = r.stdout.decode().split()[-1]
            ins.append(size / 1e6 / secs)
            os.unlink(path)
            out = os.path.join(self.tmp, "f.out")
            _, lsecs = run_tool(self.exe, ["lookup", "--data", ring.nodes[1].data, fkey, "-o", out],
                                a.mb * 4 + 120, env)
            if sha256_file(out) != want:
                raise Fatal(f"run {run}: lookup returned other bytes than were inserted")
            os.unlink(out)
            look.append(size / 1e6 / lsecs)
            log(f"run {run + 1}/{a.runs}: disk {probe:.0f} MB/s just before; "
                f"insert {ins[-1]:.1f} MB/s ({secs:.1f} s), lookup "
                f"{look[-1]:.1f} MB/s ({lsecs:.1f} s)")
            ring.check_alive()
            # Reclaim it so the next run starts from similar disks.
            run_tool(self.exe, ["reclaim", "--data", tn.data, "--key", "bench", fkey], 600, env)
        self.r["insert"], self.r["lookup"], self.r["insert_cpu"] = ins, look, cpu
        self.r["probes"] = probes
        self.env = env

    def profile(self, ring):
        a = self.a
        ratio = statistics.median(i / (p / K) for i, p in zip(self.r["insert"],
                                                               self.r["probes"]))
        med = statistics.median(self.r["insert"])
        limit = statistics.median(self.r["probes"]) / K
        if not a.profile or (ratio >= 0.5 and not a.profile_always):
            return
        if not shutil.which("perf"):
            self.r["profile"] = "perf not installed"
            return
        mb = min(a.mb, 128)
        path = os.path.join(self.tmp, "p.bin")
        make_file(path, mb * 2**20)
        data = os.path.join(self.tmp, "perf.data")
        log(f"insert at {med:.0f} MB/s, {ratio:.2f} of the disk limit ({limit:.0f} MB/s): "
            f"profiling a {mb} MiB insert with perf")
        perf = subprocess.Popen(["perf", "record", "-a", "--call-graph", "dwarf,16384", "-F",
                                 "199", "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            time.sleep(1)
            run_tool(self.exe, ["insert", "--data", ring.nodes[0].data, "--key", "bench", path],
                     mb * 4 + 120, self.env)
        finally:
            perf.send_signal(signal.SIGINT)
            try:
                perf.wait(timeout=60)
            except subprocess.TimeoutExpired:
                perf.kill()
        os.unlink(path)

        def report(*args, children=False):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                                "--children" if children else "--no-children"] + list(args),
                               capture_output=True, text=True, timeout=300)
            return [x for x in r.stdout.splitlines() if x.strip() and not x.startswith("#")]

        # Every process on the machine (other work shows up too), then the
        # coopfs processes (the nodes and the insert tool) by library.
        comms = report("--sort", "comm")[:6]
        # perf 6's --comms filter loses entries that other commands share
        # (the kernel, libc): sort by command too and keep coopfs's lines.
        dsos = [x for x in report("--sort", "comm,dso") if x.split()[1:2] == ["coopfs"]][:8]
        # Inclusive shares of the functions of user space (kernel frames
        # left out: they are the system calls those functions make); one
        # line per name (the nodes and the tool each have their copy).
        incl, seen = [], set()
        for x in report("--sort", "comm,sym", "--percent-limit", "1.5", children=True):
            f = x.split()
            if f[2:3] != ["coopfs"] or "[.]" not in f or "0x0000" in x or f[-1] in seen:
                continue
            seen.add(f[-1])
            incl.append(x)
        self.r["profile"] = "\n".join(["all processes (share of all samples):"] + comms
                                       + ["", "coopfs processes by library (share of all "
                                          "samples):"] + dsos
                                       + ["", "coopfs functions, inclusive of what they call "
                                          "(children, self; share of all samples):"]
                                       + incl[:40])
        if not a.keep:
            os.unlink(data)

    def small(self, ring):
        a = self.a
        helper = os.path.join(a.build, "bench", "blk_bench")
        if not os.access(helper, os.X_OK):
            self.problems.append(f"{helper} not built: no small-block latencies")
            return
        r = subprocess.run([helper, ring.nodes[0].data, str(a.small), "4096", "50"],
                           capture_output=True, text=True, timeout=a.small + 300)
        if r.returncode != 0:
            raise Fatal(f"blk_bench exited {r.returncode}: {r.stderr.strip()[-400:]}")
        out = {}
        for line in r.stdout.splitlines():
            name, *vals = line.split()
            out[name] = [int(v) for v in vals]
        self.r["small"] = out

    def dht(self):
        a = self.a
        if not shutil.which("dhtnode") or not find_opendht_python():
            self.problems.append("dhtnode or python3-opendht missing (apt-get install dhtnode "
                                 "python3-opendht): no OpenDHT column")
        ring = Ring(self.exe, self.tmp, "dht", a.dht_nodes, "64M")
        od = None
        try:
            if shutil.which("dhtnode") and find_opendht_python():
                od = OpenDht(self.tmp, a.dht_nodes, a.dht_port, 4242)
            res = {"coopfs": {"put_us": [], "get_us": [], "bad": 0, "rounds": []},
                   "opendht": {"put_us": [], "get_us": [], "bad": 0, "rounds": []}}
            log("DHT: warm-up")
            coopfs_batch(ring, 20, "warm")
            if od:
                od.batch(20, "warm")
            for rnd in range(a.rounds):
                order = [("coopfs", lambda t: coopfs_batch(ring, a.ops, t))]
                if od:
                    order.append(("opendht", lambda t: od.batch(a.ops, t)))
                if rnd % 2:
                    order.reverse()
                for name, fn in order:
                    b = fn(f"r{rnd}-{self.rng.getrandbits(32):08x}")
                    x = res[name]
                    x["put_us"] += b["put_us"]
                    x["get_us"] += b["get_us"]
                    x["bad"] += b["bad"]
                    x["rounds"].append((statistics.median(b["put_us"]),
                                        statistics.median(b["get_us"])))
                log(f"DHT round {rnd + 1}/{a.rounds}: " + ", ".join(
                    f"{k} put p50 {ms(v['rounds'][-1][0])} ms get p50 {ms(v['rounds'][-1][1])} ms"
                    for k, v in res.items() if v["rounds"]))
            ring.check_alive()
            res["coopfs"]["rss"] = [rss_kib(n.proc.pid) for n in ring.nodes]
            if od:
                od.check_alive()
                res["opendht"]["rss"] = [rss_kib(p.pid) for p in od.procs]
            self.r["dht"] = res
            for k, v in res.items():
                if v["bad"]:
                    self.problems.append(f"{k}: {v['bad']} DHT operations failed or returned "
                                         "the wrong value")
        finally:
            if od:
                od.stop()
            ring.stop()

    def run(self):
        a = self.a
        self.limits()
        ring = Ring(self.exe, self.tmp, "files", a.nodes, a.capacity)
        try:
            self.files(ring)
            self.small(ring)
            self.r["files_rss"] = [rss_kib(n.proc.pid) for n in ring.nodes]
            drops = []
            for n in ring.nodes:
                st = ring.status(n) or {}
                drops.append(st.get("peers", {}).get("dropped_frames"))
            self.r["files_drops"] = drops
            self.profile(ring)
            ring.check_alive()
        finally:
            ring.stop()
        if a.dht_nodes:
            self.dht()


# ---------------------------------------------------------------- tables


def tables(b):
    r, a = b.r, b.a
    out = []
    if "fsync1" in r:
        lim = max(r["fsync1"][0], r["fsyncN"][0])
        out += ["### Limits measured in this run", "",
                "| what | rate |", "|---|---|",
                f"| durable 256 KiB writes (tmp, fsync, rename, dir fsync), 1 writer | "
                f"{r['fsync1'][0]:.1f} MB/s ({r['fsync1'][1]:.0f} files/s) |",
                f"| the same, {a.nodes} writers at once | {r['fsyncN'][0]:.1f} MB/s "
                f"({r['fsyncN'][1]:.0f} files/s) |",
                f"| disk limit of an insert with k = {K}: best of the two / {K} | "
                f"{lim / K:.1f} MB/s |",
                f"| SHA-256, one core (hashlib, 256 KiB buffers) | {r['sha']:.0f} MB/s |"]
        if r.get("openssl"):
            out.append(f"| SHA-256, `openssl speed -seconds 2 sha256`, 16 KiB blocks | "
                       f"{r['openssl']:.0f} MB/s |")
        out.append("")
    if r.get("insert"):
        ins, look = statistics.median(r["insert"]), statistics.median(r["lookup"])
        lims = [p / K for p in r["probes"]]
        ratios = [i / lim for i, lim in zip(r["insert"], lims)]
        out += [f"### Files: {a.nodes} nodes, k = {K}, {a.mb} MiB of random bytes, "
                f"{a.runs} run(s)", "",
                "| run | disk, {0} writers, just before (MB/s) | its limit for an insert "
                "(/ {1}) | `coopfs insert` MB/s | of the limit | `coopfs lookup -o` MB/s |"
                .format(a.nodes, K), "|---|---|---|---|---|---|"]
        for i in range(len(r["insert"])):
            out.append(f"| {i + 1} | {r['probes'][i]:.0f} | {lims[i]:.1f} | "
                       f"{r['insert'][i]:.1f} | {ratios[i]:.2f} | {r['lookup'][i]:.1f} |")
        out += [f"| median | {statistics.median(r['probes']):.0f} | "
                f"{statistics.median(lims):.1f} | {ins:.1f} | {statistics.median(ratios):.2f} | "
                f"{look:.1f} |", "",
                f"SHA-256 of one core ({r['sha']:.0f} MB/s) bounds neither: the insert is "
                f"{ins / r['sha']:.2f} of it, the lookup {look / r['sha']:.2f}.", ""]
    if r.get("insert_cpu"):
        out += ["CPU of the inserts (core-seconds per GiB inserted; the machine has "
                f"{os.cpu_count()} cores):", "",
                "| run | wall s/GiB | nodes | insert tool | together, of the cores' time | "
                "machine busy (anyone) |", "|---|---|---|---|---|---|"]
        gib = a.mb / 1024
        for i, c in enumerate(r["insert_cpu"]):
            tot = c["nodes"] + c["tool"]
            out.append(f"| {i + 1} | {c['wall'] / gib:.1f} | {c['nodes'] / gib:.1f} | "
                       f"{c['tool'] / gib:.1f} | {tot / (c['wall'] * os.cpu_count()) * 100:.0f}% "
                       f"| {c['busy'] * 100:.0f}% |")
        per_gib = statistics.median((c["nodes"] + c["tool"]) / gib for c in r["insert_cpu"])
        out += ["", f"At a median {per_gib:.1f} core-seconds per GiB, the {os.cpu_count()} cores "
                f"of this machine, were they coopfs's alone, would cap an insert at "
                f"{os.cpu_count() * 1024 / per_gib * 1.048576:.0f} MB/s.", ""]
    if r.get("files_rss"):
        rss = [x for x in r["files_rss"] if x]
        out += [f"Resident memory of the {a.nodes} nodes after the runs: median "
                f"{statistics.median(rss) / 1024:.1f} MiB, max {max(rss) / 1024:.1f} MiB.", ""]
    if r.get("files_drops"):
        d = r["files_drops"]
        out += ["Frames the nodes dropped at a peer's full output queue (each costs a "
                "request a timeout), over all the runs: "
                + ", ".join("?" if x is None else str(x) for x in d) + ".", ""]
    if r.get("small"):
        s = r["small"]
        out += [f"### One 4 KiB block at a time, control socket, {a.nodes} nodes, k = {K} "
                f"({len(s['put_us'])} each, after 50 untimed)", "",
                "| operation | p50 ms | p99 ms | max ms |", "|---|---|---|---|",
                f"| put (durable on {K} nodes) | {ms(pct(s['put_us'], 50))} | "
                f"{ms(pct(s['put_us'], 99))} | {ms(max(s['put_us']))} |",
                f"| get (verified) | {ms(pct(s['get_us'], 50))} | {ms(pct(s['get_us'], 99))} | "
                f"{ms(max(s['get_us']))} |", ""]
    if r.get("dht"):
        d = r["dht"]
        out += [f"### DHT API: 64-byte values under fresh keys, one at a time, "
                f"{a.dht_nodes} processes on loopback, {a.rounds} alternating rounds of "
                f"{a.ops} puts + {a.ops} gets", "",
                "| system | put p50 ms | put p99 ms | get p50 ms | get p99 ms | "
                "round medians put / get ms | RSS per node, median (max) MiB | failed ops |",
                "|---|---|---|---|---|---|---|---|"]
        for name, label in (("coopfs", "coopfs: put via one node's API, get via another's; "
                                       "kv on 3 nodes, fsynced"),
                            ("opendht", "OpenDHT 2.4 dhtnode: put via one runner node, get "
                                        "via another; values in memory on 8")):
            v = d[name]
            if not v["put_us"]:
                continue
            rss = [x for x in v.get("rss", []) if x]
            rs = ", ".join(f"{ms(p)}/{ms(g)}" for p, g in v["rounds"])
            out.append(f"| {label} | {ms(pct(v['put_us'], 50))} | {ms(pct(v['put_us'], 99))} | "
                       f"{ms(pct(v['get_us'], 50))} | {ms(pct(v['get_us'], 99))} | {rs} | "
                       + (f"{statistics.median(rss) / 1024:.1f} ({max(rss) / 1024:.1f})"
                          if rss else "—") + f" | {v['bad']} |")
        out.append("")
    if r.get("profile"):
        out += ["### Profile of a 128 MiB insert (perf record -a --call-graph dwarf -F 199)",
                "", "```",
                r["profile"], "```", ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="The coopfs block store, measured.")
    ap.add_argument("--build", default="build")
    ap.add_argument("--coopfs", help="the coopfs binary (default BUILD/tools/coopfs)")
    ap.add_argument("--nodes", type=int, default=5, help="nodes of the file ring (default 5)")
    ap.add_argument("--capacity", default="20G", help="--capacity of those nodes")
    ap.add_argument("--mb", type=int, default=1024, help="file size in MiB (default 1024)")
    ap.add_argument("--runs", type=int, default=2, help="insert+lookup runs (default 2)")
    ap.add_argument("--small", type=int, default=500, help="4 KiB puts and gets (default 500)")
    ap.add_argument("--fsync-seconds", type=float, default=10.0)
    ap.add_argument("--dht-nodes", type=int, default=32, help="0 skips the DHT comparison")
    ap.add_argument("--dht-port", type=int, default=14300, help="first UDP port of dhtnode")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--ops", type=int, default=100, help="puts and gets per round and system")
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--profile-always", action="store_true",
                    help="profile an insert even when it reaches half the disk limit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    if a.nodes < K or a.mb < 1 or a.runs < 1 or a.small < 1:
        ap.error(f"--nodes at least {K}; --mb, --runs, --small at least 1")
    exe = os.path.abspath(a.coopfs or os.path.join(a.build, "tools", "coopfs"))
    if not os.access(exe, os.X_OK):
        print(f"blocks.py: {exe} not found; build first: ninja -C {a.build}", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="coopfs-blocks-")
    PROCS.dirs.append(tmp)
    atexit.register(PROCS.cleanup)

    def on_signal(signum, frame):
        raise Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    # A private copy, so a rebuild during the run changes nothing.
    priv = os.path.join(tmp, "coopfs")
    shutil.copy2(exe, priv)
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "")
    except OSError:
        pass
    try:
        rev = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe",
                              "--always", "--dirty"], capture_output=True, text=True,
                             timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        rev = "?"
    print(f"machine: {os.cpu_count()} cores, {model}, load {os.getloadavg()[0]:.2f}, "
          f"temporary files on {tmp}")
    print(f"code: {rev}; command: bench/blocks.py " + " ".join(sys.argv[1:]))
    b = Bench(a, priv, tmp)
    status = 0
    try:
        b.run()
    except Fatal as e:
        b.problems.append(str(e))
    except Interrupted as e:
        log(f"interrupted by signal {e}; cleaning up")
        status = 130
    except Exception:
        import traceback
        b.problems.append("the bench itself failed:\n" + traceback.format_exc())
    finally:
        PROCS.cleanup(keep=a.keep)
    print()
    print(tables(b))
    print(f"wall time {time.monotonic() - T0:.0f} s, load average at the end "
          f"{os.getloadavg()[0]:.2f}")
    if b.problems:
        print(f"\n{len(b.problems)} problem(s):")
        for p in b.problems:
            print("  - " + p)
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
