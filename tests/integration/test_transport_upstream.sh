#!/usr/bin/env bash
# ABI 1.1 upstream transport filters, weft -> weft: weft A's clusters carry
# transport_filters (hello_transport's client side: it writes first, with
# the cluster's sni:) toward weft B, whose listener runs hello_transport's
# server side and whoami. Asserts:
#   - a request through A reaches the backend through B: B saw A's
#     identity and SNI (whoami's x-peer-identity, x-conn-sni), and treated
#     the connection as TLS (X-Forwarded-Proto: https at the backend);
#   - two clusters to the SAME endpoint with different sni/identity use
#     different upstream connections, each reused for keep-alive: after
#     3 + 3 requests B accepted exactly 2 handshake connections, A counted
#     one upstream connection per cluster;
#   - a cluster without transport filters to the same endpoint does not
#     share them either (B's HELLO is no HTTP response: 502 at A);
#   - an http2 cluster speaks HTTP/2 over the filters to a listener whose
#     handshake picked ALPN h2 (one connection for two requests); a server
#     answering ALPN http/1.1 to an h2-only cluster is refused (503);
#   - `protocol: auto` follows ALPN: toward B's h2 listener the first
#     request (a POST with a body) goes out as HTTP/2 once the handshake of
#     the HTTP/1.1 connection it was prepared for picked h2 (body echoed
#     whole), and later requests to that endpoint go straight to one
#     multiplexed HTTP/2 connection (2 upstream connections for 4
#     requests); toward B's http/1.1 listener it stays HTTP/1.1;
#   - HTTP/2 over transport filters sends :scheme https when the handshake
#     says TLS, http when it does not (h2_backend.py --hello reports it);
#   - a transport-filter cluster to a plain HTTP backend never completes the
#     handshake: 503 at A (connect failure), nothing sent as a request;
#   - an upstream handshake that stalls (B's listener never answers) ends
#     with the cluster's connect timeout: 503;
#   - an HTTP filter in transport_filters, or sni: without
#     transport_filters, is refused at load with file:line:col;
#   - both wefts exit 0 on SIGTERM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
B_PORT=$(free_port)
B_ADMIN=$(free_port)
B2_PORT=$(free_port)
A_PORT=$(free_port)
A_ADMIN=$(free_port)
SILENT_PORT=$(free_port)
H2H_PORT=$(free_port)
start_backend be "$BE_PORT"
"$PYTHON" -c 'import h2' 2>/dev/null || fail "$PYTHON lacks h2 (run scripts/setup.sh)"
"$PYTHON" "$REPO_ROOT/tests/integration/h2_backend.py" --port "$H2H_PORT" --name h2hello \
    --hello h2hello --events "$TEST_TMP/events-h2hello.log" >"$TEST_TMP/backend-h2hello.log" 2>&1 &
track_pid $!
wait_until 10 "the hello h2 backend listens" bash -c "exec 3<>/dev/tcp/127.0.0.1/$H2H_PORT"

# A socket that accepts and never answers (a stalled handshake).
"$PYTHON" -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$SILENT_PORT" &
track_pid $!

route() { echo "virtual_hosts: [{ name: default, domains: [\"*\"], routes: [$1] }]"; }

cat >"$TEST_TMP/b.yaml" <<YAML
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $B_ADMIN
filter_path: [$FILTER_DIR]
listeners:
  - name: in
    address: 127.0.0.1
    port: $B_PORT
    filters:
      - { name: hello_transport, config: { name: weft-b, timeout: 2s } }
      - { name: whoami }
    $(route '{ match: { prefix: / }, cluster: be }')
  - name: in2
    address: 127.0.0.1
    port: $B2_PORT
    filters:
      - { name: hello_transport, config: { name: weft-b2, alpn: h2 } }
      - { name: whoami }
    $(route '{ match: { prefix: / }, cluster: be }')
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML

