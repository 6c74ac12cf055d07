#!/usr/bin/env bash
# HTTP/2 attack defences, each with h2_frames.py on its own connection.
# After every attack weft still answers a normal h2 and HTTP/1.1 request,
# and its RSS never grows by more than 50 MB (peak sampled during the
# attack from /proc/PID/status).
#
#   rapid reset: 2000 x (HEADERS + RST_STREAM CANCEL), back to back (twice
#     nghttp2's default burst of 1000 resets)
#       -> GOAWAY ENHANCE_YOUR_CALM (or INTERNAL_ERROR, the code nghttp2's
#          own reset-rate limiter sends); the backend received fewer than
#          1000 of those requests
#   CONTINUATION flood: HEADERS without END_HEADERS + up to 10000
#     CONTINUATION frames of 1 KB
#       -> the connection is ended (GOAWAY or close) before 10000 frames,
#          within 5 s
#   SETTINGS flood / PING flood: 10000 frames, ACKs not read (client
#     SO_RCVBUF 4 KiB, listener buffer_high_watermark 16 KiB)
#       -> GOAWAY ENHANCE_YOUR_CALM
#   empty DATA flood: 10000 zero-length DATA frames on one stream
#       -> GOAWAY or close (ENHANCE_YOUR_CALM / PROTOCOL_ERROR) within 5 s
#   HPACK bomb: a 4000-byte header inserted in the dynamic table, then
#     referenced 4000 times per HEADERS block (16 MB decoded per stream),
#     20 streams
#       -> each stream gets 431, RST_STREAM or GOAWAY; the backend never sees
#          /bomb; RSS < +50 MB
#   oversized header list: one 20000-byte header (max_header_list_size is
#     16384) in HEADERS + CONTINUATION -> 431, RST_STREAM or GOAWAY; never
#     forwarded
#   zero window: SETTINGS_INITIAL_WINDOW_SIZE 0, GET of 1 MB, no
#     WINDOW_UPDATE ever -> the stream is reset or the connection closed by
#     the listener's stream_idle_timeout (1s), between 0.5 s and 5 s
#
# Config assumptions: listener `http2:` as in test_h2_conformance; limits
# stream_idle_timeout applies to HTTP/2 streams too; buffer_high_watermark
# bounds weft's output buffer toward an h2 client.
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
start_backend atk "$BACKEND_PORT" --request-log "$REQLOG"

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
    limits:
      stream_idle_timeout: 1s
      buffer_high_watermark: 16KiB
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
            cluster: atk
clusters:
  - name: atk
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
YAML
)
start_weft "$CONFIG"
P="$LISTEN_PORT"
h2_get_ok "$P" /warmup
RSS0=$(proc_rss_kb "$WEFT_PID")
RSS_LIMIT=$((RSS0 + 50 * 1024))

# still_healthy WHAT OUTPUT: weft runs, serves h2 and HTTP/1.1, and the RSS
# peak sampled during the attack stayed under RSS0 + 50 MB.
still_healthy() {
    local peak
    weft_alive
    h2_get_ok "$P" "/after/$1"
    h1_get_ok "$P" "/after-h1/$1"
    peak=$(sed -n 's/^RSS_PEAK kb=//p' <<<"$2")
    [[ -n "$peak" ]] || fail "$1: no RSS sample"
    ((peak < RSS_LIMIT)) || fail "$1: weft RSS peaked at ${peak} kB (start ${RSS0} kB, limit +50 MB)"
    log "$1: ok (RSS peak $peak kB, start $RSS0 kB)"
}

# ---- rapid reset
log "rapid reset: 2000 x HEADERS + RST_STREAM"
out=$(h2f "$P" rapid-reset --count 2000 --path /rapid --pid "$WEFT_PID" --timeout 5)
grep -Eq '^GOAWAY last_stream=[0-9]+ code=(ENHANCE_YOUR_CALM|INTERNAL_ERROR) ' <<<"$out" ||
    fail "rapid reset: expected GOAWAY ENHANCE_YOUR_CALM, got: $(h2_summary "$out")"
sleep 0.5
seen=$(grep -c ' /rapid/' "$REQLOG" 2>/dev/null || true)
((${seen:-0} < 1000)) || fail "rapid reset: the backend received $seen of the reset requests"
log "rapid reset: backend saw ${seen:-0} of 2000"
still_healthy rapid-reset "$out"

