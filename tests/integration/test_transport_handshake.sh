#!/usr/bin/env bash
# ABI 1.1 transport filters on a listener: hello_transport (a toy handshake:
# the server speaks first, then waits for the client's HELLO line) and the
# http filter whoami. Asserts:
#   - the server's "HELLO srv http/1.1" arrives before the client sent a
#     byte (weft_connection_write from connection_create);
#   - after the client's HELLO, two pipelined HTTP/1.1 requests get 200 with
#     the identity and SNI from handshake_done (x-peer-identity, x-conn-sni,
#     x-peer-tls true) and the backend saw X-Forwarded-Proto: https (h1
#     streams learn TLS from the connection);
#   - the HELLO line and the requests in one segment work too (bytes held
#     until the handshake is done, then fed to the codec);
#   - ALPN h2 from handshake_done selects HTTP/2 (python h2 client);
#   - tls: false -> X-Forwarded-Proto: http;
#   - a client that never answers is closed by the filter's timer (timeout
#     500ms) and counted; a bad line is rejected (-1) and closed;
#   - BYE: the filter writes "BYE" and closes with flush: the client reads
#     it; RST: closed without flush;
#   - a filter error after the handshake (on_read -1) closes cleanly, and
#     weft keeps serving;
#   - a plain listener's whoami: x-original-dst 127.0.0.1:<its port>,
#     x-conn-sni none;
#   - SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
HELLO_PORT=$(free_port)
H2_PORT=$(free_port)
NOTLS_PORT=$(free_port)
FAIL_PORT=$(free_port)
PLAIN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
IDENTITY="spiffe://weft.test/ns/default/sa/hello-client"
start_backend be "$BE_PORT"

route='virtual_hosts: [{ name: default, domains: ["*"], routes: [{ match: { prefix: / }, cluster: be }] }]'
cat >"$TEST_TMP/weft.yaml" <<YAML
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
  - name: hello
    address: 127.0.0.1
    port: $HELLO_PORT
    filters:
      - { name: hello_transport, config: { name: srv, timeout: 500ms } }
      - { name: whoami }
    $route
  - name: helloh2
    address: 127.0.0.1
    port: $H2_PORT
    filters:
      - { name: hello_transport, config: { name: srv2, alpn: h2 } }
      - { name: whoami }
    $route
  - name: notls
    address: 127.0.0.1
    port: $NOTLS_PORT
    filters:
      - { name: hello_transport, config: { tls: false } }
      - { name: whoami }
    $route
  - name: failing
    address: 127.0.0.1
    port: $FAIL_PORT
    filters:
      - { name: hello_transport, config: { fail_after_handshake: true } }
      - { name: whoami }
    $route
  - name: plain
    address: 127.0.0.1
    port: $PLAIN_PORT
    filters:
      - { name: whoami }
    $route
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$TEST_TMP/weft.yaml"

# hello NAME PORT [hello_client.py options...]: stdout (CR stripped) in
# H_OUT, stderr in H_ERR.
H_OUT="" H_ERR=""
hello() {
    local name="$1" port="$2"
    shift 2
    "$PYTHON" "$REPO_ROOT/tests/integration/hello_client.py" --port "$port" "$@" \
        >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" || fail "hello_client ($name) failed: $(cat "$TEST_TMP/$name.err")"
    H_OUT=$(tr -d '\r' <"$TEST_TMP/$name.out")
    H_ERR=$(cat "$TEST_TMP/$name.err")
}
h_hdr() { awk -F': ' -v n="$1" 'tolower($1) == n { print $2 }' <<<"$H_OUT" | sort -u; }

# ---- the handshake, then HTTP/1.1 -----------------------------------------------
hello ka "$HELLO_PORT" --identity "$IDENTITY" --sni api.hello.test --requests 2
assert_contains "$H_ERR" "server: HELLO srv http/1.1" "the server spoke first"
assert_contains "$H_ERR" "2 complete responses" "two pipelined requests ($H_ERR)"
assert_eq 2 "$(grep -c '^HTTP/1.1 200 OK$' <<<"$H_OUT")" "responses with status 200: $(head -c 600 <<<"$H_OUT")"
assert_eq "$IDENTITY" "$(h_hdr x-peer-identity)" "x-peer-identity from handshake_done"
assert_eq api.hello.test "$(h_hdr x-conn-sni)" "x-conn-sni from handshake_done"
assert_eq true "$(h_hdr x-peer-tls)" "x-peer-tls"
assert_contains "$H_OUT" '"x-forwarded-proto": "https"' "HTTP/1.1 stream over a TLS handshake: X-Forwarded-Proto"
assert_contains "$H_OUT" '"path": "/app/hello/1"' "the second request reached the backend"
log "handshake then HTTP/1.1: identity, sni, https"

