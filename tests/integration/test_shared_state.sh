#!/usr/bin/env bash
# SDK 1.1 state: shared state that survives reloads, endpoint views,
# per-endpoint counters and ejection seen by every worker. Two workers;
# the test filter "outlier" (tests/filters/outlier.c) keeps a request
# counter in shared state (x-outlier-requests, x-outlier-block = which
# block) and ejects an endpoint of cluster "be" after 3 consecutive 5xx.
#   1. the counter survives a SIGHUP reload of the same config (same
#      block); a new state_version, then a new state_size, give a fresh
#      block (counter back to 1) and the old block is destroyed (its
#      destroy callback logs) once its snapshot is gone;
#   2. cluster "be" = good + bad (bad answers 500): exactly 3 500s, then
#      bad is ejected (/clusters: /failed_outlier_check, the filter's
#      endpoint view says EJECTED), and every request (new connections:
#      both workers) goes to good;
#   3. a reload that changes the cluster's endpoints (good's weight: a new
#      hostset) keeps the ejection (/clusters, traffic);
#   4. after ejection_time (20 s: long enough for a loaded machine to run
#      the checks above while it lasts) bad is back (polled on /clusters) and takes
#      traffic again;
#   5. per-route shared state: the route /solo gives the filter a
#      per-route config (route_counter: solo), whose route_config_create
#      asks for the block "route:solo": its counter
#      (x-outlier-route-requests) went on over every reload above; a
#      reload without that per-route config destroys the block (its
#      destroy callback logs) once the old snapshot is gone: the
#      reference route_config_create took is released, not leaked;
#      SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

GOOD_PORT=$(free_port)
BAD_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend good "$GOOD_PORT"
start_backend bad "$BAD_PORT" --fail-status 500
URL="http://127.0.0.1:$LISTEN_PORT"
CONFIG="$TEST_TMP/weft.yaml"

# write_config STATE_VERSION STATE_SIZE GOOD_WEIGHT [ROUTE_STATE: 1 (default) or 0]
write_config() {
    local route_cfg=", filter_config: { outlier: { route_counter: solo } }"
    [[ "${4:-1}" == 1 ]] || route_cfg=""
    cat >"$CONFIG.tmp" <<YAML
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
        config:
          cluster: be
          consecutive_5xx: 3
          ejection_time: 20s
          slot: 2
          state_version: $1
          state_size: $2
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: /solo }, cluster: solo$route_cfg }
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: solo
    endpoints: [{ address: 127.0.0.1, port: $GOOD_PORT }]
  - name: be
    lb_policy: round_robin
    endpoints:
      - { address: 127.0.0.1, port: $GOOD_PORT, weight: $3, labels: { version: v1 } }
      - { address: 127.0.0.1, port: $BAD_PORT, labels: { version: v2 } }
YAML
    mv -f "$CONFIG.tmp" "$CONFIG"
}

reload() { reload_config 2; }

write_config 1 64 1
start_weft "$CONFIG"
wait_workers_at 2 1 20

# ---- 1. shared state across reloads ----
fetch "$URL/solo/1"
assert_eq 200 "$ST" "status"
assert_eq 1 "$(hdr x-outlier-requests)" "first request"
assert_eq 1 "$(hdr x-outlier-block)" "first block"
assert_eq 1 "$(hdr x-outlier-route-requests)" "first request of the route"
fetch "$URL/solo/2"
assert_eq 2 "$(hdr x-outlier-requests)" "second request"

reload # same config: same block, counter kept
fetch "$URL/solo/3"
assert_eq 200 "$ST" "status after the reload"
assert_eq 3 "$(hdr x-outlier-requests)" "counter after a reload of the same config"
assert_eq 1 "$(hdr x-outlier-block)" "block after a reload of the same config"
log "counter kept over a reload (3 requests, block 1)"

write_config 2 64 1 # another layout version: a fresh block
reload
fetch "$URL/solo/4"
assert_eq 1 "$(hdr x-outlier-requests)" "counter after a state_version change"
assert_eq 2 "$(hdr x-outlier-block)" "block after a state_version change"
wait_until 20 "the old block is destroyed" grep -q "outlier: shared block destroyed (3 requests)" "$WEFT_LOG"

