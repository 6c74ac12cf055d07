#!/usr/bin/env bash
# RFC 9113 rules a proxy must enforce on HTTP/2 requests, each sent by
# h2_frames.py (raw frames) and each asserted on the exact error code:
#
#   uppercase header name                     -> PROTOCOL_ERROR (8.2.1)
#   connection / transfer-encoding /
#     keep-alive / proxy-connection / upgrade -> PROTOCOL_ERROR (8.2.2)
#   no :method / :path / :scheme              -> PROTOCOL_ERROR (8.3.1)
#   pseudo-header after a regular header      -> PROTOCOL_ERROR (8.3)
#   te: gzip                                  -> PROTOCOL_ERROR; te: trailers -> 200
#   content-length 10 with 5 bytes of DATA,
#     content-length 3 with 5 bytes of DATA   -> PROTOCOL_ERROR (8.1.1)
#   DATA on a half-closed (remote) stream     -> STREAM_CLOSED (5.1)
#   frame larger than SETTINGS_MAX_FRAME_SIZE -> GOAWAY FRAME_SIZE_ERROR (4.2)
#   WINDOW_UPDATE 0 on the connection         -> GOAWAY PROTOCOL_ERROR (6.9)
#   WINDOW_UPDATE 0 on a stream               -> PROTOCOL_ERROR (RST_STREAM or GOAWAY)
#   window overflow on the connection         -> GOAWAY FLOW_CONTROL_ERROR (6.9.1)
#   window overflow on a stream               -> RST_STREAM/GOAWAY FLOW_CONTROL_ERROR
#   bytes that begin like the client preface
#     ("PRI * HTTP/2.0...") but are not it    -> GOAWAY PROTOCOL_ERROR, last stream 0
#                                                (not an HTTP/1.1 400) (3.4)
#   HEADERS opening stream 3 after stream 5
#     (5 closed, or 5 still open)             -> GOAWAY PROTOCOL_ERROR (5.1.1)
# A stream error is accepted as RST_STREAM on that stream or as a GOAWAY
# with the same code (a connection error is allowed wherever a stream error
# is). None of the malformed requests reaches the backend (its request log
# has none of their paths); after all of them weft still serves h2 and
# HTTP/1.1, and the weft SETTINGS advertise the configured values.
#
# Config assumption: listener `http2: {max_concurrent_streams,
# initial_window_size, max_frame_size, max_header_list_size}` sets weft's
# SETTINGS on that listener.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
REQLOG="$TEST_TMP/requests.log"
start_backend conf "$BACKEND_PORT" --request-log "$REQLOG"

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
      initial_window_size: 65535
      max_frame_size: 16384
      max_header_list_size: 16384
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: conf
clusters:
  - name: conf
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
YAML
)
start_weft "$CONFIG"
P="$LISTEN_PORT"

# ---- a valid request first: SETTINGS as configured, 200
out=$(h2f "$P" get --path /conf/valid)
assert_eq 200 "$(h2_status "$out" 1)" "valid GET over h2"
settings=$(grep '^SETTINGS ' <<<"$out" || true)
assert_contains "$settings" "MAX_CONCURRENT_STREAMS=100" "weft SETTINGS"
assert_contains "$settings" "MAX_HEADER_LIST_SIZE=16384" "weft SETTINGS"
if grep -q 'MAX_FRAME_SIZE=' <<<"$settings"; then
    assert_contains "$settings" "MAX_FRAME_SIZE=16384" "weft SETTINGS"
fi
if grep -q 'INITIAL_WINDOW_SIZE=' <<<"$settings"; then
    assert_contains "$settings" "INITIAL_WINDOW_SIZE=65535" "weft SETTINGS"
fi

# ---- malformed header sections: stream PROTOCOL_ERROR
log "uppercase header name"
out=$(h2f "$P" uppercase-header --path /conf/uppercase)
assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "uppercase header name"

for h in "connection:keep-alive" "transfer-encoding:chunked" "keep-alive:timeout=5" \
    "proxy-connection:keep-alive" "upgrade:websocket"; do
    log "connection-specific header ${h%%:*}"
    out=$(h2f "$P" conn-header --path "/conf/connhdr-${h%%:*}" --name "${h%%:*}" --value "${h#*:}")
    assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "connection-specific header ${h%%:*}"
