#!/usr/bin/env bash
# Local replies through the response hooks (SDK 1.1), end to end with a
# real weft, backend.py and curl (plus grpcio for the gRPC case):
#   chain: edge (stamp.so), deny, inner (stamp.so)
#   - weft's own 404 (no route), 503 (dead endpoint: connect failure),
#     504 (route timeout), and the direct-response route all carry
#     x-stamp from BOTH stamps (inner first, then edge: reverse order),
#     with weft_reply_is_local true ("...:local");
#   - deny's 403: only edge (which saw the request) stamps it; inner never
#     saw the request and does not run (no x-stamp inner, depth 1);
#   - an upstream 200 is stamped ":upstream";
#   - typed metadata: x-stamp-depth-<tag> shows how many stamps saw the
#     request (an integer each increments);
#   - gRPC: deny's Trailers-Only reply keeps its shape with the stamp (curl
#     over HTTP/1.1 and h2c), and a grpcio client gets UNIMPLEMENTED for a
#     404 that went through both stamps;
#   - the access log has the status actually sent and the response flags;
#   - weft_logf lines name the YAML names (edge, inner), the setup log
#     line too; counters per YAML name count local and upstream responses,
#     and the log phase's local_reply.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
DEAD_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
ACCESS="$TEST_TMP/access.log"

start_backend be "$BE_PORT"

