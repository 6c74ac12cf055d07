#!/usr/bin/env bash
# What each kind of client sees during a drain (SIGTERM, drain_timeout 10s,
# one worker):
#   - HTTP/1.1 keep-alive connection idle at SIGTERM that sends its next
#     request 0.1 s later: answered (200) with Connection: close, then the
#     connection closes (today's bug: closed at once, the request got EOF).
#   - HTTP/1.1 keep-alive connection that stays idle: weft closes it (the
#     client reads EOF) without waiting for drain_timeout.
#   - a new HTTP/1.1 connection during the drain: accepted, 200, with
#     Connection: close.
#   - HTTP/2 (h2_frames.py drain): stream 1 in flight at SIGTERM; the first
#     GOAWAY is the shutdown notice (last stream 2^31-1, NO_ERROR); stream 3,
#     opened by the client right after reading it (a request crossing the
#     notice), is served; the final GOAWAY names stream 3 as the last one;
#     both streams end with 200 and the server closes the connection.
#   - weft exits 0 ("drained: exiting") once these clients are gone, well
#     before drain_timeout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
h2_need_tools

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend slow "$BACKEND_PORT" --latency-ms 300
URL="http://127.0.0.1:$LISTEN_PORT"
CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 10s
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
          - match: { prefix: /slow }
            cluster: slow
          - match: { prefix: / }
            direct_response: { status: 200, body: "ok\n" }
clusters:
  - name: slow
    endpoints:
      - { address: 127.0.0.1, port: @BACKEND_PORT@ }
YAML
)
start_weft "$CONFIG"

GO="$TEST_TMP/go"
KA="$H2_DIR/h1_keepalive.py"
"$PYTHON" "$KA" "$LISTEN_PORT" reuse "$GO" >"$TEST_TMP/reuse.out" 2>&1 &
reuse_pid=$!
track_pid "$reuse_pid"
"$PYTHON" "$KA" "$LISTEN_PORT" idle "$GO" >"$TEST_TMP/idle.out" 2>&1 &
idle_pid=$!
track_pid "$idle_pid"
"$PYTHON" "$H2_DIR/h2_frames.py" "$LISTEN_PORT" drain --path /slow/h2 --timeout 8 \
    >"$TEST_TMP/h2.out" 2>&1 &
h2_pid=$!
track_pid "$h2_pid"
ready() { grep -q READY "$TEST_TMP/reuse.out" && grep -q READY "$TEST_TMP/idle.out" &&
    grep -q "NOTE ready" "$TEST_TMP/h2.out"; }
wait_until 10 "clients connected" ready

weft_signal TERM
touch "$GO"
new=$(curl -s -o /dev/null -D - --max-time 5 "$URL/new" | tr -d '\r' || true)
for pid in "$reuse_pid" "$idle_pid" "$h2_pid"; do
    wait "$pid" || true
done
reuse=$(cat "$TEST_TMP/reuse.out")
idle=$(cat "$TEST_TMP/idle.out")
h2=$(cat "$TEST_TMP/h2.out")
log "reuse: $(tr '\n' '|' <<<"$reuse")"
log "idle: $(tr '\n' '|' <<<"$idle")"
log "h2: $(h2_summary "$h2")"

# HTTP/1.1
assert_contains "$reuse" "RESPONSE /first 200 connection=-" "keep-alive response before the drain"
assert_contains "$reuse" "RESPONSE /second 200 connection=close" \
    "request sent on a keep-alive connection 0.1 s into the drain"
assert_contains "$reuse" "END CLOSED" "keep-alive connection after its Connection: close"
assert_contains "$idle" "RESPONSE /first 200" "idle client's first response"
assert_contains "$idle" "END CLOSED" "idle keep-alive connection during the drain"
assert_contains "$new" "HTTP/1.1 200" "new connection during the drain"
assert_contains "$new" "connection: close" "new connection during the drain"

# HTTP/2
mapfile -t goaways < <(grep '^GOAWAY ' <<<"$h2")
((${#goaways[@]} == 2)) || fail "expected 2 GOAWAY frames, got: $(h2_summary "$h2")"
assert_contains "${goaways[0]}" "last_stream=2147483647 code=NO_ERROR" "first GOAWAY (notice)"
assert_contains "${goaways[1]}" "last_stream=3 code=NO_ERROR" "final GOAWAY"
assert_eq 200 "$(h2_status "$h2" 1)" "stream 1, in flight at SIGTERM"
assert_eq 200 "$(h2_status "$h2" 3)" "stream 3, opened right after the notice"
assert_eq CLOSED "$(h2_end_field "$h2" state)" "HTTP/2 connection after the final GOAWAY"

pid=$WEFT_PID
wait_exit "$pid" 9
WEFT_PID=""
assert_eq 0 "$EXIT_STATUS" "weft exit status"
grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not exit when its clients left"
