#!/bin/sh
# ring.sh — a ring of real `coopfs node` processes on loopback (128 by
# default), measured against the seed 004 testbed: ring forming, lookup hops
# and latency, join and failure convergence, memory and idle CPU, the HTTP
# endpoints (see bench/ring.py).
#
#   bench/ring.sh [BUILDDIR] [--nodes N] [ring.py options...]
#
# BUILDDIR defaults to build. The table goes to stdout, progress to stderr.
# The whole run stays under --time-limit (default 540 s); it exits 1 only when
# something is wrong (a wrong lookup answer, a node crash, a stuck ring).
set -eu
here=$(dirname "$0")
builddir=${1:-build}
[ $# -gt 0 ] && shift
exe="$builddir/tools/coopfs"
if [ ! -x "$exe" ]; then
    echo "ring.sh: $exe not found; build first: ninja -C $builddir" >&2
    exit 2
fi
exec python3 "$here/ring.py" --build "$builddir" "$@"