done

for p in :method :path :scheme; do
    log "missing $p"
    out=$(h2f "$P" missing-pseudo --path "/conf/missing${p#:}" --name "$p")
    assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "request without $p"
done

log "pseudo-header after a regular header"
out=$(h2f "$P" pseudo-after-regular --path /conf/pseudo-after)
assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "pseudo-header after a regular header"

log "te: trailers is allowed, te: gzip is not"
out=$(h2f "$P" te --path /conf/te-trailers --value trailers)
assert_eq 200 "$(h2_status "$out" 1)" "GET with te: trailers"
out=$(h2f "$P" te --path /conf/te-gzip --value gzip)
assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "GET with te: gzip"

log "content-length vs DATA"
out=$(h2f "$P" cl-mismatch --path /conf/cl-short --value 10 --body-bytes 5)
assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "content-length 10 with 5 bytes of DATA"
out=$(h2f "$P" cl-mismatch --path /conf/cl-long --value 3 --body-bytes 5)
assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "content-length 3 with 5 bytes of DATA"

# ---- stream states and framing
log "DATA on a half-closed (remote) stream"
# /delay keeps the stream open on weft's side while the DATA arrives
out=$(h2f "$P" data-half-closed --path /delay/1000)
assert_h2_stream_error "$out" 1 STREAM_CLOSED "DATA after END_STREAM"

log "frame larger than SETTINGS_MAX_FRAME_SIZE"
out=$(h2f "$P" oversized-frame --path /conf/oversized)
assert_h2_goaway "$out" FRAME_SIZE_ERROR "16385-byte DATA frame"

log "WINDOW_UPDATE of 0"
out=$(h2f "$P" window-update-zero --stream-id 0)
assert_h2_goaway "$out" PROTOCOL_ERROR "WINDOW_UPDATE 0 on the connection"
out=$(h2f "$P" window-update-zero --stream-id 1 --path /conf/wu-zero)
assert_h2_stream_error "$out" 1 PROTOCOL_ERROR "WINDOW_UPDATE 0 on a stream"

log "flow-control window overflow"
out=$(h2f "$P" window-overflow --stream-id 0)
assert_h2_goaway "$out" FLOW_CONTROL_ERROR "connection window above 2^31-1"
out=$(h2f "$P" window-overflow --stream-id 1 --path /conf/wu-overflow)
assert_h2_stream_error "$out" 1 FLOW_CONTROL_ERROR "stream window above 2^31-1"

# ---- connection preface and stream ids
log "a connection preface that begins like HTTP/2's but is not it"
for tail in 'XX\r\n\r\n' 'SM\r\n\r\r' 'GET / HTTP/1.1\r\n\r\n'; do
    out=$(h2f "$P" bad-preface --value "$tail" --timeout 3)
    grep -Eq "^GOAWAY last_stream=0 code=PROTOCOL_ERROR " <<<"$out" ||
        fail "bad preface (tail $tail): expected GOAWAY last_stream=0 PROTOCOL_ERROR, got: $(h2_summary "$out")"
    assert_eq CLOSED "$(h2_end_field "$out" state)" "connection after a bad preface"
done

log "HEADERS on a stream id below one already opened"
out=$(h2f "$P" lower-stream-id --path /conf/lower-closed --timeout 3)
assert_eq 200 "$(h2_status "$out" 5)" "stream 5 before the lower id"
assert_h2_goaway "$out" PROTOCOL_ERROR "HEADERS on stream 3 after stream 5 ended"
out=$(h2f "$P" lower-stream-id --value open --path /delay/1000 --timeout 3)
assert_h2_goaway "$out" PROTOCOL_ERROR "HEADERS on stream 3 while stream 5 is open"

# ---- nothing malformed reached the backend; weft still serves
sleep 0.3
for p in uppercase connhdr- missing pseudo-after te-gzip; do
    if grep -q " /conf/$p" "$REQLOG" 2>/dev/null; then
        fail "a malformed request reached the backend: $(grep " /conf/$p" "$REQLOG" | head -n 3)"
    fi
done
grep -q "GET /conf/te-trailers" "$REQLOG" || fail "the te: trailers request did not reach the backend"
h2_get_ok "$P" /conf/after
h1_get_ok "$P" /conf/after-h1
weft_alive
stop_weft 15
