#!/usr/bin/env bash
# The ABI 1.1 retry calls end to end: the retry_policy filter
# (tests/filters/retry_policy.c) in one weft (one worker), on listeners
# that differ in the filter's config, against retry_backend.py backends:
#   pertry  : attempts 2, per_try_timeout 300ms -> cluster slow (route timeout 5s)
#   pertry1 : attempts 1, per_try_timeout 300ms -> cluster slow
#   backoff : attempts 2, backoff_ms 400        -> cluster slow (/fail503first)
#   hang    : attempts 3, backoff_ms 3000       -> cluster slow, route timeout 600ms
#   other   : attempts 3, other_endpoint        -> cluster pair (A: 503 always,
#             B: 200), random lb, locality and labels on both
#   same    : attempts 3, no other_endpoint     -> cluster pair (the control)
#   h2      : attempts 2                        -> cluster h2c (HTTP/2, h2_backend.py)
# Asserts:
#   - per-try timeout: the first attempt (the backend waits 3 s) is cut at
#     300 ms and retried; the second answers 200 well before 3 s; the
#     filter saw "pertry@0,200@0"; the backend saw x-weft-attempt-count 1
#     then 2 (on_upstream_request);
#   - without a retry a per-try timeout is a 504 upstream_per_try_timeout
#     with response flag UT in the access log, before the route timeout;
#   - backoff: 503 then 200; the attempt info's backoff_us of the second
#     attempt >= 400000 and the exchange took >= 400 ms (slack only in the
#     safe direction); the backend saw attempts 1 and 2;
#   - the route timeout still runs during a backoff: 504 after ~600 ms,
#     not after the 3 s delay, and the stream does not hang;
#   - a client that leaves during a 2 s backoff (gone: attempts 2,
#     backoff_ms 2000) cancels it: the backend never sees a second attempt;
#   - HTTP/2 upstream: the backend sees x-weft-attempt-count 1 (the
#     attempt's head is sent as frames from the same copy); a 503 is retried;
#   - other endpoint: over 30 requests no stream goes to A twice (every
#     one ends 200 on B, x-retry-label v2, locality eu/eu-b/rack1, 2
#     labels), while the control listener without the option does send
#     some stream to A twice in 40 (random lb, 3 attempts: each stream
#     with probability 1/4) -- so the test can fail;
#   - the filter's stats count the retries; the cluster's
#     weft_upstream_rq_retry_total, _rq_retry_backoff_total and
#     _rq_per_try_timeout_total count them on the core side; SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"

RB="$REPO_ROOT/tests/integration/retry_backend.py"

SLOW_PORT=$(free_port)
A_PORT=$(free_port)
B_PORT=$(free_port)
P_PERTRY=$(free_port)
P_PERTRY1=$(free_port)
P_BACKOFF=$(free_port)
P_HANG=$(free_port)
P_GONE=$(free_port)
H2_PORT=$(free_port)
P_H2=$(free_port)
P_OTHER=$(free_port)
P_SAME=$(free_port)
ADMIN_PORT=$(free_port)

start_rb() { # NAME PORT MODE
    "$PYTHON" "$RB" --port "$2" --name "$1" --mode "$3" >"$TEST_TMP/backend-$1.log" 2>&1 &
    track_pid $!
    wait_for_url "http://127.0.0.1:$2/hits" 10 200 $!
}
start_rb slow "$SLOW_PORT" ok
start_rb a "$A_PORT" 503
start_rb b "$B_PORT" ok
h2_need_tools
start_h2_backend h2b "$H2_PORT"

# listener NAME PORT CLUSTER ROUTE_TIMEOUT FILTER_CONFIG
listener() {
    cat <<YAML
  - name: $1
    address: 127.0.0.1
    port: $2
    filters:
      - { name: retry_policy, config: $5 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: $3, timeout: $4 }
YAML
}

