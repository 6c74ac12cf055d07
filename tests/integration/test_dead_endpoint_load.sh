#!/usr/bin/env bash
# Faults measured from outside, with no health check and no retry filter:
#  1. two endpoints, one killed (SIGKILL) under wrk load: failed connects
#     are tried on the other endpoint by the core itself, so wrk sees no
#     non-2xx response and no socket error (a GET in flight on b when it
#     dies was reset before any response byte: idempotent, sent once more
#     to a, as nginx does);
#  2. an endpoint whose accept queue is full (connects time out): each
#     request is served by the other endpoint after the connect timeout,
#     and the timeout is counted as a connect failure and a timeout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

A_PORT=$(free_port)
B_PORT=$(free_port)
Q_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend a "$A_PORT"
start_backend b "$B_PORT"
B_PID=$BACKEND_PID
"$PYTHON" "$REPO_ROOT/tests/integration/full_queue.py" "$Q_PORT" >"$TEST_TMP/queue.log" 2>&1 &
track_pid $!
wait_until 5 "the full-queue port is ready" grep -q ready "$TEST_TMP/queue.log"

CONFIG=$(render_config - <<'YAML'
workers: 2
drain_timeout: 2s
access_log:
  path: stdout
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /queue/ }
            cluster: queue
          - match: { prefix: / }
            cluster: pair
clusters:
  - name: pair
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @B_PORT@ }
  - name: queue
    connect_timeout: 300ms
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @Q_PORT@ }
YAML
)
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# 1. An endpoint killed under load. The load covers the kill and lasts
# well past it (connects to b keep failing after it).
load_start "$TEST_TMP/wrk.txt" -t2 -c32 "$URL/x"
wait_until 10 "requests reached b under load" grep -q . "$TEST_TMP/backend-b.log"
sleep 1
kill -9 "$B_PID"
log "killed b (pid $B_PID) under load"
sleep 3
load_stop
w=$(cat "$TEST_TMP/wrk.txt")
log "wrk: $(grep -E 'requests in|Socket errors|Non-2xx' <<<"$w" | tr -s ' ' | tr '\n' ' ')"
total=$(awk '/requests in/ { print $1 }' <<<"$w")
((total >= 500)) || fail "the load made only $total requests"
[[ "$w" != *"Non-2xx or 3xx responses"* ]] ||
    fail "wrk saw failed responses: $(grep Non-2xx <<<"$w"); weft said: $(grep -v '"status":200' "$WEFT_LOG" | grep '"status"' | head -n 3)"
# A response b had begun when it died cannot be finished by anyone: weft
# cuts that client connection (access log: flags with LR). Those, and only
# those, may show as wrk read errors.
cut=$(grep '"path":"/x"' "$WEFT_LOG" | grep -c '"response_flags":"[^"]*LR' || true)
rd=$(sed -nE 's/.*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+).*/\1 \2 \3 \4/p' <<<"$w")
read -r e_conn e_read e_write e_to <<<"${rd:-0 0 0 0}"
log "responses cut by the kill: $cut; wrk errors: connect $e_conn, read $e_read, write $e_write, timeout $e_to"
assert_eq 0 "$((e_conn + e_write + e_to))" "wrk connect/write/timeout errors"
((e_read <= cut)) || fail "wrk saw $e_read read errors but weft cut only $cut responses the dead endpoint had begun"
retried=$(metric 'weft_upstream_rq_retry_connect_total{cluster="pair"}')
cfail=$(metric 'weft_upstream_cx_connect_fail_total{cluster="pair"}')
log "pair: $cfail failed connects to the dead endpoint, $retried requests sent to the other"
((cfail >= 1)) || fail "no failed connect was counted for the killed endpoint"
assert_eq "$cfail" "$retried" "every failed connect retried on the other endpoint"
log "pair: $(metric 'weft_upstream_rq_retry_reset_total{cluster="pair"}') GETs in flight at the kill sent again"

# 2. Connects to the full queue time out; the request goes to a.
rqloop "$URL/queue/y" --count 10 >"$TEST_TMP/queue.txt"
ok=$(awk '$2 == "200" && $3 == "a"' "$TEST_TMP/queue.txt" | wc -l)
assert_eq 10 "$ok" "requests served by a while the other endpoint's connects time out"
ct=$(metric 'weft_upstream_cx_connect_timeout_total{cluster="queue"}')
cf=$(metric 'weft_upstream_cx_connect_fail_total{cluster="queue"}')
log "queue: $ct connect timeouts, $cf failed connects"
((ct >= 1)) || fail "no connect timeout counted for the full-queue endpoint"
assert_eq "$ct" "$cf" "connect timeouts counted as connect failures too"
stop_weft 5
