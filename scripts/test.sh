#!/usr/bin/env bash
# test.sh: the whole test suite, the one command CI runs (.ci/run).
#
#   scripts/test.sh
#
# 1. scripts/setup.sh (installs missing packages)
# 2. build-asan: build with AddressSanitizer + UBSan, run every unit and
#    integration test with ctest
# 3. build-plain: no sanitizer, -Werror at -O2; unit tests and the memory
#    tests (RSS limits hold only without sanitizers)
# 4. build-fuzz (clang): build every tests/fuzz/fuzz_*.c, run each for
#    $WEFT_FUZZ_SECONDS (30) on a temp copy of tests/fuzz/corpus/<name>/
# 5. build-tsan (clang): ThreadSanitizer build, run every integration test
#    (the multi-worker ones, and the rest: the main thread's health checks,
#    DNS and admin share state with the workers too). WEFT_TSAN_FILTER
#    narrows it, e.g. 'multiworker|reload|drain'.
#
# Every stage runs even when an earlier one failed (unless it needs that
# stage's build); the exit status is non-zero if anything failed.
# Environment: WEFT_FUZZ_SECONDS, WEFT_JOBS (build parallelism, default nproc).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
FUZZ_SECONDS="${WEFT_FUZZ_SECONDS:-30}"
JOBS="${WEFT_JOBS:-$(nproc)}"
TSAN_FILTER="${WEFT_TSAN_FILTER:-.}"

STAGE_FAILED=()
TESTS_PASSED=0
TESTS_FAILED=0
WORK="$(mktemp -d "${TMPDIR:-/tmp}/weft-test.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

banner() { printf '\n==== %s ====\n' "$*"; }
stage_fail() {
    STAGE_FAILED+=("$1")
    printf 'test.sh: stage FAILED: %s\n' "$1" >&2
}

# run_ctest NAME BUILD_DIR [ctest args...]: runs ctest, adds its counts to
# the totals. Returns ctest's status.
run_ctest() {
    local name="$1" dir="$2" rc=0 line total failed
    shift 2
    ctest --test-dir "$dir" --output-on-failure -j2 "$@" 2>&1 | tee "$WORK/$name.ctest.log" || rc=$?
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$WORK/$name.ctest.log" | tail -n 1 || true)
    if [[ -n "$line" ]]; then
        total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
        failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
        TESTS_PASSED=$((TESTS_PASSED + total - failed))
        TESTS_FAILED=$((TESTS_FAILED + failed))
    elif ((rc == 0)); then
        rc=1
        echo "test.sh: ctest ($name) printed no result line" >&2
    fi
    return "$rc"
}

banner "setup"
"$ROOT/scripts/setup.sh"

# ---------------------------------------------------------------- style
# One code style (.clang-format) for every C file of the project but the
# frozen copy of the 1.0 ABI header.
banner "clang-format --dry-run"
if scripts/format.sh --check; then
    TESTS_PASSED=$((TESTS_PASSED + 1))
else
    TESTS_FAILED=$((TESTS_FAILED + 1))
    stage_fail "clang-format (run scripts/format.sh)"
fi

# ---------------------------------------------------------------- ASan/UBSan
banner "build-asan (address,undefined)"
if cmake -S . -B build-asan -DWEFT_SANITIZE=address,undefined -DWEFT_TESTS=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build build-asan -j "$JOBS"; then
    banner "ctest build-asan (unit + integration)"
    run_ctest asan build-asan || stage_fail "ctest (asan)"
else
    stage_fail "build-asan"
fi

# ---------------------------------------------------------------- plain
# Without sanitizers: the build users get (-O2 -Werror finds warnings the
# sanitized builds do not, such as maybe-uninitialized), the unit tests,
# and the memory tests, whose RSS limits mean something only here
# (ASan's allocator and shadow memory hide what weft gives back).
banner "build-plain (no sanitizer) + unit and memory tests"
if cmake -S . -B build-plain -DWEFT_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    cmake --build build-plain -j "$JOBS"; then
    run_ctest plain build-plain -R 'unit/|_memory$' || stage_fail "ctest (plain)"
