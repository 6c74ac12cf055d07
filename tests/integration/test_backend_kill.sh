#!/usr/bin/env bash
# A backend dies (SIGKILL) under traffic.
#   With active health checks (interval 200ms, unhealthy_threshold 2): a
#   request loop runs across the kill; after a settling time every request
#   succeeds on the survivor, /clusters shows the dead endpoint as
#   /failed_active_hc, weft_upstream_endpoints_healthy drops to 1, and only
#   a few requests fail during the transition (the count is logged), each
#   as a 503 local reply naming the upstream failure.
#   Without health checks: requests the balancer sends to the dead endpoint
#   get 503 x-weft-reason upstream_connect_failure, response_flags UF.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

A_PORT=$(free_port)
B_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend a "$A_PORT"
start_backend b "$B_PORT"
B_PID=$BACKEND_PID

CONFIG=$(render_config - <<'YAML'
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: stdout
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: nohc
            match: { prefix: /nohc/ }
            cluster: nohc
            prefix_rewrite: /
          - name: hc
            match: { prefix: / }
            cluster: hc
clusters:
  - name: hc
    lb_policy: round_robin
    connect_timeout: 500ms
    health_check:
      path: /healthz
      interval: 200ms
      timeout: 200ms
      unhealthy_threshold: 2
      healthy_threshold: 2
    endpoints:
      - address: 127.0.0.1
        port: @A_PORT@
      - address: 127.0.0.1
        port: @B_PORT@
  - name: nohc
    lb_policy: round_robin
    connect_timeout: 500ms
    endpoints:
      - address: 127.0.0.1
        port: @A_PORT@
      - address: 127.0.0.1
        port: @B_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

healthy_gauge() { metric 'weft_upstream_endpoints_healthy{cluster="hc"}'; }
both_healthy() {
    local c
    c=$(admin_get /clusters)
    [[ "$c" == *"hc::127.0.0.1:$A_PORT::health_flags::healthy"* &&
        "$c" == *"hc::127.0.0.1:$B_PORT::health_flags::healthy"* ]]
}
wait_until 5 "both endpoints healthy" both_healthy

# Both backends serve while they are up.
rqloop "$URL/warm" --count 40 >"$TEST_TMP/warm.txt"
assert_eq 40 "$(awk '$2 == "200"' "$TEST_TMP/warm.txt" | wc -l)" "200s before the kill"
assert_eq 20 "$(awk '$3 == "a"' "$TEST_TMP/warm.txt" | wc -l)" "round robin share of a before the kill"
assert_eq 20 "$(awk '$3 == "b"' "$TEST_TMP/warm.txt" | wc -l)" "round robin share of b before the kill"

# The loop: 2 clients, new connection per request (so both workers take
# part), ~5 s. Backend b is killed 1 s in.
rqloop "$URL/loop" --duration 5 --concurrency 2 --new-conn --interval-ms 10 --epoch >"$TEST_TMP/loop.txt" &
LOOP_PID=$!
track_pid "$LOOP_PID"
sleep 1
KILL_MS=$(date +%s%3N)
kill -KILL "$B_PID"
log "killed backend b (pid $B_PID)"
wait_exit "$LOOP_PID" 20
assert_eq 0 "$EXIT_STATUS" "request loop exit status"

total=$(wc -l <"$TEST_TMP/loop.txt")
failed=$(awk '$2 != "200"' "$TEST_TMP/loop.txt" | wc -l)
# "Before the kill" means answered before it: a request started a few ms
# earlier may still be in flight on b when b dies (start_ms + elapsed_ms).
before_kill_fail=$(awk -v k="$KILL_MS" '$1 + $5 < k && $2 != "200"' "$TEST_TMP/loop.txt" | wc -l)
SETTLE_MS=1500
late=$(awk -v t=$((KILL_MS + SETTLE_MS)) '$1 >= t' "$TEST_TMP/loop.txt" | wc -l)
late_fail=$(awk -v t=$((KILL_MS + SETTLE_MS)) '$1 >= t && $2 != "200"' "$TEST_TMP/loop.txt" | wc -l)
late_not_a=$(awk -v t=$((KILL_MS + SETTLE_MS)) '$1 >= t && $3 != "a"' "$TEST_TMP/loop.txt" | wc -l)
last_fail=$(awk -v k="$KILL_MS" '$2 != "200" { t = $1 } END { print (t ? t : k) }' "$TEST_TMP/loop.txt")
log "request loop: $total requests, $failed failed during the transition" \
    "(last failure at $((last_fail - KILL_MS))ms after the kill), $late after settling"
((total >= 100)) || fail "request loop made only $total requests"
assert_eq 0 "$before_kill_fail" "failed requests answered before the kill"
((late >= 50)) || fail "only $late requests after the settling time"
assert_eq 0 "$late_fail" "failed requests more than ${SETTLE_MS}ms after the kill"
assert_eq 0 "$late_not_a" "requests not served by the survivor a after settling"
# Detection takes unhealthy_threshold (2) x interval (200ms) plus a check
# timeout: failures must stop within 1 s of the kill, and only the share
# the balancer gave the dead endpoint (half) may fail meanwhile.
((last_fail - KILL_MS < 1000)) ||
    fail "requests still failed $((last_fail - KILL_MS))ms after the kill (health checks should have removed b)"
window=$(awk -v k="$KILL_MS" '$1 >= k && $1 < k + 1000' "$TEST_TMP/loop.txt" | wc -l)
# A failed connect is retried on the survivor, so only a request in
# flight on b at the instant of the kill can fail (the loop has one).
((failed <= 1)) ||
    fail "$failed of the $window requests in the first second after the kill failed (expected at most 1)"
# The failures are local 503s that say what happened upstream.
bad=$(awk '$2 != "200" && !($2 == "503" && ($4 == "upstream_connect_failure" ||
    $4 == "upstream_reset_before_response" || $4 == "upstream_connect_timeout"))' "$TEST_TMP/loop.txt")
