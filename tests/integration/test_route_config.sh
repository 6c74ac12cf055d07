#!/usr/bin/env bash
# ABI 1.1 routing end to end with the routecfg test filter (tests/filters):
# one weft (two workers: per-route configs shared read-only), two backends
# (A, B), routes:
#   r-alpha /alpha -> ca, filter_config routecfg {header_value: alpha}
#   r-beta  /beta  -> cb, filter_config routecfg {header_value: beta}
#   r-plain /plain -> ca, no filter_config
#   r-slow  /delay -> ca, filter_config routecfg {header_value: slow-v1}
#   r-direct /direct (direct_response), r-redirect /redir (redirect)
# filters: deny, routecfg, and routecfg again as "second" ({header: x-second};
# r-alpha gives it its own value)
# Asserts:
#   - route before filters: the filter sees the route's name, virtual host
#     and cluster in on_request_headers (the backend gets them as headers);
#   - two instances of one filter each get their own per-route config (by
#     chain position), also from a timer callback (the timer's owner);
#   - redirect and direct_response routes answer only after the chain: a
#     filter denies first (and the access log names the matched route);
#   - per-route config: each route's own value reaches the backend, the
#     route without filter_config gets none; no match -> 404
#     route_not_found after the chain;
#   - re-match: x-rematch rewrites the path and weft_route_refresh sends
#     the request to the other route's cluster, with that route's config;
#     a refresh after the request header phase is WEFT_ERR_STATE (-3); a
#     1.1 filter's path rewrite without a re-match keeps the route;
#   - a filter built for ABI 1.0 (reroute_v1_0, frozen header) that changes
#     the path or a header still steers routing (as when 1.0 routed after
#     the chain);
#   - the filter's gauge of live per-route configs (created - destroyed);
#   - reload: new per-route values apply to new streams, a stream that
#     started before keeps its snapshot's config (read again in its
#     response hook), and the old snapshot's route configs are destroyed
#     when it ends (gauge back);
#   - config errors, exit 2 with file:line:col: a filter_config naming a
#     filter not in the listener's chain, a value the filter refuses, a
#     filter without route_config_create given a per-route config;
#   - SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

A_PORT=$(free_port)
B_PORT=$(free_port)
P=$(free_port)
P_OLD=$(free_port)
ADMIN_PORT=$(free_port)
start_backend A "$A_PORT"
start_backend B "$B_PORT"
export WEFT_FILTER_PATH="$FILTER_DIR"

DEFAULT_FILTERS="      - name: deny
      - name: routecfg
      - name: second
        path: $FILTER_DIR/routecfg.so
        config: { header: x-second }"

# config ALPHA SLOW [EXTRA_ROUTE_YAML] [FILTERS_YAML]
config() {
    cat <<YAML
workers: 2
drain_timeout: 1s
allow_filter_paths: true
access_log: { path: $TEST_TMP/access.log }
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: rc
    address: 127.0.0.1
    port: $P
    filters:
${4:-$DEFAULT_FILTERS}
    virtual_hosts:
      - name: main
        domains: ["*"]
        routes:
          - name: r-alpha
            match: { prefix: /alpha }
            cluster: ca
            filter_config:
              routecfg: { header_value: "$1" }
              second: { header_value: "$1-2" }
          - name: r-beta
            match: { prefix: /beta }
            cluster: cb
            filter_config:
              routecfg: { header_value: beta }
          - name: r-plain
            match: { prefix: /plain }
            cluster: ca
          - name: r-slow
            match: { prefix: /delay }
            cluster: ca
            filter_config:
              routecfg: { header_value: "$2" }
          - name: r-direct
            match: { prefix: /direct }
            direct_response: { status: 200, body: "direct" }
          - name: r-redirect
            match: { prefix: /redir }
            redirect: { path: /alpha/redirected }
${3:-}
  - name: old
    address: 127.0.0.1
    port: $P_OLD
    filters:
      - name: reroute_v1_0
    virtual_hosts:
      - name: old
        domains: ["*"]
        routes:
          - { match: { prefix: /, headers: [{ name: x-lane, exact: b }] }, cluster: cb }
          - { match: { prefix: /beta }, cluster: cb }
          - { match: { prefix: / }, cluster: ca }
clusters:
  - name: ca
    endpoints: [{ address: 127.0.0.1, port: $A_PORT }]
  - name: cb
    endpoints: [{ address: 127.0.0.1, port: $B_PORT }]
YAML
}

# seen NAME: the request header NAME as the backend saw it (last fetch)
seen() {
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["headers"].get(sys.argv[2], ""))' \
        "$TEST_TMP/fetch.b" "$1"
}
seen_path() {
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$TEST_TMP/fetch.b"
}
gauge() { metric 'weft_filter_routecfg_route_configs{listener="rc"}'; }

