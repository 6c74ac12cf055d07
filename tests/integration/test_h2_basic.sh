#!/usr/bin/env bash
# HTTP/2 downstream (h2c with prior knowledge) to HTTP/1.1 upstreams.
#
# Asserts:
#   - curl --http2-prior-knowledge GET: 200 over HTTP/2, the backend's JSON
#     (method, path, query), x-backend passed back; the backend (HTTP/1.1)
#     saw Host = the request's :authority, Via, X-Forwarded-For,
#     X-Forwarded-Proto and an X-Request-Id
#   - POST body echoed byte for byte
#   - nghttp -nv: SETTINGS both ways and both ACKs (the exchange completes)
#   - HTTP/1.1 on the same port still answers 200 over HTTP/1.1
#   - 10 MB response and 10 MB upload over h2, sha256 intact
#   - chunked trailers from an HTTP/1.1 upstream reach the h2 client as a
#     trailing HEADERS block (h2_frames.py TRAILER lines and nghttp -v)
#   - access log: an h2 request is logged with "protocol":"HTTP/2"
#   - h2load -n 100000 -c 10 -m 10 (100 concurrent streams) against a
#     direct_response route: 100000 succeeded, 0 failed, 0 errored; and
#     -n 3000 -c 10 -m 10 through the HTTP/1.1 backend, 0 failed
#
# Config assumptions (HTTP/2 is not documented in docs/configuration.md
# yet): a listener accepts HTTP/1.1 and h2c prior knowledge on one port, told
# apart by the connection preface, with no key needed; the access log's
# "protocol" field reads "HTTP/2" for HTTP/2 requests.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

BACKEND_PORT=$(free_port)
TRAILERS_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config
ACCESS_LOG="$TEST_TMP/access.log"

start_backend b1 "$BACKEND_PORT"

# An HTTP/1.1 upstream that answers every request with a chunked body
# followed by trailers.
cat >"$TEST_TMP/trailers_backend.py" <<'PY'
import socket, sys, threading
def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf.split(b"\r\n\r\n", 1)[1]
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: x-checksum\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n"
                      b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: sha-abc123\r\n"
                      b"x-trailer-two: 2\r\n\r\n")
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
"$PYTHON" "$TEST_TMP/trailers_backend.py" "$TRAILERS_PORT" >"$TEST_TMP/backend-trailers.log" 2>&1 &
track_pid $!
wait_for_url "http://127.0.0.1:$TRAILERS_PORT/" 10 200 $!

# A fast HTTP/1.1 backend for the 100k-request run through weft (h2 -> h1).
NGINX_PORT=$(free_port)
mkdir -p "$TEST_TMP/nginx"
cat >"$TEST_TMP/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $TEST_TMP/nginx/nginx.pid;
error_log $TEST_TMP/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $TEST_TMP/nginx;
  proxy_temp_path $TEST_TMP/nginx;
  fastcgi_temp_path $TEST_TMP/nginx;
  uwsgi_temp_path $TEST_TMP/nginx;
  scgi_temp_path $TEST_TMP/nginx;
  server { listen 127.0.0.1:$NGINX_PORT; location / { return 200 "ok from nginx\n"; } }
}
NGX
PATH="$PATH:/usr/sbin" nginx -c "$TEST_TMP/nginx/nginx.conf" -p "$TEST_TMP/nginx" >"$TEST_TMP/nginx/stdout.log" 2>&1 &
track_pid $!
wait_for_url "http://127.0.0.1:$NGINX_PORT/" 10 200 $!

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
          - match: { path: /load }
            direct_response: { status: 200, body: "ok\n" }
          - match: { prefix: /trailers }
            cluster: trailers
          - match: { prefix: /nginx }
            cluster: nginx
          - match: { prefix: / }
            cluster: b1
clusters:
  - name: b1
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
  - name: trailers
    endpoints:
      - { address: 127.0.0.1, port: @TRAILERS_PORT@ }
  - name: nginx
    endpoints:
      - { address: 127.0.0.1, port: @NGINX_PORT@ }
YAML
)
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# ---- GET over h2c
log "h2c GET"
got=$(curl -sS --http2-prior-knowledge --max-time 10 -D "$TEST_TMP/get.hdr" -o "$TEST_TMP/get.body" \
    -w '%{http_code} %{http_version}' "$URL/hello/h2?a=1&b=two" 2>&1) || true
assert_eq "200 2" "$got" "h2c GET status and HTTP version"
hdrs=$(tr -d '\r' <"$TEST_TMP/get.hdr" | tr '[:upper:]' '[:lower:]')
assert_contains "$hdrs" "x-backend: b1" "h2c GET response headers"
body=$(cat "$TEST_TMP/get.body")
assert_contains "$body" '"method": "GET"' "h2c GET body"
assert_contains "$body" '"path": "/hello/h2"' "h2c GET body"
assert_contains "$body" '"query": "a=1&b=two"' "h2c GET body"
assert_contains "$body" "\"host\": \"127.0.0.1:$LISTEN_PORT\"" "Host from :authority at the HTTP/1.1 backend"
assert_contains "$body" '"via": "' "headers seen by the backend"
assert_contains "$body" '"x-forwarded-for": "127.0.0.1' "headers seen by the backend"
assert_contains "$body" '"x-forwarded-proto": "http"' "headers seen by the backend"
assert_contains "$body" '"x-request-id": "' "headers seen by the backend"

# ---- POST echo over h2c
log "h2c POST echo"
payload='{"hello":"h2","n":42}'
echoed=$(curl -sS --http2-prior-knowledge --max-time 10 -H 'content-type: application/json' \
    --data-binary "$payload" "$URL/echo") || fail "h2c POST /echo: no answer"
