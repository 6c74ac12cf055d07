#!/usr/bin/env bash
# ABI 1.2 series handles through real weft: overflow and reloads, with the
# test filter "series" (tests/filters/series.c: a counter family
# hits_total{value}, max_series 6, whose series are resolved ahead, the
# config's values in config_create and each route's value in
# route_config_create; a request bumps values[i] for x-series: i, and its
# route's handle, found through weft_stream_info.route_config, in the log
# phase). Two workers.
#   1. overflow: config v1 resolves a, b, c and a value of 300 bytes (above
#      WEFT_STAT_LABEL_VALUE_MAX: its handle names the overflow series) and
#      the routes' rt and extra: 5 series, all shown at 0 before any
#      request, the long value nowhere; requests count by handle, those on
#      the long value's handle in the overflow series
#      (value="__overflow__") and in hits_overflow_total;
#   2. a refused reload (the filter's config_create resolves a, b, c and q,
#      then refuses): the reload is refused, weft keeps serving v1, and the
#      series q, resolved into the family v1 declares too, stays
#      registered at 0: the 6th series (the contract of docs/sdk.md 2.5b);
#   3. an accepted reload (same family) resolving a, b, c and w: the family
#      is full, so w's handle names the overflow series: its requests
#      count there and in hits_overflow_total; a, rt and extra keep their
#      values over both reloads (the new config's handles name the same
#      series);
#   4. SIGTERM exits 0 (no crash, sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

[[ -f "$FILTER_DIR/series.so" ]] || fail "series.so not built"
BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
CONFIG="$TEST_TMP/weft.yaml"
LONG=$(printf 'L%.0s' {1..300})

# write_config VALUES [REFUSE]: the filter's values list (YAML flow) and
# whether its config_create refuses after resolving them.
write_config() {
    cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
  - name: web
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: series
        config: { max_series: 6, values: $1, refuse: ${2:-false} }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: one
            match: { prefix: /one }
            cluster: be
            filter_config: { series: { value: rt } }
          - name: two
            match: { prefix: / }
            cluster: be
            filter_config: { series: { value: extra } }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
}

P='weft_filter_series_hits_total{listener="web",value='
OVF="${P}\"__overflow__\"}"
OVF_TOTAL='weft_filter_series_hits_overflow_total{listener="web"}'
hits() { metric "${P}\"$1\"}"; }
# get PATH [INDEX]: one request (x-series: INDEX), must answer 200.
get() {
    if [[ -n "${2:-}" ]]; then
        fetch -H "x-series: $2" "http://127.0.0.1:$LISTEN_PORT$1"
    else
        fetch "http://127.0.0.1:$LISTEN_PORT$1"
    fi
    assert_eq 200 "$ST" "GET $1"
}
# route_hits_are RT EXTRA: the log phase's counts (after the responses).
route_hits_are() { (($(hits rt) == $1 && $(hits extra) == $2)); }

# ---- 1. overflow: 5 series resolved, the long value on the overflow series
write_config "[a, b, c, $LONG]"
start_weft "$CONFIG"
prom=$(admin_get /stats/prometheus)
for v in a b c rt extra; do
    assert_contains "$prom" "${P}\"$v\"} 0" "series $v resolved at load, shown at 0"
done
assert_not_contains "$prom" "LLLLLLLL" "the 300-byte value made no series"
assert_contains "$prom" "$OVF_TOTAL 0" "nothing folded before traffic"
get /one 0
get /one 0
get /two 3 # the long value's handle: the overflow series
get /two
wait_until 10 "log phase counts rt=2 extra=2" route_hits_are 2 2
assert_eq 2 "$(hits a)" "a by handle"
assert_eq 0 "$(hits b)" "b resolved, never bumped"
assert_eq 1 "$(metric "$OVF")" "the long value's update in the overflow series"
assert_eq 1 "$(metric "$OVF_TOTAL")" "the long value's update counted as folded"
log "v1: 5 series by handle, the long value folded"

# ---- 2. a refused reload after resolving q: q stays, at 0
refused0=$(metric 'weft_config_reload_total{result="refused"}')
write_config "[a, b, c, q]" true
weft_signal HUP
refused_is() { (($(metric 'weft_config_reload_total{result="refused"}') == refused0 + 1)); }
wait_until 10 "the reload is refused" refused_is
assert_contains "$(grep "reload refused" "$WEFT_LOG" | tail -n 1)" "refused as asked" "refusal line"
assert_eq 1 "$(metric 'weft_config_version')" "still on config v1"
get /one 0
wait_until 10 "log phase counts rt=3" route_hits_are 3 2
assert_eq 3 "$(hits a)" "v1 keeps counting after the refusal"
prom=$(admin_get /stats/prometheus)
assert_contains "$prom" "${P}\"q\"} 0" "the refused config's series q stays registered, at 0"
log "refused reload: q stays at 0 (6 of 6 series)"

# ---- 3. an accepted reload resolving w: past max_series, the overflow series
write_config "[a, b, c, w]"
reload_config 2
get /one 3 # w
get /one 3
get /two 0
wait_until 10 "log phase counts rt=5 extra=3" route_hits_are 5 3
prom=$(admin_get /stats/prometheus)
assert_not_contains "$prom" "${P}\"w\"}" "w made no series (the family is full)"
assert_eq 3 "$(metric "$OVF")" "w's updates in the overflow series"
assert_eq 3 "$(metric "$OVF_TOTAL")" "w's updates counted as folded"
assert_eq 4 "$(hits a)" "a kept its value over both reloads"
assert_eq 0 "$(hits q)" "q still at 0"
log "v2: w on the overflow series; values kept"
stop_weft 10
