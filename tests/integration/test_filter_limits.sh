#!/usr/bin/env bash
# Caps on what a filter can consume per stream (listener limits.filter_*).
# The test filter greedy takes metadata keys, arena bytes (16 KiB metadata
# values), timers and callouts from one stream until a host call fails,
# and answers "<taken> <result>[ <result after freeing one>]"
# (WEFT_ERR_LIMIT = -5). Two listeners:
#   caps      limits {filter_arena_bytes: 64KiB, filter_metadata_entries: 5,
#             filter_timers: 3, filter_callouts: 2}
#   defaults  no limits: 1 MiB, 64, 16, 8
# Asserts each cap stops the filter with -5 at the configured count (the
# arena: 16 KiB values up to the byte cap), that a cancelled timer or
# callout frees its slot (third field 0), that each stream starts with a
# fresh budget (the same request twice gives the same answer), that a
# normal request still passes, and SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

[[ -f "$FILTER_DIR/greedy.so" ]] || fail "greedy.so not built"
BE_PORT=$(free_port)
P_CAPS=$(free_port)
P_DEF=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"

listener() {
    cat <<YAML
  - name: $1
    address: 127.0.0.1
    port: $2
$3
    filters:
      - { name: greedy, config: { cluster: be } }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
YAML
}
{
    cat <<YAML
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
YAML
    listener caps "$P_CAPS" "    limits: { filter_arena_bytes: 64KiB, filter_metadata_entries: 5, filter_timers: 3, filter_callouts: 2 }"
    listener defaults "$P_DEF" ""
    cat <<YAML
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
} >"$TEST_TMP/weft.yaml"
start_weft "$TEST_TMP/weft.yaml"

# greedy PORT WHAT: sets BD to the filter's answer.
greedy() {
    fetch -H "x-greedy: $2" "http://127.0.0.1:$1/g"
    assert_eq 200 "$ST" "greedy $2 on port $1: status"
}

# arena_ok BYTES TAKEN: TAKEN 16 KiB values fit under a cap of BYTES (the
# first one also pays for its key), one more would not.
arena_ok() {
    local cap="$1" taken="$2"
    ((taken * 16385 <= cap && (taken + 1) * 16385 + 512 > cap)) ||
        fail "arena: $taken values of 16 KiB under a cap of $cap bytes"
}

for round in 1 2; do
    greedy "$P_CAPS" metadata
    assert_eq "5 -5" "$BD" "caps: metadata entries (round $round)"
    greedy "$P_CAPS" timers
    assert_eq "3 -5 0" "$BD" "caps: timers, then one cancelled and restarted (round $round)"
    greedy "$P_CAPS" callouts
    assert_eq "2 -5 0" "$BD" "caps: callouts, then one cancelled and restarted (round $round)"
    greedy "$P_CAPS" arena
    assert_eq -5 "${BD#* }" "caps: arena result (round $round)"
    arena_ok $((64 * 1024)) "${BD%% *}"
done
log "caps listener: metadata 5, timers 3, callouts 2, arena ${BD%% *} x 16 KiB, then WEFT_ERR_LIMIT"

greedy "$P_DEF" metadata
assert_eq "64 -5" "$BD" "defaults: metadata entries"
greedy "$P_DEF" timers
assert_eq "16 -5 0" "$BD" "defaults: timers"
greedy "$P_DEF" callouts
assert_eq "8 -5 0" "$BD" "defaults: callouts"
greedy "$P_DEF" arena
assert_eq -5 "${BD#* }" "defaults: arena result"
arena_ok $((1024 * 1024)) "${BD%% *}"
log "default caps: metadata 64, timers 16, callouts 8, arena ${BD%% *} x 16 KiB"

fetch "http://127.0.0.1:$P_CAPS/pass"
assert_eq 200 "$ST" "a request that takes nothing passes"
kill -0 "$WEFT_PID" || fail "weft died"
stop_weft 10
