# lib_filter.sh: helpers for the filter runtime tests (test_filter_*.sh),
# sourced after lib.sh.
#
#   FILTER_DIR   the built test filters ($BUILD/tests/filters)
#   ABI_MAJOR / ABI_MINOR   the ABI of the SDK header this weft is built with
#   fetch [curl args...] URL   one request; sets ST (status), HD (header
#                              lines, CR stripped), BD (body)
#   hdr NAME     value of response header NAME (case-insensitive) of the
#                last fetch, empty when absent
#   fmetric PREFIX   like metric, but the sample value as is (may be 0)
# shellcheck shell=bash
# shellcheck disable=SC2034 # globals for the sourcing test scripts

FILTER_DIR="$BUILD/tests/filters"
[[ -f "$FILTER_DIR/hdr.so" ]] || fail "test filters not built in $FILTER_DIR (cmake --build $BUILD)"
ABI_MAJOR=$(awk '$1 == "#define" && $2 == "WEFT_ABI_MAJOR" { print $3 }' "$REPO_ROOT/sdk/include/weft/filter.h")
ABI_MINOR=$(awk '$1 == "#define" && $2 == "WEFT_ABI_MINOR" { print $3 }' "$REPO_ROOT/sdk/include/weft/filter.h")

ST="" HD="" BD=""
fetch() {
    : >"$TEST_TMP/fetch.h"
    : >"$TEST_TMP/fetch.b"
    ST=$(curl -s --max-time 10 -D "$TEST_TMP/fetch.h" -o "$TEST_TMP/fetch.b" -w '%{http_code}' "$@" || true)
    HD=$(tr -d '\r' <"$TEST_TMP/fetch.h")
    BD=$(cat "$TEST_TMP/fetch.b")
}

hdr() {
    awk -v n="$1" 'BEGIN { n = tolower(n) }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }' <<<"$HD"
}

# expect_refused NAME CONFIG NEEDLE...: `weft -c CONFIG` must exit 2 within
# 20 s and print exactly one line on stderr, containing every NEEDLE. Sets
# REFUSAL to that line. With REFUSE_LOG_LINES=1, weft's own log lines
# ("<timestamp> [info] filter x loaded ...", written while the filters
# before the refused one load) may come first: exactly one other line.
REFUSAL=""
REFUSE_LOG_LINES=0
expect_refused() {
    local name="$1" cfg="$2" rc=0 needle lines
    shift 2
    timeout 20 "$WEFT_BIN" -c "$cfg" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" || rc=$?
    if ((REFUSE_LOG_LINES)); then
        lines=$(grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z \[(debug|info)\] ' "$TEST_TMP/$name.err" || true)
    else
        lines=$(cat "$TEST_TMP/$name.err")
    fi
    REFUSAL="$lines"
    assert_eq 2 "$rc" "$name: exit status of weft -c (stderr: $(cat "$TEST_TMP/$name.err"))"
    assert_eq 1 "$(grep -c '' <<<"$lines")" "$name: stderr lines ($(cat "$TEST_TMP/$name.err"))"
    [[ -n "$lines" ]] || fail "$name: nothing on stderr"
    for needle in "$@"; do
        assert_contains "$REFUSAL" "$needle" "$name: refusal line"
    done
    log "$name refused: $REFUSAL"
}

# frozen_abi_check MINOR: tests/abi/filter_v1_MINOR.h is still the frozen
# ABI 1.MINOR header (its never-edit comment, the version and the entry
# symbol) and abi_v1_MINOR.so was built against it. Sets FROZEN to the header.
FROZEN=""
frozen_abi_check() {
    local minor="$1"
    FROZEN="$REPO_ROOT/tests/abi/filter_v1_$minor.h"
    grep -q 'NEVER EDIT' "$FROZEN" || fail "$FROZEN lost its never-edit comment"
    grep -qx '#define WEFT_ABI_MAJOR 1' "$FROZEN" || fail "$FROZEN is not ABI major 1"
    grep -qx "#define WEFT_ABI_MINOR $minor" "$FROZEN" || fail "$FROZEN is not ABI minor $minor"
    grep -qF '#define WEFT_FILTER_ENTRY_SYMBOL "weft_filter_entry_v1"' "$FROZEN" || fail "$FROZEN: entry symbol"
    [[ -f "$FILTER_DIR/abi_v1_$minor.so" ]] || fail "abi_v1_$minor.so not built"
}