# ---- CONTINUATION flood
log "CONTINUATION flood"
out=$(h2f "$P" continuation-flood --count 10000 --path /cont --pid "$WEFT_PID" --timeout 5)
sent=$(sed -n 's/^SENT frames=//p' <<<"$out")
state=$(h2_end_field "$out" state)
if ! grep -q '^GOAWAY ' <<<"$out" && [[ "$state" == OPEN ]]; then
    fail "CONTINUATION flood: connection neither closed nor GOAWAY: $(h2_summary "$out")"
fi
((${sent:-0} < 10000)) || fail "CONTINUATION flood: weft read all 10000 frames before ending the connection"
float_lt "$(h2_end_field "$out" elapsed)" 5.5 || fail "CONTINUATION flood: took $(h2_end_field "$out" elapsed)s"
grep -q ' /cont' "$REQLOG" 2>/dev/null && fail "CONTINUATION flood: the request reached the backend"
still_healthy continuation-flood "$out"

# ---- SETTINGS and PING floods without reading the ACKs
for kind in settings ping; do
    log "$kind flood: 10000 frames, ACKs unread"
    out=$(h2f "$P" "$kind-flood" --count 10000 --rcvbuf 4096 --pid "$WEFT_PID" --timeout 5)
    assert_h2_goaway "$out" ENHANCE_YOUR_CALM "$kind flood"
    still_healthy "$kind-flood" "$out"
done

# ---- empty DATA frames
log "empty DATA flood"
out=$(h2f "$P" empty-data-flood --count 10000 --path /empty --pid "$WEFT_PID" --timeout 5)
state=$(h2_end_field "$out" state)
if ! grep -Eq '^GOAWAY last_stream=[0-9]+ code=(ENHANCE_YOUR_CALM|PROTOCOL_ERROR) ' <<<"$out" &&
    [[ "$state" == OPEN ]]; then
    fail "empty DATA flood: expected GOAWAY or close, got: $(h2_summary "$out")"
fi
float_lt "$(h2_end_field "$out" elapsed)" 5.5 || fail "empty DATA flood: took $(h2_end_field "$out" elapsed)s"
still_healthy empty-data-flood "$out"

# ---- HPACK bomb
log "HPACK bomb: 20 streams x 4000 references to a 4000-byte entry"
out=$(h2f "$P" hpack-bomb --count 20 --refs 4000 --path /bomb --pid "$WEFT_PID" --timeout 10)
if ! grep -q '^GOAWAY ' <<<"$out"; then
    for ((sid = 1; sid < 40; sid += 2)); do
        st=$(h2_status "$out" "$sid")
        if [[ "$st" != 431 ]] && ! grep -q "^RST_STREAM stream=$sid " <<<"$out"; then
            fail "HPACK bomb: stream $sid got neither 431, RST_STREAM nor GOAWAY: $(h2_summary "$out")"
        fi
    done
fi
grep -q ' /bomb' "$REQLOG" 2>/dev/null && fail "HPACK bomb: a request reached the backend"
still_healthy hpack-bomb "$out"

# ---- header list larger than max_header_list_size
log "oversized header list (20000 bytes > 16384)"
out=$(h2f "$P" big-header-list --value-bytes 20000 --path /biglist --pid "$WEFT_PID")
st=$(h2_status "$out" 1)
if [[ "$st" != 431 ]] && ! grep -Eq '^(RST_STREAM stream=1|GOAWAY) ' <<<"$out"; then
    fail "oversized header list: expected 431, RST_STREAM or GOAWAY, got: $(h2_summary "$out")"
fi
grep -q ' /biglist' "$REQLOG" 2>/dev/null && fail "oversized header list: the request reached the backend"
still_healthy big-header-list "$out"

# ---- zero window, never updated
log "zero window stall"
out=$(h2f "$P" zero-window --path /bytes/1000000 --pid "$WEFT_PID" --timeout 8)
state=$(h2_end_field "$out" state)
if ! grep -Eq '^(RST_STREAM stream=1|GOAWAY) ' <<<"$out" && [[ "$state" == OPEN ]]; then
    fail "zero window: the stalled stream was never ended: $(h2_summary "$out")"
fi
el=$(h2_end_field "$out" elapsed)
float_lt 0.5 "$el" || fail "zero window: ended after ${el}s, before stream_idle_timeout (1s)"
float_lt "$el" 5 || fail "zero window: ended only after ${el}s (stream_idle_timeout 1s)"
assert_contains "$out" "NOTE zero_window status=200 body=0" "zero window: no DATA may be sent into a 0 window"
still_healthy zero-window "$out"

stop_weft 15
