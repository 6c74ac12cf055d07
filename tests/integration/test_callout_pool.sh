#!/usr/bin/env bash
# SDK 1.1 HTTP callouts (group "pool"): weft_callout_start2 with its
# request struct, body limits, bodies as buffers, detached (fire-and-
# forget) callouts, the per-worker callout cap, worker-scoped callouts and
# their cancellation on reload. The test filter "copool" (tests/filters/
# copool.c) acts on the request header x-co and answers with what it saw.
#   1. a callout answer with > 64 headers: all delivered;
#   2. response body limit: the configured default (callouts.
#      max_response_body: 1000) and a per-request override, reason
#      body_too_large;
#   3. a request body handed over as a weft_buffer is sent (and moved out);
#   3b. through the pools: 20 sequential callouts reuse a kept-alive
#      connection (the backend counts its accepts); a callout to an
#      HTTP/2 cluster goes over HTTP/2 (a real h2 backend), ten of them on
#      one connection; over a cluster's transport filters (hello_transport
#      before HTTP/2: :scheme https); a refused connect moves to another
#      endpoint (connect_attempts);
#   3c. HTTP/1.1 over a cluster's transport filters: backend.py --hello
#      speaks hello_transport's handshake before HTTP/1.1 (and closes a
#      connection that does not): 5 sequential callouts answered over ONE
#      handshaken keep-alive connection; `protocol: auto` toward an
#      endpoint whose handshake picks ALPN h2: the first callout is sent
#      again as HTTP/2 (the HTTP/1.1 connection that learned it is
#      dropped), later ones go straight to one HTTP/2 connection; the
#      stale-connection retry: a backend that reads the 2nd request on a
#      kept-alive connection and closes it unanswered (--drop-reused):
#      the callout is sent once more on a fresh connection and succeeds
#      (the backend accepted 2 connections, rq_retry_stale counts 1);
#   4. the per-worker cap (callouts.max_per_worker: 3): the fourth
#      callout in flight gets WEFT_ERR_LIMIT, stream-scoped ones too;
#   5. a detached mirror to a backend that holds its request does not slow
#      the main request (the answer comes while the mirror still waits),
#      and weft_upstream_callout_detached_sent/_failed_total count it;
#   6. a client that aborts while its stream waits for a callout (the
#      stream ends first) is clean (ASan at exit);
#   7. worker-scoped callouts from a worker timer complete (callback on
#      the worker, no stream); on reload one in flight is cancelled
#      without its callback before worker_destroy;
#   8. SIGTERM exits 0 (sanitizers clean);
#   9. two workers at once (the suite runs this under ThreadSanitizer):
#      120 requests on new connections, 8 at a time, each making 3 pooled
#      stream callouts in parallel, a detached one and a worker-scoped
#      one; both workers served some (per-worker counts of the filter),
#      every request got its 3 answers, and the totals are exact: the
#      backend's request log, detached sent/failed, the worker callouts'
#      callbacks; then 60 more whose stream callouts go to an HTTP/2
#      cluster (each worker multiplexes its own connection): 180 h2
#      requests at the backend, from at least 2 connections.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"

BE_PORT=$(free_port)
HANG_PORT=$(free_port)
DEAD_PORT=$(free_port)
H2_PORT=$(free_port)
H2H_PORT=$(free_port)
H1H_PORT=$(free_port)
DROP_PORT=$(free_port)
MW_PORT=$(free_port)
LISTEN_PORT=$(free_port)
DEAD_LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
URL="http://127.0.0.1:$LISTEN_PORT"
start_backend be "$BE_PORT"
start_backend hang "$HANG_PORT" --request-log "$TEST_TMP/hang.log"
start_h2_backend h2b "$H2_PORT"
# h2_backend.py speaking hello_transport's handshake first (no h2c probe)
"$PYTHON" "$REPO_ROOT/tests/integration/h2_backend.py" --port "$H2H_PORT" --name h2hello \
    --hello h2hello --events "$TEST_TMP/events-h2hello.log" >"$TEST_TMP/backend-h2hello.log" 2>&1 &
