#!/usr/bin/env bash
# WebSocket (HTTP/1.1 Upgrade) tunnels through weft.
#
# Asserts:
#   - a websockets client through weft to a websockets echo server: text
#     echo, binary echo, a 1 MiB binary message, ping/pong, and the close
#     handshake (1000 "bye" comes back, and the server logged the same close)
#   - idle tunnel timeout: on a route with idle_timeout 1s, a tunnel with no
#     traffic is closed by weft after 0.5..3 s
#   - a non-WebSocket Upgrade (Upgrade: foo/1) to an HTTP/1.1 backend that
#     does not switch: the normal 200 response passes, and the client
#     connection stays usable for a second request
#   - a WebSocket handshake to that backend: its 200 reaches the client
#     (handshake refused), weft still serves afterwards
#
# Config assumptions: weft forwards Upgrade/Connection: upgrade on a
# matching `cluster` route (no route key needed) and, on a 101 from the
# upstream, tunnels bytes both ways; a route's idle_timeout (else the
# listener's stream_idle_timeout) applies to a tunnel with no bytes either way.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

WS_PORT=$(free_port)
BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_ws_backend wsb "$WS_PORT"
start_backend plain "$BACKEND_PORT"

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
          - match: { prefix: /ws }
            cluster: wsb
          - match: { prefix: /idle }
            cluster: wsb
            idle_timeout: 1s
          - match: { prefix: / }
            cluster: plain
clusters:
  - name: wsb
    endpoints:
      - { address: 127.0.0.1, port: @WS_PORT@ }
  - name: plain
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
YAML
)
start_weft "$CONFIG"
P="$LISTEN_PORT"
wsc() { "$PYTHON" "$H2_DIR/ws_client.py" "$@" || fail "ws_client.py could not run"; }

log "echo through the tunnel"
out=$(wsc "ws://127.0.0.1:$P/ws/echo" echo)
assert_contains "$out" "OK text" "WebSocket text echo"
assert_contains "$out" "OK binary" "WebSocket binary echo"
assert_contains "$out" "OK big bytes=1048576" "WebSocket 1 MiB message"
assert_contains "$out" "OK ping" "WebSocket ping/pong"
assert_contains "$out" "OK close code=1000 reason=bye" "WebSocket close handshake"
assert_not_contains "$out" "FAIL" "WebSocket session"
wait_until 5 "the server logged the close" grep -q '^CLOSE code=1000 reason=bye' "$TEST_TMP/events-wsb.log"
assert_contains "$(cat "$TEST_TMP/events-wsb.log")" "OPEN /ws/echo upgrade=websocket" "server side of the tunnel"
assert_contains "$(cat "$TEST_TMP/events-wsb.log")" "MSG binary 1048576" "server side of the tunnel"

log "idle tunnel closed by the route idle_timeout (1s)"
out=$(wsc "ws://127.0.0.1:$P/idle" idle --wait 6)
assert_contains "$out" "CLOSED_BY_PEER" "idle WebSocket tunnel"
after=$(sed -n 's/^CLOSED_BY_PEER after=\([0-9.]*\).*/\1/p' <<<"$out")
if ! float_lt 0.5 "$after" || ! float_lt "$after" 3; then
    fail "idle tunnel closed after ${after}s (idle_timeout 1s)"
fi

log "non-WebSocket Upgrade to a backend that does not switch"
out=$(curl -sS --http1.1 --max-time 10 -v -H 'Connection: Upgrade' -H 'Upgrade: foo/1' \
    -o "$TEST_TMP/u1" -o "$TEST_TMP/u2" -w '%{http_code}\n' \
    "http://127.0.0.1:$P/plain/one" "http://127.0.0.1:$P/plain/two" 2>&1) ||
    fail "Upgrade: foo/1 request failed: $(tail -n 5 <<<"$out")"
assert_eq "200
200" "$(grep -E '^[0-9]{3}$' <<<"$out")" "statuses of two Upgrade: foo/1 requests"
assert_contains "$(cat "$TEST_TMP/u1")" '"path": "/plain/one"' "first response body"
assert_contains "$(cat "$TEST_TMP/u2")" '"path": "/plain/two"' "second response body"
assert_contains "$out" "Re-using existing connection" "client connection after a refused Upgrade"

log "WebSocket handshake refused by the backend"
out=$(wsc "ws://127.0.0.1:$P/plain/ws" echo)
assert_contains "$out" "HANDSHAKE_FAILED" "WebSocket handshake to a plain HTTP backend"
assert_contains "$out" "200" "the backend's status reaches the client"
h1_get_ok "$P" /plain/after

weft_alive
stop_weft 15
