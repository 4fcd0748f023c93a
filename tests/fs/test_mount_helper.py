#!/usr/bin/env python3
"""test_mount_helper.py — tools/mount.fuse.coopfs, the mount(8) helper.

  translation  the helper run by hand with COOPFS pointing at a stub that
               records its arguments: key/data/join (twice)/listen/
               capacity/replicas/vnodes/no_api/keys become `coopfs mount`
               flags (and COOPFS_KEYS), min_copies and FUSE options go
               to -o, mount(8)'s own options (noauto, _netdev, x-...) are
               dropped, follow= replaces the key, -f (fake) runs nothing,
               and a missing operand is a usage error (exit 1). Needs
               nothing but sh.
  mount -t     as root, with /sbin/mount.fuse.coopfs a symlink to the
               helper for the duration of the test (skipped if /sbin is
               not writable, or a mount.fuse.coopfs that is not ours is
               there): a ring of 4 nodes on 127.0.48.x; `mount -t
               fuse.coopfs alice MNT -o data=...,join=...,join=...,
               listen=...,keys=...,no_api` returns with MNT in mountinfo
               as fuse.coopfs; a file written is read back; `umount MNT`
               exits 0 and the coopfs daemon exits by itself.
  fstab        the same through an fstab line (`mount -T FSTAB MNT2`, with
               noauto and _netdev in its options), on a new --data; it
               reads the file written through the first mount (from the
               ring), writes another; `umount MNT2`.

Every daemon started (found by its unique --data directory in /proc) is
killed and every mount point detached on any exit; the symlink is removed.
"""

import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure, Skip = fl.say, fl.check, fl.Failure, fl.Skip
rl = fl.rl
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
HELPER = os.path.abspath(os.environ.get("COOPFS_MOUNT_HELPER")
                         or os.path.join(REPO, "tools", "mount.fuse.coopfs"))
LINK = "/sbin/mount.fuse.coopfs"

STUB = """#!/bin/sh
out={out}
: > "$out"
for a in "$@"; do printf '%s\\n' "$a" >> "$out"; done
printf 'COOPFS_KEYS=%s\\n' "${{COOPFS_KEYS-unset}}" >> "$out"
"""


def translation(root):
    out = os.path.join(root, "stub-args")
    stub = os.path.join(root, "stub-coopfs")
    with open(stub, "w") as f:
        f.write(STUB.format(out=out))
    os.chmod(stub, 0o755)
    env = dict(os.environ, COOPFS=stub)
    env.pop("COOPFS_KEYS", None)

    def helper(args, want_rc=0):
        if os.path.exists(out):
            os.unlink(out)
        r = subprocess.run([HELPER] + args, env=env, capture_output=True, text=True, timeout=30)
        check(r.returncode == want_rc, f"mount.fuse.coopfs {' '.join(args)[:60]}…: exit "
              f"{want_rc}", f"mount.fuse.coopfs {' '.join(args)} exited {r.returncode}, expected "
              f"{want_rc}: {r.stderr.strip()[:300]}")
        if not os.path.exists(out):
            return None
        with open(out) as f:
            return f.read().splitlines()

    got = helper(["alice", "/mnt/x", "-n", "-o",
                  "rw,data=/d/x,join=127.0.0.1:5,join=127.0.0.2:6,listen=127.0.0.9:0,"
                  "capacity=1G,replicas=2,vnodes=4,no_api,min_copies=2,allow_other,noauto,"
                  "_netdev,nofail,x-systemd.requires=network.target,keys=/k/d",
                  "-o", "default_permissions"])
    want = ["mount", "--key", "alice", "--data", "/d/x", "--join", "127.0.0.1:5", "--join",
            "127.0.0.2:6", "--listen", "127.0.0.9:0", "--capacity", "1G", "--replicas", "2",
            "--vnodes", "4", "--no-api", "-o", "rw,min_copies=2,allow_other,default_permissions",
            "/mnt/x", "COOPFS_KEYS=/k/d"]
    check(got == want, "options become coopfs mount flags, -o and COOPFS_KEYS",
          f"the helper ran coopfs with {got}, expected {want}")
    got = helper(["coopfs", "/mnt/y", "-o", "follow=/k/alice.pub,data=/d/y,ro"])
    want = ["mount", "--follow", "/k/alice.pub", "--data", "/d/y", "-o", "ro", "/mnt/y",
            "COOPFS_KEYS=unset"]
    check(got == want, "follow= replaces the key", f"with follow=: {got}, expected {want}")
    got = helper(["bob", "/mnt/z", "-oro,key=carol", "-r"])
    want = ["mount", "--key", "carol", "-o", "ro,ro", "/mnt/z", "COOPFS_KEYS=unset"]
    check(got == want, "key= overrides SOURCE, -oOPTS and -r", f"got {got}, expected {want}")
    check(helper(["alice", "/mnt/x", "-f", "-o", "data=/d"]) is None, "-f (fake) runs nothing",
          "with -f the helper ran coopfs")
    helper(["alice"], want_rc=1)
    helper(["alice", "/mnt/x", "-o"], want_rc=1)