track_pid $!
wait_until 10 "the hello h2 backend listens" bash -c "exec 3<>/dev/tcp/127.0.0.1/$H2H_PORT"
# backend.py speaking hello_transport's handshake before HTTP/1.1 (no curl probe)
"$PYTHON" "$BACKEND_PY" --port "$H1H_PORT" --name h1hello --hello h1hello \
    --request-log "$TEST_TMP/h1hello.log" >"$TEST_TMP/backend-h1hello.log" 2>&1 &
track_pid $!
wait_until 10 "the hello h1 backend listens" bash -c "exec 3<>/dev/tcp/127.0.0.1/$H1H_PORT"
start_backend drop "$DROP_PORT" --drop-reused --request-log "$TEST_TMP/drop.log"
CONFIG="$TEST_TMP/weft.yaml"

# write_config FILTER_EXTRA: the copool config's extra keys
write_config() {
    cat >"$CONFIG.tmp" <<YAML
workers: 1
drain_timeout: 1s
filter_path: [$FILTER_DIR]
callouts: { max_per_worker: 3, max_response_body: 1000 }
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - { name: copool, config: { cluster: aux, mirror_cluster: hang $1 } }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
  - name: dead
    address: 127.0.0.1
    port: $DEAD_LISTEN_PORT
    filters:
      - { name: copool, config: { cluster: aux, mirror_cluster: dead } }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: aux
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: hang
    endpoints: [{ address: 127.0.0.1, port: $HANG_PORT }]
  - name: dead
    endpoints: [{ address: 127.0.0.1, port: $DEAD_PORT }]
  - name: h2c
    protocol: http2
    endpoints: [{ address: 127.0.0.1, port: $H2_PORT }]
  - name: h2tls
    protocol: http2
    endpoints: [{ address: 127.0.0.1, port: $H2H_PORT }]
    transport_filters:
      - { name: hello_transport }
  - name: retry
    connect_attempts: 2
    lb_policy: round_robin
    endpoints: [{ address: 127.0.0.1, port: $DEAD_PORT }, { address: 127.0.0.1, port: $BE_PORT }]
  - name: h1tls
    endpoints: [{ address: 127.0.0.1, port: $H1H_PORT }]
    transport_filters:
      - { name: hello_transport, config: { identity: "spiffe://a/h1" } }
  - name: h2auto
    protocol: auto
    endpoints: [{ address: 127.0.0.1, port: $H2H_PORT }]
    transport_filters:
      - { name: hello_transport }
  - name: stale
    endpoints: [{ address: 127.0.0.1, port: $DROP_PORT }]
YAML
    mv -f "$CONFIG.tmp" "$CONFIG"
}
write_config ""
start_weft "$CONFIG"

# ---- 1. every header ----
fetch -H 'x-co: one' -H 'x-co-path: /headers/80' "$URL/"
assert_eq 200 "$ST" "callout: status"
assert_eq 200 "$(hdr x-co-status)" "callout answer status"
n=$(hdr x-co-nh)
((n >= 80)) || fail "headers delivered: $n (want >= 80)"
assert_eq x-h-79 "$(hdr x-co-last)" "the last header"
log "80 extra headers: $n delivered"

# ---- 2. body limits ----
fetch -H 'x-co: one' -H 'x-co-path: /bytes/900' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "900 bytes under the default limit"
assert_eq 900 "$(hdr x-co-body-len)" "900 bytes delivered"
fetch -H 'x-co: one' -H 'x-co-path: /bytes/2000' "$URL/"
assert_eq 0 "$(hdr x-co-status)" "2000 bytes over the configured default (1000)"
assert_eq body_too_large "$(hdr x-co-reason)" "reason past the default limit"
fetch -H 'x-co: one' -H 'x-co-path: /bytes/2000' -H 'x-co-max-body: 5000' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "per-request limit 5000"
assert_eq 2000 "$(hdr x-co-body-len)" "2000 bytes under the per-request limit"
fetch -H 'x-co: one' -H 'x-co-path: /bytes/500' -H 'x-co-max-body: 100' "$URL/"
assert_eq body_too_large "$(hdr x-co-reason)" "per-request limit 100"
log "body limits: default 1000 and per-request override give body_too_large"

