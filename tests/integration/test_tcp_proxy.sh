#!/usr/bin/env bash
# tcp_proxy listeners, with a real non-HTTP protocol (redis-server) behind
# weft (2 workers): redis-cli SET/GET/INCR; INFO server answers
# redis_version; a 1 MB value round trip; redis-benchmark -n 10000 with no
# error (10000 INCRs of one key count exactly 10000); half-close (PING then
# SHUT_WR still gets +PONG; a server that answers only after EOF sends
# 2 MB back through a 64 KiB watermark); backpressure (a client writing
# to a server that never reads is blocked after a few MB); idle_timeout closes an idle
# connection (access log SI); connect_timeout per attempt (a backend that
# never answers the SYN); max_connect_attempts moves on from a refused
# endpoint; a cluster whose endpoint is down closes the connection (UF in
# the access log, weft_tcp_connect_fail_total); a server-first banner
# reaches a client that never sends a byte (no sniffing on TCP listeners;
# the 3 s bound only keeps a broken proxy from hanging the test); an
# HTTP listener beside still answers; the weft_tcp_* stats and one JSON
# access log line per connection; --validate refuses tcp_proxy together
# with virtual_hosts; SIGTERM waits for an open TCP connection, which
# keeps working, and exits as soon as it closes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

command -v redis-server >/dev/null || fail "redis-server not installed (scripts/setup.sh installs it)"
command -v redis-cli >/dev/null || fail "redis-cli not installed (scripts/setup.sh installs redis-tools)"
command -v redis-benchmark >/dev/null || fail "redis-benchmark not installed (redis-tools)"

TOOL="$REPO_ROOT/tests/integration/tcp_tool.py"
# Foreground use only: a background process must be started as
# "$PYTHON" "$TOOL" ... so that $! is the python process itself.
tool() { "$PYTHON" "$TOOL" "$@"; }

REDIS_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @DEAD_PORT@
DEAD_PORT=$(free_port) # nothing listens there: connections are refused
BANNER_PORT=$(free_port)
ECHO_PORT=$(free_port)
HOLE_PORT=$(free_port)
STALL_PORT=$(free_port)
L_STALL=$(free_port)
L_HOLE=$(free_port)
L_REDIS=$(free_port)
L_IDLE=$(free_port)
L_RETRY=$(free_port)
L_DEAD=$(free_port)
L_BANNER=$(free_port)
L_ECHO=$(free_port)
L_HTTP=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
ACCESS_LOG="$TEST_TMP/access.log"

# wait_port PORT PID: waits until 127.0.0.1:PORT accepts, failing if PID exits.
wait_port() {
    local i
    for ((i = 0; i < 100; i++)); do
        if "$PYTHON" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$1" 2>/dev/null; then
            return 0
        fi
        _lib_running "$2" || fail "process $2 exited before listening on $1"
        sleep 0.1
    done
    fail "nothing listens on port $1 after 10 s"
}

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$TEST_TMP" >"$TEST_TMP/backend-redis.log" 2>&1 &
REDIS_PID=$!
track_pid "$REDIS_PID"
"$PYTHON" "$TOOL" banner-server "$BANNER_PORT" >"$TEST_TMP/backend-banner.log" 2>&1 &
BANNER_PID=$!
track_pid "$BANNER_PID"
"$PYTHON" "$TOOL" echo-after-eof-server "$ECHO_PORT" >"$TEST_TMP/backend-echo.log" 2>&1 &
ECHO_PID=$!
track_pid "$ECHO_PID"
"$PYTHON" "$TOOL" blackhole-server "$HOLE_PORT" "$TEST_TMP/hole.ready" >"$TEST_TMP/backend-hole.log" 2>&1 &
HOLE_PID=$!
track_pid "$HOLE_PID"
"$PYTHON" "$TOOL" stall-server "$STALL_PORT" >"$TEST_TMP/backend-stall.log" 2>&1 &
STALL_PID=$!
track_pid "$STALL_PID"
wait_port "$REDIS_PORT" "$REDIS_PID"
wait_port "$STALL_PORT" "$STALL_PID"
wait_port "$BANNER_PORT" "$BANNER_PID"
wait_port "$ECHO_PORT" "$ECHO_PID"

