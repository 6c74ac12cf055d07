#!/usr/bin/env bash
# test_config_memory.sh: memory of loading a big config.
#
#   - `weft --validate` of a generated 5 MB config (11,000 clusters of 4
#     endpoints, 11,000 routes; tests/integration/gen_config.py) succeeds
#     and its peak RSS (/usr/bin/time -v) stays below 10 x the file size
#     + 16 MiB. Before the compact node tree, freed after the conversion,
#     it was 85 MB (17 x the file); now about 43 MB, most of it the
#     snapshot (hostsets, stats) the validation builds.
#   - a 1 MB config: below 10 x the file + 8 MiB.
# RSS is not a timing: it is the same run to run within a few percent.
# Sanitized builds (shadow memory, redzones, quarantine) only check that
# the validation succeeds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

GEN="$REPO_ROOT/tests/integration/gen_config.py"
SAN=$(sed -n 's/^WEFT_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[[ -x /usr/bin/time ]] || fail "/usr/bin/time is missing (apt-get install time)"

# check SIZE_BYTES BASE_KB
check() {
    local size="$1" base_kb="$2" cfg out rc=0 size_kb rss_kb limit_kb
    cfg="$TEST_TMP/big-$size.yaml"
    "$PYTHON" "$GEN" --size "$size" "$cfg"
    size_kb=$(($(stat -c %s "$cfg") / 1024))
    out=$(/usr/bin/time -v "$WEFT_BIN" --validate -c "$cfg" 2>&1) || rc=$?
    [[ $rc == 0 ]] || fail "--validate of a ${size_kb} KiB config exited $rc: $(printf '%s' "$out" | head -5)"
    assert_contains "$out" "configuration OK" "--validate output"
    rss_kb=$(printf '%s\n' "$out" | awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }')
    limit_kb=$((10 * size_kb + base_kb))
    log "config ${size_kb} KiB: --validate max RSS ${rss_kb} KiB (limit ${limit_kb} KiB)"
    if [[ -n "$SAN" ]]; then
        log "sanitized build ($SAN): RSS bound not checked"
        return 0
    fi
    ((rss_kb < limit_kb)) ||
        fail "--validate of a ${size_kb} KiB config peaked at ${rss_kb} KiB RSS (limit ${limit_kb} KiB)"
}

check 1000000 8192
check 5000000 16384
log "ok"
