#!/bin/sh
# dev.sh — set up, build and run coopfs on Debian 12 (as root, or with sudo).
#
#   ./dev.sh demo   install what is missing, build, run the main job
#   ./dev.sh test   install what is missing, build, run the whole suite:
#                   once with -Werror, once under AddressSanitizer and
#                   UndefinedBehaviorSanitizer, then the fuzzers briefly
#
# Build directories: build/ (demo), build-ci/, build-asan/, build-fuzz/.
set -eu

cd "$(dirname "$0")"

# Debian packages the build and the suite need. Keep in step with README.md.
PACKAGES="build-essential meson ninja-build pkg-config libssl-dev libcmocka-dev libevent-dev libzstd-dev libfuse3-dev fuse3 fio git clang libclang-rt-14-dev python3 iproute2 curl"

log() { printf '%s\n' "dev.sh: $*" >&2; }

install_packages() {
    missing=""
    for p in $PACKAGES; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    log "installing:$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
}

# setup DIR [meson options...]: configure DIR if needed, then build it.
setup() {
    dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    else
        meson configure "$dir" "$@" >/dev/null
    fi
    ninja -C "$dir" >/dev/null
}

# run_suite DIR LABEL: runs meson test in DIR, prints its summary, and
# adds its counts to the totals.
PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=""
TAILS=$(mktemp)
trap 'rm -f "$TAILS"' EXIT
run_suite() {
    dir=$1
    label=$2
    log "running the $label suite"
    rc=0
    meson test -C "$dir" --print-errorlogs --num-processes 2 ${COOPFS_TEST_ARGS:-} || rc=$?
    counts=$(python3 - "$dir/meson-logs/testlog.json" "$label" "$TAILS" <<'EOF'
import json, sys
p = f = s = 0
names = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    r = t.get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
        name = "%s:%s(%s)" % (sys.argv[2], t.get("name", "?").replace(" ", "_"), r)
        names.append(name)
        out = (t.get("stdout") or "").splitlines()[-25:]
        with open(sys.argv[3], "a") as tails:
            tails.write("---- %s, last lines:\n" % name)
            tails.write("".join(l[:300] + "\n" for l in out))
print(p, f, s, *names)
EOF
)
    set -- $counts
    shift 3
    [ $# -gt 0 ] && FAILED_NAMES="$FAILED_NAMES $*"
    set -- $counts
    PASSED=$((PASSED + $1))
    FAILED=$((FAILED + $2))
    SKIPPED=$((SKIPPED + $3))
    if [ "$rc" -ne 0 ] && [ "$2" -eq 0 ]; then
        FAILED=$((FAILED + 1))
    fi
}

cmd=${1:-}
case "$cmd" in
demo)
    install_packages
    setup build --buildtype=release -Dtests=false
    shift
    exec ./build/tools/coopfs demo "$@"
    ;;
test)
    install_packages
    log "building build-ci (warnings are errors)"
    setup build-ci --buildtype=debugoptimized -Dwerror=true
    run_suite build-ci plain
    log "building build-asan (AddressSanitizer, UndefinedBehaviorSanitizer)"
    setup build-asan --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_suite build-asan sanitizer
    log "fuzzing each decoder for ${COOPFS_FUZZ_SECONDS:-30} s (full output in build-fuzz/fuzz.log)"
    mkdir -p build-fuzz
    if FUZZ_BUILD_DIR=build-fuzz sh tests/fuzz/run.sh "${COOPFS_FUZZ_SECONDS:-30}" >build-fuzz/fuzz.log 2>&1; then
        PASSED=$((PASSED + 1))
        grep -E '^(== |Done )' build-fuzz/fuzz.log || true
    else
        FAILED=$((FAILED + 1))
        FAILED_NAMES="$FAILED_NAMES fuzz"
        tail -n 60 build-fuzz/fuzz.log
    fi
    cat "$TAILS"
    [ -n "$FAILED_NAMES" ] && echo "failed:$FAILED_NAMES"
    echo "tests: $PASSED passed, $FAILED failed, $SKIPPED skipped"
    [ "$FAILED" -eq 0 ]
    ;;
*)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac
