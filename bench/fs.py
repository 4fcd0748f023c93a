#!/usr/bin/env python3
"""fs.py: the coopfs mount measured against a FUSE passthrough and
GlusterFS (replica 3) on the same machine, in the same run.

    bench/fs.py --build BUILD_DIR [--size MIB] [--files N] [--entries N]
                [--runs N] [--only passthrough,gluster,coopfs] ...

The file systems, every data directory on the same disk (--tmp):

- passthrough: bench/passthrough.c (libfuse3 high-level API) mirroring a
  directory, mounted with --pt-opts (the kernel caching class coopfs uses);
- coopfs: 4 `coopfs node` processes on loopback plus `coopfs mount -f`
  joining them as a fifth node, k = 3;
- gluster: one private glusterd bound to 127.0.0.2 (its own working and run
  directories under --tmp), a replica 3 volume of three bricks
  127.0.0.2:TMP/gluster/bN (`force`: they sit on the root disk), mounted
  with `mount -t glusterfs`. Skipped, and said so, when Debian's
  glusterfs-server / glusterfs-client are not installed.

Workloads, run on each file system in turn inside a round; the order of the
file systems rotates from round to round; one warm-up round (smaller: at
most 128 MiB and 1000 files) comes first and is not counted:

1. sequential write of --size MiB of fresh random bytes in 1 MiB writes,
   then fsync and close (dd bs=1M conv=fsync), MB/s;
2. sequential read of it, 1 MiB reads: cold (the file system unmounted and
   mounted again, so coopfs's block cache is empty, and the page cache
   dropped: sync; echo 3 > /proc/sys/vm/drop_caches), then warm (again);
3. --files files of 4 KiB (fresh random bytes each) created in a new
   directory, then sync(2), files/s; and the same timed to the end of an
   fsync of the directory after the sync: Linux sends sync(2) to no FUSE
   daemon (FUSE_SYNCFS is for virtiofs only), so only the directory fsync
   waits for coopfs's signed root;
4. a directory of --entries empty files (made once, before the rounds):
   `ls -l` of it and os.stat() of every entry, each run twice in a row,
   the second (warm: attributes cached) timed, seconds.

Each value is set against the passthrough's value of the same round, and
the table gives the median over rounds of those same-round ratios next to
the aims. Times never fail the run; the exit status is 1 when something
is wrong (a mount that does not come up, bytes read back that differ, a
process that dies), 2 on a usage error, 128+N on signal N. Every process,
mount, gluster volume and temporary directory this run made is removed on
every exit path (and bench/fs.sh sweeps again after it). Only loopback
addresses are used.
"""

import argparse
import ctypes
import hashlib
import json
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

T0 = time.monotonic()
MIB = 1 << 20
SYSTEMS = ("passthrough", "coopfs", "gluster")
GLUSTER_IP = "127.0.0.2"        # glusterd refuses 127.0.0.1 as a brick address
RING_IPS = [f"127.0.41.{i}" for i in range(1, 6)]  # 4 nodes, then the mount
# The kernel caching class coopfs's mount uses (fs/fuse_ops.c), given to the
# passthrough: the page cache kept across opens (keep_cache there,
# kernel_cache here), attributes and entries cached 10 s, missing names 1 s,
# READDIRPLUS always, 1 MiB writes and readahead, no writeback cache.
# (The last three are set by passthrough.c itself: libfuse's high-level
# API takes no options for them.)
PT_OPTS_DEFAULT = "kernel_cache,attr_timeout=10,entry_timeout=10,negative_timeout=1"


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class Fatal(Exception):
    pass


