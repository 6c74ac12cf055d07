#!/usr/bin/env bash
# gRPC through weft: grpcio client (insecure channel to weft) -> weft ->
# grpcio server (generic handlers, raw bytes) on a `protocol: http2` cluster.
#
# Asserts:
#   - unary (1 KB and 1 MB), server-streaming (100 messages in order),
#     client-streaming (50 messages: count, size and sha256 agree), bidi
#     (20 ping-pongs): all OK
#   - deadline: Sleep 2000 ms with a 0.5 s client deadline ->
#     DEADLINE_EXCEEDED in under 1.5 s; weft's access log has the call with
#     response_flags UT (weft's own grpc-timeout) or DC (client cancel) and
#     duration 400..1500 ms; the backend saw the call cancelled (weft reset
#     the upstream stream) well before its 2000 ms
#   - server error: INVALID_ARGUMENT "bad input: x=42 y" arrives unchanged
#     (trailers passed through); access log grpc_status 3
#   - weft's own replies are Trailers-Only gRPC: direct_response 503
#     "maintenance" -> UNAVAILABLE "maintenance"; a cluster with no
#     endpoints -> UNAVAILABLE
#   - grpc-timeout honoured as the route timeout: a raw h2 gRPC request with
#     grpc-timeout: 300m (route timeout 10s) to a backend that answers after
#     3 s -> HTTP 200 + grpc-status 4 (DEADLINE_EXCEEDED) after 0.25..1.0 s
#   - every access-log line is JSON without duplicate keys
#
# Config assumptions: cluster `protocol: http2`; gRPC requests are those
# with content-type application/grpc*; the access log has "grpc_status" for
# gRPC requests when a status is known.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

GRPC_PORT=$(free_port)
SLOW_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
ACCESS_LOG="$TEST_TMP/access.log"

start_grpc_backend grpcb "$GRPC_PORT"
start_h2_backend slow "$SLOW_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: @ACCESS_LOG@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /weft.test.Down/ }
            direct_response: { status: 503, body: "maintenance\n" }
          - match: { prefix: /weft.test.Empty/ }
            cluster: empty
          - match: { prefix: /raw/ }
            cluster: slow
            prefix_rewrite: /
            timeout: 10s
          - match: { prefix: / }
            cluster: grpcb
            timeout: 10s
clusters:
  - name: grpcb
    protocol: http2
    endpoints:
      - { address: 127.0.0.1, port: @GRPC_PORT@ }
  - name: slow
    protocol: http2
    endpoints:
      - { address: 127.0.0.1, port: @SLOW_PORT@ }
  - name: empty
    protocol: http2
    endpoints: []
YAML
)
start_weft "$CONFIG"
P="$LISTEN_PORT"

gc() { "$PYTHON" "$H2_DIR/grpc_client.py" "$P" "$@" || fail "grpc_client.py $1 could not run"; }

# assert_ok OUTPUT WHAT: the client printed OK.
assert_ok() { [[ "$1" == "OK "* ]] || fail "$2: $1"; }

log "unary, streaming, bidi"
assert_ok "$(gc unary --bytes 1000)" "unary 1 KB"
assert_ok "$(gc unary --bytes 1048576)" "unary 1 MB"
out=$(gc server-stream --count 100)
assert_ok "$out" "server-streaming"
assert_contains "$out" "messages=100" "server-streaming"
assert_ok "$(gc client-stream --count 50 --bytes 1000)" "client-streaming"
out=$(gc bidi --count 20)
assert_ok "$out" "bidi"
assert_contains "$out" "echoed=20" "bidi"

log "deadline exceeded (server sleeps 2 s, client deadline 0.5 s)"
out=$(gc sleep --arg 2000 --timeout 0.5)
assert_contains "$out" "STATUS DEADLINE_EXCEEDED " "client deadline"
el=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$out")
float_lt "$el" 1.5 || fail "DEADLINE_EXCEEDED only after ${el}s"
wait_until 5 "access log line for Sleep" grep -q '"path":"/weft.test.Echo/Sleep"' "$ACCESS_LOG"
flags=$(access_log_field "$ACCESS_LOG" /weft.test.Echo/Sleep response_flags)
# Whoever sees the deadline first answers: weft (UT), the client's cancel
# (DC), or the upstream's own DEADLINE_EXCEEDED passed through (grpc_status 4).
gstatus=$(access_log_field "$ACCESS_LOG" /weft.test.Echo/Sleep grpc_status)
[[ "$flags" == *UT* || "$flags" == *DC* || "$gstatus" == 4 ]] ||
    fail "access log of the expired call: flags [$flags] grpc_status [$gstatus], want UT, DC or grpc_status 4"
dur=$(access_log_field "$ACCESS_LOG" /weft.test.Echo/Sleep duration_ms)
if ! float_lt 400 "$dur" || ! float_lt "$dur" 1500; then
    fail "access log duration of the expired call: ${dur} ms"
fi
wait_until 3 "backend sees the expired call cancelled" grep -q '^CANCELLED Sleep' "$TEST_TMP/events-grpcb.log"
after=$(sed -n 's/^CANCELLED Sleep after_ms=//p' "$TEST_TMP/events-grpcb.log" | head -n 1)
((after < 1500)) || fail "the upstream call was cancelled only after ${after} ms"

log "server error status and message"
out=$(gc fail --arg 'x=42 y')
assert_contains "$out" "STATUS INVALID_ARGUMENT " "server error code"
assert_contains "$out" "details=bad input: x=42 y" "server error message"
wait_until 5 "access log line for Fail" grep -q '"path":"/weft.test.Echo/Fail"' "$ACCESS_LOG"
assert_eq 3 "$(access_log_field "$ACCESS_LOG" /weft.test.Echo/Fail grpc_status)" "access log grpc_status of Fail"

log "weft's own replies to gRPC requests"
out=$(gc call --service weft.test.Down --arg Anything)
assert_contains "$out" "STATUS UNAVAILABLE " "direct_response 503 to a gRPC call"
assert_contains "$out" "details=maintenance" "direct_response body as grpc-message"
out=$(gc call --service weft.test.Empty --arg Anything)
assert_contains "$out" "STATUS UNAVAILABLE " "no healthy upstream for a gRPC call"

log "grpc-timeout 300m honoured (route timeout 10s, backend answers after 3s)"
out=$(h2f "$P" grpc-unary --path /raw/delay/3000 --value 300m --timeout 5)
assert_eq 200 "$(h2_status "$out" 1)" "HTTP status of a timed-out gRPC call"
assert_eq 4 "$(h2_header "$out" 1 grpc-status)" "grpc-status of a timed-out gRPC call"
el=$(h2_end_field "$out" elapsed)
# END includes the 0.3 s linger after the stream ended
if ! float_lt 0.25 "$el" || ! float_lt "$el" 1.3; then
    fail "grpc-timeout 300m: answered after ${el}s"
fi

log "access log: JSON lines without duplicate keys"
"$PYTHON" -c '
import json, sys
def no_dups(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError("duplicate keys %s" % dup)
    return dict(pairs)
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        json.loads(line, object_pairs_hook=no_dups)
    except ValueError as e:
        sys.exit("access log line %d: %s: %s" % (n, e, line.strip()[:300]))
' "$ACCESS_LOG" || fail "access log is not clean JSON"

weft_alive
stop_weft 15