ACCESS_LOG="$TEST_TMP/access.log"
CONFIG="$TEST_TMP/weft.yaml"
{
    cat <<YAML
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
access_log: { path: $ACCESS_LOG }
listeners:
YAML
    listener pertry "$P_PERTRY" slow 5s "{ attempts: 2, per_try_timeout: 300ms }"
    listener pertry1 "$P_PERTRY1" slow 5s "{ attempts: 1, per_try_timeout: 300ms }"
    listener backoff "$P_BACKOFF" slow 5s "{ attempts: 2, backoff_ms: 400 }"
    listener hang "$P_HANG" slow 600ms "{ attempts: 3, backoff_ms: 3000 }"
    listener gone "$P_GONE" slow 5s "{ attempts: 2, backoff_ms: 2000 }"
    listener h2 "$P_H2" h2c 5s "{ attempts: 2 }"
    listener other "$P_OTHER" pair 5s "{ attempts: 3, other_endpoint: true }"
    listener same "$P_SAME" pair 5s "{ attempts: 3, other_endpoint: false }"
    cat <<YAML
clusters:
  - name: slow
    endpoints: [{ address: 127.0.0.1, port: $SLOW_PORT }]
  - name: h2c
    protocol: http2
    endpoints: [{ address: 127.0.0.1, port: $H2_PORT }]
  - name: pair
    lb_policy: random
    endpoints:
      - address: 127.0.0.1
        port: $A_PORT
        locality: eu/eu-a/rack0
        labels: { version: v1 }
      - address: 127.0.0.1
        port: $B_PORT
        locality: { region: eu, zone: eu-b, subzone: rack1 }
        labels: { version: v2, app: reviews }
YAML
} >"$CONFIG"
start_weft "$CONFIG"

hits() { curl -s --max-time 5 "http://127.0.0.1:$1/hits?k=$2"; }
now_ms() { date +%s%3N; }

# ---- per-try timeout, then success on the second attempt --------------------
t0=$(now_ms)
fetch "http://127.0.0.1:$P_PERTRY/slowfirst?k=pt"
el=$(($(now_ms) - t0))
assert_eq 200 "$ST" "per-try: status (body: $BD)"
assert_eq 2 "$(hdr x-retry-attempts)" "per-try: attempts"
assert_eq "pertry@0,200@0" "$(hdr x-retry-history)" "per-try: the first attempt timed out per try"
assert_eq 2 "$(hdr x-seen-attempt)" "per-try: x-weft-attempt-count the answering attempt carried"
assert_eq "2 1,2" "$(hits "$SLOW_PORT" pt)" "per-try: attempt counts the backend saw"
((el >= 300)) || fail "per-try: took ${el} ms, less than the 300 ms per-try timeout"
((el < 2500)) || fail "per-try: took ${el} ms: the first attempt was not cut at 300 ms"
log "per-try timeout: retried after 300 ms, 200 in ${el} ms"

# ---- per-try timeout without a retry: 504, flag UT -------------------------
t0=$(now_ms)
fetch "http://127.0.0.1:$P_PERTRY1/slowfirst?k=pt1"
el=$(($(now_ms) - t0))
assert_eq 504 "$ST" "per-try alone: status"
assert_eq upstream_per_try_timeout "$(hdr x-weft-reason)" "per-try alone: reason"
((el < 2500)) || fail "per-try alone: took ${el} ms"
wait_until 5 "access log line of the per-try 504" grep -q 'k=pt1' "$ACCESS_LOG"
line=$(grep 'k=pt1' "$ACCESS_LOG" | tail -1)
assert_contains "$line" '"response_flags":"UT"' "per-try alone: response flags in the access log"
log "per-try timeout without retry: 504 UT in ${el} ms"

# ---- 503 then 200 after a backoff -----------------------------------------
t0=$(now_ms)
fetch "http://127.0.0.1:$P_BACKOFF/fail503first?k=bo"
el=$(($(now_ms) - t0))
assert_eq 200 "$ST" "backoff: status"
assert_eq "503@0,200@0" "$(hdr x-retry-history)" "backoff: history"
bus=$(hdr x-retry-backoff-us)
[[ "$bus" =~ ^[0-9]+$ ]] || fail "backoff: x-retry-backoff-us [$bus]"
((bus >= 400000)) || fail "backoff: the second attempt waited ${bus} us, less than 400 ms"
((el >= 400)) || fail "backoff: the exchange took ${el} ms, less than the 400 ms backoff"
assert_eq "2 1,2" "$(hits "$SLOW_PORT" bo)" "backoff: attempt counts the backend saw"
log "backoff: waited ${bus} us (exchange ${el} ms)"

