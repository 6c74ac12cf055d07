#!/usr/bin/env bash
# HTTP/2 upstreams (cluster `protocol: http2`, h2c prior knowledge).
#
# Asserts:
#   - HTTP/1.1 client -> h2 upstream: GET (the backend saw "protocol": "h2",
#     :authority = the client's Host, :scheme http) and POST /echo intact
#   - h2 client -> h2 upstream: GET and a 1 MB POST /echo (sha256), and
#     upstream trailers reach the h2 client
#   - multiplexing: 100 concurrent streams (h2load -n 100 -c 1 -m 100 on
#     /delay/500) with the backend advertising MAX_CONCURRENT_STREAMS 50:
#     all 100 succeed, the backend accepted at most ceil(100/50) = 2
#     connections for them, and never saw more than 50 streams open on one
#     connection (no OVER_LIMIT refusal)
#   - upstream GOAWAY mid-run: a backend that sends GOAWAY (last_stream_id =
#     the 100th request's stream) on every connection, refusing streams
#     above it: h2load -n 3000 -c 4 -m 10 through weft has 0 failed, 0
#     errored; the backend sent several GOAWAYs, opened new connections, and
#     answered exactly 3000 requests (refused streams were re-sent, none
#     twice)
#   - load: h2load -n 100000 -c 10 -m 10 (100 concurrent streams) h2 -> weft
#     -> nghttpd (h2c): 100000 succeeded, 0 failed, 0 errored
#
# Config assumptions: cluster key `protocol: http2` (h2c prior knowledge to
# every endpoint); weft honours the peer's SETTINGS_MAX_CONCURRENT_STREAMS
# and re-sends streams refused by a GOAWAY (id above last_stream_id) or by
# RST_STREAM REFUSED_STREAM on another connection.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools
command -v nghttpd >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
command -v nghttpd >/dev/null 2>&1 || fail "nghttpd not found (nghttp2-server; run scripts/setup.sh)"

H2_PORT=$(free_port)
GOAWAY_PORT=$(free_port)
NGHTTPD_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_h2_backend h2b "$H2_PORT" --max-streams 50
start_h2_backend h2ga "$GOAWAY_PORT" --max-streams 100 --goaway-after 100

mkdir -p "$TEST_TMP/htdocs"
printf 'nghttpd says hello\n' >"$TEST_TMP/htdocs/index.html"
nghttpd --no-tls -d "$TEST_TMP/htdocs" -a 127.0.0.1 "$NGHTTPD_PORT" >"$TEST_TMP/backend-nghttpd.log" 2>&1 &
track_pid $!
NGHTTPD_PID=$!
_h2_ready() {
    [[ "$(curl -s --http2-prior-knowledge --max-time 1 -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$NGHTTPD_PORT/index.html" 2>/dev/null)" == 200 ]] ||
        { _lib_running "$NGHTTPD_PID" || fail "nghttpd exited"; return 1; }
}
wait_until 10 "nghttpd ready" _h2_ready

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
    http2:
      max_concurrent_streams: 100
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /goaway/ }
            cluster: h2ga
            prefix_rewrite: /
          - match: { prefix: /nghttpd/ }
            cluster: nghttpd
            prefix_rewrite: /
          - match: { prefix: / }
            cluster: h2b
clusters:
  - name: h2b
    protocol: http2
    endpoints:
      - { address: 127.0.0.1, port: @H2_PORT@ }
  - name: h2ga
    protocol: http2
    endpoints:
      - { address: 127.0.0.1, port: @GOAWAY_PORT@ }
  - name: nghttpd
    protocol: http2
    endpoints:
      - { address: 127.0.0.1, port: @NGHTTPD_PORT@ }
YAML
)
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# ---- HTTP/1.1 client -> h2 upstream
log "HTTP/1.1 -> h2 upstream"
body=$(curl -sS --http1.1 --max-time 10 -H 'Host: svc.example' "$URL/h1/to/h2?x=1") ||
    fail "HTTP/1.1 GET to the h2 cluster: no answer"
assert_contains "$body" '"protocol": "h2"' "h2 backend body"
assert_contains "$body" '"method": "GET"' "h2 backend body"
assert_contains "$body" '"path": "/h1/to/h2?x=1"' "h2 backend body"
assert_contains "$body" '"authority": "svc.example"' ":authority from Host"
assert_contains "$body" '"scheme": "http"' ":scheme"
echoed=$(curl -sS --http1.1 --max-time 10 --data-binary 'h1 body to h2' "$URL/echo") ||
    fail "HTTP/1.1 POST to the h2 cluster: no answer"