else
    stage_fail "build-plain"
fi

# ---------------------------------------------------------------- fuzzing
if command -v clang >/dev/null 2>&1; then
    banner "build-fuzz (libFuzzer, ${FUZZ_SECONDS}s per target)"
    # The core is built with coverage instrumentation (fuzzer-no-link) and
    # the same sanitizers as the fuzz targets, so libFuzzer sees and checks
    # the code under test, not only the harness.
    if CC=clang cmake -S . -B build-fuzz -DWEFT_FUZZ=ON -DWEFT_TESTS=OFF \
        -DWEFT_SANITIZE=address,undefined -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        CC=clang cmake --build build-fuzz -j "$JOBS"; then
        shopt -s nullglob
        fuzzers=(build-fuzz/fuzz/fuzz_*)
        shopt -u nullglob
        if ((${#fuzzers[@]} == 0)); then
            stage_fail "build-fuzz: no fuzz target was built"
        fi
        mkdir -p build-fuzz/artifacts
        for bin in "${fuzzers[@]}"; do
            [[ -x "$bin" ]] || continue
            fname="$(basename "$bin")"
            corpus_name="${fname#fuzz_}"
            corpus="$WORK/corpus-$corpus_name"
            mkdir -p "$corpus"
            if [[ -d "tests/fuzz/corpus/$corpus_name" ]]; then
                cp -R "tests/fuzz/corpus/$corpus_name/." "$corpus/"
            fi
            dict=()
            if [[ -f "tests/fuzz/$corpus_name.dict" ]]; then
                dict=("-dict=tests/fuzz/$corpus_name.dict")
            fi
            echo "fuzz: $fname for ${FUZZ_SECONDS}s ($(find "$corpus" -type f | wc -l) seed inputs)"
            if "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$fname-" \
                "${dict[@]}" "$corpus" >"$WORK/$fname.log" 2>&1; then
                TESTS_PASSED=$((TESTS_PASSED + 1))
                grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$WORK/$fname.log" | sed "s/^/  $fname: /" || true
            else
                TESTS_FAILED=$((TESTS_FAILED + 1))
                tail -n 80 "$WORK/$fname.log" >&2
                stage_fail "fuzz $fname (artifacts in build-fuzz/artifacts/)"
            fi
        done
    else
        stage_fail "build-fuzz"
    fi
else
    stage_fail "build-fuzz: clang missing after setup.sh (it installs clang)"
fi

# ---------------------------------------------------------------- TSan
if command -v clang >/dev/null 2>&1; then
    banner "build-tsan (thread) + integration tests matching '$TSAN_FILTER'"
    if CC=clang cmake -S . -B build-tsan -DWEFT_SANITIZE=thread -DWEFT_TESTS=ON \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
        CC=clang cmake --build build-tsan -j "$JOBS"; then
        count=$(ctest --test-dir build-tsan -N -L integration -R "$TSAN_FILTER" |
            sed -nE 's/^Total Tests: ([0-9]+).*/\1/p')
        if [[ "${count:-0}" -eq 0 ]]; then
            stage_fail "ctest (tsan): no integration test matches '$TSAN_FILTER'"
        else
            run_ctest tsan build-tsan -L integration -R "$TSAN_FILTER" || stage_fail "ctest (tsan)"
        fi
    else
        stage_fail "build-tsan"
    fi
else
    stage_fail "build-tsan: clang missing after setup.sh (it installs clang)"
fi

banner "summary"
if ((${#STAGE_FAILED[@]} > 0)); then
    printf 'failed stage: %s\n' "${STAGE_FAILED[@]}"
fi
echo "suite: $TESTS_PASSED passed, $TESTS_FAILED failed"
((${#STAGE_FAILED[@]} == 0))