assert_eq "$payload" "$echoed" "h2c POST /echo body"

# ---- SETTINGS exchange (nghttp -nv)
log "nghttp -nv SETTINGS exchange"
nv=$(nghttp -nv -t 10 "$URL/" 2>&1) || fail "nghttp -nv $URL/ failed: $(tail -n 5 <<<"$nv")"
assert_contains "$nv" "send SETTINGS frame" "nghttp -nv"
grep -Eq 'recv SETTINGS frame <length=[0-9]+, flags=0x00, stream_id=0>' <<<"$nv" ||
    fail "nghttp -nv: no SETTINGS from weft: $(head -c 1500 <<<"$nv")"
grep -Eq 'recv SETTINGS frame <length=0, flags=0x01, stream_id=0>' <<<"$nv" ||
    fail "nghttp -nv: weft did not ACK the client's SETTINGS"
# (Whether nghttp ACKs weft's SETTINGS before it ends the session depends
# on how its reads are split when weft's SETTINGS and the response arrive
# close together: that is the client's behaviour, not weft's, so it is not
# asserted here.)
assert_contains "$nv" ":status: 200" "nghttp -nv response"

# ---- HTTP/1.1 on the same port
log "HTTP/1.1 on the same listener"
h1_get_ok "$LISTEN_PORT" /h1/still/works
h2_get_ok "$LISTEN_PORT" /h2/after/h1

# ---- 10 MB response and 10 MB upload
log "10 MB download and upload over h2c"
BIG=$((10 * 1024 * 1024))
curl -sS --http2-prior-knowledge --max-time 30 -o "$TEST_TMP/big.down" "$URL/bytes/$BIG" ||
    fail "h2c GET /bytes/$BIG failed"
want=$(head -c "$BIG" /dev/zero | tr '\0' x | sha256sum | awk '{print $1}')
got=$(sha256sum <"$TEST_TMP/big.down" | awk '{print $1}')
assert_eq "$want" "$got" "sha256 of the 10 MB h2 response"
head -c "$BIG" /dev/urandom >"$TEST_TMP/big.up"
curl -sS --http2-prior-knowledge --max-time 30 --data-binary @"$TEST_TMP/big.up" \
    -H 'content-type: application/octet-stream' -o "$TEST_TMP/big.back" "$URL/echo" ||
    fail "h2c POST 10 MB /echo failed"
assert_eq "$(sha256sum <"$TEST_TMP/big.up" | awk '{print $1}')" \
    "$(sha256sum <"$TEST_TMP/big.back" | awk '{print $1}')" "sha256 of the 10 MB h2 upload echoed back"

# ---- trailers from an HTTP/1.1 chunked upstream
log "HTTP/1.1 chunked trailers -> HTTP/2 trailers"
out=$(h2f "$LISTEN_PORT" get --path /trailers)
assert_eq 200 "$(h2_status "$out" 1)" "status of /trailers over h2"
assert_contains "$out" "BODY stream=1 len=11 " "/trailers body length (hello world)"
assert_contains "$out" "TRAILER stream=1 x-checksum: sha-abc123" "trailers over h2"
assert_contains "$out" "TRAILER stream=1 x-trailer-two: 2" "trailers over h2"
assert_not_contains "$out" "HEADER stream=1 x-checksum:" "trailer leaked into the response head"
assert_not_contains "$out" "transfer-encoding" "h2 response (connection-specific header)"
nv=$(nghttp -v -t 10 "$URL/trailers" 2>&1) || fail "nghttp -v /trailers failed"
grep -Eq 'recv \(stream_id=[0-9]+\) x-checksum: sha-abc123' <<<"$nv" ||
    fail "nghttp -v: trailer x-checksum not shown: $(tail -c 1500 <<<"$nv")"

# ---- access log protocol
wait_until 5 "access log line for /hello/h2" \
    grep -q '"path":"/hello/h2' "$ACCESS_LOG"
assert_eq "HTTP/2" "$(access_log_field "$ACCESS_LOG" /hello/h2 protocol)" \
    "access log protocol of an h2 request"

# ---- load: 100 concurrent streams
log "h2load -n 100000 -c 10 -m 10 (direct_response)"
load=$(timeout 50 h2load -n 100000 -c 10 -m 10 "$URL/load" 2>&1) ||
    fail "h2load (direct_response) did not finish in 50s: $(tail -n 5 <<<"$load")"
assert_contains "$load" "100000 succeeded, 0 failed, 0 errored" "h2load -n 100000 -c 10 -m 10"
assert_contains "$load" "status codes: 100000 2xx" "h2load status codes"

log "h2load -n 100000 -c 10 -m 10 through weft to an HTTP/1.1 upstream (nginx)"
load=$(timeout 55 h2load -n 100000 -c 10 -m 10 "$URL/nginx" 2>&1) ||
    fail "h2load (h2 -> h1 nginx) did not finish in 55s: $(tail -n 5 <<<"$load")"
assert_contains "$load" "100000 succeeded, 0 failed, 0 errored" "h2load h2 -> h1 (nginx)"
assert_contains "$load" "status codes: 100000 2xx" "h2load h2 -> h1 status codes"

log "h2load -n 3000 -c 10 -m 10 through the HTTP/1.1 backend"
load=$(timeout 40 h2load -n 3000 -c 10 -m 10 "$URL/" 2>&1) ||
    fail "h2load (proxied) did not finish in 40s: $(tail -n 5 <<<"$load")"
assert_contains "$load" "3000 succeeded, 0 failed, 0 errored" "h2load through weft to an h1 backend"

weft_alive
stop_weft 15
