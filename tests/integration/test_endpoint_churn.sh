#!/usr/bin/env bash
# Endpoint churn under load (issue 7): a cluster's endpoint set replaced
# many times per second while requests, fast and slow, are in flight.
#
# Four backends on 127.0.0.2 .. 127.0.0.5 (same port); tests/integration/
# dns_server.py answers churn.test with a different non-empty subset of
# them on every A query (TTL 0); weft (2 workers, dns.resolvers pointing at
# that server) has two clusters on churn.test: least_request with
# dns_refresh 10ms and peak_ewma with dns_refresh 15ms, so each worker
# replaces its load balancers tens of times per second. For 4 s: wrk (fast
# requests to both clusters, every 10th one 30 ms slow) and 4 slow
# requesters (250 ms each, so every slow request spans many hostset
# changes); 3 reloads (SIGHUP) in between, each replacing the resolver
# while its queries are in flight.
#
# Asserts: no failed request (every address in every answered subset is
# alive, so every answer must be a 2xx from one of the four backends); the
# hostset really changed many times (weft's "DNS resolved" log lines); every
# access-log line is valid JSON with status 200 and an upstream_host that is
# one of the four addresses (a stream reading an endpoint of a freed
# hostset prints garbage or, under ASan, aborts); every backend served;
# SIGTERM exits 0 (ASan/UBSan clean in the sanitizer build).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

command -v wrk >/dev/null || fail "wrk is not installed"
DNS_PY="$REPO_ROOT/tests/integration/dns_server.py"

LOAD_S=4
WRK_CONNS=8
RELOADS=3
BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
DNS_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
ADDRS=(127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5)
ACCESS_LOG="$TEST_TMP/access.log"

for a in "${ADDRS[@]}"; do
    start_backend_at "$a" "b${a##*.}" "$BACKEND_PORT"
done

dns_args=()
for a in "${ADDRS[@]}"; do
    dns_args+=(--addr "$a")
done
"$PYTHON" "$DNS_PY" --port "$DNS_PORT" --name churn.test "${dns_args[@]}" \
    >"$TEST_TMP/dns.out" 2>"$TEST_TMP/backend-dns.log" &
DNS_PID=$!
track_pid "$DNS_PID"
dns_ready() { grep -q '^ready' "$TEST_TMP/dns.out"; }
wait_until 10 "dns_server.py ready on 127.0.0.1:$DNS_PORT" dns_ready

