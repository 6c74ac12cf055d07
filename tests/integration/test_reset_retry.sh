#!/usr/bin/env bash
# The core's retry of a request whose upstream reset before any response
# byte (the request was sent: the endpoint died under it), per cluster
# (`reset_retry`), with nginx's proxy_next_upstream semantics:
#   - default (`idempotent`): a GET reset by endpoint a is sent once more to
#     b: every GET answers 200 from b, each retry counted in
#     weft_upstream_rq_retry_reset_total; a POST (not idempotent) reset by
#     a is not sent again: 503 upstream_reset_before_response;
#   - `reset_retry: unprocessed`: the same GETs reset by a are not sent
#     again (503 upstream_reset_before_response), nothing is counted as a
#     reset retry.
# Endpoint a resets (RST, no answer) every request under /d/ and /s/;
# each such request is on a fresh upstream connection (a closes every
# one), so none counts as "never processed" (a stale pooled connection).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

A_PORT=$(free_port)
B_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend a "$A_PORT" --reset-prefix /d/ --reset-prefix /s/
start_backend b "$B_PORT"

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
          - match: { prefix: /d/ }
            cluster: dflt
          - match: { prefix: /s/ }
            cluster: strict
clusters:
  - name: dflt
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @B_PORT@ }
  - name: strict
    reset_retry: unprocessed
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @B_PORT@ }
YAML
)
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

dump=$(admin_get /config_dump)
assert_contains "$dump" "reset_retry: \"idempotent\"" "config_dump: the default"
assert_contains "$dump" "reset_retry: \"unprocessed\"" "config_dump: the strict cluster"

# Default: GETs reset by a go to b.
rqloop "$URL/d/x" --count 8 >"$TEST_TMP/d.txt"
ok=$(awk '$2 == "200" && $3 == "b"' "$TEST_TMP/d.txt" | wc -l)
assert_eq 8 "$ok" "GETs answered by b (default reset_retry: idempotent): $(tr '\n' ';' <"$TEST_TMP/d.txt")"
d_retries=$(metric 'weft_upstream_rq_retry_reset_total{cluster="dflt"}')
((d_retries >= 2)) || fail "only $d_retries reset retries on the default cluster (a reset half the GETs)"

# Default: POSTs reset by a are not sent again.
rqloop "$URL/d/p" --count 8 --method POST >"$TEST_TMP/dp.txt"
bad=$(awk '$2 == "503" && $4 == "upstream_reset_before_response"' "$TEST_TMP/dp.txt" | wc -l)
good=$(awk '$2 == "200" && $3 == "b"' "$TEST_TMP/dp.txt" | wc -l)
((bad >= 2)) || fail "POSTs reset by a: $bad answered 503 (want the ones a reset): $(tr '\n' ';' <"$TEST_TMP/dp.txt")"
assert_eq 8 "$((bad + good))" "POSTs either reset (503) or answered by b"
assert_eq "$d_retries" "$(metric 'weft_upstream_rq_retry_reset_total{cluster="dflt"}')" \
    "no POST sent again"

# reset_retry: unprocessed: GETs reset by a are not sent again.
rqloop "$URL/s/x" --count 8 >"$TEST_TMP/s.txt"
bad=$(awk '$2 == "503" && $4 == "upstream_reset_before_response"' "$TEST_TMP/s.txt" | wc -l)
good=$(awk '$2 == "200" && $3 == "b"' "$TEST_TMP/s.txt" | wc -l)
((bad >= 2)) || fail "reset_retry: unprocessed: $bad GETs answered 503 (want the ones a reset): $(tr '\n' ';' <"$TEST_TMP/s.txt")"
assert_eq 8 "$((bad + good))" "GETs either reset (503) or answered by b"
assert_eq 0 "$(metric 'weft_upstream_rq_retry_reset_total{cluster="strict"}')" \
    "reset retries with reset_retry: unprocessed"
stop_weft 5
