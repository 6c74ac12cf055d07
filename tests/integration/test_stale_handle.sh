#!/usr/bin/env bash
# Stream handles carry a generation: a filter that kept the weft_stream *
# of request A and uses it during request B gets WEFT_ERR_HANDLE (-7) and
# B is unaffected. The test filter stale_handle keeps each request's handle
# in its worker object and, when the next request of the worker starts,
# calls weft_header_set (request headers, x-injected) and weft_request_get
# through the old handle; it reports both results in x-stale-set and
# x-stale-get (request toward the backend and response).
#   - HTTP/1.1 keep-alive: A and B on one connection (the same embedded
#     stream object): B sees -7 -7, the backend never sees x-injected;
#   - HTTP/2 (h2c prior knowledge, h2_seq.py): A and B one after the other
#     on one connection (a recycled stream object): the same;
#   - the filter's stats: refused counts every stale call, accepted is 0;
#   - SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

[[ -f "$FILTER_DIR/stale_handle.so" ]] || fail "stale_handle.so not built"
BE_PORT=$(free_port)
PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"

cat >"$TEST_TMP/weft.yaml" <<YAML
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
  - name: main
    address: 127.0.0.1
    port: $PORT
    filters:
      - { name: stale_handle }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$TEST_TMP/weft.yaml"

# two_on_one_conn LABEL [curl args]: requests /a then /b on one connection;
# checks B's answer (the second response of the transfer).
two_on_one_conn() {
    local label="$1" out b
    shift
    out=$(curl -sS --max-time 10 "$@" -D - \
        "http://127.0.0.1:$PORT/a" -o "$TEST_TMP/$label-a.body" \
        "http://127.0.0.1:$PORT/b" -o "$TEST_TMP/$label-b.body" \
        -w '%{num_connects}\n' | tr -d '\r')
    # one connection for both (the second reuses it: num_connects 0)
    assert_eq "0" "$(tail -n 1 <<<"$out")" "$label: B reused A's connection"
    b=$(cat "$TEST_TMP/$label-b.body")
    # B's response headers are the second header block
    local hb
    hb=$(awk 'BEGIN { n = 0 } /^HTTP\// { n++ } n == 2' <<<"$out")
    assert_contains "$hb" "x-stale-set: -7" "$label: header_set through A's handle during B"
    assert_contains "$hb" "x-stale-get: -7" "$label: request_get through A's handle during B"
    assert_contains "$b" '"path": "/b"' "$label: B reached the backend"
    assert_not_contains "$b" "x-injected" "$label: B's request untouched by A's handle"
    assert_contains "$b" '"x-stale-set": "-7"' "$label: B's own headers went upstream"
    log "$label: A's handle during B -> -7 -7, B unaffected"
}

two_on_one_conn h1 --http1.1

# HTTP/2: curl does not send a second request on a reused h2c connection
# here, so h2_seq.py sends A then B on one connection.
out=$("$PYTHON" "$(dirname "${BASH_SOURCE[0]}")/h2_seq.py" "$PORT" /a /b)
b=$(awk 'BEGIN { n = 0 } /^--$/ { n++; next } n == 1' <<<"$out")
assert_contains "$b" "STATUS 200" "h2: B answered"
assert_contains "$b" "x-stale-set: -7" "h2: header_set through A's handle during B"
assert_contains "$b" "x-stale-get: -7" "h2: request_get through A's handle during B"
assert_contains "$b" '"path": "/b"' "h2: B reached the backend"
assert_not_contains "$b" "x-injected" "h2: B's request untouched by A's handle"
log "h2: A's handle during B -> -7 -7, B unaffected"

refused=$(metric 'weft_filter_stale_handle_refused')
accepted=$(metric 'weft_filter_stale_handle_accepted')
# 4 requests: every one after the first tried 2 stale calls
assert_eq 6 "$refused" "stale calls refused"
assert_eq 0 "$accepted" "stale calls that worked"
kill -0 "$WEFT_PID" || fail "weft died"
stop_weft 10