cat >"$TEST_TMP/a.yaml" <<YAML
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $A_ADMIN
filter_path: [$FILTER_DIR]
listeners:
  - name: edge
    address: 127.0.0.1
    port: $A_PORT
    $(route '{ match: { prefix: /one }, cluster: one },
             { match: { prefix: /two }, cluster: two },
             { match: { prefix: /plainb }, cluster: plain_to_b },
             { match: { prefix: /tobackend }, cluster: hello_to_backend },
             { match: { prefix: /stall }, cluster: stall },
             { match: { prefix: /h2mismatch }, cluster: h2_to_h1 },
             { match: { prefix: /auto2/ }, cluster: auto_h2, prefix_rewrite: / },
             { match: { prefix: /scheme-tls/ }, cluster: h2hello_tls, prefix_rewrite: / },
             { match: { prefix: /scheme-plain/ }, cluster: h2hello_plain, prefix_rewrite: / },
             { match: { prefix: /auto1/ }, cluster: auto_h1, prefix_rewrite: / },
             { match: { prefix: /h2 }, cluster: h2b }')
clusters:
  - name: one
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
    sni: one.test
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/one" } }
  - name: two
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
    sni: two.test
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/two" } }
  - name: plain_to_b
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
    connect_attempts: 1
  - name: hello_to_backend
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
    connect_attempts: 1
    transport_filters:
      - { name: hello_transport }
  - name: h2b
    endpoints: [{ address: 127.0.0.1, port: $B2_PORT }]
    protocol: http2
    sni: h2.test
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/h2" } }
  - name: h2hello_tls
    endpoints: [{ address: 127.0.0.1, port: $H2H_PORT }]
    protocol: http2
    transport_filters:
      - { name: hello_transport }
  - name: h2hello_plain
    endpoints: [{ address: 127.0.0.1, port: $H2H_PORT }]
    protocol: auto
    transport_filters:
      - { name: hello_transport, config: { tls: false } }
  - name: auto_h2
    endpoints: [{ address: 127.0.0.1, port: $B2_PORT }]
    protocol: auto
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/auto" } }
  - name: auto_h1
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
    protocol: auto
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/auto1" } }
  - name: h2_to_h1
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
    protocol: http2
    connect_attempts: 1
    transport_filters:
      - { name: hello_transport }
  - name: stall
    endpoints: [{ address: 127.0.0.1, port: $SILENT_PORT }]
    connect_timeout: 400ms
    connect_attempts: 1
    transport_filters:
      - { name: hello_transport, config: { timeout: 10s } }
YAML

start_weft "$TEST_TMP/b.yaml"
B_PID=$WEFT_PID
start_weft "$TEST_TMP/a.yaml"
A_PID=$WEFT_PID

for i in 1 2 3; do
    fetch "http://127.0.0.1:$A_PORT/one/$i"
    assert_eq 200 "$ST" "cluster one, request $i: status ($BD)"
    assert_eq "spiffe://a/one" "$(hdr x-peer-identity)" "cluster one: the identity B saw"
    assert_eq one.test "$(hdr x-conn-sni)" "cluster one: the SNI B saw"
    assert_eq true "$(hdr x-peer-tls)" "cluster one: B's connection is TLS"
    assert_contains "$BD" '"x-forwarded-proto": "https"' "cluster one: X-Forwarded-Proto at the backend"
    fetch "http://127.0.0.1:$A_PORT/two/$i"
    assert_eq 200 "$ST" "cluster two, request $i: status"
    assert_eq "spiffe://a/two" "$(hdr x-peer-identity)" "cluster two: the identity B saw"
    assert_eq two.test "$(hdr x-conn-sni)" "cluster two: the SNI B saw"
done
log "two clusters, one endpoint, different SNI: 6 requests"

ADMIN_PORT=$B_ADMIN
assert_eq 2 "$(metric 'weft_filter_hello_transport_connections{listener="in"}')" "B accepted one connection per cluster"
assert_eq 2 "$(metric 'weft_filter_hello_transport_handshakes{listener="in"}')" "B: handshakes"
ADMIN_PORT=$A_ADMIN
assert_eq 1 "$(metric 'weft_filter_hello_transport_upstream_connections{cluster="one"}')" "A: cluster one connections"
assert_eq 1 "$(metric 'weft_filter_hello_transport_upstream_connections{cluster="two"}')" "A: cluster two connections"
assert_eq 1 "$(metric 'weft_filter_hello_transport_upstream_handshakes{cluster="one"}')" "A: cluster one handshakes"

# HTTP/2 over the transport filters: B's listener in2 picks ALPN h2, so
# only an HTTP/2 client gets through it.
for i in 1 2; do
    fetch "http://127.0.0.1:$A_PORT/h2/$i"
    assert_eq 200 "$ST" "http2 cluster over the handshake, request $i ($BD)"
    assert_eq "spiffe://a/h2" "$(hdr x-peer-identity)" "http2 cluster: the identity B saw"
    assert_eq h2.test "$(hdr x-conn-sni)" "http2 cluster: the SNI B saw"
    assert_contains "$BD" '"path": "/h2/'"$i"'"' "http2 cluster: the backend's answer"
done
assert_eq 1 "$(metric 'weft_filter_hello_transport_upstream_connections{cluster="h2b"}')" "A: one multiplexed HTTP/2 connection"
# An http2 cluster whose server picks http/1.1: the client side refuses it.
fetch "http://127.0.0.1:$A_PORT/h2mismatch/x"
assert_eq 503 "$ST" "ALPN http/1.1 offered h2 only"
log "HTTP/2 upstream over the transport filters; ALPN mismatch refused"

# protocol auto: ALPN h2 moves the request (and the endpoint) to HTTP/2.
fetch --data-binary 'auto body to h2' "http://127.0.0.1:$A_PORT/auto2/echo"
assert_eq 200 "$ST" "protocol auto, ALPN h2: the first request (a POST) ($BD)"
assert_eq "auto body to h2" "$BD" "protocol auto, ALPN h2: the POST body echoed"
for i in 1 2 3; do
    fetch "http://127.0.0.1:$A_PORT/auto2/get/$i"
    assert_eq 200 "$ST" "protocol auto, ALPN h2: request $i"
    assert_eq "spiffe://a/auto" "$(hdr x-peer-identity)" "protocol auto: the identity B saw"
done
assert_eq 2 "$(metric 'weft_filter_hello_transport_upstream_connections{cluster="auto_h2"}')" \
    "protocol auto, ALPN h2: the HTTP/1.1 connection that learned h2, then one HTTP/2 connection"
for i in 1 2; do
    fetch "http://127.0.0.1:$A_PORT/auto1/get/$i"
    assert_eq 200 "$ST" "protocol auto, ALPN http/1.1: request $i"
done
assert_eq 1 "$(metric 'weft_filter_hello_transport_upstream_connections{cluster="auto_h1"}')" \
    "protocol auto, ALPN http/1.1: one keep-alive HTTP/1.1 connection"
log "protocol auto follows ALPN (h2 and http/1.1)"

# :scheme over transport filters follows the handshake's TLS flag.
for i in 1 2; do
    fetch "http://127.0.0.1:$A_PORT/scheme-tls/s/$i"
    assert_eq 200 "$ST" "http2 over a TLS handshake, request $i ($BD)"
    assert_contains "$BD" '"scheme": "https"' ":scheme over a TLS handshake"
    fetch "http://127.0.0.1:$A_PORT/scheme-plain/s/$i"
    assert_eq 200 "$ST" "protocol auto over a non-TLS handshake picking h2, request $i ($BD)"
    assert_contains "$BD" '"scheme": "http"' ":scheme over a non-TLS handshake"
done
log ":scheme https over TLS handshakes, http otherwise"

# A plain cluster to B: no HELLO from A; B's HELLO line is no HTTP
# response (502), and B's filter refuses the request line.
fetch "http://127.0.0.1:$A_PORT/plainb/x"
assert_eq 502 "$ST" "plain cluster to the handshake listener"
ADMIN_PORT=$B_ADMIN
assert_eq 5 "$(metric 'weft_filter_hello_transport_connections{listener="in"}')" "the plain cluster opened its own connection (one, two, h2_to_h1, auto_h1, plain)"
assert_eq 1 "$(metric 'weft_filter_hello_transport_rejected{listener="in"}')" "B rejected the plain request line"

# The client side toward a plain HTTP server: no HELLO back: 503.
ADMIN_PORT=$A_ADMIN
fetch "http://127.0.0.1:$A_PORT/tobackend/x"
assert_eq 503 "$ST" "handshake against a plain backend"
assert_not_contains "$(cat "$TEST_TMP/backend-be.log")" "/tobackend" "no request reached the plain backend"

# A stalled handshake: the connect timeout (400ms) ends it.
t0=$(date +%s%N)
fetch "http://127.0.0.1:$A_PORT/stall/x"
t1=$(date +%s%N)
assert_eq 503 "$ST" "stalled upstream handshake"
ms=$(((t1 - t0) / 1000000))
((ms >= 350 && ms < 5000)) || fail "stalled handshake answered after ${ms}ms, want ~400ms"
assert_eq 1 "$(metric 'weft_upstream_cx_connect_timeout_total{cluster="stall"}')" "connect timeout counted"
log "stalled handshake: 503 after ${ms}ms"

# Refusals at load.
cat >"$TEST_TMP/bad1.yaml" <<YAML
filter_path: [$FILTER_DIR]
listeners: [{ name: l, address: 127.0.0.1, port: $(free_port), $(route '{ match: { prefix: / }, cluster: c }') }]
clusters:
  - name: c
    endpoints: [{ address: 127.0.0.1, port: 1 }]
    transport_filters:
      - { name: whoami }
YAML
REFUSE_LOG_LINES=1 expect_refused bad1 "$TEST_TMP/bad1.yaml" 'bad1.yaml:7:9: filter "whoami"' 'cluster "c"' "an HTTP filter"
cat >"$TEST_TMP/bad2.yaml" <<YAML
listeners: [{ name: l, address: 127.0.0.1, port: $(free_port), $(route '{ match: { prefix: / }, cluster: c }') }]
clusters:
  - name: c
    endpoints: [{ address: 127.0.0.1, port: 1 }]
    sni: x.test
YAML
expect_refused bad2 "$TEST_TMP/bad2.yaml" "bad2.yaml:5:5" "no transport_filters"

WEFT_PID=$A_PID
stop_weft 10
WEFT_PID=$B_PID
stop_weft 10