CONFIG=$(render_config - <<'EOF'
workers: 2
drain_timeout: 20s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: @ACCESS_LOG@
clusters:
  - name: redis
    endpoints: [{address: 127.0.0.1, port: @REDIS_PORT@}]
    connect_timeout: 1s
  - name: mixed
    endpoints:
      - {address: 127.0.0.1, port: @DEAD_PORT@}
      - {address: 127.0.0.1, port: @REDIS_PORT@}
  - name: dead
    endpoints: [{address: 127.0.0.1, port: @DEAD_PORT@}]
  - name: banner
    endpoints: [{address: 127.0.0.1, port: @BANNER_PORT@}]
  - name: echo
    endpoints: [{address: 127.0.0.1, port: @ECHO_PORT@}]
  - name: hole
    endpoints: [{address: 127.0.0.1, port: @HOLE_PORT@}]
    connect_timeout: 300ms
  - name: stall
    endpoints: [{address: 127.0.0.1, port: @STALL_PORT@}]
listeners:
  - name: redis
    address: 127.0.0.1
    port: @L_REDIS@
    tcp_proxy: {cluster: redis}
  - name: redis-idle
    address: 127.0.0.1
    port: @L_IDLE@
    tcp_proxy: {cluster: redis, idle_timeout: 1s}
  - name: redis-retry
    address: 127.0.0.1
    port: @L_RETRY@
    tcp_proxy: {cluster: mixed, max_connect_attempts: 2}
  - name: dead
    address: 127.0.0.1
    port: @L_DEAD@
    tcp_proxy: {cluster: dead, max_connect_attempts: 3}
  - name: banner
    address: 127.0.0.1
    port: @L_BANNER@
    tcp_proxy: {cluster: banner}
  - name: echo
    address: 127.0.0.1
    port: @L_ECHO@
    limits: {buffer_high_watermark: 64KiB}
    tcp_proxy: {cluster: echo}
  - name: hole
    address: 127.0.0.1
    port: @L_HOLE@
    tcp_proxy: {cluster: hole, max_connect_attempts: 2}
  - name: stall
    address: 127.0.0.1
    port: @L_STALL@
    limits: {buffer_high_watermark: 64KiB}
    tcp_proxy: {cluster: stall, idle_timeout: 2s}
  - name: http
    address: 127.0.0.1
    port: @L_HTTP@
EOF
)

# --validate: tcp_proxy excludes virtual_hosts, at the offending key.
BAD="$TEST_TMP/bad.yaml"
printf '%s\n' 'clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]' \
    'listeners:' '  - name: t' '    port: 7000' '    tcp_proxy: {cluster: c}' \
    '    virtual_hosts: []' >"$BAD"
rc=0
"$WEFT_BIN" --validate -c "$BAD" >/dev/null 2>"$TEST_TMP/bad.err" || rc=$?
assert_eq 2 "$rc" "--validate exit status for tcp_proxy + virtual_hosts"
assert_contains "$(cat "$TEST_TMP/bad.err")" \
    "bad.yaml:6:5: a tcp_proxy listener takes no \"virtual_hosts\"" "--validate message"
printf '%s\n' 'clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]' \
    'listeners: [{name: t, port: 7000, tcp_proxy: {cluster: nope}}]' >"$BAD"
rc=0
"$WEFT_BIN" --validate -c "$BAD" >/dev/null 2>"$TEST_TMP/bad.err" || rc=$?
assert_eq 2 "$rc" "--validate exit status for an unknown cluster"
assert_contains "$(cat "$TEST_TMP/bad.err")" \
    "bad.yaml:2:56: tcp_proxy names unknown cluster \"nope\"" "--validate message"

start_weft "$CONFIG"

# ---- redis through weft
assert_eq OK "$(redis-cli -p "$L_REDIS" SET weft:k hello)" "SET"
assert_eq hello "$(redis-cli -p "$L_REDIS" GET weft:k)" "GET"
assert_eq 1 "$(redis-cli -p "$L_REDIS" INCR weft:n)" "INCR"
assert_eq 2 "$(redis-cli -p "$L_REDIS" INCR weft:n)" "INCR again"
assert_contains "$(redis-cli -p "$L_REDIS" INFO server)" "redis_version:" "INFO server"
log "redis-cli SET/GET/INCR/INFO through weft: ok"

