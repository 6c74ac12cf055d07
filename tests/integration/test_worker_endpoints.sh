#!/usr/bin/env bash
# SDK 1.1 state, worker variants (weft_worker_cluster_endpoint_count and
# the rest: endpoint calls with a worker handle, no stream). Two workers,
# cluster "be" = good + bad; bad answers 500 while $TEST_TMP/bad.fail
# exists (backend.py --fail-file). The test filter "outlier"
# (tests/filters/outlier.c) ejects an endpoint after one 5xx for 300 s and
# names the worker of each request (x-outlier-worker); a request header
# x-outlier-restore-in: MS starts a worker timer on that request's worker
# which restores every ejected endpoint with the worker calls.
#   1. one 500 from bad: bad ejected (/clusters: /failed_outlier_check);
#   2. requests on new connections until both workers answered at least
#      three each: every one went to good;
#   3. bad stops failing; one request asks for the restore (200 ms): bad
#      is back (/clusters healthy) long before its 300 s, the stat
#      "restores" is 1;
#   4. requests on new connections until both workers sent at least one
#      to bad: both load balancers use bad again, every answer 200;
#   5. each request tried the previous request's worker handle: when that
#      was the other worker's, the call got WEFT_ERR_THREAD (stat
#      foreign_thread > 0, "bad" 0); SIGTERM: worker_destroy's checks
#      (WEFT_ERR_STATE there, a NULL handle WEFT_ERR_HANDLE) held (no
#      failure logged), exit 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

GOOD_PORT=$(free_port)
BAD_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
FAIL_FILE="$TEST_TMP/bad.fail"
touch "$FAIL_FILE"
start_backend good "$GOOD_PORT"
start_backend bad "$BAD_PORT" --fail-status 500 --fail-file "$FAIL_FILE"
URL="http://127.0.0.1:$LISTEN_PORT"
CONFIG="$TEST_TMP/weft.yaml"

cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: 2s
filter_path: [$FILTER_DIR]
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: outlier
        config: { cluster: be, consecutive_5xx: 1, ejection_time: 300s, slot: 1 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    lb_policy: round_robin
    endpoints:
      - { address: 127.0.0.1, port: $GOOD_PORT }
      - { address: 127.0.0.1, port: $BAD_PORT }
YAML

start_weft "$CONFIG"
wait_workers_at 2 1 20

clusters_line() { admin_get /clusters | grep -F "be::127.0.0.1:$BAD_PORT::$1" || true; }
bad_ejected() { [[ "$(clusters_line health_flags)" == *"/failed_outlier_check"* ]]; }
bad_healthy() { [[ "$(clusters_line health_flags)" == *"::healthy" ]]; }
bad_healthy || fail "bad is not healthy at the start: $(clusters_line health_flags)"

# ---- 1. one 500 ejects bad ----
for ((i = 1; i <= 20; i++)); do
    fetch "$URL/eject/$i"
    [[ "$ST" == 500 ]] && break
    assert_eq 200 "$ST" "request $i before the ejection"
done
assert_eq 500 "$ST" "a 500 from bad within 20 requests"
bad_ejected || fail "bad not ejected after its 500: $(clusters_line health_flags)"
left=$(clusters_line ejected_remaining_ms | awk -F:: '{ print $NF }')
((left > 200000)) || fail "ejection time left: $left ms"
log "bad ejected after one 500 ($left ms left)"

# per-worker counts of the answers: W1/W2 (any backend), B1/B2 (from bad)
# sample COND MAX: requests on new connections until COND (a shell test
# on the counts) holds or MAX requests were sent; every answer must be 200.
sample() {
    local cond="$1" max="$2" w b
    declare -gA N=() NB=()
    for ((i = 1; i <= max; i++)); do
        fetch "$URL/sample/$i"
        assert_eq 200 "$ST" "request $i"
        w=$(hdr x-outlier-worker)
        b=$(hdr x-backend)
        [[ -n "$w" && -n "$b" ]] || fail "request $i: no x-outlier-worker or x-backend"
        N[$w]=$((${N[$w]:-0} + 1))
        [[ "$b" == bad ]] && NB[$w]=$((${NB[$w]:-0} + 1))
        eval "$cond" && return 0
    done
    return 1
}
both_min() { # both_min ARRAY N: two workers, each with >= N in ARRAY
    local -n a="$1"
    local k n=0
    for k in "${!a[@]}"; do ((a[$k] >= $2)) && n=$((n + 1)); done
    ((n >= 2))
}

# ---- 2. every worker sends everything to good ----
sample 'both_min N 3' 80 || fail "two workers did not answer 3 requests each in 80: ${!N[*]} / ${N[*]}"
((${#NB[@]} == 0)) || fail "bad got requests while ejected: ${!NB[*]} / ${NB[*]}"
assert_eq 2 "${#N[@]}" "workers seen"
log "while bad is ejected: workers ${!N[*]} answered ${N[*]} requests, none from bad"

# ---- 3. un-ejection from a worker timer, before the ejection time ----
rm -f "$FAIL_FILE"
fetch -H "x-outlier-restore-in: 200" "$URL/restore"
assert_eq 200 "$ST" "the request that asks for the restore"
wait_until 20 "bad back in rotation (restored by the worker timer)" bad_healthy
assert_eq 1 "$(metric 'weft_filter_outlier_restores{')" "restores stat"
assert_eq 1 "$(metric 'weft_filter_outlier_ejections{')" "ejections stat"
log "bad restored by worker $(hdr x-outlier-worker)'s timer, ~300 s before its ejection ended"

# ---- 4. both workers use bad again ----
sample 'both_min NB 1' 80 || fail "bad not used by both workers in 80 requests: ${!NB[*]} / ${NB[*]}"
log "after the restore: workers ${!NB[*]} sent ${NB[*]} requests to bad"
bad_healthy || fail "bad ejected again: $(clusters_line health_flags)"

# ---- 5. another worker's handle; worker_destroy's checks at shutdown ----
assert_eq 0 "$(metric 'weft_filter_outlier_bad{')" "wrong answers of worker calls"
foreign=$(metric 'weft_filter_outlier_foreign_thread{')
((foreign > 0)) || fail "no request tried the other worker's handle"
log "another worker's handle: WEFT_ERR_THREAD $foreign times"
stop_weft 15
if grep -q "worker_cluster_endpoint_count: not a live worker handle" "$WEFT_LOG"; then
    fail "a live worker handle was refused"
fi
grep -q "worker_cluster_endpoint_count: not allowed now (worker_destroy is running)" "$WEFT_LOG" ||
    fail "worker_destroy's probe got no WEFT_ERR_STATE log line"
log "PASS"
