#!/usr/bin/env bash
# SDK 1.1 labelled stat families (weft_stat_family), through the test
# filter "labelled" (tests/filters/labelled.c: requests by method and
# status class, counted in the log phase). Two workers, each request on
# its own connection.
#   1. values: after N requests of each kind, /stats/prometheus shows
#      weft_filter_labelled_requests_total{listener="web",method=...,code=...}
#      with exactly those counts (local replies, 404 and 503, included);
#      BOTH workers counted (requests are sent until the answers, which
#      name the counting worker in x-labelled-worker, came from both), and
#      the filter's per-worker family worker_requests_total{worker="N"}
#      shows exactly what each worker answered: the sum is the two
#      workers' per-thread slots added, not one worker's;
#   1b. a family declared from route_config_create (per-route config
#      route_label on the two routes of "web": both declare the same
#      family) counts per route: route_requests_total{route="ok",
#      code="2xx"} and {route="down",code="5xx"} (a direct response);
#   2. bounded cardinality: max_series 3, so a 4th and 5th method go to
#      the overflow series (method="__overflow__",code="__overflow__")
#      and weft_filter_labelled_requests_overflow_total counts them;
#   3. escaping: a second instance (YAML name "tagged") labels by the
#      x-tag header: a value with a quote and a backslash is written
#      escaped, a value above 256 bytes folds into the overflow series;
#   4. promtool check metrics (the prometheus package) accepts the whole
#      exposition;
#   5. reloads (SIGHUP): the "tagged" filter removed from its listener,
#      its families and overflow counters leave /stats/prometheus while
#      the listener's own stats stay; then the listener and the cluster
#      "spare" removed, their series leave too; the series that stay
#      keep their values; promtool still accepts the output.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

command -v promtool >/dev/null || fail "promtool not installed (scripts/setup.sh installs prometheus)"

BE_PORT=$(free_port)
WEB_PORT=$(free_port)
TAG_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
CONFIG="$TEST_TMP/weft.yaml"

# write_config MODE: 1 = listener "tag" with the filter "tagged" and the
# cluster "spare"; 2 = "tag" without filters, no "spare"; 0 = neither.
# ROUTE_CFG=0: the routes of "web" without per-route config.
ROUTE_CFG=1
write_config() {
    local tagged="$1"
    {
        cat <<YAML
workers: 2
drain_timeout: 2s
filter_path: [$FILTER_DIR]
allow_filter_paths: true
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: web
    address: 127.0.0.1
    port: $WEB_PORT
    filters:
      - { name: labelled, config: { max_series: 3, worker_label: true } }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /down }
            direct_response: { status: 503 }
$( ((ROUTE_CFG)) && echo "            filter_config: { labelled: { route_label: down } }")
          - match: { prefix: /ok }
            cluster: be
$( ((ROUTE_CFG)) && echo "            filter_config: { labelled: { route_label: ok } }")
YAML
        if ((tagged)); then
            cat <<YAML
  - name: tag
    address: 127.0.0.1
    port: $TAG_PORT
    filters:
$( ((tagged == 1)) && echo "      - { name: tagged, path: $FILTER_DIR/labelled.so, config: { tag_header: x-tag } }")
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
YAML
        fi
        cat <<YAML
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
        if ((tagged == 1)); then
            cat <<YAML
  - name: spare
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
        fi
    } >"$CONFIG.tmp"
    mv -f "$CONFIG.tmp" "$CONFIG"
}

# requests N [curl args...] URL: N requests, each on its own connection;
# WK[worker] counts the answers by their x-labelled-worker.
declare -A WK=()
requests() {
    local n="$1" i w
    shift
    for ((i = 0; i < n; i++)); do
        w=$(curl -s -o /dev/null -D - --max-time 10 "$@" |
            awk -F': *' 'tolower($1) == "x-labelled-worker" { sub(/\r$/, "", $2); print $2 }') ||
            fail "curl $*"
        [[ -z "$w" ]] || WK[$w]=$((${WK[$w]:-0} + 1))
    done
}

F=weft_filter_labelled_requests_total
W='listener="web"'
# exact SERIES: the value of the line "SERIES value" ("none" when absent);
# SERIES is passed through the environment (awk -v would unescape it).
exact() {
    admin_get /stats/prometheus | P="$1" awk '
        BEGIN { p = ENVIRON["P"] " " }
        substr($0, 1, length(p)) == p { print $NF; f = 1 } END { if (!f) print "none" }'
}

reload() { reload_config 2; }

promcheck() {
    admin_get /stats/prometheus >"$TEST_TMP/metrics.txt"
    promtool check metrics <"$TEST_TMP/metrics.txt" >"$TEST_TMP/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(cat "$TEST_TMP/promtool.out")"
}

write_config 1
start_weft "$CONFIG"
wait_workers_at 2 1 20

