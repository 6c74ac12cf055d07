#!/usr/bin/env bash
# Listener limits, each just over and just under the configured value:
#   max_header_bytes -> 431, max_headers -> 431, max_uri_length -> 414,
#   max_body_bytes -> 413 (declared content-length, and a chunked body
#   that grows past it), each from weft (x-weft-reason) with the
#   connection closed (also 413 without a 100 for Expect: 100-continue);
#   headers_timeout: a slowloris client (a header byte every 300 ms) gets
#   408 and a close after ~1 s, while a slow body or a slow upstream is not
#   cut; idle_timeout closes an idle keep-alive connection; max_connections 2 (1 worker): a 3rd
#   concurrent connection gets no answer and
#   weft_downstream_cx_overflow_total increments; the default limits
#   accept an 8 KB header.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"

BACKEND_PORT=$(free_port)
SMALL_PORT=$(free_port)
CAPPED_PORT=$(free_port)
DEFAULT_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend lim "$BACKEND_PORT" --verbose

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: small
    address: 127.0.0.1
    port: @SMALL_PORT@
    limits:
      max_header_bytes: 2KiB
      max_headers: 10
      max_uri_length: 256
      max_body_bytes: 1000
      headers_timeout: 1s
      idle_timeout: 1s
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: lim
  - name: capped
    address: 127.0.0.1
    port: @CAPPED_PORT@
    limits:
      max_connections: 2
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: lim
  - name: defaults
    address: 127.0.0.1
    port: @DEFAULT_PORT@
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: lim
clusters:
  - name: lim
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

start_weft "$CONFIG"

# expect_local_close STATUS WHAT OUTPUT: one response STATUS from weft
# itself (x-weft-reason), then the connection closed.
expect_local_close() {
    local want="$1" what="$2" out="$3"
    assert_eq "$want" "$(status_lines "$out")" "$what: statuses"
    assert_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" "x-weft-reason:" "$what: weft's own reply"
    case "$(end_state "$out")" in
    CLOSED | RESET) ;;
    *) fail "$what: connection $(end_state "$out") after $want, want closed" ;;
    esac
}
pad() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }

# --- max_header_bytes 2 KiB -------------------------------------------------
out=$(h1_raw "$SMALL_PORT" "GET /hb-over HTTP/1.1\r\nHost: a\r\nX-Big: $(pad 3000)\r\n\r\n")
expect_local_close 431 "3000-byte header over max_header_bytes 2KiB" "$out"
out=$(h1_raw "$SMALL_PORT" "GET /hb-under HTTP/1.1\r\nHost: a\r\nX-Big: $(pad 1500)\r\n\r\n" --timeout 0.5)
assert_eq 200 "$(status_lines "$out")" "1500-byte header under max_header_bytes"
# Many small headers adding up past the limit (still within max_headers).
many=""
for i in 1 2 3 4 5 6; do many+="X-H$i: $(pad 400)\r\n"; done
out=$(h1_raw "$SMALL_PORT" "GET /hb-sum HTTP/1.1\r\nHost: a\r\n${many}\r\n")
expect_local_close 431 "6 x 400-byte headers over max_header_bytes 2KiB" "$out"

# --- max_headers 10 -----------------------------------------------------------
hs=""
for i in $(seq 1 12); do hs+="X-N$i: v\r\n"; done
out=$(h1_raw "$SMALL_PORT" "GET /nh-over HTTP/1.1\r\nHost: a\r\n${hs}\r\n")
expect_local_close 431 "13 headers over max_headers 10" "$out"
hs=""
for i in $(seq 1 8); do hs+="X-N$i: v\r\n"; done
out=$(h1_raw "$SMALL_PORT" "GET /nh-under HTTP/1.1\r\nHost: a\r\n${hs}\r\n" --timeout 0.5)
assert_eq 200 "$(status_lines "$out")" "9 headers under max_headers 10"

# --- max_uri_length 256 -------------------------------------------------------
out=$(h1_raw "$SMALL_PORT" "GET /$(pad 300 u) HTTP/1.1\r\nHost: a\r\n\r\n")
expect_local_close 414 "301-byte URI over max_uri_length 256" "$out"
out=$(h1_raw "$SMALL_PORT" "GET /q?x=$(pad 290 u) HTTP/1.1\r\nHost: a\r\n\r\n")
expect_local_close 414 "URI with a long query over max_uri_length 256" "$out"
out=$(h1_raw "$SMALL_PORT" "GET /$(pad 200 u) HTTP/1.1\r\nHost: a\r\n\r\n" --timeout 0.5)
assert_eq 200 "$(status_lines "$out")" "201-byte URI under max_uri_length"

# --- max_body_bytes 1000 --------------------------------------------------------
out=$(h1_raw "$SMALL_PORT" "POST /echo?body=cl-over HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n$(pad 2000 b)")
expect_local_close 413 "content-length 2000 over max_body_bytes 1000" "$out"
out=$(h1_raw "$SMALL_PORT" "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n$(pad 1000 b)" --timeout 0.5)
assert_eq 200 "$(status_lines "$out")" "content-length 1000 at max_body_bytes 1000"
assert_contains "$out" "BODY 1000 bbb" "1000-byte body echoed"
chunk="1f4\r\n$(pad 500 c)\r\n"
out=$(h1_raw "$SMALL_PORT" "POST /echo?body=chunked-over HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}0\r\n\r\n")
expect_local_close 413 "chunked body of 1500 over max_body_bytes 1000" "$out"
out=$(h1_raw "$SMALL_PORT" "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}0\r\n\r\n" --timeout 0.5)
assert_eq 200 "$(status_lines "$out")" "chunked body of 500 under max_body_bytes"
code=$(http_status -H 'Expect:' --data-binary "$(pad 5000 d)" "http://127.0.0.1:$SMALL_PORT/echo")
assert_eq 413 "$code" "curl POST of 5000 bytes"
sleep 0.2
assert_eq 0 "$(backend_seen lim 'body=cl-over')" "backend requests for the declared-too-large body"