CONFIG=$(render_config - <<'YAML'
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: @ACCESS_LOG@
dns:
  resolvers: ["127.0.0.1:@DNS_PORT@"]
  query_timeout: 500ms
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match:
              prefix: /
              headers: [{name: x-cluster, exact: "1"}]
            cluster: churn_ewma
          - match: { prefix: / }
            cluster: churn_lr
clusters:
  - name: churn_lr
    lb_policy: least_request
    dns_refresh: 10ms
    endpoints:
      - address: churn.test
        port: @BACKEND_PORT@
  - name: churn_ewma
    lb_policy: peak_ewma
    dns_refresh: 15ms
    endpoints:
      - address: churn.test
        port: @BACKEND_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"
resolved_count() { grep -c "cluster $1: DNS resolved" "$WEFT_LOG" || true; }
both_resolved() { (($(resolved_count churn_lr) > 0 && $(resolved_count churn_ewma) > 0)); }
wait_until 10 "both clusters resolved churn.test through dns_server.py" both_resolved
assert_eq 200 "$(http_status "$URL/")" "first request (least_request cluster)"
assert_eq 200 "$(http_status -H 'x-cluster: 1' "$URL/")" "first request (peak_ewma cluster)"

# Load. wrk: both clusters in turn, every 10th request 30 ms slow.
cat >"$TEST_TMP/churn.lua" <<'LUA'
local i = 0
request = function()
    i = i + 1
    local path = "/fast"
    if i % 10 == 0 then path = "/delay/30" end
    return wrk.format("GET", path, { ["x-cluster"] = tostring(i % 2) })
end
LUA
changes0=$(($(resolved_count churn_lr) + $(resolved_count churn_ewma)))
wrk -t1 -c"$WRK_CONNS" -d"${LOAD_S}s" --timeout 5s -s "$TEST_TMP/churn.lua" "$URL" \
    >"$TEST_TMP/wrk.out" 2>&1 &
WRK_PID=$!
track_pid "$WRK_PID"
# Slow requests: each in flight across ~25 refreshes of each cluster.
rqloop "$URL/delay/250" --duration "$LOAD_S" --concurrency 4 --header 'x-cluster: {m}' --mod 2 \
    --timeout 5 >"$TEST_TMP/slow.txt" 2>"$TEST_TMP/slow.err" &
SLOW_PID=$!
track_pid "$SLOW_PID"

# Reloads during the churn: each replaces the resolver while its queries
# are in flight (they are cancelled; their callbacks arrive later).
for ((i = 0; i < RELOADS; i++)); do
    sleep 0.8
    weft_signal HUP
done

wait_exit "$WRK_PID" $((LOAD_S + 15))
wrk_status=$EXIT_STATUS
wait_exit "$SLOW_PID" $((LOAD_S + 15))
slow_status=$EXIT_STATUS
changes=$(($(resolved_count churn_lr) + $(resolved_count churn_ewma) - changes0))

wrk_out=$(cat "$TEST_TMP/wrk.out")
[[ "$wrk_status" == 0 ]] || fail "wrk exited $wrk_status: $wrk_out"
[[ "$slow_status" == 0 ]] || fail "rqloop exited $slow_status: $(head -c 2000 "$TEST_TMP/slow.err")"
log "wrk: $(grep -E 'requests in|Requests/sec' <<<"$wrk_out" | tr -s ' ' | tr '\n' ' ')"
assert_contains "$wrk_out" "requests in" "wrk output"
assert_not_contains "$wrk_out" "Non-2xx or 3xx responses" "wrk output (endpoint churn)"
assert_not_contains "$wrk_out" "Socket errors" "wrk output (endpoint churn)"
fast=$(awk '/requests in/ { print $1 }' <<<"$wrk_out")
((fast >= 50)) || fail "wrk completed only $fast requests in ${LOAD_S}s"
slow=$(wc -l <"$TEST_TMP/slow.txt")
((slow >= 8)) || fail "only $slow slow requests completed"
bad=$(awk '$2 != "200" || $3 !~ /^b[2-5]$/' "$TEST_TMP/slow.txt" | head -n 3)
[[ -z "$bad" ]] || fail "slow requests failed: $bad"
log "$fast fast + $slow slow requests, all 2xx, across $changes endpoint-set changes"
# 10 ms and 15 ms refreshes for 4 s is up to ~660; a loaded machine (and
# ASan) gets fewer rounds, but many per second still.
((changes >= 40)) || fail "the endpoint set changed only $changes times during the load"

reloaded() { (($(metric 'weft_config_reload_total{result="ok"}') == RELOADS)); }
wait_until 10 "$RELOADS reloads (weft_config_reload_total{result=\"ok\"})" reloaded
stop_weft 15
kill -TERM "$DNS_PID"
wait_exit "$DNS_PID" 5
answered=$(awk '/^answered/ { print $2 }' "$TEST_TMP/dns.out")

# The access log: one valid line per request, each upstream_host one of the
# four backends, each backend used.
"$PYTHON" - "$ACCESS_LOG" "$BACKEND_PORT" "$((fast + slow + 2))" "$WRK_CONNS" "${ADDRS[@]}" <<'PY' ||
import json, sys
path, port, want, wrk_conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
valid = {"%s:%s" % (a, port) for a in sys.argv[5:]}
seen, n, dc = {}, 0, 0
with open(path, "rb") as f:
    for ln, raw in enumerate(f, 1):
        try:
            e = json.loads(raw.decode("utf-8"))
        except Exception as ex:
            sys.exit("line %d is not valid JSON (%s): %r" % (ln, ex, raw[:300]))
        n += 1
        h = e.get("upstream_host")
        if h not in valid:
            sys.exit("line %d: upstream_host %r is none of %s: %r" % (ln, h, sorted(valid), raw[:300]))
        if e.get("response_flags") == "DC":
            # wrk closes its connections at its deadline, requests in
            # flight included: at most one per connection
            dc += 1
        elif e.get("status") != 200 or e.get("response_flags") != "-":
            sys.exit("line %d: status %r flags %r: %r" % (ln, e.get("status"), e.get("response_flags"), raw[:300]))
        if e.get("upstream_cluster") not in ("churn_lr", "churn_ewma"):
            sys.exit("line %d: upstream_cluster %r" % (ln, e.get("upstream_cluster")))
        seen[h] = seen.get(h, 0) + 1
# wrk stops counting at its deadline: requests in flight then are logged
# by weft but not counted by wrk.
if dc > wrk_conns:
    sys.exit("%d requests cut by the client (DC), more than wrk's %d connections" % (dc, wrk_conns))
if n < want:
    sys.exit("%d access-log lines, expected at least %d" % (n, want))
if set(seen) != valid:
    sys.exit("not every backend served: %s" % seen)
print("%d lines (%d cut by wrk at its end), per upstream_host: %s" % (n, dc, " ".join("%s=%d" % kv for kv in sorted(seen.items()))))
PY
    fail "access log check failed"
log "DNS A queries answered: ${answered:-?}"
