#!/usr/bin/env bash
# Raw TCP callouts (SDK 1.1, weft_tcp_callout_*) against a REAL
# redis-server: the test filter redis_counter INCRs a key per request over
# RESP and answers its value in x-counter (tests/filters/redis_counter.c).
#   - worker scope (one connection per worker, two workers): sequential
#     requests get 1..N in order, 60 concurrent ones (pipelined on the
#     workers' connections) get exactly {1..60}, redis sees at most 2
#     connections from weft (CLIENT LIST) and the filter opened at most 2;
#   - stream scope (a connection per request): values 1..N in order, one
#     connection opened per request, an "-ERR" reply -> 502 redis_error;
#   - connect timeout: a cluster whose endpoint never accepts (full accept
#     queue, connect_timeout 300ms) -> 503 redis_unavailable
#     "connect_timeout", counted in weft_upstream_cx_connect_timeout_total;
#   - redis killed -> 503 redis_unavailable (connect_failure); redis back
#     on the same port -> 200 again (a fresh redis: x-counter 1);
#   - the client goes away while its reply is pending (redis paused with
#     CLIENT PAUSE), in both scopes: no crash; on the worker's connection
#     the reply still comes and is matched to the gone request (the next
#     request gets the next value);
#   - weft exits 0 on SIGTERM (a sanitizer report would make it non-zero).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

[[ -f "$FILTER_DIR/redis_counter.so" ]] || fail "redis_counter.so not built"
command -v redis-server >/dev/null || fail "redis-server not installed (scripts/setup.sh)"
command -v redis-cli >/dev/null || fail "redis-cli not installed (scripts/setup.sh)"

REDIS_PORT=$(free_port)
BE_PORT=$(free_port)
SLOW_PORT=$(free_port)
P_STREAM=$(free_port)
P_SLOW=$(free_port)
P_WORKER=$(free_port)
ADMIN_PORT=$(free_port)

