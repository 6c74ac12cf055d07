#!/usr/bin/env bash
# Active health checks. Two backends behind round_robin, checks every 200ms
# (unhealthy_threshold 2, healthy_threshold 3) on /healthz, which fails
# while the backend's --health-file contains "fail".
#   - both healthy: weft_upstream_endpoints_healthy 2, traffic to both
#   - b's file says "fail": b leaves rotation (/clusters /failed_active_hc,
#     gauge 1, all traffic to a, failure counter moves)
#   - file removed: b comes back only after healthy_threshold passing checks
#     (not before ~3 intervals), traffic to both again
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

A_PORT=$(free_port)
B_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
A_HEALTH="$TEST_TMP/a.health"
B_HEALTH="$TEST_TMP/b.health"

start_backend a "$A_PORT" --health-file "$A_HEALTH"
start_backend b "$B_PORT" --health-file "$B_HEALTH" --request-log "$TEST_TMP/b.requests"

CONFIG=$(render_config - <<'YAML'
workers: 2
drain_timeout: 2s
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
          - match: { prefix: / }
            cluster: svc
clusters:
  - name: svc
    lb_policy: round_robin
    health_check:
      path: /healthz
      interval: 200ms
      timeout: 500ms
      unhealthy_threshold: 2
      healthy_threshold: 3
    endpoints:
      - address: 127.0.0.1
        port: @A_PORT@
      - address: 127.0.0.1
        port: @B_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

flags_of() { admin_get /clusters | awk -F'::' -v ep="127.0.0.1:$1" '$1 == "svc" && $2 == ep && $3 == "health_flags" { print $4 }'; }
b_is() { [[ "$(flags_of "$B_PORT")" == "$1" ]]; }
gauge() { metric 'weft_upstream_endpoints_healthy{cluster="svc"}'; }
gauge_is() { [[ "$(gauge)" == "$1" ]]; }
# shares N: sends N requests (fresh connection each, so both workers take
# part); prints "<from a> <from b> <other>".
shares() {
    rqloop "$URL/x" --count "$1" --new-conn >"$TEST_TMP/shares.txt"
    awk '{ if ($2 == "200" && $3 == "a") a++; else if ($2 == "200" && $3 == "b") b++; else o++ }
         END { printf "%d %d %d\n", a, b, o }' "$TEST_TMP/shares.txt"
}

# 1. Both healthy.
wait_until 5 "b healthy at start" b_is healthy
assert_eq healthy "$(flags_of "$A_PORT")" "a health_flags at start"
# The gauge must say 2 before any endpoint ever changed state; checked at
# the end so the rest of the test runs either way.
start_gauge_ok=0
for ((i = 0; i < 20; i++)); do
    if gauge_is 2; then
        start_gauge_ok=1
        break
    fi
    sleep 0.1
done
read -r na nb no <<<"$(shares 40)"
log "both healthy: a=$na b=$nb other=$no"
assert_eq 0 "$no" "failed requests with both healthy"
((na >= 10 && nb >= 10)) || fail "traffic not spread over both healthy endpoints: a=$na b=$nb"
grep -q '^GET /healthz' "$TEST_TMP/b.requests" || fail "backend b never saw a GET /healthz"

# 2. b fails its checks.
fail0=$(metric 'weft_upstream_health_check_failure_total{cluster="svc"}')
echo fail >"$B_HEALTH"
t0=$(date +%s%3N)
wait_until 5 "b marked /failed_active_hc" b_is /failed_active_hc
t_out=$(($(date +%s%3N) - t0))
log "b left rotation ${t_out}ms after its health file said fail"
assert_eq healthy "$(flags_of "$A_PORT")" "a health_flags while b fails"
wait_until 3 "weft_upstream_endpoints_healthy = 1 while b fails (now $(gauge))" gauge_is 1
fail1=$(metric 'weft_upstream_health_check_failure_total{cluster="svc"}')
((fail1 - fail0 >= 2)) || fail "health check failure counter moved by $((fail1 - fail0)), expected >= 2"
read -r na nb no <<<"$(shares 40)"
log "b failing: a=$na b=$nb other=$no"
assert_eq "40 0 0" "$na $nb $no" "traffic (a b other) while b fails its health checks"

# 3. b recovers: back after healthy_threshold (3) passing checks.
rm -f "$B_HEALTH"
t0=$(date +%s%3N)
wait_until 5 "b healthy again" b_is healthy
t_back=$(($(date +%s%3N) - t0))
log "b back in rotation ${t_back}ms after its health file was removed"
((t_back >= 300)) || fail "b came back after ${t_back}ms: healthy_threshold 3 x 200ms not respected"
wait_until 3 "weft_upstream_endpoints_healthy = 2 after recovery (now $(gauge))" gauge_is 2
read -r na nb no <<<"$(shares 40)"
log "b recovered: a=$na b=$nb other=$no"
assert_eq 0 "$no" "failed requests after recovery"
((na >= 10 && nb >= 10)) || fail "traffic not spread over both endpoints after recovery: a=$na b=$nb"

# 4. Both fail: no healthy upstream -> local 503.
echo fail >"$A_HEALTH"
echo fail >"$B_HEALTH"
wait_until 5 "weft_upstream_endpoints_healthy = 0 with both failing (now $(gauge))" gauge_is 0
hdr=$(curl -s --max-time 5 -D - -o /dev/null "$URL/x" | tr -d '\r' | tr '[:upper:]' '[:lower:]')
assert_contains "$hdr" "http/1.1 503" "status with no healthy endpoint"
assert_contains "$hdr" "x-weft-reason: no_healthy_upstream" "x-weft-reason with no healthy endpoint"
rm -f "$A_HEALTH" "$B_HEALTH"
wait_until 5 "both healthy again" gauge_is 2

stop_weft 15
((start_gauge_ok)) ||
    fail "weft_upstream_endpoints_healthy{cluster=\"svc\"} was not 2 at start with both endpoints healthy (later transitions set it right)"