assert_eq "h1 body to h2" "$echoed" "HTTP/1.1 POST echoed by the h2 backend"

# ---- h2 client -> h2 upstream
log "h2 -> h2 upstream"
body=$(curl -sS --http2-prior-knowledge --max-time 10 "$URL/h2/to/h2") ||
    fail "h2 GET to the h2 cluster: no answer"
assert_contains "$body" '"protocol": "h2"' "h2 backend body"
assert_contains "$body" '"path": "/h2/to/h2"' "h2 backend body"
head -c 1048576 /dev/urandom >"$TEST_TMP/up.bin"
curl -sS --http2-prior-knowledge --max-time 20 --data-binary @"$TEST_TMP/up.bin" \
    -o "$TEST_TMP/up.back" "$URL/echo" || fail "h2 POST 1 MB to the h2 cluster failed"
assert_eq "$(sha256sum <"$TEST_TMP/up.bin" | awk '{print $1}')" \
    "$(sha256sum <"$TEST_TMP/up.back" | awk '{print $1}')" "1 MB h2 -> h2 echo"
out=$(h2f "$LISTEN_PORT" get --path /trailers)
assert_eq 200 "$(h2_status "$out" 1)" "/trailers over h2 -> h2"
assert_contains "$out" "TRAILER stream=1 x-trailer-a: 1" "upstream trailers at the h2 client"
assert_contains "$out" "TRAILER stream=1 x-trailer-b: two" "upstream trailers at the h2 client"

# ---- multiplexing: 100 concurrent streams, backend limit 50
log "100 concurrent streams, upstream MAX_CONCURRENT_STREAMS 50"
conns_before=$(events_count h2b '^CONN ')
load=$(timeout 30 h2load -n 100 -c 1 -m 100 "$URL/delay/500" 2>&1) ||
    fail "h2load -m 100 did not finish: $(tail -n 5 <<<"$load")"
assert_contains "$load" "100 succeeded, 0 failed, 0 errored" "100 concurrent streams through weft"
conns=$(($(events_count h2b '^CONN ') - conns_before))
((conns <= 2)) || fail "100 concurrent streams used $conns upstream connections (max streams 50: want <= 2)"
over=$(events_count h2b '^OVER_LIMIT ')
assert_eq 0 "$over" "streams opened above the backend's MAX_CONCURRENT_STREAMS"
log "multiplexing: $conns new upstream connection(s)"

# ---- upstream GOAWAY mid-run
log "upstream GOAWAY every 100 requests, h2load -n 3000 -c 4 -m 10"
load=$(timeout 40 h2load -n 3000 -c 4 -m 10 "$URL/goaway/delay/5" 2>&1) ||
    fail "h2load through the GOAWAY backend did not finish: $(tail -n 5 <<<"$load")"
assert_contains "$load" "3000 succeeded, 0 failed, 0 errored" "h2load with upstream GOAWAYs"
goaways=$(events_count h2ga '^GOAWAY ')
conns=$(events_count h2ga '^CONN ')
answered=$(events_count h2ga '^REQ [0-9]+ [0-9]+ GET /delay/5$')
((goaways >= 5)) || fail "the GOAWAY backend sent only $goaways GOAWAYs"
((conns > goaways)) || fail "weft opened $conns connections for $goaways GOAWAYs (a new one after each)"
assert_eq 3000 "$answered" "requests answered by the GOAWAY backend (each once)"
log "GOAWAY: $goaways GOAWAYs, $conns connections, $(events_count h2ga '^REFUSED ') refused streams re-sent"

# ---- load h2 -> h2 (nghttpd)
log "h2load -n 100000 -c 10 -m 10 h2 -> weft -> nghttpd"
load=$(timeout 50 h2load -n 100000 -c 10 -m 10 "$URL/nghttpd/index.html" 2>&1) ||
    fail "h2load to nghttpd did not finish in 50s: $(tail -n 5 <<<"$load")"
assert_contains "$load" "100000 succeeded, 0 failed, 0 errored" "h2load h2 -> h2"
assert_contains "$load" "status codes: 100000 2xx" "h2load h2 -> h2 status codes"

weft_alive
stop_weft 15
