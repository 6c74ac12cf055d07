#!/usr/bin/env bash
# ABI 1.2 compatibility: abi_v1_2.so is compiled against the frozen header
# tests/abi/filter_v1_2.h (not the current SDK). Asserts:
#   - the frozen header is, below its "never edit" comment, the ABI 1.2
#     header (WEFT_ABI_MAJOR 1, WEFT_ABI_MINOR 2, the v1 entry symbol, the
#     1.2 series handles and weft_stream_info.route_config);
#   - weft loads it (logs "ABI 1.2") on 2 workers; WEFT_HOST_HAS sees the
#     1.2 series call (x-abi12-host: series reaches the backend); its
#     per-route config reaches the stream (x-abi12-tag differs per route);
#   - the series handles it resolved at route_config_create count what the
#     requests did, read through /stats/prometheus after real requests:
#     requests_total{route} (counter), balance{route} (gauge: +3 at the
#     request, -1 at its end: 2 per request), duration{route} (histogram:
#     one sample per request); series resolved at config time show at 0
#     before any request;
#   - on_stream_complete found its per-route config in
#     weft_stream_info.route_config, the same pointer weft_route_config
#     returns (route_config_seen counts every request of a configured
#     route, route_config_other none), NULL on a route without config
#     (no_route_config);
#   - SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

frozen_abi_check 2
grep -qF '(*stat_family_series)' "$FROZEN" || fail "$FROZEN: no 1.2 series handles"
grep -qF 'const void *route_config;' "$FROZEN" || fail "$FROZEN: no weft_stream_info.route_config"

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
cat >"$TEST_TMP/weft.yaml" <<YAML
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
  - name: abi
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: abi_v1_2
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: red
            match: { prefix: /red }
            cluster: be
            filter_config: { abi_v1_2: { tag: crimson } }
          - name: plain
            match: { prefix: /plain }
            cluster: be
          - name: blue
            match: { prefix: / }
            cluster: be
            filter_config: { abi_v1_2: { tag: navy } }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$TEST_TMP/weft.yaml"
grep -q "filter abi_v1_2 loaded from $FILTER_DIR/abi_v1_2.so (ABI 1.2)" "$WEFT_LOG" ||
    fail "no load line for abi_v1_2.so with ABI 1.2"

P=weft_filter_abi_v1_2
L='listener="abi"'
# Resolved at route_config_create: the series exist, at 0, before any request.
prom=$(admin_get /stats/prometheus)
assert_contains "$prom" "${P}_requests_total{$L,route=\"crimson\"} 0" "resolved series before traffic"
assert_contains "$prom" "${P}_requests_total{$L,route=\"navy\"} 0" "resolved series before traffic"

for _ in 1 2; do
    fetch "http://127.0.0.1:$LISTEN_PORT/red/x"
    assert_eq 200 "$ST" "status on route red"
    assert_eq crimson "$(hdr x-abi12-tag)" "per-route config of route red"
done
seen=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["headers"].get("x-abi12-host", "-"))' <<<"$BD")
assert_eq series "$seen" "WEFT_HOST_HAS(stat_family_series) on a 1.2 host"
for _ in 1 2 3; do
    fetch "http://127.0.0.1:$LISTEN_PORT/other"
    assert_eq navy "$(hdr x-abi12-tag)" "per-route config of route blue"
done
fetch "http://127.0.0.1:$LISTEN_PORT/plain/z"
assert_eq 200 "$ST" "status on route plain"
assert_eq "" "$(hdr x-abi12-tag)" "no per-route config on route plain"

# The log phase runs after the response is sent: wait for its counts.
seen_all() { (($(metric "${P}_route_config_seen{$L}") == 5 && $(metric "${P}_no_route_config{$L}") == 1)); }
wait_until 10 "the log phase of 6 requests" seen_all
assert_eq 0 "$(metric "${P}_route_config_other{$L}")" "info.route_config differs from weft_route_config"
assert_eq 2 "$(metric "${P}_requests_total{$L,route=\"crimson\"}")" "counter by handle, route red"
assert_eq 3 "$(metric "${P}_requests_total{$L,route=\"navy\"}")" "counter by handle, route blue"
assert_eq 4 "$(metric "${P}_balance{$L,route=\"crimson\"}")" "gauge by handle (+3 -1 per request), red"
assert_eq 6 "$(metric "${P}_balance{$L,route=\"navy\"}")" "gauge by handle, blue"
assert_eq 2 "$(metric "${P}_duration_count{$L,route=\"crimson\"}")" "histogram by handle, red"
assert_eq 3 "$(metric "${P}_duration_count{$L,route=\"navy\"}")" "histogram by handle, blue"
assert_eq 0 "$(metric "${P}_requests_overflow_total{$L}")" "nothing folded"
log "ABI 1.2 filter loaded and working"
stop_weft 10
