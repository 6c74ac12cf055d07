#!/usr/bin/env bash
# SIGTERM under load: no failed request before the listeners close.
#   1. wrk (2 threads, 32 connections, HTTP/1.1, 8 s) against two workers,
#      SIGTERM once wrk is connected, drain_timeout 20s (longer than wrk runs, so
#      the drain ends because the clients leave, not because listeners
#      close under them): wrk reports no socket error (connect, read,
#      write, timeout) and no non-2xx answer; during the drain connections
#      keep being accepted (each response says Connection: close, wrk
#      reconnects: the accepted-connection count grows); weft exits 0 with
#      "drained: exiting" (not the drain timeout) once wrk is gone.
#   2. h2load in rate mode (2 new HTTP/2 connections every 100 ms, 100 in
#      all over 5 s, 10 requests each, through a backend answering in
#      200 ms), SIGTERM 0.3 s after it starts: the connections opened
#      during the drain are served, GOAWAY lets the streams of each
#      connection finish: 1000 succeeded, 0 failed, 0 errored; weft exits 0
#      once h2load is done.
#      (h2load's timing mode, -D, is not used: h2load 1.52 counts as
#      failed the requests it queues itself after reading any GOAWAY and
#      never sends, whatever the server does.)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_drain.sh"
command -v wrk >/dev/null || fail "wrk is not installed"
command -v h2load >/dev/null || fail "h2load is not installed"

BACKEND_PORT=$(free_port)
start_backend slow "$BACKEND_PORT" --latency-ms 200


accepted() { metric 'weft_downstream_cx_total{listener="ingress"}'; }
# accepted_at_least N: true once N connections were accepted.
accepted_at_least() { (($(accepted) >= $1)); }

# ---- 1. wrk across SIGTERM --------------------------------------------
drain_write_config 20s
start_weft "$CONFIG"
wrk -t2 -c32 -d8s --timeout 3s "$URL/direct" >"$TEST_TMP/wrk.out" 2>&1 &
wrk_pid=$!
track_pid "$wrk_pid"
wait_until 5 "wrk connected" accepted_at_least 32
sleep 0.5
cx0=$(accepted)
_lib_running "$wrk_pid" || fail "wrk ended before SIGTERM (machine too slow for this test?)"
weft_signal TERM
sleep 1
cx1=$(accepted)
log "connections accepted: $cx0 at SIGTERM, $cx1 one second into the drain"
((cx1 > cx0)) || fail "no connection accepted during the drain ($cx0 -> $cx1)"
wait "$wrk_pid" || fail "wrk failed: $(cat "$TEST_TMP/wrk.out")"
wrk_out=$(cat "$TEST_TMP/wrk.out")
log "wrk: $(grep -E 'requests in|Socket errors|Non-2xx' <<<"$wrk_out" | tr -s ' ' | tr '\n' ' ')"
assert_contains "$wrk_out" "requests in" "wrk output"
assert_not_contains "$wrk_out" "Socket errors" "wrk across SIGTERM"
assert_not_contains "$wrk_out" "Non-2xx or 3xx responses" "wrk across SIGTERM"
pid=$WEFT_PID
wait_exit "$pid" 10
WEFT_PID=""
assert_eq 0 "$EXIT_STATUS" "weft exit status after the drain"
grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not exit when wrk left"
! grep -q "drain timeout" "$WEFT_LOG" || fail "the drain ran into drain_timeout"

# ---- 2. h2load (HTTP/2, new connections during the drain) ---------------
drain_write_config 20s
start_weft "$CONFIG"
h2load -r 2 --rate-period 100ms -c 100 -n 1000 -m 10 "$URL/h2load" >"$TEST_TMP/h2load.out" 2>&1 &
h2_pid=$!
track_pid "$h2_pid"
sleep 0.3
_lib_running "$h2_pid" || fail "h2load ended before SIGTERM"
weft_signal TERM
wait "$h2_pid" || fail "h2load failed: $(tail -n 20 "$TEST_TMP/h2load.out")"
h2_out=$(cat "$TEST_TMP/h2load.out")
log "h2load: $(grep -E '^requests:' <<<"$h2_out")"
assert_contains "$h2_out" "1000 succeeded, 0 failed, 0 errored" "h2load across SIGTERM"
pid=$WEFT_PID
wait_exit "$pid" 10
WEFT_PID=""
assert_eq 0 "$EXIT_STATUS" "weft exit status after the HTTP/2 drain"
grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not exit when h2load left"
! grep -q "drain timeout" "$WEFT_LOG" || fail "the HTTP/2 drain ran into drain_timeout"
