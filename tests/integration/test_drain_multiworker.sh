#!/usr/bin/env bash
# Graceful shutdown with two workers.
#   1. SIGTERM with 4 slow requests (/delay/1500) in flight, drain_timeout
#      5s: all 4 complete with 200 and Connection: close; a new connection
#      right after the signal is still served (200, Connection: close);
#      /ready answers 503 (or admin is gone); weft exits 0 once the
#      requests are done ("drained: exiting", not the drain timeout).
#   2. drain_timeout 500ms with a /delay/5000 request in flight: weft exits 0
#      after about the grace period, not after the request.
#   3. POST /drain on admin (drain_timeout 2s): /ready says 503 DRAINING at
#      once; for the drain time the listener still answers, with
#      Connection: close; then the listener closes; the process stays up
#      (admin still serves) and later exits 0 on SIGTERM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_drain.sh"

BACKEND_PORT=$(free_port)
start_backend slow "$BACKEND_PORT" --request-log "$TEST_TMP/requests.log"
: >"$TEST_TMP/requests.log"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# seen_requests PATTERN: number of requests the backend has read matching
# PATTERN.
seen_requests() { grep -c -- "$1" "$TEST_TMP/requests.log" || true; }
# seen_at_least N PATTERN: true once the backend has read N such requests.
seen_at_least() { (($(seen_requests "$2") >= $1)); }

# new_conn_refused: true when a new connection to the listener gets no
# HTTP answer at all (refused / reset).
new_conn_refused() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL/new" || true)
    [[ "$code" == 000 ]]
}

# ready_status: status of admin /ready ("000" when admin is gone).
ready_status() {
    curl -s -o "$TEST_TMP/ready.body" -w '%{http_code}' --max-time 1 \
        "http://127.0.0.1:$ADMIN_PORT/ready" || true
}

# ---- 1. SIGTERM with slow requests in flight --------------------------
drain_write_config 5s 30s
start_weft "$CONFIG"
assert_eq 200 "$(http_status "$URL/warmup")" "GET before drain"

N=4
pids=()
for ((i = 0; i < N; i++)); do
    curl -s -o /dev/null -D "$TEST_TMP/slow-$i.head" -w '%{http_code}' --max-time 15 \
        "$URL/delay/1500?i=$i" >"$TEST_TMP/slow-$i.code" 2>/dev/null &
    pids+=($!)
    track_pid "$!"
done
wait_until 5 "backend has all $N slow requests" seen_at_least "$N" /delay/1500

t0=$(now_ms)
weft_signal TERM
# The listeners stay open during the drain: a new connection is served,
# and told to close.
sleep 0.2
head=$(curl -s -o /dev/null -D - --max-time 5 "$URL/during-drain" | tr -d '\r' || true)
assert_contains "$head" "HTTP/1.1 200" "new connection during the drain"
assert_contains "$head" "connection: close" "response to a new connection during the drain"
rs=$(ready_status)
if [[ "$rs" != 503 && "$rs" != 000 ]]; then
    fail "/ready during drain: expected 503 or no admin, got $rs"
fi
log "/ready during drain: $rs"

for pid in "${pids[@]}"; do
    wait "$pid" || true
done
for ((i = 0; i < N; i++)); do
    assert_eq 200 "$(cat "$TEST_TMP/slow-$i.code")" "in-flight request $i across SIGTERM"
    assert_contains "$(tr -d '\r' <"$TEST_TMP/slow-$i.head")" "connection: close" \
        "in-flight request $i: response head after SIGTERM"
done
pid=$WEFT_PID
wait_exit "$pid" 10
WEFT_PID=""
t_exit=$(($(now_ms) - t0))
assert_eq 0 "$EXIT_STATUS" "weft exit status after drain"
log "drain with $N in-flight requests: all 200, exit 0 after ${t_exit}ms"
grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not log a clean drain"
! grep -q "drain timeout" "$WEFT_LOG" || fail "weft waited for drain_timeout although its clients had left"

# ---- 2. short drain_timeout cuts a long request -------------------------
drain_write_config 500ms 30s
start_weft "$CONFIG"
curl -s -o /dev/null -w '%{http_code}' --max-time 15 "$URL/delay/5000" \
    >"$TEST_TMP/long.code" 2>/dev/null &
long_pid=$!
track_pid "$long_pid"
wait_until 5 "backend has the long request" seen_at_least 1 /delay/5000
t0=$(now_ms)
weft_signal TERM
pid=$WEFT_PID
wait_exit "$pid" 5
WEFT_PID=""
t_exit=$(($(now_ms) - t0))
assert_eq 0 "$EXIT_STATUS" "weft exit status after a drain timeout"
((t_exit >= 400 && t_exit < 2500)) ||
    fail "weft exited ${t_exit}ms after SIGTERM, expected ~500ms (drain_timeout)"
grep -q "drain timeout" "$WEFT_LOG" || fail "weft did not log the drain timeout"
wait "$long_pid" || true
code=$(cat "$TEST_TMP/long.code")
[[ "$code" != 200 ]] || fail "the 5 s request finished with 200 although the grace was 500ms"
log "drain_timeout 500ms: exit 0 after ${t_exit}ms, the long request was cut (status $code)"

# ---- 3. POST /drain --------------------------------------------------------
drain_write_config 2s 30s
start_weft "$CONFIG"
assert_eq 200 "$(http_status "$URL/before")" "GET before POST /drain"
assert_eq 405 "$(http_status "http://127.0.0.1:$ADMIN_PORT/drain")" "GET /drain (must be POST)"
code=$(http_status -X POST -H "X-Weft-Admin: 1" "http://127.0.0.1:$ADMIN_PORT/drain")
[[ "$code" == 2* ]] || fail "POST /drain answered $code"
assert_eq 503 "$(ready_status)" "/ready after POST /drain"
assert_contains "$(cat "$TEST_TMP/ready.body")" DRAINING "/ready body after POST /drain"
head=$(curl -s -o /dev/null -D - --max-time 5 "$URL/during-drain" | tr -d '\r' || true)
assert_contains "$head" "HTTP/1.1 200" "new connection while POST /drain drains"
assert_contains "$head" "connection: close" "response while POST /drain drains"
wait_until 6 "listeners closed once drain_timeout passed after POST /drain" new_conn_refused
grep -q "drain timeout: listeners closed" "$WEFT_LOG" || fail "weft did not log the end of the drain"
kill -0 "$WEFT_PID" 2>/dev/null || fail "weft exited after POST /drain (it must keep running)"
assert_eq 503 "$(ready_status)" "/ready after the drain ended"
sleep 0.5
new_conn_refused || fail "listener accepts connections again after the drain ended"
metrics=$(admin_get /stats/prometheus)
assert_contains "$metrics" "weft_" "admin still serves metrics while drained"
stop_weft 10