out=$(tool bigvalue "$L_REDIS" 1048576) || fail "1 MB value: $out"
log "1 MB value round trip: $out"

redis-cli -p "$REDIS_PORT" DEL counter:__rand_int__ >/dev/null
bench=$(redis-benchmark -h 127.0.0.1 -p "$L_REDIS" -n 10000 -c 20 -q -t set,get,incr 2>&1) ||
    fail "redis-benchmark failed: $bench"
assert_not_contains "$bench" "rror" "redis-benchmark output"
assert_eq 3 "$(grep -c 'requests per second' <<<"$bench")" "redis-benchmark results"
# INCR without -r hits one key: exactly 10000 increments got through.
assert_eq 10000 "$(redis-cli -p "$REDIS_PORT" GET counter:__rand_int__)" "INCR count after redis-benchmark"
log "redis-benchmark -n 10000 (set, get, incr) through weft: no error"

# ---- half-close
out=$(tool halfclose-redis "$L_REDIS") || fail "half-close with redis: $out"
out=$(tool halfclose-echo "$L_ECHO" 2097152) || fail "half-close, answer after EOF: $out"
log "half-close: PING + SHUT_WR -> +PONG; 2 MB answered after EOF: $out"

# ---- backpressure: a server that never reads; weft must stop reading the
# client (256 MB would all be taken otherwise; kernel buffers hold a few MB).
# While its reading is paused weft does not see the client's FIN: the idle
# timeout (2 s here) ends the connection.
out=$(tool flood "$L_STALL" 32) || fail "backpressure: $out"
log "backpressure, 64 KiB watermark: $out"

# ---- server speaks first: the banner arrives though the client sends nothing
# (a proxy that waited for client bytes would never deliver it)
for i in 1 2 3; do
    out=$(tool banner "$L_BANNER" 3000) || fail "server-first banner (try $i): $out"
done
log "server-first banner: $out"

# ---- idle timeout
out=$(tool idle "$L_IDLE" 0.8 3.5) || fail "idle timeout: $out"
log "idle timeout 1s: $out"

# ---- connect attempts: the refused endpoint is skipped
for i in 1 2 3 4 5 6; do
    assert_eq PONG "$(redis-cli -p "$L_RETRY" PING)" "PING through redis-retry #$i"
done
(($(metric 'weft_upstream_cx_connect_fail_total{cluster="mixed"}') >= 1)) ||
    fail "no connect failure counted for cluster mixed"
assert_eq 0 "$(metric 'weft_tcp_connect_fail_total{listener="redis-retry"')" "redis-retry given up"

# ---- backend down
out=$(tool closed "$L_DEAD" 3) || fail "dead backend: $out"
assert_eq 1 "$(metric 'weft_tcp_connect_fail_total{listener="dead",cluster="dead"}')" "tcp connect fail (dead)"
assert_eq 3 "$(metric 'weft_upstream_cx_connect_fail_total{cluster="dead"}')" "3 attempts on cluster dead"
log "dead backend: $out, 3 attempts, UF"

# ---- connect timeout: a backend whose accept queue is full never answers
# the SYN; 2 attempts of 300 ms, then the connection is closed (UF).
hole_ready() { [[ -f "$TEST_TMP/hole.ready" ]]; }
wait_until 5 "blackhole server ready" hole_ready
out=$(tool idle "$L_HOLE" 0.5 1.5) || fail "connect timeout: $out"
assert_eq 2 "$(metric 'weft_upstream_cx_connect_timeout_total{cluster="hole"}')" "connect timeouts (hole)"
assert_eq 1 "$(metric 'weft_tcp_connect_fail_total{listener="hole"')" "tcp connect fail (hole)"
log "connect timeout 300ms x 2 attempts: $out"

# ---- HTTP listener beside the TCP ones
assert_eq 404 "$(http_status "http://127.0.0.1:$L_HTTP/")" "HTTP listener without virtual hosts"

# ---- stats
tcp_active() { [[ "$(metric 'weft_tcp_cx_active{')" == 0 ]]; }
wait_until 5 "weft_tcp_cx_active back to 0" tcp_active
(($(metric 'weft_tcp_cx_total{listener="redis",cluster="redis"}') >= 28)) ||
    fail "weft_tcp_cx_total{listener=redis} too low: $(metric 'weft_tcp_cx_total{listener="redis"')"