class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class TimeLimit(BaseException):
    pass


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def _pdeathsig():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Procs:
    """Every process and mount this run made, undone on every exit path:
    mounts first (lazily if busy), then processes by pid (SIGTERM, then
    SIGKILL), then zombies reaped: this process is a child subreaper, so
    the daemons gluster forks are reparented to it, not to init."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []     # (Popen, name)
        self.mounts = []
        self.hooks = []     # callables run before the kill (gluster volume stop)
        self.lock = threading.Lock()
        self.done = False
        self.pidlog = os.path.join(tmp, "pids")

    def spawn(self, argv, logpath, name, env=None):
        with open(logpath, "ab") as lf:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf, env=env,
                                 start_new_session=True, preexec_fn=_pdeathsig)
        with self.lock:
            self.procs.append((p, name))
        self.note_pid(p.pid)
        return p

    def note_pid(self, pid):
        """fs.sh kills what is listed here if this process is SIGKILLed."""
        with open(self.pidlog, "a") as f:
            f.write(f"{pid}\n")

    def stop(self, p, grace=10.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"pid {p.pid} still alive {grace:.0f} s after SIGTERM: SIGKILL")
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=10)

    def cleanup(self, keep=False):
        with self.lock:
            if self.done:
                return
            self.done = True
        for m in reversed(self.mounts):
            if is_mounted(m):
                log(f"cleanup: unmounting {m}")
                subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)
        for h in reversed(self.hooks):
            try:
                h()
            except Exception as e:       # noqa: BLE001 -- cleanup goes on
                log(f"cleanup hook failed: {e}")
        for p, _ in reversed(self.procs):
            self.stop(p, grace=3.0)
        kill_listed(self.tmp)
        reap()
        if keep:
            log(f"kept {self.tmp}")
        else:
            rm_tree(self.tmp)


PROCS = None


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.2)
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    return
            except ChildProcessError:
                return


def kill_listed(tmp):
    """Processes whose command line names our temporary directory (the
    daemons gluster forks: bricks, self-heal, the mount's client) -- never
    anything else."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if tmp.encode() in cmd:
            try:
                os.kill(int(d), signal.SIGKILL)
                what = cmd.replace(b"\0", b" ")[:100].decode(errors="replace")
                log(f"cleanup: killed leftover pid {d}: {what}")
            except ProcessLookupError:
                pass


def rm_tree(path):
    # never descend into a mount that could not be removed
    subprocess.run(["rm", "-rf", "--one-file-system", path], capture_output=True, timeout=600)


def mountinfo():
    """{mount point: fstype} from /proc/self/mountinfo."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            a = line.split()
            i = a.index("-")
            out[a[4].replace("\\040", " ")] = a[i + 1]
    return out


def is_mounted(path):
    return os.path.realpath(path) in mountinfo()


def tail(path, n=10):
    try:
        with open(path, "rb") as f:
            return "\n    | " + "\n    | ".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def run(argv, timeout=120, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise Fatal(f"{' '.join(argv)} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-600:]}")
    return r


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


# ---------------------------------------------------------------- file systems


class FileSystem:
    name = "?"
    fstype = "?"

    def __init__(self, a, tmp):
        self.a, self.tmp = a, tmp
        self.base = os.path.join(tmp, self.name)
        self.mnt = os.path.join(self.base, "mnt")
        self.logs = os.path.join(self.base, "logs")
        os.makedirs(self.mnt, exist_ok=True)
        os.makedirs(self.logs, exist_ok=True)
        PROCS.mounts.append(self.mnt)

    def wait_mounted(self, timeout, proc=None, logpath=None):
        end = time.monotonic() + timeout
        while True:
            t = mountinfo().get(self.mnt)
            if t == self.fstype:
                return
            if proc is not None and proc.poll() is not None:
                raise Fatal(f"{self.name}: the mount process exited with {proc.returncode} "
                            f"before mounting:{tail(logpath)}")
            if time.monotonic() > end:
                raise Fatal(f"{self.name}: {self.mnt} not mounted as {self.fstype} after "
                            f"{timeout:.0f} s (mountinfo says {t}){tail(logpath) if logpath else ''}")
            time.sleep(0.05)

    def wait_unmounted(self, timeout, proc=None):
        end = time.monotonic() + timeout
        while is_mounted(self.mnt) or (proc is not None and proc.poll() is None):
            if time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def describe(self):
        return ""

    def check_alive(self):
        pass

    def log_tails(self):
        """The ends of this file system's logs, for a failure's message."""
        out = ""
        try:
            names = sorted(os.listdir(self.logs))
        except OSError:
            return out
        for x in names:
            out += f"\n  {x}:{tail(os.path.join(self.logs, x), 12)}"
        return out


class Passthrough(FileSystem):
    name = "passthrough"
    fstype = "fuse.passthrough"

    def __init__(self, a, tmp, exe):
        super().__init__(a, tmp)
        self.exe = exe
        self.src = os.path.join(self.base, "src")
        os.makedirs(self.src, exist_ok=True)
        self.proc = None
        self.n = 0

    def mount(self):
        self.n += 1
        lp = os.path.join(self.logs, "passthrough.log")
        self.proc = PROCS.spawn([self.exe, self.src, self.mnt, "-f", "-o", self.a.pt_opts],
                                lp, "passthrough")
        self.wait_mounted(30, self.proc, lp)

    def umount(self):
        run(["fusermount3", "-u", self.mnt], timeout=60)
        if not self.wait_unmounted(30, self.proc):
            raise Fatal("passthrough: still running 30 s after fusermount3 -u")

    def describe(self):
        same = self.a.pt_opts == PT_OPTS_DEFAULT
        return f"`passthrough SRC MNT -f -o {self.a.pt_opts}` (bench/passthrough.c, libfuse " \
               f"{fuse_version()} high-level API, multithreaded, extended attributes passed " \
               f"through); kernel caching " + \
               ("the class coopfs's mount uses (fs/fuse_ops.c): page cache kept across opens, "
                "attributes and entries 10 s, missing names 1 s, READDIRPLUS on every listing, "
                "1 MiB writes and readahead, no writeback cache" if same else
                "as given by --pt-opts, READDIRPLUS on every listing, 1 MiB writes and readahead")

    def check_alive(self):
        if self.proc and self.proc.poll() is not None:
            raise Fatal(f"passthrough exited with {self.proc.returncode}")


class Gluster(FileSystem):
    name = "gluster"
    fstype = "fuse.glusterfs"

    def __init__(self, a, tmp):
        super().__init__(a, tmp)
        self.vol = "coopfsbench"
        self.lib = os.path.join(self.base, "lib")
        self.rundir = os.path.join(self.base, "run")
        self.sock = os.path.join(self.rundir, "glusterd.socket")
        self.bricks = [os.path.join(self.base, f"b{i}") for i in (1, 2, 3)]
        self.glusterd = None
        self.volume = False
        self.listening = []
        self.sockets = []

    def cli(self, *args, timeout=120, check=True):
        return run(["gluster", f"--glusterd-sock={self.sock}", "--mode=script"] + list(args),
                   timeout=timeout, check=check)

    def start(self):
        for d in (self.lib, self.rundir):
            os.makedirs(d, exist_ok=True)
        vf = os.path.join(self.base, "glusterd.vol")
        with open(vf, "w") as f:
            f.write("volume management\n"
                    "    type mgmt/glusterd\n"
                    f"    option working-directory {self.lib}\n"
                    f"    option run-directory {self.rundir}\n"
                    f"    option glusterd-sockfile {self.sock}\n"
                    "    option transport-type socket\n"
                    f"    option transport.socket.bind-address {GLUSTER_IP}\n"
                    "    option transport.address-family inet\n"
                    "    option transport.socket.listen-port 24007\n"
                    "    option ping-timeout 0\n"
                    "    option event-threads 1\n"
                    "end-volume\n")
        busy = run(["ss", "-Hltn", "sport = :24007"], check=False).stdout.strip()
        if busy:
            raise Fatal(f"gluster: port 24007 is already in use ({busy}); another glusterd?")
        # -N: in the foreground, our child, so it is ours to stop and reap
        self.glusterd = PROCS.spawn(["glusterd", "-N", "-f", vf, "-p",
                                     os.path.join(self.rundir, "glusterd.pid"),
                                     "-l", os.path.join(self.logs, "glusterd.log")],
                                    os.path.join(self.logs, "glusterd.out"), "glusterd")
        end = time.monotonic() + 30
        while self.cli("peer", "status", check=False, timeout=10).returncode != 0:
            if self.glusterd.poll() is not None or time.monotonic() > end:
                raise Fatal(f"gluster: glusterd did not answer:"
                            f"{tail(os.path.join(self.logs, 'glusterd.log'))}")
            time.sleep(0.3)
        PROCS.hooks.append(self.delete_volume)
        self.cli("volume", "create", self.vol, "replica", "3",
                 *[f"{GLUSTER_IP}:{b}" for b in self.bricks], "force")
        self.volume = True
        self.cli("volume", "start", self.vol)
        self.note_daemons()

    def note_daemons(self):
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if any(self.base.encode() in c for c in cmd):
                PROCS.note_pid(int(d))
                for i, c in enumerate(cmd[:-1]):
                    if c == b"-S" and cmd[i + 1].decode() not in self.sockets:
                        self.sockets.append(cmd[i + 1].decode())
                        # fs.sh removes these if this process is SIGKILLed
                        with open(os.path.join(self.tmp, "sockets"), "a") as f:
                            f.write(cmd[i + 1].decode() + "\n")

    def mount(self):
        run(["mount", "-t", "glusterfs", "-o",
             f"log-file={os.path.join(self.logs, 'client.log')}",
             f"{GLUSTER_IP}:/{self.vol}", self.mnt], timeout=60)
        self.wait_mounted(30)
        self.note_daemons()

    def umount(self):
        run(["umount", self.mnt], timeout=60)
        if not self.wait_unmounted(30):
            raise Fatal("gluster: still mounted 30 s after umount")

    def delete_volume(self):
        if self.volume and self.glusterd and self.glusterd.poll() is None:
            self.cli("volume", "stop", self.vol, "force", check=False, timeout=60)
            self.cli("volume", "delete", self.vol, check=False, timeout=60)
            self.volume = False
        self.note_daemons()
        # glusterd puts the bricks' sockets and logs outside our directory
        for s in self.sockets:
            if s.startswith("/var/run/gluster/") or s.startswith("/run/gluster/"):
                try:
                    os.unlink(s)
                except OSError:
                    pass
        for b in self.bricks:
            lf = "/var/log/glusterfs/bricks/" + b.strip("/").replace("/", "-") + ".log"
            try:
                os.unlink(lf)
            except OSError:
                pass

    def record_listeners(self):
        """What the gluster processes listen on (ss), for the report."""
        r = run(["ss", "-Hltnp"], check=False)
        self.listening = sorted({ln.split()[3] for ln in r.stdout.splitlines()
                                 if "gluster" in ln})

    def describe(self):
        ver = run(["glusterfs", "--version"], check=False).stdout.split("\n")[0]
        return f"{ver}: replica 3 volume, bricks {GLUSTER_IP}:TMP/gluster/b1..b3 (force), " \
               f"one glusterd; FUSE client `mount -t glusterfs {GLUSTER_IP}:/{self.vol}` " \
               f"with default options; listening on {', '.join(self.listening) or '?'}"

    def check_alive(self):
        if self.glusterd and self.glusterd.poll() is not None:
            raise Fatal(f"glusterd exited with {self.glusterd.returncode}")


class Coopfs(FileSystem):
    name = "coopfs"
    fstype = "fuse.coopfs"

    def __init__(self, a, tmp, exe):
        super().__init__(a, tmp)
        self.exe = exe
        self.nodes = []     # (Popen, data dir, listen)
        self.mproc = None
        self.mdata = os.path.join(self.base, "m")
        self.keys = os.path.join(self.base, "keys")
        self.env = dict(os.environ, COOPFS_KEYS=self.keys)
        self.remounts = []  # seconds from SIGTERM to unmounted
        self.mounts_s = []  # seconds from start to mounted

    def node_json(self, data, pid):
        try:
            with open(os.path.join(data, "node.json")) as f:
                j = json.load(f)
        except (OSError, ValueError):
            return None
        return j if j.get("pid") == pid else None

    def start(self):
        os.makedirs(self.keys, exist_ok=True)
        run([self.exe, "keygen", "bench"], env=self.env)
        for i in range(4):
            data = os.path.join(self.base, f"n{i}")
            argv = [self.exe, "node", "--data", data, "--listen", f"{RING_IPS[i]}:0",
                    "--no-api", "--replicas", "3", "--capacity", self.a.capacity,
                    "--log-level", "warn"]
            if self.nodes:
                argv += ["--join", self.nodes[0][2]]
            lp = os.path.join(self.logs, f"n{i}.log")
            p = PROCS.spawn(argv, lp, f"node{i}")
            end = time.monotonic() + 30
            while (j := self.node_json(data, p.pid)) is None:
                if p.poll() is not None or time.monotonic() > end:
                    raise Fatal(f"coopfs node {i} did not start:{tail(lp)}")
                time.sleep(0.05)
            self.nodes.append((p, data, j["listen"]))
        self.wait_joined(60)

    def wait_joined(self, timeout):
        end = time.monotonic() + timeout
        while True:
            ok = 0
            for p, data, _ in self.nodes:
                r = run([self.exe, "status", "--data", data, "--json"], check=False, timeout=10)
                try:
                    st = json.loads(r.stdout)
                    ok += all(v.get("joined") and v.get("successors") for v in st["vnodes"])
                except (ValueError, KeyError, TypeError):
                    pass
            if ok == len(self.nodes):
                return
            if time.monotonic() > end:
                raise Fatal(f"coopfs: only {ok} of {len(self.nodes)} nodes joined after {timeout} s")
            time.sleep(0.3)

    def mount(self):
        lp = os.path.join(self.logs, "mount.log")
        argv = [self.exe, "mount", "--key", "bench", "--data", self.mdata,
                "--listen", f"{RING_IPS[4]}:0", "--join", self.nodes[0][2],
                "--replicas", "3", "--capacity", self.a.capacity, "--no-api", "-f"]
        if self.a.coopfs_opts:
            argv += ["-o", self.a.coopfs_opts]
        t = time.monotonic()
        self.mproc = PROCS.spawn(argv + [self.mnt], lp, "mount", env=self.env)
        self.wait_mounted(120, self.mproc, lp)
        self.mounts_s.append(time.monotonic() - t)

    def umount(self):
        t = time.monotonic()
        try:
            os.kill(self.mproc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not self.wait_unmounted(120, self.mproc):
            raise Fatal(f"coopfs: the mount still up 120 s after SIGTERM:"
                        f"{tail(os.path.join(self.logs, 'mount.log'))}")
        self.remounts.append(time.monotonic() - t)
        if self.mproc.returncode != 0:
            raise Fatal(f"coopfs mount exited with {self.mproc.returncode} on SIGTERM:"
                        f"{tail(os.path.join(self.logs, 'mount.log'))}")

    def log_tails(self):
        out = super().log_tails()
        for label, data in [("mount", self.mdata)] + [(f"node {i}", d) for i, (_, d, _) in
                                                         enumerate(self.nodes)]:
            r = run([self.exe, "status", "--data", data, "--json"], check=False, timeout=10)
            try:
                st = json.loads(r.stdout)
                sto = st.get("store", {})
                out += (f"\n  {label} status: dropped_frames {st['peers'].get('dropped_frames')}, "
                        f"puts_ok {sto.get('puts_ok')}, puts_failed {sto.get('puts_failed')}, "
                        f"gets_failed {sto.get('gets_failed')}, rpc_timeouts "
                        f"{st['stats'].get('rpc_timeouts')}")
            except (ValueError, KeyError, TypeError, AttributeError):
                out += f"\n  {label} status: none ({(r.stderr or '').strip()[:100]})"
        return out

    def describe(self):
        return f"4 × `coopfs node --replicas 3 --no-api` + `coopfs mount --key bench --data DIR " \
               f"--join NODE0 --replicas 3 --no-api -f" + \
               (f" -o {self.a.coopfs_opts}" if self.a.coopfs_opts else "") + " MNT`, all on loopback"

    def check_alive(self):
        for i, (p, _, _) in enumerate(self.nodes):
            if p.poll() is not None:
                raise Fatal(f"coopfs node {i} exited with {p.returncode}:"
                            f"{tail(os.path.join(self.logs, f'n{i}.log'))}")
        if self.mproc and self.mproc.poll() is not None and is_mounted(self.mnt):
            raise Fatal("coopfs: the mount process died, the mount point is still there")


def fuse_version():
    r = run(["pkg-config", "--modversion", "fuse3"], check=False)
    return r.stdout.strip() or "3"


# ---------------------------------------------------------------- workloads


def seq_write(path, data):
    """dd bs=1M conv=fsync: 1 MiB writes, fsync, close. MB/s."""
    mv = memoryview(data)
    t = time.monotonic()
    what = "open"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for off in range(0, len(mv), MIB):
                what = f"write at {off // MIB} MiB"
                chunk = mv[off:off + MIB]
                while chunk:
                    n = os.write(fd, chunk)
                    chunk = chunk[n:]
            what = "fsync"
            os.fsync(fd)
        finally:
            what = "close" if what == "fsync" else what
            os.close(fd)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror} ({what}, {time.monotonic() - t:.1f} s after the open)") from e
    return len(data) / 1e6 / (time.monotonic() - t)


def seq_read(path, size, digest=None):
    """dd bs=1M of=/dev/null. MB/s; with digest, also checks the bytes
    (hashing is then in the time, so only untimed reads pass it)."""
    buf = bytearray(MIB)
    h = hashlib.sha256() if digest else None
    total = 0
    t = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        while n := os.readv(fd, [buf]):
            total += n
            if h:
                h.update(memoryview(buf)[:n])
    finally:
        os.close(fd)
    secs = time.monotonic() - t
    if total != size:
        raise Fatal(f"read {total} bytes of {path}, wrote {size}")
    if h and h.hexdigest() != digest:
        raise Fatal(f"the bytes read back from {path} differ from those written")
    return size / 1e6 / secs


def small_files(d, blobs):
    os.mkdir(d)
    t = time.monotonic()
    for i, b in enumerate(blobs):
        fd = os.open(os.path.join(d, f"f{i:05d}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b)
        finally:
            os.close(fd)
    os.sync()
    t_sync = time.monotonic() - t
    # sync(2) reaches no FUSE daemon (Linux sends FUSE_SYNCFS to virtiofs
    # only), so it cannot wait for coopfs's signed root; an fsync of the
    # directory does (fsyncdir)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(blobs) / t_sync, len(blobs) / (time.monotonic() - t)


def make_entries(d, n):
    os.makedirs(d, exist_ok=True)
    have = set(os.listdir(d))
    for i in range(n):
        name = f"e{i:05d}"
        if name not in have:
            os.close(os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT, 0o644))
    os.sync()


def ls_l(d):
    t = time.monotonic()
    r = subprocess.run(["ls", "-l", d], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=dict(os.environ, LC_ALL="C"), timeout=600)
    if r.returncode != 0:
        raise Fatal(f"ls -l {d}: {r.stderr.decode(errors='replace').strip()[:300]}")
    return time.monotonic() - t


def stat_all(d, n):
    t = time.monotonic()
    names = os.listdir(d)
    for x in names:
        os.stat(os.path.join(d, x))
    if len(names) != n:
        raise Fatal(f"{d} lists {len(names)} entries, expected {n}")
    return time.monotonic() - t


def fresh_bytes(base, tag):
    """The same random buffer, made unique for this write: 8 bytes of every
    4 KiB page rewritten, so no block of any size ≥ 4 KiB repeats an
    earlier write's (coopfs stores blocks by their hash)."""
    b = bytearray(base)
    for off in range(0, len(b), 4096):
        b[off:off + 8] = struct.pack("<II", tag, off >> 12)
    return b


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, a, tmp, build):
        self.a, self.tmp, self.build = a, tmp, build
        self.fss = {}
        self.notes = []
        self.res = {s: {} for s in SYSTEMS}   # system -> metric -> [per round]
        self.order = []
        self.doing = ""

    def note(self, msg):
        self.notes.append(msg)
        log("NOTE: " + msg)

    def setup(self):
        a = self.a
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        if "passthrough" in a.only:
            exe = os.path.join(bindir, "passthrough")
            shutil.copy2(os.path.join(self.build, "bench", "passthrough"), exe)
            self.fss["passthrough"] = Passthrough(a, self.tmp, exe)
        if "coopfs" in a.only:
            exe = os.path.join(bindir, "coopfs")
            shutil.copy2(os.path.join(self.build, "tools", "coopfs"), exe)
            r = run([exe, "mount", "--help"], check=False)
            if "unknown command" in (r.stderr + r.stdout):
                self.note("coopfs column skipped: this coopfs has no `mount` command yet")
            else:
                self.fss["coopfs"] = Coopfs(a, self.tmp, exe)
        if "gluster" in a.only:
            missing = [x for x in ("glusterd", "gluster", "glusterfs") if not shutil.which(x)] + \
                [x for x in ("/sbin/mount.glusterfs",) if not os.path.exists(x)]
            if missing:
                self.note("gluster column skipped: GlusterFS is not installed (missing "
                          f"{', '.join(missing)}); to include it: "
                          "apt-get install glusterfs-server glusterfs-client")
            else:
                self.fss["gluster"] = Gluster(a, self.tmp)
        for name in SYSTEMS:
            fs = self.fss.get(name)
            if fs is None:
                continue
            log(f"{name}: starting")
            if hasattr(fs, "start"):
                fs.start()
            fs.mount()
            if name == "gluster":
                fs.record_listeners()
            log(f"{name}: making {a.entries} entries for ls -l")
            t = time.monotonic()
            make_entries(os.path.join(fs.mnt, "ls"), a.entries)
            log(f"{name}: {a.entries} entries in {time.monotonic() - t:.1f} s")

    def round(self, rnd, warm_up):
        a = self.a
        size = min(a.size, 128) * MIB if warm_up else a.size * MIB
        nfiles = min(a.files, 1000) if warm_up else a.files
        tag = 1000 + rnd
        data = fresh_bytes(self.base_bytes[:size], tag)
        digest = hashlib.sha256(data).hexdigest() if warm_up or a.verify else None
        names = [s for s in SYSTEMS if s in self.fss]
        k = rnd % len(names)
        names = names[k:] + names[:k]
        self.order.append(names)
        for name in names:
            fs = self.fss[name]
            try:
                r = self.workloads(fs, rnd, warm_up, data, digest, nfiles)
            except OSError as e:
                raise Fatal(f"round {rnd}: {name}: {self.doing} failed: {e}{fs.log_tails()}") from e
            if not warm_up:
                for m, v in r.items():
                    self.res[name].setdefault(m, []).append(v)

    def workloads(self, fs, rnd, warm_up, data, digest, nfiles):
        a, name, size = self.a, fs.name, len(data)
        blobs = [os.urandom(4096) for _ in range(nfiles)]
        r = {}
        f = os.path.join(fs.mnt, f"seq{rnd}")
        log(f"round {rnd}{' (warm-up)' if warm_up else ''}: {name}: write {size // MIB} MiB")
        self.doing = f"the sequential write of {size // MIB} MiB"
        r["write"] = seq_write(f, data)
        fs.check_alive()
        self.doing = "the remount"
        t = time.monotonic()
        fs.umount()
        fs.mount()
        r["remount_s"] = time.monotonic() - t
        drop_caches()
        self.doing = "the sequential read"
        r["cold"] = seq_read(f, size)
        r["warm"] = seq_read(f, size)
        if digest:
            seq_read(f, size, digest)
        log(f"round {rnd}: {name}: {nfiles} small files")
        self.doing = "the small-file creation"
        r["create"], r["create_dir"] = small_files(os.path.join(fs.mnt, f"small{rnd}"), blobs)
        d = os.path.join(fs.mnt, "ls")
        self.doing = "ls -l and stat"
        ls_l(d)
        r["ls"] = ls_l(d)
        stat_all(d, a.entries)
        r["stat"] = stat_all(d, a.entries)
        fs.check_alive()
        log(f"round {rnd}: {name}: " + ", ".join(f"{m} {v:.3g}" for m, v in r.items()))
        # untimed: keep the disk from filling over the rounds
        self.doing = "removing the round's files"
        os.unlink(f)
        shutil.rmtree(os.path.join(fs.mnt, f"small{rnd}"))
        return r

    def run(self):
        a = self.a
        log(f"random bytes: {a.size} MiB")
        self.base_bytes = os.urandom(a.size * MIB)
        self.setup()
        if not a.no_warmup:
            self.round(0, True)
        for rnd in range(1, a.runs + 1):
            self.round(rnd, False)

    def teardown(self):
        for name in SYSTEMS:
            fs = self.fss.get(name)
            if fs is None or not is_mounted(fs.mnt):
                continue
            try:
                fs.umount()
            except Fatal as e:
                log(f"{name}: {e}")


