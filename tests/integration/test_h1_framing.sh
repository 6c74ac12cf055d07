#!/usr/bin/env bash
# HTTP/1.1 message framing through weft, end to end (client -> weft ->
# backend -> weft -> client):
#   - chunked request bodies (5 MB random, sha256 compared) and chunked
#     responses arrive intact; content-length responses keep their length
#   - HEAD: headers (content-length kept) and no body; 204/304 bodyless
#   - Expect: 100-continue: the interim 100 arrives, then the body goes
#     through (curl and a raw client that waits for the 100)
#   - pipelining: 3 requests in one write -> 3 responses in order (also
#     behind a slow first response, and 50 at once)
#   - chunk extensions and trailers; HEAD of a chunked resource
#   - Connection: close; an upstream close keeps the client connection
#   - keep-alive reuse; HTTP/1.0 closes unless Connection: keep-alive; a
#     chunked upstream response reaches an HTTP/1.0 client unchunked
#   - hop-by-hop headers (Connection-listed, Keep-Alive, TE other than
#     "trailers" which weft keeps on purpose, Upgrade) never
#     reach the backend; Via, X-Forwarded-For (appended), X-Forwarded-Proto
#     and X-Request-Id (a generated UUID v4, also replacing a client's) do
#   - backpressure: a slow client downloading a 50 MB body does not grow
#     weft's RSS by more than 10 MB; a full 50 MB download completes
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend framing "$BACKEND_PORT" --verbose

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
          - match: { prefix: / }
            cluster: framing
            timeout: 60s
clusters:
  - name: framing
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"
UUID4_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# --- chunked request body, 5 MB random ------------------------------------
head -c 5000000 /dev/urandom >"$TEST_TMP/big"
curl -sS --max-time 30 -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMP/big" \
    -o "$TEST_TMP/big.back" "$URL/echo" || fail "chunked 5 MB POST /echo: no HTTP answer"
want=$(sha256sum <"$TEST_TMP/big" | cut -d' ' -f1)
got=$(sha256sum <"$TEST_TMP/big.back" | cut -d' ' -f1)
assert_eq "$want" "$got" "sha256 of the 5 MB chunked body echoed through weft"
log "chunked 5 MB request body ok"

# --- chunked response -------------------------------------------------------
curl -sS --max-time 10 -o "$TEST_TMP/chunked.out" "$URL/chunked/50" ||
    fail "GET /chunked/50: no HTTP answer"
for ((i = 0; i < 50; i++)); do printf 'chunk %d\n' "$i"; done >"$TEST_TMP/chunked.want"
cmp -s "$TEST_TMP/chunked.want" "$TEST_TMP/chunked.out" ||
    fail "GET /chunked/50: body differs from the 50 chunks the backend sent"