# ---- the route timeout cuts a long backoff: no hang ------------------------
t0=$(now_ms)
fetch "http://127.0.0.1:$P_HANG/fail503first?k=hang"
el=$(($(now_ms) - t0))
assert_eq 504 "$ST" "backoff past the route timeout: status"
assert_eq upstream_response_timeout "$(hdr x-weft-reason)" "backoff past the route timeout: reason"
((el < 2500)) || fail "backoff past the route timeout: took ${el} ms (the 3 s delay ran out)"
assert_eq "1 1" "$(hits "$SLOW_PORT" hang)" "backoff past the route timeout: no second attempt"
log "route timeout during a backoff: 504 in ${el} ms"

# ---- the client leaves during a backoff: the wait is cancelled -------------
curl -s -o /dev/null --max-time 0.5 "http://127.0.0.1:$P_GONE/fail503first?k=gone" || true
sleep 2.8 # past the 2 s delay: a retry that was not cancelled would reach the backend
assert_eq "1 1" "$(hits "$SLOW_PORT" gone)" "client gone during a backoff: no second attempt"
kill -0 "$WEFT_PID" || fail "weft died after a client left during a backoff"
log "client gone during a backoff: the delayed retry was cancelled"

# ---- HTTP/2 upstream: the per-attempt head goes out as frames too ---------
fetch "http://127.0.0.1:$P_H2/json"
assert_eq 200 "$ST" "h2: status"
seen=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["headers"].get("x-weft-attempt-count", "-"))' <<<"$BD")
assert_eq 1 "$seen" "h2: x-weft-attempt-count the backend saw"
fetch "http://127.0.0.1:$P_H2/status/503"
assert_eq 503 "$ST" "h2: retried 503 status"
assert_eq "503@0,503@0" "$(hdr x-retry-history)" "h2: history of the retried 503"
log "h2 upstream: per-attempt header sent, 503 retried"

# ---- retry to an endpoint not tried yet ----------------------------------
twice_on_a() { # PORT N: how many of N streams went to endpoint 0 (A) twice
    local port="$1" n="$2" i twice=0 h
    for ((i = 0; i < n; i++)); do
        fetch "http://127.0.0.1:$port/x?k=$port-$i"
        h=$(hdr x-retry-history)
        [[ "$(grep -o '@0' <<<"$h" | wc -l)" -ge 2 ]] && twice=$((twice + 1))
        if [[ "$port" == "$P_OTHER" ]]; then
            assert_eq 200 "$ST" "other endpoint: request $i status (history $h)"
            assert_eq v2 "$(hdr x-retry-label)" "other endpoint: label version of the answering endpoint"
            assert_eq eu/eu-b/rack1 "$(hdr x-retry-locality)" "other endpoint: locality"
            assert_eq 2 "$(hdr x-retry-labels)" "other endpoint: n_labels"
            assert_eq "127.0.0.1:$B_PORT" "$(hdr x-retry-endpoint)" "other endpoint: upstream host"
            if [[ "$h" == 503@0,* ]]; then
                assert_eq "503@0,200@1" "$h" "other endpoint: history after a 503 on A"
                assert_eq 4 "$(hdr x-retry-flags)" "other endpoint: flags (OTHER_ENDPOINT)"
            fi
        fi
    done
    echo "$twice"
}
a_before=$(hits "$A_PORT" "")
tw=$(twice_on_a "$P_OTHER" 30)
assert_eq 0 "$tw" "other endpoint: streams that went to A twice"
a_after=$(hits "$A_PORT" "")
((a_after - a_before <= 30)) || fail "other endpoint: A saw $((a_after - a_before)) requests for 30 streams"
log "other endpoint: 30 streams, A hit $((a_after - a_before)) times, never twice by one stream"
tw=$(twice_on_a "$P_SAME" 40)
((tw > 0)) || fail "control: without other_endpoint no stream went to A twice in 40 (the test could not fail)"
log "control without other_endpoint: $tw of 40 streams went to A twice"

retries=$(metric 'weft_filter_retry_policy_retries')
((retries >= 3)) || fail "stats: retries counter $retries"
# slow: per-try retry, backoff retry, hang (1 backoff), gone (1 backoff)
assert_eq 4 "$(metric 'weft_upstream_rq_retry_total{cluster="slow"')" "stats: filter retries on slow"
assert_eq 3 "$(metric 'weft_upstream_rq_retry_backoff_total{cluster="slow"')" "stats: delayed retries on slow"
assert_eq 2 "$(metric 'weft_upstream_rq_per_try_timeout_total{cluster="slow"')" "stats: per-try timeouts on slow"

stop_weft
log "ok"