# ---------------------------------------------------------------- tables

METRICS = [
    # key, label, unit, higher is better, aim of coopfs/passthrough, aim of coopfs/gluster
    ("write", "sequential write, 1 MiB writes + fsync", "MB/s", True, 0.35, 2.0),
    ("cold", "sequential read, cold (remounted, page cache dropped)", "MB/s", True, 0.5, None),
    ("warm", "sequential read, warm (read again)", "MB/s", True, 0.9, None),
    ("create", "create 4 KiB files in one directory, then sync", "files/s", True, None, 5.0),
    ("create_dir", "the same, then sync and fsync of the directory", "files/s", True, None, None),
    ("ls", "`ls -l` of the big directory, warm (second run)", "s", False, 2.0, None),
    ("stat", "os.stat() of every entry, warm (second run)", "s", False, None, None),
]


def fmt(v):
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def ratios(res, num, den, key):
    a, b = res[num].get(key), res[den].get(key)
    if not a or not b:
        return None
    return [x / y for x, y in zip(a, b)]


def tables(b):
    a, res = b.a, b.res
    have = [s for s in SYSTEMS if res[s]]
    out = []
    labels = {"write": f"sequential write {a.size} MiB, 1 MiB writes + fsync",
              "cold": f"sequential read {a.size} MiB cold (remounted, page cache dropped)",
              "warm": f"sequential read {a.size} MiB warm (read again)",
              "create": f"create {a.files} files of 4 KiB in one directory, then sync",
              "create_dir": "the same, timed to the end of an fsync of the directory after the sync",
              "ls": f"`ls -l` of {a.entries} entries, warm (second run)",
              "stat": f"os.stat() of each of {a.entries} entries, warm (second run)"}
    n = len(next(iter(res[have[0]].values()))) if have else 0
    out += [f"### Each file system: median of {n} rounds (every round's values)", "",
            "| workload | unit | " + " | ".join(have) + " |",
            "|---|---|" + "---|" * len(have)]
    for key, _, unit, _, _, _ in METRICS:
        cells = []
        for s in have:
            v = res[s].get(key)
            cells.append(f"{fmt(statistics.median(v))} ({', '.join(fmt(x) for x in v)})" if v else "—")
        out.append(f"| {labels[key]} | {unit} | " + " | ".join(cells) + " |")
    if "coopfs" in have and res["coopfs"].get("remount_s"):
        v = res["coopfs"]["remount_s"]
        out.append(f"| (untimed) unmount + mount before the cold read, median | s | " + " | ".join(
            f"{fmt(statistics.median(res[s]['remount_s']))}" for s in have) + " |")
    out.append("")

    def col(num, den, key):
        r = ratios(res, num, den, key)
        if r is None:
            return "—", None
        return f"{statistics.median(r):.2f} ({', '.join(f'{x:.2f}' for x in r)})", statistics.median(r)

    def verdict(m, aim, hib):
        if m is None or aim is None:
            return ""
        ok = m >= aim if hib else m <= aim
        return " ✔" if ok else " ✘"

    out += ["### Same-round ratios: median (each round), with the aims", "",
            "Each ratio is the first-named file system's value ÷ the second's, both from the "
            "same round: for MB/s and files/s higher is better, for seconds lower is better. "
            "✔/✘: the median meets the aim or not.", "",
            "| workload | coopfs / passthrough | aim | gluster / passthrough | coopfs / gluster | aim |",
            "|---|---|---|---|---|---|"]
    for key, _, _, hib, aim_p, aim_g in METRICS:
        cp, mp = col("coopfs", "passthrough", key)
        gp, _ = col("gluster", "passthrough", key)
        cg, mg = col("coopfs", "gluster", key)
        ap = "—" if aim_p is None else (f"≥ {aim_p}" if hib else f"≤ {aim_p:g}×")
        ag = "—" if aim_g is None else f"≥ {aim_g:g}"
        out.append(f"| {labels[key]} | {cp}{verdict(mp, aim_p, hib)} | {ap} | {gp} | "
                   f"{cg}{verdict(mg, aim_g, hib)} | {ag} |")
    out.append("")
    out.append("Order of the file systems in each counted round: " +
               "; ".join(" → ".join(o) for o in b.order[(0 if a.no_warmup else 1):]) + ".")
    return "\n".join(out)


