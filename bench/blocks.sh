#!/bin/sh
# blocks.sh — the block store of real `coopfs node` processes on loopback,
# measured against limits taken in the same run: insert and lookup
# throughput of a 1 GiB file on 5 nodes (k = 3) next to the disk's durable
# write rate / k and SHA-256 speed, 4 KiB put/get latency, and the DHT API
# on 32 nodes next to OpenDHT's dhtnode (see bench/blocks.py).
#
#   bench/blocks.sh [BUILDDIR] [blocks.py options...]
#
# BUILDDIR defaults to build. Tables go to stdout (markdown), progress to
# stderr. OpenDHT's column needs the Debian packages dhtnode and
# python3-opendht (apt-get install dhtnode python3-opendht); without them
# it is left out and said so.
set -eu
here=$(dirname "$0")
builddir=${1:-build}
[ $# -gt 0 ] && shift
exe="$builddir/tools/coopfs"
if [ ! -x "$exe" ]; then
    echo "blocks.sh: $exe not found; build first: ninja -C $builddir" >&2
    exit 2
fi
exec python3 "$here/blocks.py" --build "$builddir" "$@"