# ---- 3. a body as a buffer ----
fetch -H 'x-co: echo-body' --data-binary 'hello-callout-body' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "echo callout status"
assert_eq 18 "$(hdr x-co-body-len)" "the body went out (echoed back)"
assert_eq 0 "$(hdr x-co-left)" "the buffer was moved out"
log "request body handed over as a weft_buffer"

# ---- 3b. through the pools: keep-alive reuse, HTTP/2 ----
cx0=$(metric 'weft_upstream_cx_total{cluster="aux"')
fetch -H 'x-co: seq 20' "$URL/"
assert_eq 20 "$(hdr x-co-ok)" "20 sequential pooled callouts answered"
conns=$(hdr x-co-conns)
((conns >= 1 && conns <= 2)) || fail "backend connections for 20 sequential callouts: $conns (want 1..2)"
cx1=$(metric 'weft_upstream_cx_total{cluster="aux"')
(((cx1 - cx0) <= 2)) || fail "upstream connections opened for 20 callouts: $((cx1 - cx0))"
log "20 sequential callouts: $conns backend connection(s), $((cx1 - cx0)) opened (keep-alive reuse)"
h2conns0=$(grep -c '^CONN' "$TEST_TMP/events-h2b.log" || true) # the readiness probe's
fetch -H 'x-co: one' -H 'x-co-cluster: h2c' -H 'x-co-path: /h2-check' -H 'x-co-body: hello-h2' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "callout over HTTP/2"
assert_contains "$BD" '"protocol": "h2"' "the h2 backend answered over HTTP/2"
assert_contains "$BD" '"body_len": 8' "the body went as DATA"
assert_contains "$BD" '"authority": "h2c"' "authority: the cluster's name"
fetch -H 'x-co: seq 10' -H 'x-co-cluster: h2c' "$URL/"
assert_eq 10 "$(hdr x-co-ok)" "10 sequential callouts over HTTP/2"
assert_eq 1 "$(hdr x-co-conns)" "one HTTP/2 connection for all of them"
assert_eq $((h2conns0 + 1)) "$(grep -c '^CONN' "$TEST_TMP/events-h2b.log")" "h2 backend connections accepted"
log "callouts over HTTP/2: one multiplexed connection"
fetch -H 'x-co: one' -H 'x-co-cluster: h2tls' -H 'x-co-path: /tls-check' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "callout over the cluster's transport filters"
assert_contains "$BD" '"protocol": "h2"' "HTTP/2 over the transport filters"
assert_contains "$BD" '"scheme": "https"' "the handshake said TLS: :scheme https"
log "a callout runs the cluster's transport filters (hello handshake, then HTTP/2, :scheme https)"
for i in 1 2 3 4; do
    fetch -H 'x-co: one' -H 'x-co-cluster: retry' "$URL/"
    assert_eq 200 "$(hdr x-co-status)" "callout $i to a cluster with a dead endpoint"
done
(($(metric 'weft_upstream_cx_connect_fail_total{cluster="retry"') >= 1)) ||
    fail "no callout picked the dead endpoint first (the retry path was not taken)"
log "a refused connect moves to the cluster's other endpoint"