# ---- 1. values across two workers ----
requests 7 "http://127.0.0.1:$WEB_PORT/ok"
requests 3 -X POST -d x "http://127.0.0.1:$WEB_PORT/ok"
requests 2 "http://127.0.0.1:$WEB_PORT/down"
# More GETs until both workers answered (bounded): EXTRA of them.
EXTRA=0
while ((${#WK[@]} < 2 && EXTRA < 40)); do
    requests 1 "http://127.0.0.1:$WEB_PORT/ok"
    EXTRA=$((EXTRA + 1))
done
assert_eq 2 "${#WK[@]}" "workers that answered (after $EXTRA extra requests)"
wait_until 10 "$((12 + EXTRA)) requests counted" test "$(metric "$F{$W")" -eq $((12 + EXTRA))
assert_eq $((7 + EXTRA)) "$(exact "$F{$W,method=\"GET\",code=\"2xx\"}")" "GET 2xx"
assert_eq 3 "$(exact "$F{$W,method=\"POST\",code=\"2xx\"}")" "POST 2xx"
assert_eq 2 "$(exact "$F{$W,method=\"GET\",code=\"5xx\"}")" "GET 5xx (local reply)"
assert_eq 0 "$(exact "weft_filter_labelled_requests_overflow_total{$W}")" "nothing folded yet"
for w in "${!WK[@]}"; do
    assert_eq "${WK[$w]}" "$(exact "weft_filter_labelled_worker_requests_total{$W,worker=\"$w\"}")" \
        "requests counted by worker $w"
done
log "values right after $((12 + EXTRA)) requests; workers ${!WK[*]} counted ${WK[*]}"

# ---- 1b. a family declared from route_config_create ----
R=weft_filter_labelled_route_requests_total
assert_eq $((10 + EXTRA)) "$(exact "$R{$W,route=\"ok\",code=\"2xx\"}")" "route ok, 2xx"
assert_eq 2 "$(exact "$R{$W,route=\"down\",code=\"5xx\"}")" "route down, 5xx (direct response)"
assert_eq $((12 + EXTRA)) "$(metric "$R{$W")" "every request of a route with a per-route config"
log "the per-route family counts by route"

# ---- 2. overflow past max_series (3 series made: GET 2xx, POST 2xx, GET 5xx) ----
requests 2 -X PUT "http://127.0.0.1:$WEB_PORT/ok"
requests 1 -X DELETE "http://127.0.0.1:$WEB_PORT/ok"
requests 1 "http://127.0.0.1:$WEB_PORT/ok"
wait_until 10 "$((16 + EXTRA)) requests counted" test "$(metric "$F{$W")" -eq $((16 + EXTRA))
assert_eq 3 "$(exact "$F{$W,method=\"__overflow__\",code=\"__overflow__\"}")" "overflow series"
assert_eq 3 "$(exact "weft_filter_labelled_requests_overflow_total{$W}")" "overflow counter"
assert_eq $((16 + EXTRA)) "$(metric "$R{$W")" "the per-route family after 16 requests"
assert_eq $((8 + EXTRA)) "$(exact "$F{$W,method=\"GET\",code=\"2xx\"}")" "an existing series still counts"
TEXT=$(admin_get /stats/prometheus)
assert_not_contains "$TEXT" "method=\"PUT\"" "PUT has no series of its own"
log "overflow series and counter after max_series"

# ---- 3. escaping and long values ----
T='listener="tag"'
requests 1 -H 'x-tag: a"b\c' "http://127.0.0.1:$TAG_PORT/"
requests 2 -H "x-tag: $(printf 'v%.0s' {1..300})" "http://127.0.0.1:$TAG_PORT/"
TF=weft_filter_tagged_requests_total
wait_until 10 "3 tagged requests counted" test "$(metric "$TF{$T")" -eq 3
assert_eq 1 "$(exact "$TF{$T,method=\"GET\",code=\"2xx\",tag=\"a\\\"b\\\\c\"}")" "escaped value"
assert_eq 2 "$(exact "$TF{$T,method=\"__overflow__\",code=\"__overflow__\",tag=\"__overflow__\"}")" "long values folded"
log "label values escaped; values above 256 bytes folded"

# ---- 4. the exposition format, checked by Prometheus' own parser ----
promcheck
log "promtool check metrics: OK"

# ---- 5. series of removed filters, listeners and clusters leave on reload ----
TEXT=$(admin_get /stats/prometheus)
assert_contains "$TEXT" 'cluster="spare"' "the spare cluster's stats before the reloads"
write_config 2
reload
TEXT=$(admin_get /stats/prometheus)
assert_not_contains "$TEXT" "weft_filter_tagged_" "the removed filter's series"
assert_contains "$TEXT" "weft_downstream_rq_total{$T" "the tag listener's own stats"
assert_not_contains "$TEXT" 'cluster="spare"' "the removed cluster's stats"
assert_eq $((8 + EXTRA)) "$(exact "$F{$W,method=\"GET\",code=\"2xx\"}")" "a kept family keeps its values"
assert_eq 3 "$(exact "weft_filter_labelled_requests_overflow_total{$W}")" "a kept overflow counter"
assert_eq $((16 + EXTRA)) "$(metric "$R{$W")" "the per-route family kept over the reload"
requests 1 "http://127.0.0.1:$WEB_PORT/ok"
wait_until 10 "the kept family counts on" test "$(exact "$F{$W,method=\"GET\",code=\"2xx\"}")" = $((9 + EXTRA))
requests 1 "http://127.0.0.1:$TAG_PORT/"
assert_not_contains "$(admin_get /stats/prometheus)" "weft_filter_tagged_" "no filter, no series"
log "reload without the filter: its series left, the rest kept"

write_config 0
reload
TEXT=$(admin_get /stats/prometheus)
assert_not_contains "$TEXT" "$T" "the removed listener's series"
assert_eq $((9 + EXTRA)) "$(exact "$F{$W,method=\"GET\",code=\"2xx\"}")" "values after the second reload"
promcheck
log "reload without the listener: its series left; promtool still OK"

ROUTE_CFG=0
write_config 0
reload
TEXT=$(admin_get /stats/prometheus)
assert_not_contains "$TEXT" "$R" "the per-route family when no route declares it"
assert_eq $((9 + EXTRA)) "$(exact "$F{$W,method=\"GET\",code=\"2xx\"}")" "values after the third reload"
log "reload without per-route configs: the family they declared left"

stop_weft
log "PASS"