def daemon_pids(data):
    """Pids of processes whose argv has `--data DATA` (a unique temporary
    path, so only daemons this test started)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        for i, a in enumerate(argv[:-1]):
            if a == b"--data" and argv[i + 1] == data.encode():
                pids.append(int(d))
    return pids


def mount_cmd(argv, env, logpath, what):
    # Output to a file, not a pipe: a daemon that kept the pipe open would
    # keep subprocess.run waiting for its end.
    with open(logpath, "ab") as logf:
        try:
            r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                               stderr=subprocess.STDOUT, timeout=fl.scaled(60))
        except subprocess.TimeoutExpired:
            raise Failure(f"{what}: `{' '.join(argv)}` did not return within "
                          f"{fl.scaled(60):.0f} s")
    return r.returncode


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "    (none)"
    return "\n".join("    " + x for x in lines[-n:]) or "    (empty)"


def one_mount(env, label, argv, mnt, data, log, read_back=None):
    """Runs argv (a mount(8) command), checks the mount, writes and reads a
    file, reads read_back (name, bytes) if given, then `umount`."""
    os.makedirs(mnt, exist_ok=True)
    fl.extra_logs += [log, log + ".mount"]
    procenv = dict(env.proc_env, COOPFS=rl.COOPFS)

    def cleanup():
        fl.lazy_unmount(mnt)
        for pid in daemon_pids(data):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    rl.add_cleanup(cleanup)
    t0 = time.monotonic()
    rc = mount_cmd(argv, procenv, log + ".mount", label)
    mi = fl.mountinfo(mnt)
    check(rc == 0 and mi is not None and mi["fstype"] == fl.FSTYPE,
          f"{label}: exit 0 after {time.monotonic() - t0:.1f} s, {mnt} is {mi['fstype']} "
          f"(source {mi['source']})" if mi else "",
          f"{label}: `{' '.join(argv)}` exited {rc}, mountinfo at {mnt}: {mi}; output:\n"
          f"{tail(log + '.mount')}\n  coopfs mount log:\n{tail(log)}")
    pids = daemon_pids(data)
    say(f"{label}: coopfs daemon pid(s) {pids}")
    data_bytes = os.urandom(200_000)
    p = os.path.join(mnt, f"{label}.bin")
    fl.write_file(p, data_bytes)
    check(fl.read_file(p) == data_bytes, f"{label}: a file written reads back",
          f"{label}: the file written reads back different")
    if read_back:
        name, want = read_back

        def there():
            try:
                return fl.read_file(os.path.join(mnt, name)) == want, "different bytes"
            except FileNotFoundError:
                return False, "not there yet"

        secs, _ = fl.wait_until(there, fl.scaled(20), f"{label}: {name} from the first mount")
        say(f"ok: {label}: {name}, written through the first mount, reads back ({secs:.1f} s)")
    r = subprocess.run(["umount", mnt], capture_output=True, text=True, timeout=fl.scaled(60))
    check(r.returncode == 0 and fl.mountinfo(mnt) is None, f"{label}: umount exits 0",
          f"{label}: umount {mnt} exited {r.returncode}: {r.stderr.strip()}; mountinfo "
          f"{fl.mountinfo(mnt)}")

    def gone():
        left = [x for x in pids if os.path.exists(f"/proc/{x}")
                and open(f"/proc/{x}/stat").read().split(") ")[-1][:1] != "Z"]
        return not left, f"still running: {left}"

    secs, _ = fl.wait_until(gone, fl.scaled(30), f"{label}: the coopfs daemon exits after umount")
    say(f"ok: {label}: the coopfs daemon exited {secs:.1f} s after umount")
    return os.path.basename(p), data_bytes


def main():
    rl.check_binary()
    if not os.access(HELPER, os.X_OK):
        raise Failure(f"the mount helper {HELPER} is missing or not executable")
    env = fl.FsEnv("helper", 48)
    rl.section("translation of options into coopfs mount arguments (a stub for coopfs)")
    translation(env.root)

    if os.geteuid() != 0:
        raise Skip("mount(8) with a helper in /sbin needs root (the translation checks passed)")
    if os.path.lexists(LINK):
        if os.path.islink(LINK) and os.path.realpath(LINK) == os.path.realpath(HELPER):
            os.unlink(LINK)  # left by an earlier run of this test
        else:
            raise Skip(f"{LINK} exists and is not a link to {HELPER}; not replacing it")
    if not os.access(os.path.dirname(LINK), os.W_OK):
        raise Skip(f"{os.path.dirname(LINK)} is not writable")
    fl.preflight()
    try:
        os.symlink(HELPER, LINK)
    except OSError as e:
        raise Skip(f"cannot make {LINK}: {e.strerror}")

    def remove_link():
        if os.path.islink(LINK) and os.readlink(LINK) == HELPER:
            os.unlink(LINK)

    rl.add_cleanup(remove_link)
    say(f"{LINK} -> {HELPER} (removed at the end)")
    env.keygen("alice")
    env.start_ring()
    joins = ",".join(f"join={a}" for a in env.joins())

    rl.section("mount -t fuse.coopfs")
    mnt = os.path.join(env.root, "mnt-t")
    data = os.path.join(env.root, "data-t")
    log = os.path.join(env.root, "logs", "mount-t.log")
    opts = f"data={data},{joins},listen={env.host(101)}:0,keys={env.keys},no_api,log={log}"
    first = one_mount(env, "mount-t", ["mount", "-t", "fuse.coopfs", "alice", mnt, "-o", opts],
                      mnt, data, log)

    rl.section("an fstab line (mount -T FSTAB MOUNTPOINT)")
    mnt2 = os.path.join(env.root, "mnt-fstab")
    data2 = os.path.join(env.root, "data-fstab")
    log2 = os.path.join(env.root, "logs", "mount-fstab.log")
    fstab = os.path.join(env.root, "fstab")
    with open(fstab, "w") as f:
        f.write("# coopfs test\n")
        f.write(f"alice {mnt2} fuse.coopfs data={data2},{joins},listen={env.host(102)}:0,"
                f"keys={env.keys},no_api,noauto,_netdev,log={log2} 0 0\n")
    one_mount(env, "mount-fstab", ["mount", "-T", fstab, mnt2], mnt2, data2, log2,
              read_back=first)


if __name__ == "__main__":
    fl.run(main, budget=200)