REDIS_PID=""
start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --daemonize no >"$TEST_TMP/backend-redis.log" 2>&1 &
    REDIS_PID=$!
    track_pid "$REDIS_PID"
    wait_until 10 "redis-server answers PING" redis_ping
}
redis_ping() { [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

start_redis
start_backend be "$BE_PORT"
"$PYTHON" "$REPO_ROOT/tests/integration/full_queue.py" "$SLOW_PORT" >"$TEST_TMP/slow.ready" 2>&1 &
track_pid $!
wait_until 10 "full-queue listener ready" grep -q ready "$TEST_TMP/slow.ready"

listener() { # NAME PORT FILTER_CONFIG
    cat <<YAML
  - name: $1
    address: 127.0.0.1
    port: $2
    filters:
      - { name: redis_counter, config: $3 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
YAML
}
{
    cat <<YAML
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
YAML
    listener stream "$P_STREAM" "{ cluster: redis, scope: stream, timeout: 3s }"
    listener slow "$P_SLOW" "{ cluster: slow, scope: stream, timeout: 5s }"
    listener worker "$P_WORKER" "{ cluster: redis, scope: worker, timeout: 3s }"
    cat <<YAML
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: redis
    endpoints: [{ address: 127.0.0.1, port: $REDIS_PORT }]
  - name: slow
    connect_timeout: 300ms
    endpoints: [{ address: 127.0.0.1, port: $SLOW_PORT }]
YAML
} >"$TEST_TMP/weft.yaml"
start_weft "$TEST_TMP/weft.yaml"

# ---- stream scope: one connection per request, values in order
for i in $(seq 1 12); do
    fetch -H 'x-counter-key: k_stream' "http://127.0.0.1:$P_STREAM/a"
    assert_eq 200 "$ST" "stream: request $i status ($BD)"
    assert_eq "$i" "$(hdr x-counter)" "stream: request $i counter"
done
assert_eq 12 "$(rcli get k_stream)" "stream: the key in redis"
assert_eq 12 "$(metric 'weft_filter_redis_counter_opened{listener="stream"')" "stream: connections opened"
fetch "http://127.0.0.1:$P_STREAM/by/path"
assert_eq 1 "$(hdr x-counter)" "stream: key from the path"
assert_eq 1 "$(rcli get /by/path)" "stream: path key in redis"
log "stream scope: x-counter 1..12, 12 connections"

# ---- worker scope: one connection per worker, reused and pipelined
for i in $(seq 1 20); do
    fetch -H 'x-counter-key: k_worker' "http://127.0.0.1:$P_WORKER/a"
    assert_eq 200 "$ST" "worker: request $i status ($BD)"
    assert_eq "$i" "$(hdr x-counter)" "worker: request $i counter"
done
seq 1 60 | xargs -P 20 -I{} curl -s -o /dev/null -D - --max-time 10 \
    -H 'x-counter-key: k_par' "http://127.0.0.1:$P_WORKER/p{}" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "x-counter" { print $2 }' | sort -n >"$TEST_TMP/par.txt"
assert_eq "$(seq 1 60)" "$(cat "$TEST_TMP/par.txt")" "worker: 60 concurrent requests got 1..60"
opened=$(metric 'weft_filter_redis_counter_opened{listener="worker"')
((opened >= 1 && opened <= 2)) || fail "worker: $opened connections opened (one per worker)"
conns=$(rcli client list | grep -vc 'cmd=client' || true)
((conns >= 1 && conns <= 2)) || fail "worker: redis sees $conns client connections: $(rcli client list)"
log "worker scope: 1..20 in order, 60 concurrent -> 1..60, $opened connections opened, redis sees $conns"

# ---- an error reply
rcli set k_text abc >/dev/null
fetch -H 'x-counter-key: k_text' "http://127.0.0.1:$P_STREAM/a"
assert_eq 502 "$ST" "error reply: status"
assert_eq redis_error "$(hdr x-weft-reason)" "error reply: reason"
assert_contains "$BD" "not an integer" "error reply: body"
log "error reply: 502 redis_error ($BD)"

# ---- connect timeout
t0=$(date +%s%N)
fetch "http://127.0.0.1:$P_SLOW/a"
t1=$(date +%s%N)
elapsed_ms=$(((t1 - t0) / 1000000))
assert_eq 503 "$ST" "connect timeout: status"
assert_eq redis_unavailable "$(hdr x-weft-reason)" "connect timeout: reason"
assert_contains "$BD" "connect_timeout" "connect timeout: body"
((elapsed_ms >= 250 && elapsed_ms < 3000)) || fail "connect timeout: answered after ${elapsed_ms} ms"
(($(metric 'weft_upstream_cx_connect_timeout_total{cluster="slow"') >= 1)) ||
    fail "connect timeout: not counted"
log "connect timeout: 503 after ${elapsed_ms} ms ($BD)"

# ---- the client goes away while its reply is pending
rcli client pause 1500 all >/dev/null
code=$(http_status --max-time 0.4 -H 'x-counter-key: k_gone' "http://127.0.0.1:$P_STREAM/a")
assert_eq 000 "$code" "gone: the client gave up"
sleep 1.5
fetch -H 'x-counter-key: k_gone' "http://127.0.0.1:$P_STREAM/a"
assert_eq 200 "$ST" "gone: next request"
log "client gone while pending: next request x-counter $(hdr x-counter)"

# ---- the same on the worker's connection: the reply still comes
fetch -H 'x-counter-key: k_wgone' "http://127.0.0.1:$P_WORKER/a"
assert_eq 1 "$(hdr x-counter)" "worker gone: first"
rcli client pause 1500 write >/dev/null
code=$(http_status --max-time 0.4 -H 'x-counter-key: k_wgone' "http://127.0.0.1:$P_WORKER/a")
assert_eq 000 "$code" "worker gone: the client gave up"
sleep 1.5
for i in 1 2 3 4; do # both workers' connections: the next value each time
    fetch -H 'x-counter-key: k_wgone' "http://127.0.0.1:$P_WORKER/a"
    assert_eq $((i + 2)) "$(hdr x-counter)" "worker gone: request $i after the pause"
done
log "worker scope, client gone while pending: the late reply consumed in order"

# ---- redis killed, then back
kill -KILL "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
fetch -H 'x-counter-key: k_stream' "http://127.0.0.1:$P_STREAM/a"
assert_eq 503 "$ST" "redis down: status"
assert_eq redis_unavailable "$(hdr x-weft-reason)" "redis down: reason"
assert_contains "$BD" "connect_failure" "redis down: body"
for i in 1 2 3; do # the workers' connections saw the peer close: reopened, refused
    fetch -H 'x-counter-key: k_worker' "http://127.0.0.1:$P_WORKER/a"
    assert_eq 503 "$ST" "redis down, worker scope: status"
    assert_eq redis_unavailable "$(hdr x-weft-reason)" "redis down, worker scope: reason"
done
start_redis
fetch -H 'x-counter-key: k_worker' "http://127.0.0.1:$P_WORKER/a"
assert_eq 200 "$ST" "redis back, worker scope: status"
assert_eq 1 "$(hdr x-counter)" "redis back, worker scope: a fresh counter"
fetch -H 'x-counter-key: k_stream' "http://127.0.0.1:$P_STREAM/a"
assert_eq 200 "$ST" "redis back: status"
assert_eq 1 "$(hdr x-counter)" "redis back: a fresh counter"
log "redis killed: 503 connect_failure; back: 200"

kill -0 "$WEFT_PID" || fail "weft died"
stop_weft 10
