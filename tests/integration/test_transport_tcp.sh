#!/usr/bin/env bash
# ABI 1.1 transport filters on tcp_proxy, both sides (mTLS for non-HTTP
# traffic): weft A's tcp_proxy listener forwards to a cluster whose
# transport_filters run hello_transport's client side; weft B's tcp_proxy
# listener runs its server side, then forwards the plain bytes to an HTTP
# backend. Asserts:
#   - curl -> A (tcp) -> hello handshake -> B (tcp) -> backend: 200 with the
#     backend's answer, twice (two connections: two handshakes on each side);
#   - a hello client straight to B: the server's HELLO arrives first, then
#     its HTTP request is relayed after the handshake (bytes sent in the
#     same segment as the HELLO line included);
#   - B's handshake timeout (a silent client) closes the connection;
#   - a client speaking plain HTTP to B is closed (rejected line), the
#     backend never sees it;
#   - an HTTP filter on a tcp_proxy listener is refused at load;
#   - both wefts exit 0 on SIGTERM.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
B_PORT=$(free_port)
B_ADMIN=$(free_port)
A_PORT=$(free_port)
A_ADMIN=$(free_port)
start_backend be "$BE_PORT"

cat >"$TEST_TMP/b.yaml" <<YAML
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $B_ADMIN
filter_path: [$FILTER_DIR]
listeners:
  - name: tin
    address: 127.0.0.1
    port: $B_PORT
    filters:
      - { name: hello_transport, config: { name: tcp-b, alpn: none, timeout: 500ms } }
    tcp_proxy: { cluster: be }
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
  - name: tout
    address: 127.0.0.1
    port: $A_PORT
    tcp_proxy: { cluster: tob }
clusters:
  - name: tob
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
    connect_timeout: 2s
    sni: tcp.test
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/tcp" } }
YAML

start_weft "$TEST_TMP/b.yaml"
B_PID=$WEFT_PID
start_weft "$TEST_TMP/a.yaml"
A_PID=$WEFT_PID

for i in 1 2; do
    fetch "http://127.0.0.1:$A_PORT/tcp/$i"
    assert_eq 200 "$ST" "curl through two tcp_proxies and the handshake, request $i"
    assert_contains "$BD" "\"path\": \"/tcp/$i\"" "the backend's answer"
done
ADMIN_PORT=$A_ADMIN
assert_eq 2 "$(metric 'weft_filter_hello_transport_upstream_handshakes{cluster="tob"}')" "A: client-side handshakes"
ADMIN_PORT=$B_ADMIN
assert_eq 2 "$(metric 'weft_filter_hello_transport_handshakes{listener="tin"}')" "B: server-side handshakes"
log "curl -> A tcp -> handshake -> B tcp -> backend"

H_OUT="" H_ERR=""
hello() {
    local name="$1"
    shift
    "$PYTHON" "$REPO_ROOT/tests/integration/hello_client.py" --port "$B_PORT" "$@" \
        >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" || fail "hello_client ($name) failed: $(cat "$TEST_TMP/$name.err")"
    H_OUT=$(tr -d '\r' <"$TEST_TMP/$name.out")
    H_ERR=$(cat "$TEST_TMP/$name.err")
}
hello direct --identity spiffe://c/direct --close --path /direct
assert_contains "$H_ERR" "server: HELLO tcp-b -" "B's server side speaks first on tcp_proxy"
assert_contains "$H_OUT" "HTTP/1.1 200 OK" "HTTP through B's tcp_proxy after the handshake"
assert_contains "$H_OUT" '"path": "/direct/0"' "the request reached the backend"
hello together --identity spiffe://c/direct --mode together --close --path /together
assert_contains "$H_OUT" '"path": "/together/0"' "HELLO and the request in one segment"

hello silent --mode silent
assert_contains "$H_ERR" "closed by the server" "silent client on tcp_proxy ($H_ERR)"
assert_eq 1 "$(metric 'weft_filter_hello_transport_timeouts{listener="tin"}')" "B: handshake timeouts"

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$B_PORT/plain" || true)
assert_eq 000 "$code" "plain HTTP to the handshake tcp_proxy"
assert_not_contains "$(cat "$TEST_TMP/backend-be.log")" '"/plain' "the plain request never reached the backend"
assert_eq 1 "$(metric 'weft_filter_hello_transport_rejected{listener="tin"}')" "B: rejected"

cat >"$TEST_TMP/bad.yaml" <<YAML
filter_path: [$FILTER_DIR]
listeners:
  - name: t
    address: 127.0.0.1
    port: $(free_port)
    filters: [{ name: whoami }]
    tcp_proxy: { cluster: c }
clusters: [{ name: c, endpoints: [{ address: 127.0.0.1, port: 1 }] }]
YAML
REFUSE_LOG_LINES=1 expect_refused bad "$TEST_TMP/bad.yaml" 'bad.yaml:6:15: filter "whoami"' "tcp_proxy" "transport filters only"

WEFT_PID=$A_PID
stop_weft 10
WEFT_PID=$B_PID
stop_weft 10