# ---- 3c. HTTP/1.1 over transport filters, auto -> h2, the stale retry ----
up_conns() { metric "weft_filter_hello_transport_upstream_connections{cluster=\"$1\""; }
fetch -H 'x-co: one' -H 'x-co-cluster: h1tls' -H 'x-co-path: /h1-check' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "HTTP/1.1 callout over the transport filters"
assert_contains "$BD" '"hello": "HELLO spiffe://a/h1 -"' "the backend got the filter's handshake"
assert_contains "$BD" '"path": "/h1-check"' "then the request, as HTTP/1.1"
fetch -H 'x-co: seq 5' -H 'x-co-cluster: h1tls' "$URL/"
assert_eq 5 "$(hdr x-co-ok)" "5 sequential callouts over the transport filters"
assert_eq 1 "$(hdr x-co-conns)" "all on the first handshaken connection (keep-alive)"
assert_eq 1 "$(up_conns h1tls)" "upstream connections with the transport filters"
assert_eq 1 "$(metric 'weft_filter_hello_transport_upstream_handshakes{cluster="h1tls"')" "handshakes"
log "HTTP/1.1 callouts over the cluster's transport filters: 6 on one handshaken connection"
h2c0=$(grep -c '^CONN' "$TEST_TMP/events-h2hello.log" || true)
fetch -H 'x-co: one' -H 'x-co-cluster: h2auto' -H 'x-co-path: /auto-check' -H 'x-co-body: auto-body' "$URL/"
assert_eq 200 "$(hdr x-co-status)" "protocol auto: the first callout (ALPN h2)"
assert_contains "$BD" '"protocol": "h2"' "protocol auto: sent again as HTTP/2"
assert_contains "$BD" '"body_len": 9' "protocol auto: the body went whole over HTTP/2"
assert_eq 2 "$(up_conns h2auto)" "the HTTP/1.1 connection that learned h2, then one HTTP/2 connection"
fetch -H 'x-co: seq 4' -H 'x-co-cluster: h2auto' "$URL/"
assert_eq 4 "$(hdr x-co-ok)" "protocol auto: 4 more callouts"
assert_eq 1 "$(hdr x-co-conns)" "protocol auto: on one HTTP/2 connection"
assert_eq 2 "$(up_conns h2auto)" "protocol auto: no connection more"
assert_eq $((h2c0 + 2)) "$(grep -c '^CONN' "$TEST_TMP/events-h2hello.log")" "h2 backend: accepted"
log "protocol auto: ALPN h2 moved the callout (and the endpoint) to HTTP/2"
stale0=$(metric 'weft_upstream_rq_retry_stale_total{cluster="stale"')
fetch -H 'x-co: seq 2' -H 'x-co-cluster: stale' "$URL/"
assert_eq 2 "$(hdr x-co-ok)" "the 2nd callout, on a pooled connection the backend closes, succeeds"
assert_eq 2 "$(hdr x-co-conns)" "answered on the backend's 1st and 2nd connections"
assert_eq $((stale0 + 1)) "$(metric 'weft_upstream_rq_retry_stale_total{cluster="stale"')" \
    "rq_retry_stale: one retry on a fresh connection"
assert_eq 3 "$(grep -c '^GET /conn' "$TEST_TMP/drop.log")" "the backend read 3 requests (one dropped)"
log "stale pooled connection: the callout was retried once on a fresh connection"

# ---- 4. the per-worker cap (3); nothing is in flight yet ----
fetch -H 'x-co: burst 5' -H 'x-co-path: /delay/1500' "$URL/"
assert_eq 3 "$(hdr x-co-ok)" "detached callouts under the cap"
assert_eq 2 "$(hdr x-co-limit)" "detached callouts past the cap: WEFT_ERR_LIMIT"
fetch -H 'x-co: one' "$URL/"
assert_eq -5 "$(hdr x-co-start)" "a stream callout past the worker cap: WEFT_ERR_LIMIT"
log "max_per_worker 3: 3 started, then WEFT_ERR_LIMIT"

callout_ok() {
    fetch -H 'x-co: one' "$URL/"
    [[ "$(hdr x-co-status)" == 200 ]]
}
wait_until 10 "the burst drained" callout_ok

