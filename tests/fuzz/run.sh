#!/bin/sh
# run.sh — builds the libFuzzer harnesses with clang and runs each for a
# bounded time over its seed corpus.
#
#   tests/fuzz/run.sh [SECONDS]        (default 60 per harness)
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz at the top of the tree),
# FUZZ_JOBS (parallel fuzzing processes per harness, libFuzzer's -fork;
# default 1).
#
# Each harness tests/fuzz/fuzz_NAME.c runs over corpus/NAME/. New inputs it
# finds go to $FUZZ_BUILD_DIR/fuzz-corpus/NAME (the committed seeds are only
# read); crashes are saved as $FUZZ_BUILD_DIR/fuzz-artifacts/NAME-crash-*.
# Exits non-zero if any harness crashed, leaked, timed out or failed to build.
set -eu

secs=${1:-60}
jobs=${FUZZ_JOBS:-1}
case $secs$jobs in
*[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

if [ -f "$build/build.ninja" ]; then
    meson configure "$build" -Dfuzz=true
else
    # tests=false: the harnesses need neither cmocka nor the unit tests.
    CC=clang meson setup "$build" "$root" -Dfuzz=true -Dtests=false \
        --buildtype=debugoptimized
fi

harnesses=
for src in "$here"/fuzz_*.c; do
    [ -e "$src" ] || continue
    harnesses="$harnesses $(basename "$src" .c)"
done
if [ -z "$harnesses" ]; then
    echo "$0: no harness found in $here" >&2
    exit 1
fi

# tests/fuzz/meson.build defines the harnesses only for clang with libFuzzer.
known=$(meson introspect --targets "$build")
targets=
for h in $harnesses; do
    if ! printf '%s' "$known" | grep -q "\"name\": *\"$h\""; then
        echo "$0: $build does not build $h: is it a clang build (CC=clang) with libFuzzer?" >&2
        exit 2
    fi
    targets="$targets tests/fuzz/$h"
done
# shellcheck disable=SC2086 # word splitting of the target list is intended
ninja -C "$build" $targets

status=0
for h in $harnesses; do
    name=${h#fuzz_}
    seeds=$here/corpus/$name
    work=$build/fuzz-corpus/$name
    artifacts=$build/fuzz-artifacts
    mkdir -p "$work" "$artifacts"
    set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$name-"
    if [ "$jobs" -gt 1 ]; then
        set -- "$@" -fork="$jobs"
    fi
    # The first corpus directory receives new inputs; the seeds stay as
    # committed.
    set -- "$@" "$work"
    if [ -d "$seeds" ]; then
        set -- "$@" "$seeds"
    else
        echo "$0: warning: no seed corpus $seeds" >&2
    fi
    echo "== $h: ${secs}s, corpus $seeds"
    if ! "$build/tests/fuzz/$h" "$@"; then
        echo "== $h: FAILED; the input is saved under $artifacts/$name-*" >&2
        status=1
    fi
done
exit $status