[[ -z "$bad" ]] || fail "unexpected failures during the transition: $(head -n 5 <<<"$bad")"

clusters=$(admin_get /clusters)
assert_contains "$clusters" "hc::127.0.0.1:$B_PORT::health_flags::/failed_active_hc" "/clusters (dead endpoint)"
assert_contains "$clusters" "hc::127.0.0.1:$A_PORT::health_flags::healthy" "/clusters (survivor)"
assert_eq 1 "$(healthy_gauge)" 'weft_upstream_endpoints_healthy{cluster="hc"} after the kill'
(($(metric 'weft_upstream_health_check_failure_total{cluster="hc"}') >= 2)) ||
    fail "weft_upstream_health_check_failure_total{cluster=hc} did not count the failed checks"

# Without health checks: the connect to the dead endpoint fails, nothing
# was sent, so weft tries the other endpoint itself (every method), counts
# it, and avoids the dead one for connect_failure_avoid: no request fails.
rqloop "$URL/nohc/x" --count 20 >"$TEST_TMP/nohc.txt"
ok=$(awk '$2 == "200" && $3 == "a"' "$TEST_TMP/nohc.txt" | wc -l)
log "no health check: $ok of 20 served by a"
assert_eq 20 "$ok" "no-health-check requests served (200) by the survivor a"
retried=$(metric 'weft_upstream_rq_retry_connect_total{cluster="nohc"}')
cfail=$(metric 'weft_upstream_cx_connect_fail_total{cluster="nohc"}')
log "nohc: $retried requests retried on another endpoint, $cfail failed connects"
((retried >= 1)) || fail "weft_upstream_rq_retry_connect_total{cluster=nohc} is $retried, expected >= 1"
assert_eq "$retried" "$cfail" "failed connects (each one retried elsewhere)"
# Passive health: after a failed connect the endpoint is avoided, so at
# most one failed connect per worker, not one per second request.
((cfail <= 2)) || fail "$cfail failed connects to the avoided endpoint in 20 requests"
wait_until 5 "access log lines for /nohc/x" grep -q '"path":"/nohc/x"' "$WEFT_LOG"
bad=$(grep '"path":"/nohc/x"' "$WEFT_LOG" | grep -v '"status":200' || true)
[[ -z "$bad" ]] || fail "access log shows failed /nohc/x requests: $(head -n 2 <<<"$bad")"

stop_weft 15
