#!/usr/bin/env bash
# Smoke test: one backend, one weft in front of it. GET and POST through the
# proxy; the backend sees the proxy's request headers; the admin listener
# serves /ready and Prometheus metrics.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend smoke "$BACKEND_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
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
            cluster: smoke
clusters:
  - name: smoke
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# GET: status, body from the backend, the headers a proxy adds.
out="$TEST_TMP/get.out"
code=$(curl -sS --max-time 10 -D "$TEST_TMP/get.hdr" -o "$out" -w '%{http_code}' \
    "$URL/hello/world?a=1&b=two") || fail "GET through weft: no HTTP answer"
assert_eq 200 "$code" "GET status"
body=$(cat "$out")
hdrs=$(tr -d '\r' <"$TEST_TMP/get.hdr" | tr '[:upper:]' '[:lower:]')
assert_contains "$hdrs" "x-backend: smoke" "GET response headers"
assert_contains "$body" '"backend": "smoke"' "GET body"
assert_contains "$body" '"method": "GET"' "GET body"
assert_contains "$body" '"path": "/hello/world"' "GET body"
assert_contains "$body" '"query": "a=1&b=two"' "GET body"
assert_contains "$body" '"x-request-id": "' "headers seen by the backend"
assert_contains "$body" '"via": "' "headers seen by the backend"
assert_contains "$body" '"x-forwarded-for": "127.0.0.1' "headers seen by the backend"
assert_contains "$body" "\"host\": \"127.0.0.1:$LISTEN_PORT\"" "Host seen by the backend"

# POST with a content-length body, then a chunked body, both echoed back.
payload='{"hello":"weft","n":42}'
echoed=$(curl -sS --max-time 10 -H 'Content-Type: application/json' --data-binary "$payload" \
    "$URL/echo") || fail "POST /echo through weft: no HTTP answer"
assert_eq "$payload" "$echoed" "POST /echo body"

head -c 100000 /dev/urandom >"$TEST_TMP/blob"
curl -sS --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMP/blob" \
    -o "$TEST_TMP/blob.back" "$URL/echo" || fail "chunked POST /echo through weft: no HTTP answer"
cmp -s "$TEST_TMP/blob" "$TEST_TMP/blob.back" || fail "chunked POST /echo body differs"

# Upstream status codes pass through.
code=$(http_status -X POST -d x "$URL/status/503")
assert_eq 503 "$code" "POST /status/503"

# Two requests on one client connection (keep-alive to the proxy).
reuse=$(curl -sS --max-time 10 -v -o /dev/null -o /dev/null "$URL/a" "$URL/b" 2>&1) ||
    fail "two GETs on one connection: no HTTP answer"
assert_contains "$reuse" "Re-using existing connection" "client keep-alive"

# Admin: metrics in Prometheus text format.
metrics=$(admin_get /stats/prometheus)
assert_contains "$metrics" "weft_" "/stats/prometheus"
grep -Eq '^weft_[a-zA-Z0-9_]+(\{[^}]*\})? [0-9]' <<<"$metrics" ||
    fail "/stats/prometheus has no weft_ sample line"

stop_weft 15
