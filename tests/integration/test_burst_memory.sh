#!/usr/bin/env bash
# test_burst_memory.sh: memory held after bursts goes back.
#
# One worker, a direct-response route (no backend).
#   1. HTTP/2: h2load, 5 connections x 100 concurrent streams, 20,000
#      requests. When it ends the worker goes idle, drops its recycled
#      stream objects and trims: RSS must come back within 2 MiB of the
#      idle RSS (it held several MB more before).
#   2. HTTP/1.1: 3,000 keep-alive connections, one request each, held
#      idle (at most 3 KiB each: the request state is not kept between
#      requests), then closed together. RSS may keep at most 512 bytes
#      per burst connection above idle: libevent keeps a small entry for
#      every descriptor number ever used, which weft keeps in its own pool
#      (common/smallpool.h) so that it pins no heap page (before: the
#      whole burst stayed, about 2 KiB per connection).
# RSS is polled for up to 10 s after each burst (the idle trim runs on a
# 1 s tick after 2 idle ticks). Sanitized builds only run the bursts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

SAN=$(sed -n 's/^WEFT_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
command -v h2load >/dev/null || fail "h2load is missing (apt-get install nghttp2-client)"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

ADMIN_PORT=$(free_port)
PORT=$(free_port)
CFG=$(render_config - <<'YAML'
workers: 1
admin: {address: 127.0.0.1, port: @ADMIN_PORT@}
listeners:
  - name: in
    address: 127.0.0.1
    port: @PORT@
    virtual_hosts:
      - name: d
        domains: ["*"]
        routes:
          - match: {prefix: /}
            direct_response: {status: 200, body: "hello"}
clusters: []
YAML
)
start_weft "$CFG"
curl -sS -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/" || fail "first request"
sleep 3 # past the first idle trim
idle=$(rss_kb "$WEFT_PID")
log "idle RSS ${idle} kB"

# wait_rss_below LIMIT_KB WHAT
wait_rss_below() {
    local deadline=$((SECONDS + 10))
    until (($(rss_kb "$WEFT_PID") <= $1)); do
        ((SECONDS <= deadline)) ||
            fail "$2: RSS $(rss_kb "$WEFT_PID") kB 10 s after the load, limit $1 kB (idle ${idle} kB)"
        sleep 0.5
    done
    log "$2: RSS back to $(rss_kb "$WEFT_PID") kB (limit $1 kB)"
}

out=$(h2load -n 20000 -c 5 -m 100 "http://127.0.0.1:$PORT/" 2>&1) || fail "h2load: $out"
assert_contains "$out" "20000 succeeded" "h2load"
log "after HTTP/2 load: RSS $(rss_kb "$WEFT_PID") kB"
[[ -n "$SAN" ]] || wait_rss_below $((idle + 2048)) "HTTP/2 load"

N=3000
exec 3< <("$PYTHON" "$REPO_ROOT/tests/integration/conn_burst.py" --port "$PORT" -n "$N" --hold 1)
read -r -u 3 ready ok failed || fail "conn_burst.py printed nothing"
((ok == N)) || fail "conn_burst: only $ok of $N connections answered ($failed failed)"
open_rss=$(rss_kb "$WEFT_PID")
log "HTTP/1.1 burst: $N connections open, RSS ${open_rss} kB ($(((open_rss - idle) * 1024 / N)) bytes per connection)"
# An idle keep-alive connection holds no request state (made at the next
# request's first byte): at most 3 KiB each (5.6 KiB before).
[[ -n "$SAN" ]] || ((open_rss - idle <= N * 3)) ||
    fail "$N idle keep-alive connections take $((open_rss - idle)) kB (> 3 KiB each)"
exec 3<&-
[[ -n "$SAN" ]] || wait_rss_below $((idle + N / 2)) "HTTP/1.1 burst"

curl -sS -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/" || fail "request after the bursts"
stop_weft 15
log "ok"
