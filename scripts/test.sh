#!/usr/bin/env bash
# The whole test suite, as `make test` runs it:
#   1. release build (gcc, hardened, -Werror): unit tests + black-box tests
#   2. sanitizer build (clang, ASan+UBSan, -Werror): unit tests + black-box tests
#   3. libFuzzer smoke runs (sanitizer build) on every fuzz target's seed corpus
# Prints one line per step and a summary; exits non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ASAN=${ASAN:-build-asan}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
PYTEST=(/usr/bin/python3 -m pytest -q -p no:cacheprovider)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}

results=()
failed=0
start_all=$(date +%s)

step() { # name, command...
    local name=$1; shift
    local t0=$(date +%s)
    echo "==> $name"
    if "$@"; then
        results+=("ok    $(( $(date +%s) - t0 ))s  $name")
    else
        results+=("FAIL  $(( $(date +%s) - t0 ))s  $name")
        failed=1
    fi
}

unit() { meson test -C "$1" --suite unit --print-errorlogs -q; }
blackbox() { PADDOCK_BUILD_DIR="$PWD/$1" "${PYTEST[@]}" tests/integration; }

fuzz_smoke() {
    local any=0 rc=0
    for f in "$ASAN"/tests/fuzz/fuzz_*; do
        [ -f "$f" ] && [ -x "$f" ] || continue
        any=1
        local name; name=$(basename "$f")
        local work; work=$(mktemp -d)
        local seeds=tests/fuzz/corpus/$name
        echo "    $name (${FUZZ_SECONDS}s)"
        # New inputs go to the temporary first directory; the seed corpus is read only.
        if ! "$f" "$work" "$seeds" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$work/" >"$work/log" 2>&1; then
            echo "    $name FAILED; last lines:"; tail -n 40 "$work/log"
            mkdir -p tests/fuzz/crashes && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* tests/fuzz/crashes/ 2>/dev/null
            rc=1
        else
            grep -E '^stat::number_of_executed_units' "$work/log" | sed "s/^/    /"
        fi
        rm -rf "$work"
    done
    [ $any = 1 ] || { echo "no fuzz targets were built"; return 1; }
    return $rc
}

step "static analysis (cppcheck)" scripts/lint.sh
step "unit tests (release build)" unit "$BUILD"
step "black-box tests (release build)" blackbox "$BUILD"
step "unit tests (ASan+UBSan build)" unit "$ASAN"
step "black-box tests (ASan+UBSan build)" blackbox "$ASAN"
step "fuzz smoke runs (${FUZZ_SECONDS}s each)" fuzz_smoke

echo
echo "Summary:"
printf '  %s\n' "${results[@]}"
total=$(( $(date +%s) - start_all ))
if [ $failed = 0 ]; then
    echo "make test: PASS (${total}s)"
else
    echo "make test: FAIL (${total}s)"
fi
exit $failed
