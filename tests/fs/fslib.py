"""fslib.py — shared helpers for the tests on a real coopfs FUSE mount.

Built on tests/integration/ringlib.py (imported from there): a test gets a
ring of `coopfs node` processes on loopback, keys made with `coopfs keygen`
in a temporary COOPFS_KEYS directory, and `coopfs mount` processes started
with -f (each in its own process group, dying with the test), ready when
the mount point shows in /proc/self/mountinfo with fstype fuse.coopfs.

What this module adds to ringlib:

- `preflight(needs)`: exit 77 (skipped) with a reason when /dev/fuse,
  fusermount3 or a needed program (fio, git) is missing or when the
  kernel refuses a FUSE mount (probed as root with mount(2) on a scratch
  directory); a coopfs without the `mount` command is a failure, not a
  skip.
- `FsEnv`: the temporary directory, the keys, the ring (`start_ring`) and
  the mounts (`mount`).
- `Mount`: one `coopfs mount -f` process; `unmount()` is fusermount3 -u,
  then SIGTERM, then SIGKILL, each with a bounded wait, then
  `fusermount3 -uz` as the last resort. Every mount point still mounted
  at cleanup is detached (fusermount3 -uz, then umount -l) after its
  process is killed, before the temporary directory is removed.
- `run(main, budget)`: ringlib.run plus a watchdog: past `budget` seconds
  it SIGKILLs every mount process (a dead FUSE daemon makes the kernel
  fail the calls blocked on it with ENOTCONN, so a hung mount cannot hang
  the test), then SIGTERMs the test itself, which cleans up.
- `bounded(fn, timeout)`: runs one file operation in a thread and says
  whether it returned, raised, or was still blocked at the deadline.
- `tree_digest(path)`: {relative path: (type, mode, size, SHA-256 or link
  target, mtime)} to compare trees.

Environment (besides ringlib's):
  COOPFS_FS_SMALL=1   use the sizes of a sanitizer build even in a plain one
"""

import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback

sys.dont_write_bytecode = True
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "integration"))
import ringlib as rl  # noqa: E402

say = rl.say
check = rl.check
Failure = rl.Failure
Skip = rl.Skip
scaled = rl.scaled
wait_until = rl.wait_until

FSTYPE = "fuse.coopfs"


def _sanitized():
    try:
        with open(rl.COOPFS, "rb") as f:
            data = f.read()
        return b"__asan_init" in data or b"AddressSanitizer" in data
    except OSError:
        return False


SANITIZED = _sanitized()
SMALL = SANITIZED or os.environ.get("COOPFS_FS_SMALL") == "1"


def size_for(plain, small):
    """plain in a plain build, small in a sanitizer build (or COOPFS_FS_SMALL=1)."""
    return small if SMALL else plain


# ---------------------------------------------------------------- preflight

_libc = ctypes.CDLL(None, use_errno=True)
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2


def _probe_fuse_mount(scratch):
    """As root: mount(2) a FUSE file system nobody serves on scratch, then
    detach it and close the device (which aborts the connection). Returns
    None when the kernel allowed it, else the reason."""
    os.makedirs(scratch, exist_ok=True)
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"cannot open /dev/fuse: {e.strerror}"
    try:
        opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
        rc = _libc.mount(b"coopfs-probe", scratch.encode(), b"fuse.coopfsprobe",
                         ctypes.c_ulong(_MS_NOSUID | _MS_NODEV), opts)
        if rc != 0:
            e = ctypes.get_errno()
            return f"mount(2) of a FUSE file system failed: {errno.errorcode.get(e, e)} " \
                   f"({os.strerror(e)})"
        _libc.umount2(scratch.encode(), _MNT_DETACH)
        return None
    finally:
        os.close(fd)


def preflight(needs=()):
    """Skips (exit 77) when the machine cannot run a FUSE test; fails when
    the coopfs binary is missing or has no `mount` command."""
    rl.check_binary()
    if not os.path.exists("/dev/fuse"):
        raise Skip("/dev/fuse does not exist (no FUSE in this kernel or container)")
    for prog in ("fusermount3",) + tuple(needs):
        if shutil.which(prog) is None:
            raise Skip(f"{prog} is not installed (dev.sh installs fuse3, fio and git)")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        raise Skip("/dev/fuse is not readable and writable by this user")
    if os.geteuid() == 0:
        why = _probe_fuse_mount(os.path.join("/tmp", f"coopfs-fs-probe-{os.getpid()}"))
        try:
            os.rmdir(os.path.join("/tmp", f"coopfs-fs-probe-{os.getpid()}"))
        except OSError:
            pass
        if why:
            raise Skip(f"FUSE mounting is not permitted here: {why}")
    r = subprocess.run([rl.COOPFS, "mount", "--help"], capture_output=True, text=True,
                       timeout=30)
    out = (r.stdout + r.stderr).strip()
    if "unknown command" in out:
        raise Failure(f"{rl.COOPFS} has no `mount` command: {out.splitlines()[0]}")
    say(f"FUSE available; sizes {'small (sanitizer build)' if SMALL else 'plain'}")


# ---------------------------------------------------------------- mountinfo


