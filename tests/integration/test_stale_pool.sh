#!/usr/bin/env bash
# Pooled upstream connections the server has closed.
#   1. A backend that closes keep-alive connections idle for 200ms; requests
#      500ms apart (client keep-alive, one worker): every one succeeds, on a
#      new upstream connection each time; a POST in the same situation
#      succeeds and reaches the backend once.
#   2. A backend that reads the 2nd request on a connection and closes it
#      unanswered (the race where the server closes a pooled connection
#      under a request): a GET is re-sent once on a fresh connection
#      (weft_upstream_rq_retry_stale_total + 1) and succeeds; a POST with a
#      body is not re-sent: 503 upstream_reset_before_response, and the
#      backend saw it exactly once.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

IDLE_PORT=$(free_port)
DROP_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend idle "$IDLE_PORT" --idle-close-ms 200 --request-log "$TEST_TMP/idle.requests"
start_backend drop "$DROP_PORT" --drop-reused --request-log "$TEST_TMP/drop.requests"

CONFIG=$(render_config - <<'YAML'
workers: 1
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
          - { match: { prefix: /idle/ }, cluster: idle, prefix_rewrite: / }
          - { match: { prefix: /drop/ }, cluster: drop, prefix_rewrite: / }
clusters:
  - name: idle
    pool_idle_timeout: 60s
    endpoints:
      - { address: 127.0.0.1, port: @IDLE_PORT@ }
  - name: drop
    pool_idle_timeout: 60s
    endpoints:
      - { address: 127.0.0.1, port: @DROP_PORT@ }
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# seen FILE LINE: how many times the backend read exactly LINE.
seen() { grep -cxF -- "$2" "$1" || true; }

# ---- 1. server closes idle connections after 200ms ------------------------
cx0=$(metric 'weft_upstream_cx_total{cluster="idle"}')
out="$TEST_TMP/idle.txt"
rqloop "$URL/idle/x" --count 6 --interval-ms 500 >"$out"
bad=$(awk '$2 != "200"' "$out")
[[ -z "$bad" ]] || fail "requests 500ms apart to a server closing idle connections failed: $bad"
cx1=$(metric 'weft_upstream_cx_total{cluster="idle"}')
stale1=$(metric 'weft_upstream_rq_retry_stale_total{cluster="idle"}')
log "idle-closing server: 6/6 ok, upstream connections opened: $((cx1 - cx0)), stale retries: $stale1"
# Each request needed a live connection: a new one, or a retry after
# finding the pooled one dead.
((cx1 - cx0 + stale1 >= 6)) ||
    fail "6 requests over connections the server closed after 200ms, but only $((cx1 - cx0)) connections opened and $stale1 stale retries"

# A POST after the pooled connection was closed: sent once, on a new one.
sleep 0.5
code=$(http_status --data-binary 'payload-1' "$URL/idle/post-idle")
assert_eq 200 "$code" "POST after the server closed the pooled connection"
assert_eq 1 "$(seen "$TEST_TMP/idle.requests" "POST /post-idle")" "times the idle backend read the POST"

# ---- 2. server drops the 2nd request on a connection ------------------------
stale0=$(metric 'weft_upstream_rq_retry_stale_total{cluster="drop"}')
assert_eq 200 "$(http_status "$URL/drop/g1")" "first GET (fresh upstream connection)"
sleep 0.2
hdr=$(curl -s --max-time 10 -D - -o /dev/null "$URL/drop/g2" | tr -d '\r' | tr '[:upper:]' '[:lower:]')
assert_contains "$hdr" "http/1.1 200" "GET on a pooled connection the server drops (re-sent on a fresh one)"
stale1=$(metric 'weft_upstream_rq_retry_stale_total{cluster="drop"}')
assert_eq "$((stale0 + 1))" "$stale1" 'weft_upstream_rq_retry_stale_total{cluster="drop"} after the dropped GET'
assert_eq 2 "$(seen "$TEST_TMP/drop.requests" "GET /g2")" "times the backend read the re-sent GET (dropped + answered)"

# The pool now holds the fresh connection (one request served). A POST with
# a body on it is read and dropped by the server: weft cannot know whether
# the server acted on it, so it must not send it again.
sleep 0.2
hdr=$(curl -s --max-time 10 -D - -o /dev/null --data-binary 'payload-2' "$URL/drop/p1" |
    tr -d '\r' | tr '[:upper:]' '[:lower:]')
sleep 0.3
n=$(seen "$TEST_TMP/drop.requests" "POST /p1")
assert_eq 1 "$n" "times the backend read the POST (a POST must not be re-sent)"
assert_contains "$hdr" "http/1.1 503" "POST on a pooled connection the server drops"
assert_contains "$hdr" "x-weft-reason: upstream_reset_before_response" "POST dropped by the server"
assert_eq "$stale1" "$(metric 'weft_upstream_rq_retry_stale_total{cluster="drop"}')" \
    "stale retries after the dropped POST (must not retry)"
line=$(grep '"path":"/drop/p1"' "$WEFT_LOG" | tail -n 1)
assert_contains "$(jq -r .response_flags <<<"$line")" UC "access log response_flags of the dropped POST"

# A chunked POST is not replayed either.
sleep 0.2
assert_eq 200 "$(http_status "$URL/drop/g3")" "GET to refill the pool"
sleep 0.2
code=$(http_status -H 'Transfer-Encoding: chunked' --data-binary 'payload-3' "$URL/drop/p2")
sleep 0.3
assert_eq 1 "$(seen "$TEST_TMP/drop.requests" "POST /p2")" "times the backend read the chunked POST"
assert_eq 503 "$code" "chunked POST on a pooled connection the server drops"

stop_weft 15
