#!/usr/bin/env bash
# CONNECT tunnels through weft to a TCP echo server.
#
# Asserts:
#   - HTTP/1.1 CONNECT 127.0.0.1:<echo> on a route allowing CONNECT: 200,
#     then 1 MiB of random bytes goes through the tunnel and comes back
#     unchanged; a half-close from the client ends the tunnel cleanly
#   - curl -p (proxytunnel) through weft to an HTTP backend behind a CONNECT
#     route: the backend's answer arrives through the tunnel
#   - HTTP/2 CONNECT (RFC 9113 8.5: :method CONNECT + :authority only): 200,
#     then 100 KB of DATA echoed back
#   - a listener whose routes do not allow CONNECT answers 404 (403/405
#     accepted) and never
#     connects to the echo server
#
# Config assumptions (CONNECT is not documented in docs/configuration.md
# yet): a route `match: {prefix: /, methods: [CONNECT]}` with `cluster:`
# matches CONNECT requests (authority-form target) and tunnels to an endpoint
# of that cluster; a route without CONNECT in `methods` never tunnels.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

ECHO_PORT=$(free_port)
BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
PROXY_HTTP_PORT=$(free_port)
NOCONNECT_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_tcp_echo echo "$ECHO_PORT"
start_backend plain "$BACKEND_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: tunnel
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /, methods: [CONNECT] }
            cluster: echo
  - name: tunnel-http
    address: 127.0.0.1
    port: @PROXY_HTTP_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /, methods: [CONNECT] }
            cluster: plain
  - name: noconnect
    address: 127.0.0.1
    port: @NOCONNECT_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /, methods: [GET] }
            cluster: echo
clusters:
  - name: echo
    endpoints:
      - { address: 127.0.0.1, port: @ECHO_PORT@ }
  - name: plain
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
YAML
)
start_weft "$CONFIG"

# connect_echo PORT BYTES: HTTP/1.1 CONNECT, then BYTES random bytes
# through the tunnel; prints "STATUS <line>", "ECHO ok|mismatch <n>",
# "EOF yes|no" (the tunnel closed after the client's half-close).
connect_echo() {
    "$PYTHON" - "$1" "$2" "$ECHO_PORT" <<'PY'
import os, socket, sys, threading
port, n, echo_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), 5)
s.settimeout(5)
s.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (echo_port, echo_port))
head = b""
while b"\r\n\r\n" not in head:
    d = s.recv(1)
    if not d:
        break
    head += d
print("STATUS " + head.split(b"\r\n", 1)[0].decode("latin-1"))
if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
    sys.exit(0)
data = os.urandom(n)
t = threading.Thread(target=s.sendall, args=(data,))
t.start()
got = bytearray()
try:
    while len(got) < n:
        d = s.recv(65536)
        if not d:
            break
        got += d
except socket.timeout:
    pass
t.join()
print("ECHO %s %d" % ("ok" if bytes(got) == data else "mismatch", len(got)))
s.shutdown(socket.SHUT_WR)
try:
    rest = s.recv(65536)
    print("EOF " + ("yes" if rest == b"" else "no"))
except socket.timeout:
    print("EOF no")
PY
}

log "HTTP/1.1 CONNECT to the echo server, 1 MiB"
out=$(connect_echo "$LISTEN_PORT" 1048576) || fail "CONNECT client failed"
assert_contains "$out" "STATUS HTTP/1.1 200" "CONNECT status"
assert_contains "$out" "ECHO ok 1048576" "1 MiB through the tunnel"
assert_contains "$out" "EOF yes" "tunnel end after the client's half-close"
wait_until 5 "echo server saw the tunnel end" grep -q "^DONE .* bytes=1048576" "$TEST_TMP/events-echo.log"

log "curl -p (proxytunnel) to an HTTP backend"
body=$(curl -sS --max-time 10 -p -x "http://127.0.0.1:$PROXY_HTTP_PORT" \
    "http://127.0.0.1:$BACKEND_PORT/through/tunnel") || fail "curl -p through weft failed"
assert_contains "$body" '"path": "/through/tunnel"' "answer through the CONNECT tunnel"
assert_contains "$body" '"backend": "plain"' "answer through the CONNECT tunnel"
# inside a tunnel weft does not rewrite: the backend sees curl's own request
assert_not_contains "$body" '"x-request-id"' "request inside the tunnel"

log "HTTP/2 CONNECT"
out=$(h2f "$LISTEN_PORT" connect --authority "127.0.0.1:$ECHO_PORT" --body-bytes 100000 --timeout 5)
assert_eq 200 "$(h2_status "$out" 1)" "h2 CONNECT status"
assert_contains "$out" "NOTE echo=ok bytes=100000" "100 KB through the h2 CONNECT tunnel"

log "CONNECT on a listener without a CONNECT route"
conns_before=$(events_count echo '^CONN ')
out=$(connect_echo "$NOCONNECT_PORT" 10) || fail "CONNECT client failed"
grep -Eq '^STATUS HTTP/1.1 40[345] ' <<<"$out" ||
    fail "CONNECT without a CONNECT route: want 404 (or 403/405), got: $out"
sleep 0.3
assert_eq "$conns_before" "$(events_count echo '^CONN ')" "echo connections after a refused CONNECT"

weft_alive
stop_weft 15
