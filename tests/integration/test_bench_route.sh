#!/usr/bin/env bash
# The chain benchmark's filter (tests/filters/bench_route.c, issue 8's
# "8 filters that each read their per-route config and bump a labelled
# counter"), end to end: one weft (2 workers) with a chain of 8 bench_route
# filters, one backend, routes:
#   r-up     /up      -> backend, filter_config bench_route {route: up}
#   r-status /status  -> backend, filter_config {route: st} (the backend
#                     answers /status/<code> with that status)
#   r-direct /direct  direct_response 503, filter_config {route: direct}
#   r-plain  /plain   -> backend, no filter_config
# Asserts:
#   - each request bumps the labelled counter family
#     weft_filter_bench_route_requests_total{route, status_class} once per
#     filter (8 instances share the YAML name, so the same series):
#     3 x 200 through r-up, 2 x 404 through r-status, 1 x 503 from
#     r-direct; the series are resolved ahead (ABI 1.2 handles): each
#     configured route's five classes show, the others at 0;
#   - a route without its config is not counted, nor is another class;
#   - 8 filters with only on_stream_complete change nothing else: the
#     backend's answers pass unchanged (body, status);
#   - config errors, exit 2 with file:line:col: a label with a character
#     outside [a-z0-9_], an unknown key, a filter config (it takes none);
#   - SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

B_PORT=$(free_port)
P=$(free_port)
ADMIN_PORT=$(free_port)
start_backend B "$B_PORT"
export WEFT_FILTER_PATH="$FILTER_DIR"

# config UP_ROUTE_CFG [FILTER_CONFIG]
config() {
    local i
    cat <<YAML
workers: 2
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: br
    address: 127.0.0.1
    port: $P
    filters:
YAML
    for ((i = 0; i < 8; i++)); do
        if ((i == 7)) && [[ -n "${2:-}" ]]; then
            echo "      - { name: bench_route, config: $2 }"
        else
            echo "      - name: bench_route"
        fi
    done
    cat <<YAML
    virtual_hosts:
      - name: main
        domains: ["*"]
        routes:
          - name: r-up
            match: { prefix: /up }
            cluster: backend
            filter_config:
              bench_route: $1
          - name: r-status
            match: { prefix: /status }
            cluster: backend
            filter_config:
              bench_route: { route: st }
          - name: r-direct
            match: { prefix: /direct }
            direct_response: { status: 503, body: "direct" }
            filter_config:
              bench_route: { route: direct }
          - name: r-plain
            match: { prefix: /plain }
            cluster: backend
clusters:
  - name: backend
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
YAML
}

# series ROUTE CLASS
series() { metric "weft_filter_bench_route_requests_total{listener=\"br\",route=\"$1\",status_class=\"$2\"}"; }

config "{ route: up }" >"$TEST_TMP/weft.yaml"
start_weft "$TEST_TMP/weft.yaml"
U="http://127.0.0.1:$P"

for i in 1 2 3; do
    fetch "$U/up/$i"
    assert_eq 200 "$ST" "GET /up/$i"
    assert_contains "$BD" "\"path\": \"/up/$i\"" "the backend's answer passes unchanged"
done
for i in 1 2; do
    fetch "$U/status/404"
    assert_eq 404 "$ST" "GET /status/404 (the backend's 404)"
done
fetch "$U/direct"
assert_eq 503 "$ST" "direct_response"
assert_eq direct "$BD" "direct_response body"
fetch "$U/plain/x"
assert_eq 200 "$ST" "GET /plain/x"

# The log phase runs after the response went out: wait for the counts.
counts() { echo "$(series up 2xx) $(series st 4xx) $(series direct 5xx)"; }
counted() { [[ "$(counts)" == "24 16 8" ]]; }
wait_until 10 "8 bumps per request by route and class (got: $(counts))" counted
prom=$(admin_get /stats/prometheus)
# route_config_create resolves each route's five series (ABI 1.2 handles):
# they show from the start, the classes no request had at 0.
assert_eq 15 "$(grep -c '^weft_filter_bench_route_requests_total{' <<<"$prom")" \
    "fifteen series (3 routes x 5 classes) resolved ahead ($prom)"
assert_eq 0 "$(grep '^weft_filter_bench_route_requests_total{' <<<"$prom" |
    grep -v -e 'route="up",status_class="2xx"' -e 'route="st",status_class="4xx"' \
        -e 'route="direct",status_class="5xx"' | awk '{ s += $2 } END { print s + 0 }')" \
    "no other class counted ($prom)"
assert_not_contains "$prom" 'route="plain"' "a route without config"
assert_not_contains "$prom" '__overflow__",status_class' "no overflow series in use"
stop_weft 15

# ---- config errors: exit 2, file:line:col ------------------------------------
REFUSE_LOG_LINES=1
config '{ route: "Up-1" }' >"$TEST_TMP/badlabel.yaml"
line=$(grep -n 'route: "Up-1"' "$TEST_TMP/badlabel.yaml" | cut -d: -f1)
col=$(sed -n "${line}p" "$TEST_TMP/badlabel.yaml" | awk '{ print index($0, "\"Up-1\"") }')
expect_refused badlabel "$TEST_TMP/badlabel.yaml" "$TEST_TMP/badlabel.yaml:$line:$col:" \
    'filter "bench_route": route may hold only a-z, 0-9 and _'

config '{ route: up, extra: 1 }' >"$TEST_TMP/badkey.yaml"
line=$(grep -n 'extra: 1' "$TEST_TMP/badkey.yaml" | cut -d: -f1)
expect_refused badkey "$TEST_TMP/badkey.yaml" "$TEST_TMP/badkey.yaml:$line:" \
    'filter "bench_route": unknown key (expected route)'

config '{ route: up }' '{ x: 1 }' >"$TEST_TMP/fcfg.yaml"
line=$(grep -n 'config: { x: 1 }' "$TEST_TMP/fcfg.yaml" | cut -d: -f1)
expect_refused fcfg "$TEST_TMP/fcfg.yaml" "$TEST_TMP/fcfg.yaml:$line:" \
    'bench_route takes no config (per-route only)'

log "ok"