write_config 2 128 1 # another size: a fresh block again
reload
fetch "$URL/solo/5"
assert_eq 5 "$(hdr x-outlier-route-requests)" "the route's counter over three reloads"
assert_eq 1 "$(hdr x-outlier-requests)" "counter after a state_size change"
assert_eq 3 "$(hdr x-outlier-block)" "block after a state_size change"
wait_until 20 "the second block is destroyed" grep -q "outlier: shared block destroyed (1 requests)" "$WEFT_LOG"
log "incompatible layouts (version, size) start from zero; old blocks destroyed"

# ---- 2. ejection after 3 consecutive 5xx ----
clusters_line() { admin_get /clusters | grep -F "be::127.0.0.1:$BAD_PORT::$1" || true; }
bad_ejected() { [[ "$(clusters_line health_flags)" == *"/failed_outlier_check"* ]]; }
bad_healthy() { [[ "$(clusters_line health_flags)" == *"::healthy" ]]; }
bad_healthy || fail "bad is not healthy at the start: $(clusters_line health_flags)"

fails=0
for ((i = 1; i <= 40; i++)); do
    fetch "$URL/be/$i"
    [[ "$ST" == 500 ]] && fails=$((fails + 1))
    [[ "$ST" == 200 || "$ST" == 500 ]] || fail "request $i: status $ST"
    if bad_ejected; then
        break
    fi
done
bad_ejected || fail "bad was never ejected ($fails 500s in 40 requests)"
assert_eq 3 "$fails" "500s before the ejection"
log "bad ejected after $fails consecutive 500s: $(clusters_line ejected_remaining_ms)"
assert_eq 1 "$(metric 'weft_filter_outlier_ejections{')" "ejections stat"

# Every request now goes to good, whichever worker takes it.
for ((i = 1; i <= 12; i++)); do
    fetch "$URL/be/after/$i"
    assert_eq 200 "$ST" "request $i after the ejection"
    assert_eq good "$(hdr x-backend)" "backend of request $i after the ejection"
done
assert_contains "$(hdr x-outlier-endpoints)" "127.0.0.1:$BAD_PORT=2/" "the filter's endpoint view"
assert_contains "$(hdr x-outlier-endpoints)" "127.0.0.1:$GOOD_PORT=0/0/1/version=v1" "the filter's endpoint view"
log "12 requests after the ejection: all to good"

# ---- 3. ejection kept over a reload that replaces the hostset ----
write_config 2 128 2
reload
bad_ejected || fail "ejection lost over the reload: $(clusters_line health_flags)"
assert_contains "$(admin_get /clusters)" "be::127.0.0.1:$GOOD_PORT::weight::2" "new hostset"
left=$(clusters_line ejected_remaining_ms | awk -F:: '{ print $NF }')
((left > 0)) || fail "no ejection time left after the reload: $left"
for ((i = 1; i <= 8; i++)); do
    fetch "$URL/be/reloaded/$i"
    assert_eq good "$(hdr x-backend)" "backend of request $i after the reload"
done
assert_contains "$(hdr x-outlier-endpoints)" "127.0.0.1:$GOOD_PORT=0/0/2/" "the filter's view of the new hostset"
log "ejection kept over the reload (${left} ms left), traffic still to good"

# ---- 4. back after ejection_time ----
wait_until 40 "bad back in rotation after ejection_time" bad_healthy
seen_bad=0
for ((i = 1; i <= 10; i++)); do
    fetch "$URL/be/back/$i"
    if [[ "$(hdr x-backend)" == bad ]]; then
        seen_bad=1
        break
    fi
done
((seen_bad)) || fail "bad got no request after its ejection ended"
log "bad takes traffic again after the ejection time"

# ---- 5. per-route shared state: kept over reloads, released with its config ----
fetch "$URL/solo/6"
assert_eq 6 "$(hdr x-outlier-route-requests)" "the route's counter after the reloads"
grep -q "outlier: route block solo destroyed" "$WEFT_LOG" && fail "the route's block was destroyed while held"
write_config 2 128 2 0
reload
fetch "$URL/solo/7"
assert_eq 200 "$ST" "status without the per-route config"
assert_eq "" "$(hdr x-outlier-route-requests)" "no per-route config, no route counter"
wait_until 20 "the route's block is destroyed" grep -q "outlier: route block solo destroyed (6 requests)" "$WEFT_LOG"
log "per-route shared state: kept over 4 reloads (6 requests), destroyed once no config holds it"

stop_weft 15