def _unescape(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 1 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mountinfo(path):
    """The last /proc/self/mountinfo entry at path as a dict (fstype,
    source, options, dev 'major:minor'), or None when nothing is mounted
    there."""
    path = os.path.realpath(path)
    found = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                a, b = left.split(), right.split()
                if len(a) < 6 or len(b) < 2:
                    continue
                if _unescape(a[4]) == path:
                    found = {"dev": a[2], "options": a[5], "fstype": b[0], "source": b[1],
                             "super": b[2] if len(b) > 2 else ""}
    except OSError:
        return None
    return found


def lazy_unmount(path):
    """fusermount3 -uz, then umount -l; True when nothing is mounted at path."""
    for argv in (["fusermount3", "-uz", path], ["umount", "-l", path]):
        if mountinfo(path) is None:
            return True
        try:
            subprocess.run(argv, capture_output=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            pass
    return mountinfo(path) is None


# ---------------------------------------------------------------- processes

_mounts = []  # every Mount made, for the watchdog and the logs


def _track(proc):
    with rl._lock:
        if rl._cleaned:
            raise rl.Interrupted("cleanup")
        rl._procs.append(proc)


def _kill_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class RingNode(rl.Node):
    """A `coopfs node` of the ring the mounts join."""

    def __init__(self, cluster, name, host, join=(), vnodes=1):
        super().__init__(cluster, name, host, vnodes=vnodes, join=join)


class Mount:
    """One `coopfs mount -f` process: its node, data directory and mount point."""

    def __init__(self, env, name, mountpoint, data, key=None, follow=None, join=(),
                 listen="127.0.0.1:0", opts=(), extra=()):
        self.env = env
        self.name = name
        self.mountpoint = os.path.realpath(mountpoint)
        self.data = data
        self.key = key
        self.follow = follow
        self.join = list(join)
        self.listen = listen
        self.opts = list(opts)
        self.extra = list(extra)
        self.log_path = os.path.join(env.cluster.root, "logs", name + ".log")
        self.proc = None
        self.starts = 0
        _mounts.append(self)
        rl.add_cleanup(self._cleanup)

    def __repr__(self):
        return f"mount {self.name} ({self.mountpoint})"

    def argv(self):
        a = [rl.COOPFS, "mount"]
        if self.key:
            a += ["--key", self.key]
        if self.follow:
            a += ["--follow", self.follow]
        a += ["--data", self.data, "--listen", self.listen, "--no-api", "-f"]
        for j in self.join:
            a += ["--join", j]
        a += self.extra
        if self.opts:
            a += ["-o", ",".join(self.opts)]
        return a + [self.mountpoint]

    def start(self, wait=True, timeout=None):
        """Starts the process (appending to its log) and, with wait, waits
        until the mount is ready. Returns the seconds it took."""
        assert threading.current_thread() is threading.main_thread()
        os.makedirs(self.mountpoint, exist_ok=True)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        mi = mountinfo(self.mountpoint)
        if mi is not None:
            raise Failure(f"{self}: something is already mounted at {self.mountpoint}: {mi}")
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(f"==== start {self.starts}: {' '.join(self.argv())}\n".encode())
        logf.flush()
        t0 = time.monotonic()
        with rl._lock:
            if rl._cleaned:
                raise rl.Interrupted("cleanup")
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=rl._child_setup, env=self.env.proc_env)
            rl._procs.append(self.proc)
        logf.close()
        if wait:
            self.wait_ready(timeout)
            say(f"{self.name}: mounted at {self.mountpoint} in {time.monotonic() - t0:.1f} s "
                f"(pid {self.proc.pid})")
        return time.monotonic() - t0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def mounted(self):
        mi = mountinfo(self.mountpoint)
        return mi is not None and mi["fstype"] == FSTYPE

    def wait_ready(self, timeout=None):
        timeout = timeout or scaled(30)

        def ready():
            mi = mountinfo(self.mountpoint)
            if mi is not None and mi["fstype"] == FSTYPE:
                return True, mi
            rc = self.proc.poll()
            if rc is not None:
                raise Failure(f"{self.name}: coopfs mount exited with {rc} before the mount "
                              f"was ready; log:\n{self.log_tail(20)}")
            return False, f"mountinfo at {self.mountpoint}: {mi}"

        wait_until(ready, timeout, f"{self.name}: {FSTYPE} in /proc/self/mountinfo", 0.1)

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def unmount(self, timeout=None, check_clean=True):
        """fusermount3 -u (retried while busy), then SIGTERM, then SIGKILL,
        then fusermount3 -uz. With check_clean, anything but a clean
        fusermount3 -u and exit 0 is a Failure. Returns (exit code, how)."""
        timeout = timeout or scaled(60)
        how, rc, err = None, None, ""
        if self.mounted():
            end = time.monotonic() + scaled(10)
            while True:
                r = subprocess.run(["fusermount3", "-u", self.mountpoint], capture_output=True,
                                   text=True, timeout=scaled(60))
                err = r.stderr.strip()
                if r.returncode == 0 or not self.mounted():
                    how = "fusermount3 -u"
                    break
                if "busy" not in err.lower() or time.monotonic() > end:
                    break
                time.sleep(0.3)
        if self.proc is not None:
            rc = self.wait_exit(timeout) if how else self.wait_exit(1)
            if rc is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                rc = self.wait_exit(scaled(20))
                how = (how + ", then " if how else "") + "SIGTERM"
            if rc is None:
                _kill_group(self.proc.pid, signal.SIGKILL)
                rc = self.wait_exit(10)
                how += ", then SIGKILL"
        if self.mounted() or mountinfo(self.mountpoint) is not None:
            lazy_unmount(self.mountpoint)
            how = (how or "") + ", then fusermount3 -uz"
        say(f"{self.name}: unmounted by {how}; coopfs mount exited {rc}")
        if check_clean:
            if how != "fusermount3 -u":
                raise Failure(f"{self.name}: fusermount3 -u {self.mountpoint} did not end the "
                              f"mount cleanly (fusermount3: {err!r}; it took {how}); "
                              f"log:\n{self.log_tail(15)}")
            if rc != 0:
                raise Failure(f"{self.name}: coopfs mount exited {rc} after fusermount3 -u, "
                              f"expected 0; log:\n{self.log_tail(15)}")
        return rc, how

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Sends sig (SIGTERM or SIGINT) to the process; it must unmount and
        exit 0 within timeout. Returns the seconds it took."""
        timeout = timeout or scaled(60)
        t0 = time.monotonic()
        os.kill(self.proc.pid, sig)
        rc = self.wait_exit(timeout)
        secs = time.monotonic() - t0
        still = self.mounted()
        if rc is None or still:
            self.unmount(check_clean=False)
        if rc != 0 or still:
            raise Failure(f"{self.name}: after {signal.Signals(sig).name} coopfs mount "
                          f"{'is still running' if rc is None else f'exited {rc}'} after "
                          f"{secs:.0f} s, mount point {'still' if still else 'not'} mounted; "
                          f"expected exit 0 and unmounted; log:\n{self.log_tail(15)}")
        say(f"{self.name}: {signal.Signals(sig).name} -> unmounted, exit 0 in {secs:.1f} s")
        return secs

    def kill(self):
        """SIGKILL to the mount's process group (no publish, no unmount); the
        dead mount stays in the table until lazy_unmount."""
        if self.proc is not None:
            _kill_group(self.proc.pid, signal.SIGKILL)
            if self.wait_exit(10) is None:
                raise Failure(f"{self.name}: still alive 10 s after SIGKILL")

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc.pid, signal.SIGKILL)
            self.wait_exit(10)
        if mountinfo(self.mountpoint) is not None and not lazy_unmount(self.mountpoint):
            print(f"cleanup: {self.mountpoint} is still mounted", file=sys.stderr)

    def addr(self):
        """The ip:port of the mount's node, from DATA/node.json ('?' if none)."""
        try:
            with open(os.path.join(self.data, "node.json")) as f:
                return json.load(f)["listen"]
        except (OSError, ValueError, KeyError):
            return "?"

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=20):
        lines = self.log_text().splitlines()
        return "\n".join("    " + x for x in lines[-n:]) or "    (empty)"

    def xattr(self, rel, name):
        return os.getxattr(self.path(rel), name)