CONFIG="$TEST_TMP/weft.yaml"
config alpha slow-v1 >"$CONFIG"
start_weft "$CONFIG"
U="http://127.0.0.1:$P"

# ---- route before filters, per-route config ----------------------------------
fetch "$U/alpha/x"
assert_eq 200 "$ST" "/alpha status"
assert_eq A "$(hdr x-backend)" "/alpha goes to cluster ca"
assert_eq r-alpha "$(seen x-route-name)" "/alpha: the filter saw the route name in on_request_headers"
assert_eq main "$(seen x-route-vhost)" "/alpha: virtual host"
assert_eq ca "$(seen x-route-cluster)" "/alpha: cluster"
assert_eq alpha "$(seen x-route-cfg)" "/alpha: per-route config value"
assert_eq alpha "$(hdr x-route-cfg-resp)" "/alpha: per-route config in the response hook"

assert_eq alpha-2 "$(seen x-second)" "/alpha: the second instance of the filter gets its own per-route config"

# from a timer callback: the call is the timer owner's (each instance its own)
fetch -H 'x-cfg-in-timer: 1' "$U/alpha/x"
assert_eq 200 "$ST" "timer: status"
assert_eq alpha "$(seen x-route-cfg-timer)" "timer: routecfg's per-route config in its callback"
assert_eq alpha-2 "$(seen x-second-timer)" "timer: second's per-route config in its callback"

# redirect and direct_response routes act only after the chain: a filter denies first
fetch "$U/direct"
assert_eq 200 "$ST" "direct_response route"
assert_eq direct "$BD" "direct_response body"
fetch -H 'x-deny: 1' "$U/direct?denied-direct"
assert_eq 403 "$ST" "a filter denies before a direct_response route answers"
denied_logged() { grep -q 'denied-direct' "$TEST_TMP/access.log"; }
wait_until 5 "the denied request's access log line" denied_logged
assert_contains "$(grep 'denied-direct' "$TEST_TMP/access.log")" '"route":"r-direct"' \
    "the access log names the route matched before the filter denied"
fetch "$U/redir"
assert_eq 301 "$ST" "redirect route"
fetch -H 'x-deny: 1' "$U/redir"
assert_eq 403 "$ST" "a filter denies before a redirect route answers"

# the same over HTTP/2 (h2c): one stream engine, one rule
fetch --http2-prior-knowledge "$U/alpha/h2"
assert_eq 200 "$ST" "h2c /alpha status"
assert_eq r-alpha "$(seen x-route-name)" "h2c: the filter saw the route before its hooks"
assert_eq alpha "$(seen x-route-cfg)" "h2c: per-route config"
fetch --http2-prior-knowledge -H 'x-rematch: /beta/h2' "$U/alpha/x"
assert_eq B "$(hdr x-backend)" "h2c: re-match to the other cluster"

fetch "$U/beta/x"
assert_eq 200 "$ST" "/beta status"
assert_eq B "$(hdr x-backend)" "/beta goes to cluster cb"
assert_eq r-beta "$(seen x-route-name)" "/beta: route name"
assert_eq cb "$(seen x-route-cluster)" "/beta: cluster"
assert_eq beta "$(seen x-route-cfg)" "/beta: per-route config value"
assert_eq "" "$(seen x-second)" "/beta: no per-route config for the second instance"

fetch "$U/plain/x"
assert_eq 200 "$ST" "/plain status"
assert_eq r-plain "$(seen x-route-name)" "/plain: route name"
assert_eq "" "$(seen x-route-cfg)" "/plain: a route without filter_config gives none"
assert_eq "" "$(hdr x-route-cfg-resp)" "/plain: none in the response hook either"

fetch "$U/nowhere"
assert_eq 404 "$ST" "no route: 404 after the chain passed"
assert_eq route_not_found "$(hdr x-weft-reason)" "no route: reason"

# ---- re-match ---------------------------------------------------------------
fetch -H 'x-rematch: /beta/moved?q=1' "$U/alpha/x"
assert_eq 200 "$ST" "re-match status"
assert_eq B "$(hdr x-backend)" "re-match sends the request to the other route's cluster"
assert_eq /beta/moved "$(seen_path)" "re-match: the rewritten path went upstream"
assert_eq r-beta "$(seen x-route-name)" "re-match: the filter sees the new route"
assert_eq beta "$(seen x-route-cfg)" "re-match: and the new route's config"
assert_eq beta "$(hdr x-route-cfg-resp)" "re-match: the response hook sees the new route too"

