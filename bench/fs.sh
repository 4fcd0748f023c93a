#!/bin/sh
# fs.sh — the coopfs FUSE mount against a minimal FUSE passthrough
# (bench/passthrough.c) and GlusterFS replica 3, all on this machine's disk
# and loopback: sequential write and read (cold and warm), small-file
# creation, ls -l and stat of a big directory, as same-run ratios against
# the passthrough (see bench/fs.py).
#
#   bench/fs.sh [BUILDDIR] [fs.py options...]
#   bench/fs.sh /tmp/bB --size 256 --files 2000 --runs 3 --only passthrough,coopfs
#
# BUILDDIR defaults to build. Must run as root (drop_caches, mount). Tables
# (markdown) go to stdout, progress to stderr. Installs nothing: the
# GlusterFS column needs Debian's glusterfs-server and glusterfs-client
# (apt-get install glusterfs-server glusterfs-client) and is skipped, with a
# line saying so, without them. The run is bounded by fs.py --time-limit
# (default 3600 s). On any exit, Ctrl-C included, fs.py removes every mount,
# process, gluster volume and file it made; this script then sweeps its
# working directory once more in case fs.py itself was killed.
set -eu
here=$(dirname "$0")
builddir=${1:-build}
[ $# -gt 0 ] && shift
for f in "$builddir/tools/coopfs" "$builddir/bench/passthrough"; do
    if [ ! -x "$f" ]; then
        echo "fs.sh: $f not found; build first: ninja -C $builddir" >&2
        exit 2
    fi
done
if ! command -v glusterd >/dev/null 2>&1 || ! command -v gluster >/dev/null 2>&1; then
    echo "fs.sh: GlusterFS is not installed: its column will be skipped" \
         "(to include it: apt-get install glusterfs-server glusterfs-client)" >&2
fi
keep=0
for a in "$@"; do [ "$a" = --keep ] && keep=1; done
tmp=$(mktemp -d /var/tmp/coopfs-fs-XXXXXX)
pid=

sweep() {
    # mounts under $tmp (deepest first), then processes fs.py listed or that
    # name $tmp on their command line, then the directory itself
    # (best effort: never stop half-way)
    set +e
    awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null || true; done
    # first every pid and every gluster socket (a daemon's -S argument, outside
    # $tmp), then the kills: a daemon may exit once another is gone
    pids= socks=$(cat "$tmp/sockets" 2>/dev/null)
    for p in $(cat "$tmp/pids" 2>/dev/null) $(grep -l -F "$tmp" /proc/[0-9]*/cmdline 2>/dev/null |
                                              cut -d/ -f3); do
        [ "$p" = "$$" ] && continue
        if grep -q -F "$tmp" "/proc/$p/cmdline" 2>/dev/null; then
            pids="$pids $p"
            socks="$socks $(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n '/^-S$/{n;p;q}')"
        fi
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    for f in $socks; do
        case $f in /var/run/gluster/*.socket | /run/gluster/*.socket) rm -f "$f" ;; esac
    done
    # the brick logs glusterd writes outside $tmp, named after the brick paths
    m=$(printf '%s' "${tmp#/}" | tr / -)
    rm -f /var/log/glusterfs/bricks/"$m"-gluster-b[123].log
    if [ "$keep" = 1 ]; then
        echo "fs.sh: kept $tmp" >&2
    else
        rm -rf --one-file-system "$tmp"
    fi
}

on_signal() {
    trap '' INT TERM HUP
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    sweep
    exit 130
}

trap on_signal INT TERM HUP
python3 "$here/fs.py" --build "$builddir" --tmp "$tmp" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
trap '' INT TERM HUP
sweep
exit "$rc"
