#!/usr/bin/env python3
"""test_fio.py — fio writes and verifies data through a coopfs mount.

A ring of 4 `coopfs node` processes on 127.0.43.x and one `coopfs mount -f
--key alice`. fio (ioengine=psync, verify=crc32c, do_verify=1,
verify_fatal=1, end_fsync=1) runs two jobs one after the other:

  seq   sequential writes of 1 MiB blocks, then reads every block back and
        checks its crc32c header;
  rand  random writes of 4 KiB..128 KiB blocks (each block once), then the
        same check;

each of COOPFS_FIO_MB MiB (default 64; 16 in a sanitizer build). fio must
exit 0, report error 0 for both jobs and no verify failure. Then the
files' SHA-256 are taken, the mount is unmounted (fusermount3 -u, exit 0)
and mounted again on the same --data with -o cache=4M (far smaller than
the files, so reading them evicts all along), and the files must hash the
same.
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fslib as fl  # noqa: E402

say, check, Failure = fl.say, fl.check, fl.Failure

JOB = """[global]
directory={dir}
ioengine=psync
size={mb}M
verify=crc32c
do_verify=1
verify_fatal=1
fallocate=none
end_fsync=1
randrepeat=1

[seq]
rw=write
bs=1M
filename=seq.dat

[rand]
stonewall
rw=randwrite
bsrange=4k-128k
filename=rand.dat
"""


def run_fio(env, m, mb):
    jobfile = os.path.join(env.root, "verify.fio")
    with open(jobfile, "w") as f:
        f.write(JOB.format(dir=m.mountpoint, mb=mb))
    out = os.path.join(env.root, "fio.json")
    t0 = time.monotonic()
    r = subprocess.run(["fio", "--output-format=json", f"--output={out}", jobfile],
                          capture_output=True, text=True, timeout=fl.scaled(400))
    secs = time.monotonic() - t0
    try:
        with open(out) as f:
            text = f.read()
        # fio may print notes before the JSON object
        res = json.loads(text[text.index("{"):])
    except (OSError, ValueError) as e:
        raise Failure(f"fio exited {r.returncode} without a readable JSON report ({e}); "
                      f"stderr: {r.stderr.strip()[-800:]}")
    jobs = {j["jobname"]: j for j in res.get("jobs", [])}
    for name in ("seq", "rand"):
        j = jobs.get(name)
        if j is None:
            raise Failure(f"fio report has no job {name}: {sorted(jobs)}")
        w, rd = j["write"], j["read"]
        say(f"fio {name}: error {j['error']}, wrote {w['io_bytes'] / 2**20:.0f} MiB "
            f"({w['bw'] / 1024:.1f} MiB/s), verified by reading {rd['io_bytes'] / 2**20:.0f} MiB")
    verify_msgs = [x for x in (r.stderr + text).splitlines() if "verify" in x.lower()
                   and ("bad" in x.lower() or "fail" in x.lower() or "mismatch" in x.lower())]
    errs = {n: j["error"] for n, j in jobs.items() if j["error"]}
    check(r.returncode == 0 and not errs and not verify_msgs,
          f"fio: exit 0, both jobs error 0, no verify failure ({secs:.1f} s)",
          f"fio exited {r.returncode}, job errors {errs}, verify messages {verify_msgs[:5]}; "
          f"stderr: {r.stderr.strip()[-800:]}")
    for name in ("seq", "rand"):
        j = jobs[name]
        check(j["write"]["io_bytes"] == mb << 20 and j["read"]["io_bytes"] == mb << 20,
              f"{name}: {mb} MiB written and {mb} MiB read back for the verify",
              f"{name}: wrote {j['write']['io_bytes']} and read {j['read']['io_bytes']} bytes, "
              f"expected {mb << 20} each")


def main():
    fl.preflight(("fio",))
    mb = int(os.environ.get("COOPFS_FIO_MB") or fl.size_for(64, 16))
    env = fl.FsEnv("fio", 43)
    env.keygen("alice")
    env.start_ring()
    m = env.mount(key="alice")
    rl = fl.rl
    rl.section(f"fio: sequential and random writes of {mb} MiB each, verified with crc32c")
    run_fio(env, m, mb)
    sums = {n: fl.sha256_file(m.path(n)) for n in ("seq.dat", "rand.dat")}
    sizes = {n: os.stat(m.path(n)).st_size for n in sums}
    check(all(s == mb << 20 for s in sizes.values()), f"file sizes {sizes}",
          f"file sizes {sizes}, expected {mb << 20}")
    rl.section("after unmount and mount on the same --data with -o cache=4M: the same bytes")
    m.unmount()
    m.opts = ["cache=4M"]  # far less than the files: reads evict all along
    m.start()
    again = {n: fl.sha256_file(m.path(n)) for n in sums}
    check(again == sums, "both files hash the same after the remount (through a 4 MiB cache)",
          f"SHA-256 before the remount {sums}, after {again}")
    m.unmount()


if __name__ == "__main__":
    fl.run(main, budget=400)