# ---- 5. detached mirror to a backend that holds it ----
sent0=$(metric 'weft_upstream_callout_detached_sent_total{cluster="hang"')
t0=$(date +%s%N)
fetch -H 'x-co: mirror' -H 'x-co-path: /delay/3000' "$URL/main"
t1=$(date +%s%N)
assert_eq 200 "$ST" "main request with a mirror"
assert_contains "$BD" '"x-co-mirror": "0"' "the mirror started (WEFT_OK)"
ms=$(((t1 - t0) / 1000000))
((ms < 2000)) || fail "the main request waited for the mirror: ${ms} ms"
grep -q '/delay/3000' "$TEST_TMP/hang.log" || wait_until 5 "the mirror reached its backend" grep -q '/delay/3000' "$TEST_TMP/hang.log"
assert_eq $((sent0 + 1)) "$(metric 'weft_upstream_callout_detached_sent_total{cluster="hang"')" "detached sent"
log "mirror: main answered in ${ms} ms while the mirror backend holds its request (3 s)"
fetch -H 'x-co: mirror' "http://127.0.0.1:$DEAD_LISTEN_PORT/main"
assert_eq 200 "$ST" "main request with a mirror to a dead endpoint"
failed_dead() { (($(metric 'weft_upstream_callout_detached_failed_total{cluster="dead"') == 1)); }
wait_until 10 "the failed mirror is counted" failed_dead
assert_eq 1 "$(metric 'weft_upstream_callout_detached_sent_total{cluster="dead"')" "dead: sent"
log "a mirror to a dead endpoint: the main request is fine, detached_failed_total counts it"

# ---- 6. the stream ends before its callout ----
curl -s -o /dev/null --max-time 0.5 -H 'x-co: wait' -H 'x-co-path: /delay/1500' "$URL/" || true
fetch "$URL/after"
assert_eq 200 "$ST" "weft serves after a client abort mid-callout"
log "client abort while its callout runs: fine"

# ---- 7. worker-scoped callouts and reload ----
wfield() {
    fetch -H 'x-co: wstat' "$URL/"
    awk -v t="tag=$1" -v n="$2" '$1 == t { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == n) print kv[2] } }' <<<"$BD"
}
w_at_least() { local v; v=$(wfield "$1" "$2"); [[ -n "$v" ]] && ((v >= $3)); }
write_config ", tag: 1, worker_path: /status/200, worker_period_ms: 20"
reload_config 1
wait_until 20 "worker callouts complete" w_at_least 1 ok 5
write_config ", tag: 2, worker_path: /delay/3000"
reload_config 1
wait_until 10 "tag 1's worker context destroyed" w_at_least 1 destroyed 1
wait_until 10 "tag 2's worker callout started" w_at_least 2 started 1
write_config ""
reload_config 1
wait_until 10 "tag 2's worker context destroyed" w_at_least 2 destroyed 1
sleep 3.5 # past the backend's delay: a callout not cancelled would call back now
assert_eq 0 "$(wfield 2 done)" "tag 2's callout in flight at reload: cancelled, no callback"
assert_eq 0 "$(wfield 1 bad)" "tag 1 checks"
assert_eq 0 "$(wfield 2 bad)" "tag 2 checks"
assert_eq 0 "$(wfield 0 bad)" "tag 0 checks"
log "worker callouts: $(wfield 1 ok) answered on the worker; one in flight cancelled on reload"

stop_weft

# ---- 9. two workers at once ----
start_backend mw "$MW_PORT" --request-log "$TEST_TMP/mw.log"
cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: 1s
filter_path: [$FILTER_DIR]
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - { name: copool, config: { cluster: mw, mirror_cluster: mwmirror, tag: 3 } }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: mw }
clusters:
  - name: mw
    endpoints: [{ address: 127.0.0.1, port: $MW_PORT }]
  - name: mwmirror
    endpoints: [{ address: 127.0.0.1, port: $MW_PORT }]
  - name: mwh2
    protocol: http2
    endpoints: [{ address: 127.0.0.1, port: $H2_PORT }]
YAML
start_weft "$CONFIG"
wait_workers_at 2 1 20
N_RQ=120
rqloop "$URL/multi" --count "$N_RQ" --concurrency 8 --new-conn --header 'x-co: multi 3' \
    >"$TEST_TMP/multi.out"