# ---------------------------------------------------------------- main


def main():
    global PROCS
    ap = argparse.ArgumentParser(description="coopfs's mount against a FUSE passthrough and "
                                 "GlusterFS replica 3, same machine, same run.")
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("--size", type=int, default=1024, help="MiB of the sequential file (1024)")
    ap.add_argument("--files", type=int, default=10000, help="4 KiB files created (10000)")
    ap.add_argument("--entries", type=int, default=20000, help="entries of the ls -l directory")
    ap.add_argument("--runs", type=int, default=3, help="counted rounds after the warm-up (3)")
    ap.add_argument("--only", default=",".join(SYSTEMS),
                    help="comma-separated subset of passthrough,coopfs,gluster")
    ap.add_argument("--pt-opts", default=PT_OPTS_DEFAULT,
                    help=f"FUSE -o options of the passthrough (default {PT_OPTS_DEFAULT})")
    ap.add_argument("--coopfs-opts", default="", help="-o options given to coopfs mount")
    ap.add_argument("--capacity", default="40G", help="--capacity of every coopfs node")
    ap.add_argument("--tmp", help="an empty directory to work in (default: a new one in /var/tmp)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up round")
    ap.add_argument("--verify", action="store_true",
                    help="check the bytes read back in every round (always in the warm-up)")
    ap.add_argument("--time-limit", type=float, default=3600, help="whole run, seconds (3600)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = ap.parse_args()
    a.only = [x.strip() for x in a.only.split(",") if x.strip()]
    if any(x not in SYSTEMS for x in a.only) or "passthrough" not in a.only:
        ap.error("--only: a subset of passthrough,coopfs,gluster that includes passthrough "
                 "(every ratio is against it)")
    if a.size < 1 or a.files < 1 or a.entries < 1 or a.runs < 1:
        ap.error("--size, --files, --entries and --runs must be at least 1")
    if os.geteuid() != 0:
        print("fs.py: must run as root (drop_caches, mount -t glusterfs)", file=sys.stderr)
        return 2
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        print("fs.py: needs /dev/fuse and fusermount3 (apt-get install fuse3)", file=sys.stderr)
        return 2
    build = os.path.abspath(a.build)
    for p in ("bench/passthrough", "tools/coopfs"):
        if not os.access(os.path.join(build, p), os.X_OK):
            print(f"fs.py: {build}/{p} not found; build first: ninja -C {a.build}", file=sys.stderr)
            return 2
    tmp = os.path.abspath(a.tmp) if a.tmp else tempfile.mkdtemp(prefix="coopfs-fs-", dir="/var/tmp")
    os.makedirs(tmp, exist_ok=True)
    PROCS = Procs(tmp)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def on_signal(signum, frame):
        raise Interrupted(signum)

    def on_alarm(signum, frame):
        raise TimeLimit()

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(a.time_limit)))

    here = os.path.dirname(os.path.abspath(__file__))
    rev = run(["git", "-C", here, "describe", "--always", "--dirty"], check=False).stdout.strip()
    model = ""
    with open("/proc/cpuinfo") as f:
        model = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), "")
    dev = run(["df", "--output=source", tmp], check=False).stdout.split()[-1]
    print(f"machine: {os.cpu_count()} cores, {model}, load {os.getloadavg()[0]:.2f}; every data "
          f"directory under {tmp} (on {dev})")
    print(f"code: {rev}; command: bench/fs.py " + " ".join(sys.argv[1:]))
    b = Bench(a, tmp, build)
    status, problem = 0, None
    try:
        b.run()
        b.teardown()
    except Fatal as e:
        problem = str(e)
    except TimeLimit:
        problem = f"the run took more than --time-limit {a.time_limit:.0f} s"
    except Interrupted as e:
        log(f"interrupted by signal {e.signum}; cleaning up")
        status = 128 + e.signum
    except Exception:       # noqa: BLE001 -- report, clean up, exit 1
        problem = "the bench itself failed:\n" + traceback.format_exc()
    finally:
        signal.alarm(0)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)   # let the cleanup finish
        PROCS.cleanup(keep=a.keep)
    print()
    for name in SYSTEMS:
        fs = b.fss.get(name)
        if fs:
            print(f"- {name}: {fs.describe()}")
    c = b.fss.get("coopfs")
    if c and c.mounts_s:
        print(f"- coopfs mount: start → mounted median {statistics.median(c.mounts_s):.2f} s; "
              f"SIGTERM → unmounted median "
              f"{statistics.median(c.remounts) if c.remounts else float('nan'):.2f} s")
    print()
    if any(b.res[s] for s in SYSTEMS):
        print(tables(b))
    for n in b.notes:
        print(f"note: {n}")
    print(f"\nwall time {time.monotonic() - T0:.0f} s, load average at the end "
          f"{os.getloadavg()[0]:.2f}")
    if problem:
        print(f"\nproblem: {problem}")
        return status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