# ---------------------------------------------------------------- environment


class FsEnv:
    """A temporary directory, a COOPFS_KEYS directory, a ring and mounts."""

    def __init__(self, label, subnet):
        self.cluster = rl.Cluster(label)
        self.root = self.cluster.root
        self.subnet = subnet  # the ring and mounts use 127.0.SUBNET.x
        self.keys = os.path.join(self.root, "keys")
        os.makedirs(self.keys, mode=0o700)
        self.proc_env = dict(os.environ, COOPFS_KEYS=self.keys)
        self.ring = []
        self.n_mounts = 0

    def host(self, i):
        return f"127.0.{self.subnet}.{i}"

    def tool(self, args, timeout=None, what=None):
        timeout = timeout or scaled(30)
        try:
            r = subprocess.run([rl.COOPFS] + args, capture_output=True, text=True,
                               timeout=timeout, env=self.proc_env)
        except subprocess.TimeoutExpired:
            raise Failure(f"coopfs {' '.join(args)} did not finish within {timeout:.0f} s")
        if r.returncode != 0:
            raise Failure(f"{what or 'coopfs ' + args[0]}: exited {r.returncode}: "
                          f"{r.stderr.strip()[-600:]}")
        return r

    def keygen(self, name):
        self.tool(["keygen", name], what=f"keygen {name}")
        return self.pubkey(name)

    def pubkey(self, name):
        """The hex public key: the last word of NAME.pub."""
        with open(os.path.join(self.keys, name + ".pub")) as f:
            return f.read().split()[-1]

    def pubfile(self, name):
        return os.path.join(self.keys, name + ".pub")

    def start_ring(self, n=4, prefix="n", first_host=1):
        """A new ring (the one mounts made afterwards join): n nodes named
        PREFIX00.. on 127.0.SUBNET.FIRST_HOST.., the first alone, the others
        joining it; waits for a correct ring. Returns its nodes."""
        t0 = time.monotonic()
        self.ring = []
        for i in range(n):
            node = RingNode(self.cluster, f"{prefix}{i:02d}", self.host(first_host + i),
                            join=[self.ring[0]] if self.ring else ())
            self.cluster.nodes.append(node)
            node.start()
            self.ring.append(node)
            if i == 0:
                node.wait_ready()  # the others join its address
        for node in self.ring[1:]:
            node.wait_ready()
        self.cluster.wait_stable(self.ring, f"ring of {n}")
        say(f"ring of {n} up in {time.monotonic() - t0:.1f} s: "
            + ", ".join(x.addr for x in self.ring))
        return self.ring

    def joins(self):
        return [x.addr for x in self.ring if x.alive()][:2]

    def mount(self, name=None, key=None, follow=None, data=None, mountpoint=None, opts=(),
              extra=(), start=True, join=None):
        """A Mount joining the ring (data and mount point under the temporary
        directory by default), started and ready unless start=False."""
        self.n_mounts += 1
        name = name or f"m{self.n_mounts}"
        m = Mount(self, name, mountpoint or os.path.join(self.root, "mnt-" + name),
                  data or os.path.join(self.root, "data-" + name), key=key, follow=follow,
                  join=self.joins() if join is None else join,
                  listen=f"{self.host(100 + self.n_mounts)}:0", opts=opts, extra=extra)
        if start:
            m.start()
        return m


