#!/usr/bin/env bash
# HTTP/2 upstream, a dead endpoint: a connect that fails sent nothing, so
# the core tries another endpoint for every request, POSTs with bodies
# included (no replay buffer, no retry filter): the body waits with the
# stream until the upstream connection is up.
#
# Asserts, on a `protocol: http2` cluster of two endpoints, one a port
# nothing listens on (connect_failure_avoid: 0s, so round robin keeps
# picking it):
#   - 20 HTTP/1.1 POSTs (small and 300 KB bodies): every one 200, the body
#     echoed intact by the live endpoint;
#   - h2load POSTs (-d, 100 requests, 10 streams at once) over h2: 100
#     succeeded, 0 failed;
#   - every failed connect counted and retried
#     (weft_upstream_rq_retry_connect_total == cx_connect_fail_total > 0).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

H2_PORT=$(free_port)
DEAD_PORT=$(free_port) # never listened on: connects are refused
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
start_h2_backend live "$H2_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 1s
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
            cluster: pair
clusters:
  - name: pair
    protocol: http2
    connect_attempts: 2
    connect_failure_avoid: 0s
    endpoints:
      - { address: 127.0.0.1, port: @DEAD_PORT@ }
      - { address: 127.0.0.1, port: @H2_PORT@ }
YAML
)
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

head -c 307200 /dev/urandom >"$TEST_TMP/big.bin"
big_sum=$(sha256sum <"$TEST_TMP/big.bin" | awk '{print $1}')
for i in $(seq 1 10); do
    out=$(curl -sS --http1.1 --max-time 10 -w '\n%{http_code}' --data-binary "body $i" "$URL/echo") ||
        fail "POST $i: no answer"
    assert_eq "body $i
200" "$out" "small POST $i through a pair with a dead endpoint"
    code=$(curl -sS --http1.1 --max-time 10 -o "$TEST_TMP/big.back" -w '%{http_code}' \
        --data-binary @"$TEST_TMP/big.bin" "$URL/echo") || fail "300 KB POST $i: no answer"
    assert_eq 200 "$code" "300 KB POST $i status"
    assert_eq "$big_sum" "$(sha256sum <"$TEST_TMP/big.back" | awk '{print $1}')" "300 KB POST $i echoed"
done

printf 'h2load body' >"$TEST_TMP/small.bin"
load=$(timeout 30 h2load -n 100 -c 1 -m 10 -d "$TEST_TMP/small.bin" "$URL/echo" 2>&1) ||
    fail "h2load did not finish: $(tail -n 5 <<<"$load")"
assert_contains "$load" "100 succeeded, 0 failed, 0 errored" "h2 POSTs through a pair with a dead endpoint"
assert_contains "$load" "status codes: 100 2xx" "h2 POSTs all 2xx"

retried=$(metric 'weft_upstream_rq_retry_connect_total{cluster="pair"}')
cfail=$(metric 'weft_upstream_cx_connect_fail_total{cluster="pair"}')
log "$cfail failed connects to the dead endpoint, $retried requests sent to the other"
((cfail >= 10)) || fail "only $cfail failed connects: the dead endpoint was not picked"
assert_eq "$cfail" "$retried" "every failed connect retried on the live endpoint"
stop_weft 5