# Expect: 100-continue with a declared body over the limit: 413 at once,
# no 100.
out=$(h1_raw "$SMALL_PORT" "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n" --timeout 2)
expect_local_close 413 "Expect: 100-continue with content-length 5000" "$out"

# --- headers_timeout 1s: slowloris ------------------------------------------------
out=$(h1_raw "$SMALL_PORT" "GET /slow HTTP/1.1\r\nHost: a\r\nX-Slow: $(pad 40 s)\r\n\r\n" --drip 0.3 --timeout 4)
expect_local_close 408 "slowloris (1 byte per 300 ms) with headers_timeout 1s" "$out"
el=$(end_elapsed "$out")
awk -v e="$el" 'BEGIN { exit !(e >= 0.8 && e <= 2.5) }' ||
    fail "slowloris: 408 and close after ${el}s, want ~1-2 s"
log "slowloris closed after ${el}s"

# --- idle_timeout 1s ----------------------------------------------------------------
out=$(h1_raw "$SMALL_PORT" "GET /idle HTTP/1.1\r\nHost: a\r\n\r\n" --timeout 4)
assert_eq 200 "$(status_lines "$out")" "request before going idle"
el=$(end_elapsed "$out")
case "$(end_state "$out")" in
CLOSED | RESET) ;;
*) fail "idle keep-alive connection still open after 4 s (idle_timeout 1s)" ;;
esac
awk -v e="$el" 'BEGIN { exit !(e >= 0.8 && e <= 2.5) }' ||
    fail "idle keep-alive connection closed after ${el}s, want ~1 s"
# A connection that never sends a byte is closed too.
out=$(h1_raw "$SMALL_PORT" "" --timeout 4)
case "$(end_state "$out")" in
CLOSED | RESET) ;;
*) fail "silent connection still open after 4 s (headers_timeout/idle_timeout 1s)" ;;
esac

# headers_timeout covers the head only: a body trickling in over 2.5 s,
# and an upstream answering after 2.5 s, are not cut by the 1 s
# headers_timeout or idle_timeout.
slow=$("$PYTHON" - "$SMALL_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
try:
    for i in range(10):
        time.sleep(0.25)
        s.sendall(b"x")
except OSError as e:
    print("slow body: send failed: %s" % e)
d = b""
try:
    while not d.endswith(b"xxxxxxxxxx"):
        x = s.recv(65536)
        if not x:
            break
        d += x
except OSError as e:
    print("slow body: recv failed: %s" % e)
print("slow body: " + d.split(b"\r\n")[0].decode("latin-1") + (" echoed" if d.endswith(b"\r\n\r\nxxxxxxxxxx") else ""))
s.close()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /delay/2500 HTTP/1.1\r\nHost: a\r\n\r\n")
try:
    d = s.recv(65536)
except OSError as e:
    d = str(e).encode()
print("slow upstream: " + d.split(b"\r\n")[0].decode("latin-1"))
PY
)
assert_contains "$slow" "slow body: HTTP/1.1 200 OK echoed" "a slow body with headers_timeout 1s"
assert_contains "$slow" "slow upstream: HTTP/1.1 200 OK" "a slow upstream with idle_timeout 1s"

# --- max_connections 2 ----------------------------------------------------------------
before=$(metric_sum weft_downstream_cx_overflow_total)
third=$("$PYTHON" - "$CAPPED_PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
req = b"GET /cap HTTP/1.1\r\nHost: a\r\n\r\n"
held = []
for i in range(2):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(req)
    d = s.recv(65536)
    if not d.startswith(b"HTTP/1.1 200"):
        print("held connection %d got %r" % (i, d[:60]))
        sys.exit(0)
    held.append(s)
s = socket.create_connection(("127.0.0.1", port), timeout=3)
try:
    s.sendall(req)
    d = s.recv(65536)
    print("third: " + ("closed" if not d else d.split(b"\r\n")[0].decode("latin-1")))
except (ConnectionResetError, BrokenPipeError):
    print("third: closed")
except socket.timeout:
    print("third: no answer in 3 s (left open)")
for h in held:
    h.close()
s.close()
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(req)
d = s.recv(65536)
print("after: " + d.split(b"\r\n")[0].decode("latin-1"))
PY
)
log "max_connections: $(tr '\n' '|' <<<"$third")"
assert_contains "$third" "third: closed" "3rd concurrent connection with max_connections 2"
assert_contains "$third" "after: HTTP/1.1 200" "a new connection once the others closed"
after=$(metric_sum weft_downstream_cx_overflow_total)
((after > before)) ||
    fail "weft_downstream_cx_overflow_total did not increment ($before -> $after)"

# --- default limits: an 8 KB header is fine ------------------------------------------
val=$(pad 8000 k)
body=$(curl -sS --max-time 10 -H "X-Eight-K: $val" "http://127.0.0.1:$DEFAULT_PORT/eightk") ||
    fail "8 KB header on the default listener: no HTTP answer"
got=$(json_field "$body" headers x-eight-k)
assert_eq 8000 "${#got}" "length of the 8 KB header at the backend"

stop_weft 15