# ---------------------------------------------------------------- running


def _dump_logs(lines=25):
    for m in _mounts:
        state = "running" if m.alive() else f"exit {m.proc.poll() if m.proc else None}"
        print(f"---- {m.name} ({state}) last lines of {m.log_path}:", flush=True)
        print(m.log_tail(lines), flush=True)
    for c in rl._clusters:
        for n in c.nodes:
            state = "running" if n.alive() else f"exit {n.returncode()}"
            print(f"---- {n.name} ({n.addr or n.host}, {state}) last lines of {n.log_path}:",
                  flush=True)
            print(n.log_tail(8), flush=True)


def _watchdog(budget):
    time.sleep(budget)
    say(f"watchdog: the test ran past its budget of {budget:.0f} s; SIGKILL to every mount "
        f"process (calls blocked on the mount fail with ENOTCONN), then SIGTERM to the test")
    for m in _mounts:
        if m.alive():
            _kill_group(m.proc.pid, signal.SIGKILL)
    time.sleep(10)
    os.kill(os.getpid(), signal.SIGTERM)


extra_logs = []  # more log files to scan for sanitizer reports (daemonized mounts)


def check_sanitizer_logs():
    """No mount or node wrote a sanitizer report (UBSan's "runtime error"
    does not stop the process, and an ASan report of a mount that may exit
    1 anyway would go unnoticed)."""
    logs = [(m.name, m.log_path) for m in _mounts]
    logs += [(n.name, n.log_path) for c in rl._clusters for n in c.nodes]
    logs += [(os.path.basename(p), p) for p in extra_logs]
    bad = []
    for name, path in logs:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        bad += [f"{name}: {x.strip()[:300]}" for x in text.splitlines()
                if "runtime error:" in x or "Sanitizer" in x]
    check(not bad, f"no sanitizer reports in {len(logs)} logs",
          "sanitizer reports:\n    " + "\n    ".join(bad[:10]))


def run(main, budget):
    """ringlib.run(main), then a scan of every log for sanitizer reports;
    with a watchdog of budget seconds (scaled for sanitizer builds, at most
    560) and the mounts' logs printed on failure."""
    rl.dump_logs = _dump_logs
    t = threading.Thread(target=_watchdog, args=(min(scaled(budget), 560),), daemon=True)
    t.start()

    def main_then_logs():
        try:
            main()
        except Failure:
            try:
                check_sanitizer_logs()
            except Failure as e:
                say(f"also: {e}")
            raise
        check_sanitizer_logs()

    rl.run(main_then_logs)


def bounded(fn, timeout):
    """Runs fn() in a thread. Returns ('ok', value, secs), ('err', exception,
    secs) or ('hung', None, timeout) when it has not returned by timeout
    (the thread stays blocked until the mount dies)."""
    box = {}

    def body():
        t0 = time.monotonic()
        try:
            box["r"] = ("ok", fn(), time.monotonic() - t0)
        except BaseException as e:  # noqa: B902 - reported to the caller
            box["r"] = ("err", e, time.monotonic() - t0)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    return box.get("r", ("hung", None, timeout))


# ---------------------------------------------------------------- files


