#!/bin/sh
# sim.sh — measures the simulator: events per second and memory per node at
# 1,024, 16,384 and 100,000 nodes (see bench/sim_bench.c).
#
#   bench/sim.sh [BUILDDIR] [sim_bench options...]
#
# BUILDDIR defaults to build. The table goes to stdout, progress to stderr.
# Each size runs under its own wall-clock limit (--time-limit, default 1200 s).
set -eu
builddir=${1:-build}
[ $# -gt 0 ] && shift
exe="$builddir/bench/sim_bench"
if [ ! -x "$exe" ]; then
    echo "sim.sh: $exe not found; build first: ninja -C $builddir bench/sim_bench" >&2
    exit 2
fi
echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //')"
exec "$exe" "$@"