CONFIG="$TEST_TMP/weft.yaml"
cat >"$CONFIG" <<YAML
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
access_log: { path: $ACCESS }
filter_path: [$FILTER_DIR]
allow_filter_paths: true
listeners:
  - name: lr
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: edge
        path: $FILTER_DIR/stamp.so
        config: { tag: edge }
      - name: deny
      - name: inner
        path: $FILTER_DIR/stamp.so
        config: { tag: inner }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: /direct }, direct_response: { status: 201, body: "made here" } }
          - { match: { prefix: /dead }, cluster: dead }
          - { match: { prefix: /delay }, cluster: be, timeout: 300ms }
          - { match: { prefix: /app }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: dead
    connect_timeout: 1s
    endpoints: [{ address: 127.0.0.1, port: $DEAD_PORT }]
YAML
start_weft "$CONFIG"
U="http://127.0.0.1:$LISTEN_PORT"

# stamps: the x-stamp values of the last fetch, in header order, comma-joined.
stamps() { awk -F': ' 'tolower($1) == "x-stamp" { printf "%s%s", sep, $2; sep = "," }' <<<"$HD"; }

# ---- weft's own replies: every filter that saw the request stamps them ----
fetch "$U/nowhere"
assert_eq 404 "$ST" "404: status"
assert_eq route_not_found "$(hdr x-weft-reason)" "404: reason"
assert_eq "inner:local,edge:local" "$(stamps)" "404: stamped by both, reverse order, as local"
assert_eq 2 "$(hdr x-stamp-depth-inner)" "404: inner saw depth 2 (typed metadata from edge)"
assert_eq 1 "$(hdr x-stamp-depth-edge)" "404: edge saw depth 1"
assert_eq "route_not_found" "$BD" "404: body"

fetch "$U/dead/x"
assert_eq 503 "$ST" "dead endpoint: status"
assert_eq upstream_connect_failure "$(hdr x-weft-reason)" "dead endpoint: reason"
assert_eq "inner:local,edge:local" "$(stamps)" "dead endpoint 503: stamped by both"

start=$(date +%s%N)
fetch "$U/delay/3000"
elapsed=$((($(date +%s%N) - start) / 1000000))
assert_eq 504 "$ST" "route timeout: status"
assert_eq upstream_response_timeout "$(hdr x-weft-reason)" "route timeout: reason"
assert_eq "inner:local,edge:local" "$(stamps)" "504: stamped by both"
((elapsed < 2500)) || fail "504 took ${elapsed} ms: the route timeout is 300ms"

fetch "$U/direct"
assert_eq 201 "$ST" "direct response: status"
assert_eq "made here" "$BD" "direct response: body"
assert_eq "inner:local,edge:local" "$(stamps)" "direct response: stamped by both"

# ---- a filter's own reply: only the filters before it (and it) ---------------
fetch -H 'x-deny: 1' "$U/app/x"
assert_eq 403 "$ST" "deny: status"
assert_eq deny "$(hdr x-denied-by)" "deny: its header"
assert_eq "edge:local" "$(stamps)" "deny: only edge (inner never saw the request)"
assert_eq "" "$(hdr x-stamp-depth-inner)" "deny: inner did not run"
assert_eq "denied" "$BD" "deny: body"

# ---- upstream responses are not local ------------------------------------------
fetch "$U/app/ok"
assert_eq 200 "$ST" "upstream: status"
assert_eq "inner:upstream,edge:upstream" "$(stamps)" "upstream: stamped as upstream"

# ---- gRPC: Trailers-Only with the stamp ------------------------------------------
for proto in http1.1 http2-prior-knowledge; do
    fetch "--$proto" -X POST -H 'x-deny: 1' -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary '' "$U/app/grpc"
    assert_eq 200 "$ST" "$proto deny gRPC: HTTP status"
    assert_eq 7 "$(hdr grpc-status)" "$proto deny gRPC: grpc-status PERMISSION_DENIED"
    assert_eq application/grpc "$(hdr content-type)" "$proto deny gRPC: content-type"
    assert_eq "edge:local" "$(stamps)" "$proto deny gRPC: stamped"
    assert_eq "" "$BD" "$proto deny gRPC: no body"
done
if "$PYTHON" -c 'import grpc' 2>/dev/null; then
    out=$("$PYTHON" "$REPO_ROOT/tests/integration/grpc_client.py" "$LISTEN_PORT" call --arg Nope --timeout 5)
    assert_contains "$out" "STATUS UNIMPLEMENTED" "grpcio: a 404 through both stamps is a valid Trailers-Only reply"
    log "grpcio: $out"
else
    log "grpcio not installed: the gRPC shape was checked with curl only"
fi

# ---- the access log: what was sent -----------------------------------------------
wait_until 5 "the access log line of /app/ok" grep -q '"path":"/app/ok"' "$ACCESS"
line() { grep -F "\"path\":\"$1\"" "$ACCESS" | tail -1; }
assert_contains "$(line /nowhere)" '"status":404,"response_flags":"NR"' "access log: 404"
assert_contains "$(line /dead/x)" '"status":503,"response_flags":"UF"' "access log: 503"
assert_contains "$(line /delay/3000)" '"status":504,"response_flags":"UT"' "access log: 504"
assert_contains "$(grep -F '"path":"/app/x"' "$ACCESS" | head -1)" '"status":403,"response_flags":"LR"' "access log: 403"
assert_contains "$(line /app/ok)" '"status":200,"response_flags":"-"' "access log: 200"

# ---- weft_logf lines carry the YAML names; counters per YAML name --------------------
wlog=$(cat "$WEFT_LOG")
assert_contains "$wlog" "filter edge: stamp configured with tag edge" "weft_setup_logf names the YAML name"
assert_contains "$wlog" "filter inner: stamped 404 local=1 end_stream=0" "weft_logf names inner"
assert_contains "$wlog" "filter edge: stamped 403 local=1 end_stream=0" "weft_logf names edge"
assert_contains "$wlog" "filter edge: stamped 200 local=1 end_stream=1" "gRPC reply: headers with end_stream"
assert_contains "$wlog" "filter edge: complete status=403 local reason=denied_by_filter" "log phase: local_reply_reason"
prom=$(admin_get /stats/prometheus)
m() { awk -v k="$1" 'index($0, k) == 1 { print $2 }' <<<"$prom"; }
# edge: 404, 503, 504, direct, deny, 2 gRPC denies, the grpcio 404 (if run)
edge_local=$(m 'weft_filter_edge_responses_local_total{listener="lr"}')
((edge_local >= 7)) || fail "edge local responses: $edge_local (want >= 7)"
assert_eq 1 "$(m 'weft_filter_edge_responses_upstream_total{listener="lr"}')" "edge upstream responses"
inner_local=$(m 'weft_filter_inner_responses_local_total{listener="lr"}')
((inner_local >= 4 && inner_local < edge_local)) ||
    fail "inner local responses: $inner_local (want 4.., less than edge's $edge_local: it never sees deny's)"
assert_eq "$edge_local" "$(m 'weft_filter_edge_complete_local_total{listener="lr"}')" \
    "edge: log phase local_reply for every local reply"
log "local replies: stamped through the response hooks (edge $edge_local, inner $inner_local)"
stop_weft 5