assert_eq "$N_RQ" "$(wc -l <"$TEST_TMP/multi.out")" "requests sent"
assert_eq "$N_RQ" "$(awk '$2 == 200' "$TEST_TMP/multi.out" | wc -l)" \
    "requests whose 3 stream callouts all got a 200 (statuses: $(awk '{ print $2 }' "$TEST_TMP/multi.out" | sort | uniq -c | tr '\n' ' '))"
assert_eq 2 "$(wfield 3 slots)" "worker contexts"
s0=$(wfield 3 s0)
s1=$(wfield 3 s1)
((s0 >= 1 && s1 >= 1)) || fail "both workers served streams: $s0 / $s1"
assert_eq "$N_RQ" $((s0 + s1)) "streams counted per worker"
mlog() { grep -c "^GET $1\$" "$TEST_TMP/mw.log" || true; }
mlog_is() { [[ "$(mlog "$1")" == "$2" ]]; }
wait_until 10 "every detached callout reached the backend" mlog_is /multi/d "$N_RQ"
wait_until 10 "every worker callout answered" w_at_least 3 mdone "$N_RQ"
assert_eq $((3 * N_RQ)) "$(mlog /multi/s)" "stream callouts the backend served"
assert_eq "$N_RQ" "$(mlog /multi/w)" "worker callouts the backend served"
assert_eq "$N_RQ" "$(wfield 3 mstarted)" "worker callouts started"
assert_eq "$N_RQ" "$(wfield 3 mdone)" "worker callouts' callbacks"
assert_eq "$N_RQ" "$(wfield 3 mok)" "worker callouts answered 200"
assert_eq 0 "$(wfield 3 bad)" "checks in the filter (refused starts, wrong worker handle)"
detached_is() {
    (($(metric 'weft_upstream_callout_detached_sent_total{cluster="mwmirror"') == $1))
}
wait_until 5 "detached callouts counted" detached_is "$N_RQ"
assert_eq 0 "$(metric 'weft_upstream_callout_detached_failed_total{cluster="mwmirror"')" "detached failed"
log "2 workers: $s0 + $s1 streams, $((3 * N_RQ)) stream, $N_RQ detached and $N_RQ worker callouts, totals exact"
# the same with the stream callouts over HTTP/2 (h2_pool on both workers)
h2conn0=$(grep -c '^CONN' "$TEST_TMP/events-h2b.log" || true)
h2req0=$(grep -c '^REQ .* /multi/s$' "$TEST_TMP/events-h2b.log" || true)
N_H2=60
rqloop "$URL/multi" --count "$N_H2" --concurrency 8 --new-conn --header 'x-co: multi 3' \
    --header 'x-co-cluster: mwh2' >"$TEST_TMP/multi-h2.out"
assert_eq "$N_H2" "$(awk '$2 == 200' "$TEST_TMP/multi-h2.out" | wc -l)" \
    "h2: requests whose 3 callouts got a 200 (statuses: $(awk '{ print $2 }' "$TEST_TMP/multi-h2.out" | sort | uniq -c | tr '\n' ' '))"
assert_eq $((3 * N_H2)) $(($(grep -c '^REQ .* /multi/s$' "$TEST_TMP/events-h2b.log") - h2req0)) \
    "h2 requests the backend served"
h2conns=$(($(grep -c '^CONN' "$TEST_TMP/events-h2b.log") - h2conn0))
((h2conns >= 2)) || fail "h2 connections for callouts of 2 workers: $h2conns (want >= 2)"
assert_eq $((N_RQ + N_H2)) $(($(wfield 3 s0) + $(wfield 3 s1))) "streams counted per worker"
wait_until 10 "every worker callout answered" w_at_least 3 mok $((N_RQ + N_H2))
wait_until 5 "detached callouts counted" detached_is $((N_RQ + N_H2))
assert_eq 0 "$(metric 'weft_upstream_callout_detached_failed_total{cluster="mwmirror"')" "detached failed"
assert_eq 0 "$(wfield 3 bad)" "checks in the filter"
log "2 workers over HTTP/2: $((3 * N_H2)) stream callouts on $h2conns connections"
stop_weft
log "ok"