(($(metric 'weft_tcp_rx_bytes_total{listener="redis",cluster="redis"}') > 1048576)) ||
    fail "weft_tcp_rx_bytes_total too low"
(($(metric 'weft_tcp_tx_bytes_total{listener="redis",cluster="redis"}') > 1048576)) ||
    fail "weft_tcp_tx_bytes_total too low"
assert_eq 2097152 "$(metric 'weft_tcp_rx_bytes_total{listener="echo"')" "bytes received on echo"
assert_eq $((2097152 + 66)) "$(metric 'weft_tcp_tx_bytes_total{listener="echo"')" "bytes sent on echo"
assert_eq 0 "$(metric 'weft_upstream_cx_active{cluster="redis"}')" "upstream cx active"
(($(metric 'weft_upstream_cx_total{cluster="redis"}') >= 28)) || fail "weft_upstream_cx_total{cluster=redis} too low"
log "stats: ok"

# ---- access log: one JSON line per connection, flags
"$PYTHON" - "$ACCESS_LOG" <<'PY' || fail "access log check failed: $(tail -n 5 "$ACCESS_LOG")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.startswith("{")]
tcp = [l for l in lines if l.get("protocol") == "TCP"]
for l in tcp:
    for k in ("time", "listener", "downstream_remote", "upstream_host", "upstream_cluster",
              "bytes_received", "bytes_sent", "duration_ms", "response_flags"):
        assert k in l, (k, l)
def by(listener):
    return [l for l in tcp if l["listener"] == listener]
dead = by("dead")
assert len(dead) == 1 and dead[0]["response_flags"] == "UF", dead
assert dead[0]["bytes_sent"] == 0, dead
idle = by("redis-idle")
assert len(idle) == 1 and idle[0]["response_flags"] == "SI", idle
assert 800 <= idle[0]["duration_ms"] <= 3500, idle
echo = by("echo")
assert len(echo) == 1 and echo[0]["response_flags"] == "-", echo
assert echo[0]["bytes_received"] == 2097152 and echo[0]["bytes_sent"] == 2097152 + 66, echo
assert echo[0]["downstream_remote"] == "127.0.0.1", echo
stall = by("stall")
assert len(stall) == 1 and stall[0]["response_flags"] == "SI" and stall[0]["bytes_received"] > 0, stall
hole = by("hole")
assert len(hole) == 1 and hole[0]["response_flags"] == "UF", hole
retry = by("redis-retry")
assert len(retry) == 6 and all(l["response_flags"] == "-" for l in retry), retry
big = [l for l in by("redis") if l["bytes_received"] > 1048576]
assert len(big) == 1 and big[0]["bytes_sent"] > 1048576, big
print("access log: %d TCP lines" % len(tcp))
PY

# ---- SIGTERM: an open TCP connection keeps the process (and keeps
# working) until it closes; then weft exits at once.
HOLD_DIR="$TEST_TMP/hold"
mkdir -p "$HOLD_DIR"
"$PYTHON" "$TOOL" hold "$L_REDIS" "$HOLD_DIR" >"$TEST_TMP/hold.out" 2>&1 &
HOLD_PID=$!
track_pid "$HOLD_PID"
hold_ready() { [[ -f "$HOLD_DIR/ready" ]]; }
wait_until 5 "held connection ready" hold_ready
weft_signal TERM
sleep 1
_lib_running "$WEFT_PID" || fail "weft exited while a TCP connection was open"
if redis-cli -p "$L_REDIS" PING >/dev/null 2>&1; then
    fail "a new connection was accepted while draining"
fi
touch "$HOLD_DIR/go"
t0=$SECONDS
wait_exit "$HOLD_PID" 10
assert_eq 0 "$EXIT_STATUS" "held connection: $(cat "$TEST_TMP/hold.out")"
wait_exit "$WEFT_PID" 5
assert_eq 0 "$EXIT_STATUS" "weft exit status after the drain"
WEFT_PID=""
((SECONDS - t0 <= 3)) || fail "weft took $((SECONDS - t0)) s to exit after the last connection closed"
assert_contains "$(cat "$WEFT_LOG")" "drained: exiting" "weft log"
log "SIGTERM: waited for the open TCP connection, then exited"