out=$(h1_raw "$LISTEN_PORT" 'GET /chunked/3 HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 1)
assert_contains "$out" 'BODY 24 chunk 0\nchunk 1\nchunk 2\n' "raw GET /chunked/3"
assert_not_contains "$out" GARBAGE "raw GET /chunked/3"

# --- content-length response ------------------------------------------------
code=$(curl -sS --max-time 10 -D "$TEST_TMP/cl.hdr" -o "$TEST_TMP/cl.out" -w '%{http_code}' \
    "$URL/bytes/12345") || fail "GET /bytes/12345: no HTTP answer"
assert_eq 200 "$code" "GET /bytes/12345 status"
assert_eq 12345 "$(hdr_value "$TEST_TMP/cl.hdr" content-length)" "GET /bytes/12345 content-length"
assert_eq 12345 "$(stat -c %s "$TEST_TMP/cl.out")" "GET /bytes/12345 body size"
assert_eq "" "$(tr -d x <"$TEST_TMP/cl.out")" "GET /bytes/12345 body bytes"

# --- HEAD: headers, content-length kept, no body ----------------------------
# A GET pipelined after the HEAD proves no body bytes followed the HEAD
# response (they would be read as the start of the second response).
out=$(h1_raw "$LISTEN_PORT" 'HEAD /bytes/1234 HTTP/1.1\r\nHost: a\r\n\r\nGET /after-head HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 1)
assert_eq "200 200" "$(status_lines "$out")" "HEAD then GET statuses"
assert_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" "content-length: 1234" "HEAD response headers"
assert_contains "$out" '"path": "/after-head"' "GET after HEAD"
assert_not_contains "$out" GARBAGE "HEAD then GET"

# --- 204 / 304: no body, no framing headers that promise one ----------------
out=$(h1_raw "$LISTEN_PORT" 'GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\nGET /status/304 HTTP/1.1\r\nHost: a\r\n\r\nGET /after-304 HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 1)
assert_eq "204 304 200" "$(status_lines "$out")" "204, 304, GET statuses"
assert_contains "$out" '"path": "/after-304"' "GET after 204 and 304"
assert_not_contains "$out" GARBAGE "204 and 304 responses"
first_two=$(printf '%s\n' "$out" | awk '/^HTTP/ { n++ } n <= 2' | tr '[:upper:]' '[:lower:]')
assert_not_contains "$first_two" "transfer-encoding" "204/304 response headers"
resp204=$(printf '%s\n' "$out" | awk '/^HTTP/ { n++ } n == 1' | tr '[:upper:]' '[:lower:]')
assert_not_contains "$resp204" "content-length" "204 response headers (RFC 9110 8.6)"

# --- Expect: 100-continue ---------------------------------------------------
head -c 4096 /dev/urandom >"$TEST_TMP/exp"
curl -sS -v --max-time 10 --expect100-timeout 5 -H "Expect: 100-continue" --data-binary @"$TEST_TMP/exp" \
    -o "$TEST_TMP/exp.back" "$URL/echo" 2>"$TEST_TMP/exp.trace" ||
    fail "POST 4 KB with Expect: 100-continue: no HTTP answer"
trace=$(tr -d '\r' <"$TEST_TMP/exp.trace")
assert_contains "$trace" "> Expect: 100-continue" "curl request"
assert_contains "$trace" "< HTTP/1.1 100" "interim response before the body"
cmp -s "$TEST_TMP/exp" "$TEST_TMP/exp.back" || fail "Expect: 100-continue body differs"
# A raw client that sends the body only after the 100 (no fallback timer).
out=$(h1_raw "$LISTEN_PORT" 'POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n' \
    --then 'hello' --timeout 3)
assert_eq "100 200" "$(status_lines "$out")" "raw Expect: 100-continue statuses"
assert_contains "$out" "BODY 5 hello" "raw Expect: 100-continue echo"

# --- pipelining --------------------------------------------------------------
out=$(h1_raw "$LISTEN_PORT" 'GET /pipe/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /pipe/2?x=2 HTTP/1.1\r\nHost: a\r\n\r\nPOST /pipe/3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc' --timeout 2)
assert_eq "200 200 200" "$(status_lines "$out")" "3 pipelined requests"
order=$(printf '%s\n' "$out" | grep -o '"path": "/pipe/[0-9]"' | tr -d '"' | awk '{ printf "%s ", $2 }')
assert_eq "/pipe/1 /pipe/2 /pipe/3 " "$order" "pipelined responses in request order"
assert_eq OPEN "$(end_state "$out")" "connection after 3 pipelined HTTP/1.1 requests"

# A slow first response does not let the second overtake it.
out=$(h1_raw "$LISTEN_PORT" 'GET /delay/300 HTTP/1.1\r\nHost: a\r\n\r\nGET /after-delay HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 2)
order=$(printf '%s\n' "$out" | grep -o '"path": "/[a-z0-9/-]*"' | tr -d '"' | awk '{ printf "%s ", $2 }')
assert_eq "/delay/300 /after-delay " "$order" "pipelined responses behind a slow one"
# 50 requests in one write.
burst=""
for ((i = 0; i < 50; i++)); do burst+="GET /burst/$i HTTP/1.1\r\nHost: a\r\n\r\n"; done
out=$(h1_raw "$LISTEN_PORT" "$burst" --timeout 2)
order=$(printf '%s\n' "$out" | grep -o '"path": "/burst/[0-9]*"' | tr -d '"' | awk '{ printf "%s ", $2 }')
want=""
for ((i = 0; i < 50; i++)); do want+="/burst/$i "; done
assert_eq "$want" "$order" "50 pipelined responses in order"

# --- chunked request details ----------------------------------------------------
# Chunk extensions and trailers are accepted; the body arrives intact.
out=$(h1_raw "$LISTEN_PORT" 'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' --timeout 1)
assert_eq 200 "$(status_lines "$out")" "chunked body with extensions and trailers"
assert_contains "$out" "BODY 11 hello world" "chunked body with extensions and trailers"
# HEAD of a chunked resource: no body, the next response parses.
out=$(h1_raw "$LISTEN_PORT" 'HEAD /chunked/3 HTTP/1.1\r\nHost: a\r\n\r\nGET /after-head-chunked HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 1)
assert_eq "200 200" "$(status_lines "$out")" "HEAD /chunked/3 then GET"
assert_contains "$out" '"path": "/after-head-chunked"' "GET after HEAD of a chunked resource"
assert_not_contains "$out" GARBAGE "HEAD of a chunked resource"

# --- Connection: close ----------------------------------------------------------
out=$(h1_raw "$LISTEN_PORT" 'GET /cc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' --timeout 3)
assert_eq 200 "$(status_lines "$out")" "Connection: close request"
assert_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" "connection: close" "response to Connection: close"
assert_eq CLOSED "$(end_state "$out")" "connection after Connection: close"
# The backend closing its connection does not close the client's.
out=$(h1_raw "$LISTEN_PORT" 'GET /close HTTP/1.1\r\nHost: a\r\n\r\n' \
    --then 'GET /after-upstream-close HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 1)
assert_eq "200 200" "$(status_lines "$out")" "requests around an upstream Connection: close"
assert_contains "$out" '"path": "/after-upstream-close"' "request after an upstream close"

# --- keep-alive reuse ---------------------------------------------------------
reuse=$(curl -sS --max-time 10 -v -o /dev/null -o /dev/null "$URL/ka/1" "$URL/ka/2" 2>&1) ||
    fail "two GETs on one connection: no HTTP answer"
assert_contains "$reuse" "Re-using existing connection" "client keep-alive"

# --- HTTP/1.0 ------------------------------------------------------------------
out=$(h1_raw "$LISTEN_PORT" 'GET /h10 HTTP/1.0\r\nHost: a\r\n\r\n' --timeout 3)
assert_eq 200 "$(status_lines "$out")" "HTTP/1.0 status"
assert_contains "$out" '"path": "/h10"' "HTTP/1.0 body"
assert_eq CLOSED "$(end_state "$out")" "HTTP/1.0 without keep-alive: connection state"
awk -v e="$(end_elapsed "$out")" 'BEGIN { exit !(e < 2) }' ||
    fail "HTTP/1.0 without keep-alive: close took $(end_elapsed "$out")s"
out=$(h1_raw "$LISTEN_PORT" 'GET /h10ka/1 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n' \
    --then 'GET /h10ka/2 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n' --timeout 1.5)
assert_eq "200 200" "$(status_lines "$out")" "HTTP/1.0 keep-alive statuses"
assert_contains "$out" '"path": "/h10ka/2"' "second HTTP/1.0 keep-alive request"
assert_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" "connection: keep-alive" "HTTP/1.0 keep-alive response"
assert_eq OPEN "$(end_state "$out")" "HTTP/1.0 with Connection: keep-alive: connection state"
assert_not_contains "$out" "transfer-encoding" "HTTP/1.0 responses (no chunked for 1.0)"
# A chunked upstream response to an HTTP/1.0 client: no chunked framing,
# the body delimited by the close.
for ka in "" 'Connection: keep-alive\r\n'; do
    out=$(h1_raw "$LISTEN_PORT" "GET /chunked/3 HTTP/1.0\r\nHost: a\r\n$ka\r\n" --timeout 2)
    assert_eq 200 "$(status_lines "$out")" "HTTP/1.0 GET /chunked/3 ($ka)"
    assert_not_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" "transfer-encoding" "HTTP/1.0 GET /chunked/3 ($ka)"
    assert_contains "$out" 'BODY 24 chunk 0\nchunk 1\nchunk 2\n' "HTTP/1.0 GET /chunked/3 body ($ka)"
done

# --- hop-by-hop headers -------------------------------------------------------
body=$(curl -sS --max-time 10 -H 'Connection: x-secret' -H 'X-Secret: 1' -H 'Keep-Alive: 5' \
    -H 'TE: deflate' -H 'Upgrade: foo/1' -H 'X-Kept: yes' "$URL/hop") ||
    fail "GET /hop: no HTTP answer"
hdrs=$(json_field "$body" headers)
assert_contains "$hdrs" '"x-kept": "yes"' "end-to-end header at the backend"
for h in x-secret keep-alive te upgrade; do
    assert_not_contains "$hdrs" "\"$h\":" "hop-by-hop header $h at the backend"
done
assert_not_contains "$hdrs" "x-secret" "backend Connection header"

# --- Via, X-Forwarded-*, X-Request-Id -----------------------------------------
body=$(curl -sS --max-time 10 -H 'X-Forwarded-For: 1.2.3.4' "$URL/fwd") || fail "GET /fwd: no HTTP answer"
assert_eq "1.2.3.4, 127.0.0.1" "$(json_field "$body" headers x-forwarded-for)" "X-Forwarded-For appended"
assert_eq "http" "$(json_field "$body" headers x-forwarded-proto)" "X-Forwarded-Proto"
via=$(json_field "$body" headers via)
[[ "$via" != "<missing>" && -n "$via" ]] || fail "Via missing at the backend"
assert_contains "$via" "1.1 " "Via"
rid=$(json_field "$body" headers x-request-id)
[[ "$rid" =~ $UUID4_RE ]] || fail "generated x-request-id [$rid] is not a UUID v4"
body2=$(curl -sS --max-time 10 "$URL/fwd") || fail "GET /fwd: no HTTP answer"
rid2=$(json_field "$body2" headers x-request-id)
[[ "$rid2" =~ $UUID4_RE && "$rid2" != "$rid" ]] || fail "second x-request-id [$rid2] not a fresh UUID v4"
assert_eq "127.0.0.1" "$(json_field "$body2" headers x-forwarded-for)" "X-Forwarded-For without an incoming one"
body=$(curl -sS --max-time 10 -H 'X-Request-Id: my-id-42' "$URL/fwd") || fail "GET /fwd: no HTTP answer"
rid3=$(json_field "$body" headers x-request-id)
[[ "$rid3" =~ $UUID4_RE ]] || fail "incoming X-Request-Id [$rid3] not replaced by a UUID v4 (preserve_external_request_id is off; test_forwarded_headers covers on)"

stop_weft 15

# --- backpressure: slow client, 50 MB body --------------------------------------
# A fresh weft whose AddressSanitizer quarantine (freed memory held back
# for use-after-free detection, 256 MB by default) is kept to 1 MB, so
# that RSS measures live buffers; without a sanitizer the option is inert.
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=1:thread_local_quarantine_size_kb=64" \
    start_weft "$CONFIG"
curl -sS --max-time 10 -o /dev/null "$URL/bytes/1000000" || fail "warm-up GET /bytes/1000000"
rss0=$(rss_kb "$WEFT_PID")
# ~1 MB/s for 8 s: the backend writes all 50 MB at once, so without
# backpressure weft would hold tens of MB for this client.
curl -s --max-time 8 --limit-rate 1M -o "$TEST_TMP/slow.out" "$URL/bytes/50000000" &
slow_pid=$!
rss_max=$rss0
for ((i = 0; i < 30; i++)); do
    sleep 0.25
    r=$(rss_kb "$WEFT_PID")
    ((r > rss_max)) && rss_max=$r
done
wait "$slow_pid" 2>/dev/null || true
slow_size=$(stat -c %s "$TEST_TMP/slow.out" 2>/dev/null || echo 0)
log "slow download: $slow_size bytes in 8 s; weft RSS ${rss0} kB -> max ${rss_max} kB"
((slow_size > 2000000)) || fail "slow client received only $slow_size bytes in 8 s"
((rss_max - rss0 <= 10240)) ||
    fail "weft RSS grew by $((rss_max - rss0)) kB (> 10 MB) while a 1 MB/s client read a 50 MB body: no backpressure"
# The same body downloaded in full.
curl -sS --max-time 40 -o "$TEST_TMP/full.out" "$URL/bytes/50000000" || fail "GET /bytes/50000000 failed"
assert_eq 50000000 "$(stat -c %s "$TEST_TMP/full.out")" "50 MB download size"
rm -f "$TEST_TMP/full.out" "$TEST_TMP/slow.out" "$TEST_TMP/big" "$TEST_TMP/big.back"

stop_weft 15
