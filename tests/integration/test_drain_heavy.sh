#!/usr/bin/env bash
# SIGTERM under heavy load (test_drain_load at 8x the concurrency): the
# process exits only once no connection is open, none was accepted since
# the previous poll and none waits in a listener's accept queue (a
# connect the kernel completed while the workers were busy: exiting then
# resets it).
#   1. wrk, 2 threads, 256 connections, 6 s, HTTP/1.1, across SIGTERM
#      (drain_timeout 30s, longer than wrk runs): no socket error, no
#      non-2xx; weft exits 0 with "drained: exiting" after wrk is gone.
#   2. h2load in rate mode (10 new HTTP/2 connections every 100 ms, 200 in
#      all, 10 requests each, 10 at once, through a backend answering in
#      100 ms), SIGTERM 0.3 s in: 2000 succeeded, 0 failed, 0 errored.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_drain.sh"
command -v wrk >/dev/null || fail "wrk is not installed"
command -v h2load >/dev/null || fail "h2load is not installed"

BACKEND_PORT=$(free_port)
start_backend slow "$BACKEND_PORT" --latency-ms 100

accepted() { metric 'weft_downstream_cx_total{listener="ingress"}'; }
accepted_at_least() { (($(accepted) >= $1)); }
# exited_drained: waits for weft to exit 0 after "drained: exiting".
exited_drained() {
    wait_exit "$WEFT_PID" 35
    WEFT_PID=""
    assert_eq 0 "$EXIT_STATUS" "weft exit status after the drain ($1)"
    grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not exit when the clients left ($1)"
    ! grep -q "drain timeout" "$WEFT_LOG" || fail "the drain ran into drain_timeout ($1)"
}

# ---- 1. wrk, 256 connections ----------------------------------------------
drain_write_config 30s
start_weft "$CONFIG"
wrk -t2 -c256 -d6s --timeout 5s "$URL/direct" >"$TEST_TMP/wrk.out" 2>&1 &
wrk_pid=$!
track_pid "$wrk_pid"
wait_until 10 "wrk connected" accepted_at_least 256
sleep 0.5
_lib_running "$wrk_pid" || fail "wrk ended before SIGTERM (machine too slow for this test?)"
weft_signal TERM
wait "$wrk_pid" || fail "wrk failed: $(cat "$TEST_TMP/wrk.out")"
_lib_running "$WEFT_PID" && log "weft still draining when wrk ended (as it should)"
wrk_out=$(cat "$TEST_TMP/wrk.out")
log "wrk: $(grep -E 'requests in|Socket errors|Non-2xx' <<<"$wrk_out" | tr -s ' ' | tr '\n' ' ')"
assert_contains "$wrk_out" "requests in" "wrk output"
assert_not_contains "$wrk_out" "Socket errors" "wrk (256 connections) across SIGTERM"
assert_not_contains "$wrk_out" "Non-2xx or 3xx responses" "wrk (256 connections) across SIGTERM"
exited_drained wrk

# ---- 2. h2load, 200 connections opened across the drain -------------------
drain_write_config 30s
start_weft "$CONFIG"
h2load -r 10 --rate-period 100ms -c 200 -n 2000 -m 10 "$URL/h2load" >"$TEST_TMP/h2load.out" 2>&1 &
h2_pid=$!
track_pid "$h2_pid"
sleep 0.3
_lib_running "$h2_pid" || fail "h2load ended before SIGTERM"
weft_signal TERM
wait "$h2_pid" || fail "h2load failed: $(tail -n 20 "$TEST_TMP/h2load.out")"
h2_out=$(cat "$TEST_TMP/h2load.out")
log "h2load: $(grep -E '^requests:' <<<"$h2_out")"
assert_contains "$h2_out" "2000 succeeded, 0 failed, 0 errored" "h2load (200 connections) across SIGTERM"
exited_drained h2load