hello together "$HELLO_PORT" --identity "$IDENTITY" --mode together --requests 1
assert_contains "$H_ERR" "1 complete responses" "HELLO and request in one segment ($H_ERR)"
assert_contains "$H_OUT" "HTTP/1.1 200 OK" "HELLO and request in one segment"

# ---- ALPN h2 --------------------------------------------------------------------
hello h2 "$H2_PORT" --identity "$IDENTITY" --mode h2 --path /app/h2
assert_contains "$H_ERR" "server: HELLO srv2 h2" "h2 listener hello"
assert_contains "$H_OUT" ":status: 200" "HTTP/2 chosen by the handshake's ALPN"
assert_contains "$H_OUT" "x-peer-identity: $IDENTITY" "identity over HTTP/2"
assert_contains "$H_OUT" "x-peer-tls: true" "tls over HTTP/2"

# ---- tls: false -----------------------------------------------------------------
hello notls "$NOTLS_PORT" --identity "$IDENTITY"
assert_contains "$H_OUT" "HTTP/1.1 200 OK" "tls false: status"
assert_contains "$H_OUT" '"x-forwarded-proto": "http"' "tls false: X-Forwarded-Proto"
assert_eq false "$(h_hdr x-peer-tls)" "tls false: x-peer-tls"

# ---- handshake timeout (the filter's connection timer) and a bad line -------------
hello silent "$HELLO_PORT" --mode silent
assert_contains "$H_ERR" "closed by the server" "silent client ($H_ERR)"
secs=$(sed -n 's/.* after \([0-9.]*\)s$/\1/p' <<<"$H_ERR" | tail -n 1)
awk -v s="$secs" 'BEGIN { exit !(s >= 0.4 && s < 5) }' || fail "silent client closed after ${secs}s, want ~0.5s"
hello bad "$HELLO_PORT" --mode bad
assert_contains "$H_ERR" "closed by the server" "bad line ($H_ERR)"
assert_eq 0 "$(wc -c <"$TEST_TMP/bad.out")" "bad line: nothing after the hello"

# ---- close with and without flush ------------------------------------------------
hello bye "$HELLO_PORT" --mode bye
assert_eq BYE "$H_OUT" "close with flush: the filter's last bytes arrive"
assert_contains "$H_ERR" "closed by the server" "close with flush ($H_ERR)"
hello rst "$HELLO_PORT" --mode rst
assert_eq "" "$H_OUT" "close without flush"
assert_not_contains "$H_ERR" "timeout" "close without flush ($H_ERR)"

# ---- a filter error after the handshake ---------------------------------------------
hello failing "$FAIL_PORT" --identity "$IDENTITY"
assert_not_contains "$H_OUT" "HTTP/1.1" "filter error: no answer"
assert_not_contains "$H_ERR" "timeout" "filter error closes at once ($H_ERR)"
hello ka2 "$HELLO_PORT" --identity "$IDENTITY"
assert_contains "$H_OUT" "HTTP/1.1 200 OK" "still serving after the filter error"

# ---- original destination on a plain listener ----------------------------------------
fetch "http://127.0.0.1:$PLAIN_PORT/app/x"
assert_eq 200 "$ST" "plain listener: status"
assert_eq "127.0.0.1:$PLAIN_PORT" "$(hdr x-original-dst)" "plain listener: x-original-dst"
assert_eq none "$(hdr x-conn-sni)" "plain listener: x-conn-sni"
assert_contains "$BD" '"x-forwarded-proto": "http"' "plain listener: X-Forwarded-Proto"

# connections: ka, together, silent, bad, bye, rst, ka2 (hello); handshakes: ka, together, ka2
assert_eq 7 "$(metric 'weft_filter_hello_transport_connections{listener="hello"}')" "hello connections"
assert_eq 3 "$(metric 'weft_filter_hello_transport_handshakes{listener="hello"}')" "hello handshakes"
assert_eq 1 "$(metric 'weft_filter_hello_transport_timeouts{listener="hello"}')" "hello timeouts"
assert_eq 1 "$(metric 'weft_filter_hello_transport_rejected{listener="hello"}')" "hello rejected"

stop_weft 10