# a 1.1 filter that rewrites the path without asking for a re-match keeps its route
fetch -H 'x-rewrite-only: /beta/not-rerouted' "$U/alpha/x"
assert_eq 200 "$ST" "rewrite without re-match: status"
assert_eq A "$(hdr x-backend)" "rewrite without re-match: the request keeps its route's cluster"
assert_eq /beta/not-rerouted "$(seen_path)" "rewrite without re-match: the new path went upstream"
assert_eq r-alpha "$(seen x-route-name)" "rewrite without re-match: still r-alpha"

fetch -H 'x-rematch: /nowhere' "$U/alpha/x"
assert_eq 404 "$ST" "re-match to no route: 404"

fetch -H 'x-refresh-late: 1' "$U/alpha/x"
assert_eq 200 "$ST" "late refresh status"
assert_eq -3 "$(hdr x-refresh-late-result)" "refresh after the request header phase: WEFT_ERR_STATE"

assert_eq 3 "$(gauge)" "live per-route configs (alpha, beta, slow)"

# ---- a filter built for ABI 1.0 steers routing as it did in 1.0 ---------------
O="http://127.0.0.1:$P_OLD"
fetch "$O/x"
assert_eq A "$(hdr x-backend)" "1.0 filter, no change: route /"
fetch -H 'x-reroute-path: /beta/y' "$O/x"
assert_eq B "$(hdr x-backend)" "1.0 filter's path rewrite is routed on (matched again after the chain)"
assert_eq /beta/y "$(seen_path)" "1.0 filter's path went upstream"
fetch -H 'x-reroute-lane: b' "$O/x"
assert_eq B "$(hdr x-backend)" "1.0 filter's header change is routed on"

# ---- reload: new values for new streams, old streams keep theirs -------------
curl -s --max-time 20 -D "$TEST_TMP/slow.h" -o "$TEST_TMP/slow.b" "$U/delay/2500" &
SLOW=$!
track_pid "$SLOW"
sleep 0.3 # the slow request is upstream (2.5 s at the backend)
config alpha-v2 slow-v2 >"$CONFIG.new"
mv -f "$CONFIG.new" "$CONFIG"
weft_signal HUP
wait_workers_at 2 2
fetch "$U/alpha/x"
assert_eq alpha-v2 "$(seen x-route-cfg)" "after the reload: the new per-route value"
fetch "$U/delay/1"
assert_eq slow-v2 "$(seen x-route-cfg)" "after the reload: new stream on r-slow"
wait "$SLOW" || fail "the slow request failed"
slow_h=$(tr -d '\r' <"$TEST_TMP/slow.h")
assert_contains "$slow_h" "200" "slow request status"
assert_contains "$slow_h" "x-route-cfg-resp: slow-v1" "a stream of the old snapshot keeps its per-route config"
assert_contains "$(cat "$TEST_TMP/slow.b")" '"x-route-cfg": "slow-v1"' "the slow request went up with v1"
gauge_is_3() { [[ "$(gauge)" == 3 ]]; }
wait_until 10 "the old snapshot's per-route configs destroyed" gauge_is_3
stop_weft 15

# ---- config errors: exit 2, file:line:col ------------------------------------
REFUSE_LOG_LINES=1
config alpha slow-v1 "          - name: r-bad
            match: { prefix: /bad }
            cluster: ca
            filter_config:
              nosuch: { header_value: x }" >"$TEST_TMP/unknown.yaml"
line=$(grep -n 'nosuch:' "$TEST_TMP/unknown.yaml" | cut -d: -f1)
expect_refused unknown "$TEST_TMP/unknown.yaml" "$TEST_TMP/unknown.yaml:$line:15:" \
    'filter_config names filter "nosuch"' 'listener "rc"'

config "" slow-v1 >"$TEST_TMP/badvalue.yaml"
line=$(grep -n 'header_value: ""' "$TEST_TMP/badvalue.yaml" | cut -d: -f1)
col=$(sed -n "${line}p" "$TEST_TMP/badvalue.yaml" | awk '{ print index($0, "\"\"") }')
expect_refused badvalue "$TEST_TMP/badvalue.yaml" "$TEST_TMP/badvalue.yaml:$line:$col:" \
    'filter "routecfg": header_value must be a non-empty string'

config alpha slow-v1 "          - name: r-hdr
            match: { prefix: /hdr }
            cluster: ca
            filter_config:
              hdr: { anything: 1 }" "$DEFAULT_FILTERS
      - name: hdr
        config: { request_header: { name: x-h, value: '1' } }" >"$TEST_TMP/nohook.yaml"
line=$(grep -n 'hdr: { anything' "$TEST_TMP/nohook.yaml" | cut -d: -f1)
expect_refused nohook "$TEST_TMP/nohook.yaml" "$TEST_TMP/nohook.yaml:$line:15:" \
    'filter "hdr": takes no per-route config'

log "ok"
