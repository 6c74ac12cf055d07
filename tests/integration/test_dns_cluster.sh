#!/usr/bin/env bash
# A cluster endpoint given as a DNS name ("localhost", from /etc/hosts) with
# dns_refresh 500ms: requests succeed, /clusters lists the resolved
# address, and after several refreshes the endpoint is still there and
# still serving (a refresh with the same answer keeps the endpoint, its
# health and its pooled connections usable).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

addrs=$(getent ahostsv4 localhost 2>/dev/null | awk '{ print $1 }' | sort -u | tr '\n' ' ' || true)
[[ "$addrs" == *127.0.0.1* ]] || fail "localhost does not resolve to 127.0.0.1 here (got: $addrs)"
start_backend dns4 "$BACKEND_PORT"
# Where localhost also maps to ::1, serve there too (same port).
if getent ahostsv6 localhost 2>/dev/null | awk '{ print $1 }' | grep -qx '::1'; then
    start_backend_at ::1 dns6 "$BACKEND_PORT"
    HAS_V6=1
else
    HAS_V6=0
fi

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
            cluster: named
clusters:
  - name: named
    dns_refresh: 500ms
    health_check: { path: /healthz, interval: 200ms, unhealthy_threshold: 2, healthy_threshold: 1 }
    endpoints:
      - address: localhost
        port: @BACKEND_PORT@
        locality: us-east1/us-east1-b
        labels: {version: v2, app: named}
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

resolved() { [[ "$(admin_get /clusters)" == *"named::127.0.0.1:$BACKEND_PORT::health_flags::healthy"* ]]; }
wait_until 5 "/clusters lists localhost resolved to 127.0.0.1:$BACKEND_PORT, healthy" resolved
clusters=$(admin_get /clusters)
log "clusters: $(grep '^named::' <<<"$clusters" | grep health_flags | tr '\n' ' ')"
assert_not_contains "$clusters" "named::localhost:" "/clusters (the name itself is not an endpoint)"
# Every resolved address carries the endpoint's locality and labels.
assert_contains "$clusters" "named::127.0.0.1:$BACKEND_PORT::locality::us-east1/us-east1-b/" "/clusters"
assert_contains "$clusters" "named::127.0.0.1:$BACKEND_PORT::labels::app=named,version=v2" "/clusters"
if ((HAS_V6 == 0)); then
    assert_eq 1 "$(grep -c '^named::.*::health_flags::' <<<"$clusters")" "endpoints resolved from localhost"
fi

# check_requests N WHAT: N requests, all 200 from the backend.
check_requests() {
    rqloop "$URL/x" --count "$1" --new-conn >"$TEST_TMP/rq.txt"
    local bad
    bad=$(awk '$2 != "200" || ($3 != "dns4" && $3 != "dns6")' "$TEST_TMP/rq.txt" | head -n 3)
    [[ -z "$bad" ]] || fail "$2: failed requests: $bad"
}
check_requests 20 "requests to a DNS-named endpoint"

# Several refresh periods later (500ms each), with traffic in between.
for ((i = 0; i < 4; i++)); do
    sleep 0.4
    check_requests 5 "requests during DNS refreshes (round $i)"
done
resolved || fail "after refreshes /clusters no longer lists 127.0.0.1:$BACKEND_PORT as healthy: $(admin_get /clusters)"
log "20 + 4x5 requests ok across ~4 DNS refreshes"

stop_weft 15