def write_file(path, data, fsync=False):
    with open(path, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def tree_digest(top, skip=(".snapshots",)):
    """{relative path: (type, permission bits, size, SHA-256 or link target,
    whole-second mtime)} of everything under top, top itself excluded."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = os.path.relpath(dirpath, top)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in skip]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", 0, 0, os.readlink(p), int(st.st_mtime))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", mode, 0, "", 0)
            else:
                out[rel] = ("f", mode, st.st_size, sha256_file(p), int(st.st_mtime))
    return out


def diff_digests(a, b, names=("a", "b")):
    """A list of differences between two tree_digest results, for messages."""
    out = []
    for k in sorted(set(a) | set(b)):
        if k not in a:
            out.append(f"{k}: only in {names[1]}")
        elif k not in b:
            out.append(f"{k}: only in {names[0]}")
        elif a[k] != b[k]:
            out.append(f"{k}: {names[0]} {a[k][:4]} / {names[1]} {b[k][:4]}")
    return out


def make_tree(top, rng, files=40, max_size=300_000):
    """A small tree of files with random bytes (some empty, some over one
    256 KiB chunk) in a few directories."""
    for i in range(files):
        d = os.path.join(top, f"d{i % 5}", f"e{i % 3}")
        os.makedirs(d, exist_ok=True)
        size = rng.choice([0, 1, 100, 4096, 65536, rng.randrange(max_size)])
        write_file(os.path.join(d, f"f{i:03d}.bin"), rng.randbytes(size))


# ---------------------------------------------------------------- checks


def errname(e):
    return errno.errorcode.get(e, str(e))


def expect_errno(fn, errnos, what):
    """fn() must raise OSError with one of errnos (ints); returns that errno."""
    if isinstance(errnos, int):
        errnos = (errnos,)
    want = "/".join(errname(e) for e in errnos)
    try:
        fn()
    except OSError as e:
        if e.errno in errnos:
            say(f"ok: {what}: {errname(e.errno)}")
            return e.errno
        raise Failure(f"{what}: failed with {errname(e.errno)} ({e.strerror}), expected {want}")
    raise Failure(f"{what}: succeeded, expected {want}")


class Checks:
    """Runs a test's sections one after another, each to its end even when an
    earlier one failed, so that one run names every broken behaviour.
    finish() raises one Failure listing the failed sections."""

    def __init__(self):
        self.failed = []

    def run(self, title, fn, *args):
        rl.section(title)
        t0 = time.monotonic()
        try:
            fn(*args)
            say(f"section done in {time.monotonic() - t0:.1f} s")
            return True
        except Failure as e:
            msg = str(e)
        except OSError as e:
            tb = traceback.extract_tb(e.__traceback__)
            where = next((f"{os.path.basename(f.filename)}:{f.lineno} `{f.line}`"
                          for f in reversed(tb) if f.filename.endswith(".py")
                          and "fslib" not in f.filename), "?")
            msg = (f"unexpected {errname(e.errno) if e.errno else type(e).__name__} "
                   f"({e.strerror or e}) on {e.filename!r} at {where}")
        except subprocess.TimeoutExpired as e:
            msg = f"command {e.cmd!r} did not finish within {e.timeout:.0f} s"
        say(f"FAILED: {title}: {msg}")
        self.failed.append((title, msg))
        return False

    def finish(self):
        if self.failed:
            raise Failure(f"{len(self.failed)} section(s) failed:\n"
                          + "\n".join(f"  - {t}: {m}" for t, m in self.failed))


def sh(argv, what, cwd=None, timeout=None, env=None, input_=None):
    """Runs a command; a non-zero exit or a timeout is a Failure naming it.
    Returns the CompletedProcess (text)."""
    timeout = timeout or scaled(120)
    try:
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           env=env, input=input_)
    except subprocess.TimeoutExpired:
        raise Failure(f"{what}: `{' '.join(argv)}` did not finish within {timeout:.0f} s")
    if r.returncode != 0:
        raise Failure(f"{what}: `{' '.join(argv)}` exited {r.returncode}: "
                      f"{(r.stderr or r.stdout).strip()[-800:]}")
    return r
