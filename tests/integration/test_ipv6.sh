#!/usr/bin/env bash
# IPv6 loopback end to end: a listener on ::1 in front of a backend on ::1
# (curl -g http://[::1]:PORT/), plus the mixed paths (::1 listener -> IPv4
# backend, 127.0.0.1 listener -> IPv6 backend). Checks statuses, bodies,
# x-forwarded-for as seen by the backend, /clusters and the access log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

"$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null ||
    fail "this host has no IPv6 loopback (::1)"

V6_PORT=$(free_port)
V4_PORT=$(free_port)
LISTEN6_PORT=$(free_port)
LISTEN4_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend_at ::1 v6 "$V6_PORT"
start_backend v4 "$V4_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: stdout
listeners:
  - name: ingress6
    address: "::1"
    port: @LISTEN6_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: /to4/ }, cluster: v4, prefix_rewrite: / }
          - { match: { prefix: / }, cluster: v6 }
  - name: ingress4
    address: 127.0.0.1
    port: @LISTEN4_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: v6 }
clusters:
  - name: v6
    health_check: { path: /healthz, interval: 200ms, healthy_threshold: 1 }
    endpoints:
      - { address: "::1", port: @V6_PORT@ }
  - name: v4
    endpoints:
      - { address: 127.0.0.1, port: @V4_PORT@ }
YAML
)

start_weft "$CONFIG"

# get URL: sets CODE and BODY.
get() {
    CODE=$(curl -g -sS --max-time 10 -o "$TEST_TMP/body" -w '%{http_code}' "$1") ||
        fail "GET $1: no HTTP answer"
    BODY=$(cat "$TEST_TMP/body")
}

# ::1 -> ::1
get "http://[::1]:$LISTEN6_PORT/six?x=1"
assert_eq 200 "$CODE" "GET via the ::1 listener to the ::1 backend"
assert_contains "$BODY" '"backend": "v6"' "body via ::1 -> ::1"
assert_contains "$BODY" '"path": "/six"' "body via ::1 -> ::1"
assert_contains "$BODY" '"x-forwarded-for": "::1' "x-forwarded-for seen by the ::1 backend"
assert_contains "$BODY" '"client": "::1:' "the backend's peer is weft over ::1"
assert_contains "$BODY" "\"host\": \"[::1]:$LISTEN6_PORT\"" "Host seen by the backend"

# POST body over IPv6 both ways.
payload='ipv6-payload-0123456789'
echoed=$(curl -g -sS --max-time 10 --data-binary "$payload" "http://[::1]:$LISTEN6_PORT/echo") ||
    fail "POST /echo over ::1: no HTTP answer"
assert_eq "$payload" "$echoed" "POST /echo over ::1"

# ::1 listener -> IPv4 backend.
get "http://[::1]:$LISTEN6_PORT/to4/four"
assert_eq 200 "$CODE" "GET via the ::1 listener to the IPv4 backend"
assert_contains "$BODY" '"backend": "v4"' "body via ::1 -> 127.0.0.1"
assert_contains "$BODY" '"x-forwarded-for": "::1' "x-forwarded-for seen by the IPv4 backend"

# IPv4 listener -> ::1 backend.
get "http://127.0.0.1:$LISTEN4_PORT/mixed"
assert_eq 200 "$CODE" "GET via the IPv4 listener to the ::1 backend"
assert_contains "$BODY" '"backend": "v6"' "body via 127.0.0.1 -> ::1"
assert_contains "$BODY" '"x-forwarded-for": "127.0.0.1' "x-forwarded-for via 127.0.0.1 -> ::1"

# The ::1 listener is only on ::1.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$LISTEN6_PORT/" || true)
assert_eq 000 "$code" "the ::1 listener's port on 127.0.0.1"

# Keep-alive over ::1 (pooled IPv6 upstream connection reused).
cx0=$(metric 'weft_upstream_cx_total{cluster="v6"}')
out=$(curl -g -sS --max-time 10 -v -o /dev/null -o /dev/null -o /dev/null \
    "http://[::1]:$LISTEN6_PORT/k1" "http://[::1]:$LISTEN6_PORT/k2" "http://[::1]:$LISTEN6_PORT/k3" 2>&1) ||
    fail "three GETs on one ::1 connection: no HTTP answer"
assert_contains "$out" "Re-using existing connection" "client keep-alive over ::1"
cx1=$(metric 'weft_upstream_cx_total{cluster="v6"}')
((cx1 - cx0 <= 1)) || fail "3 sequential requests opened $((cx1 - cx0)) IPv6 upstream connections (pool not reused)"

# /clusters: the ::1 endpoint, healthy by its health checks over IPv6.
v6_healthy() { admin_get /clusters | grep -q "^v6::.*$V6_PORT::health_flags::healthy$"; }
wait_until 5 "/clusters shows the ::1 endpoint healthy" v6_healthy
ep=$(admin_get /clusters | grep "^v6::.*::health_flags::" | head -n 1)
assert_contains "$ep" "::1" "/clusters endpoint of the v6 cluster"
log "clusters: $ep"
(($(metric 'weft_upstream_health_check_success_total{cluster="v6"}') >= 1)) ||
    fail "no successful health check over ::1"

# Access log.
wait_until 5 "access log line for /six?x=1" grep -qF '"path":"/six?x=1"' "$WEFT_LOG"
line=$(grep -F '"path":"/six?x=1"' "$WEFT_LOG" | tail -n 1)
assert_eq "::1" "$(jq -r .downstream_remote <<<"$line")" "access log downstream_remote"
assert_contains "$(jq -r .upstream_host <<<"$line")" "::1" "access log upstream_host"
assert_contains "$(jq -r .upstream_host <<<"$line")" "$V6_PORT" "access log upstream_host"
assert_eq ingress6 "$(jq -r .listener <<<"$line")" "access log listener"

stop_weft 15
