#!/usr/bin/env bash
# The HTTP filter pipeline end to end, with real filters (tests/filters)
# loaded into one weft (one worker) on six listeners:
#   chain : logphase, hdr_a, hdr_b, deny  (plus routes to backend.py)
#   delay : delay 200ms
#   upper : upper (request body upper-cased, response suffix)
#   auth  : authcall -> cluster auth (filter_backend.py /check, 300ms)
#   retry : retry_once -> cluster flaky (503 every other request) / dead
#   bad   : bad_hook (a hook returning 7)
# Asserts:
#   - order: request hooks run in YAML order (backend sees x-order: a,b),
#     response hooks in reverse (client sees x-order: b,a);
#   - deny: 403, x-weft-reason denied_by_filter, x-denied-by; for a gRPC
#     request the Trailers-Only shape (200, grpc-status 7);
#   - delay: one request takes >= 200 ms; 200 concurrent delayed requests
#     on ONE worker all succeed in < 1 s total (paused streams hold no
#     worker);
#   - upper: /echo sees the body upper-cased (small, 300 KB, chunked),
#     the response gets the suffix with a matching content-length;
#   - authcall: allowed -> 200; denied -> 403 + x-auth-status: 401;
#     timeout -> 503 + x-auth-error: timeout, well before the service
#     would have answered;
#   - retry_once: the first attempt's 503 is retried and the client gets
#     200 (GET and POST with a body); a connect failure is retried once;
#     the attempts counter counts both attempts;
#   - logphase: counters include the 403s, the 404 and a reset stream;
#   - filter stats in /stats/prometheus with the listener label;
#   - bad_hook: 500, x-weft-reason filter_error, weft keeps serving;
#   - a filter config error on SIGHUP: "reload refused" naming
#     file:line:col, the old config (and its filters) keeps serving;
#   - startup refusals (exit 2, one line): bad_major / newer_minor (file
#     and both ABI versions), no_entry, null_desc, and a filter config
#     error reported as file:line:col at the offending node;
#   - SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

command -v h2load >/dev/null || fail "h2load is not installed"

BE_PORT=$(free_port)
FB_PORT=$(free_port)
DEAD_PORT=$(free_port)
P_CHAIN=$(free_port)
P_DELAY=$(free_port)
P_UPPER=$(free_port)
P_AUTH=$(free_port)
P_RETRY=$(free_port)
P_BAD=$(free_port)
ADMIN_PORT=$(free_port)

start_backend be "$BE_PORT"
"$PYTHON" "$REPO_ROOT/tests/integration/filter_backend.py" --port "$FB_PORT" --name fb \
    >"$TEST_TMP/backend-fb.log" 2>&1 &
track_pid $!
wait_for_url "http://127.0.0.1:$FB_PORT/count" 10 200

# listener NAME PORT FILTERS_YAML: one listener routing /delay, /echo,
# /app (and / for the non-chain listeners) to cluster be; /flaky and /dead
# to their clusters.
listener() {
    cat <<YAML
  - name: $1
    address: 127.0.0.1
    port: $2
    filters:
$3
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: /flaky }, cluster: flaky }
          - { match: { prefix: /dead }, cluster: dead }
          - { match: { prefix: /delay }, cluster: be }
          - { match: { prefix: /echo }, cluster: be }
          - { match: { prefix: /app }, cluster: be }
YAML
    [[ "$1" == chain ]] || echo "          - { match: { prefix: / }, cluster: be }"
}

# config HDR_A_NAME: the whole config (HDR_A_NAME is hdr_a's request
# header name: a bad one makes the filter refuse its config).
config() {
    cat <<YAML
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
# hdr.so twice under two names: by path (a static config may allow it)
allow_filter_paths: true
listeners:
YAML
    listener chain "$P_CHAIN" "      - name: logphase
      - name: hdr_a
        path: $FILTER_DIR/hdr.so
        config:
          request_header:
            name: $1
            value: a
          response_header: { name: x-order, value: a }
      - name: hdr_b
        path: $FILTER_DIR/hdr.so
        config:
          request_header: { name: x-order, value: b }
          response_header: { name: x-order, value: b }
      - name: deny"
    listener delay "$P_DELAY" "      - { name: delay, config: { delay: 200ms } }"
    listener upper "$P_UPPER" "      - { name: upper, config: { suffix: '|upper' } }"
    listener auth "$P_AUTH" "      - { name: authcall, config: { cluster: auth, path: /check, timeout: 300ms } }"
    listener retry "$P_RETRY" "      - { name: retry_once }"
    listener bad "$P_BAD" "      - { name: bad_hook }"
    cat <<YAML
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: auth
    endpoints: [{ address: 127.0.0.1, port: $FB_PORT }]
  - name: flaky
    endpoints: [{ address: 127.0.0.1, port: $FB_PORT }]
  - name: dead
    connect_timeout: 1s
    endpoints: [{ address: 127.0.0.1, port: $DEAD_PORT }]
YAML
}

CONFIG="$TEST_TMP/weft.yaml"
config x-order >"$CONFIG"
cp "$CONFIG" "$TEST_TMP/good.yaml"
start_weft "$CONFIG"
C="http://127.0.0.1:$P_CHAIN"

# ---- chain order -----------------------------------------------------------
fetch "$C/app/order"
assert_eq 200 "$ST" "chain: status"
assert_eq "b,a" "$(hdr x-order)" "chain: response x-order (response hooks in reverse order)"
req_order=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["headers"].get("x-order", "-"))' <<<"$BD")
assert_eq "a,b" "$req_order" "chain: x-order the backend saw (request hooks in YAML order)"
log "chain order: request a,b; response b,a"

# ---- deny ------------------------------------------------------------------
fetch -H 'x-deny: 1' "$C/app/x"
assert_eq 403 "$ST" "deny: status"
assert_eq denied_by_filter "$(hdr x-weft-reason)" "deny: x-weft-reason"
assert_eq deny "$(hdr x-denied-by)" "deny: x-denied-by"
assert_eq "denied" "$BD" "deny: body"
assert_eq "b,a" "$(hdr x-order)" "deny: the hdr filters before deny saw the request, so their response hooks run on its local reply (reverse order)"
fetch -H 'x-deny: 1' -H 'content-type: application/grpc' -X POST --data-binary '' "$C/app/grpc"
assert_eq 200 "$ST" "deny (gRPC): HTTP status of the Trailers-Only reply"
assert_eq 7 "$(hdr grpc-status)" "deny (gRPC): grpc-status (PERMISSION_DENIED)"
assert_eq application/grpc "$(hdr content-type)" "deny (gRPC): content-type"
fetch "$C/nothing-routes-here"
assert_eq 404 "$ST" "chain: unrouted path"

# ---- delay -----------------------------------------------------------------
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 "http://127.0.0.1:$P_DELAY/app/d")
assert_eq 200 "${t% *}" "delay: status"
awk -v t="${t#* }" 'BEGIN { exit !(t >= 0.2) }' || fail "delay: request took ${t#* } s, want >= 0.2"
log "delay: one request in ${t#* } s"
d0=$(metric 'weft_filter_delay_delayed{')
start_ns=$(date +%s%N)
h2load --h1 -n 200 -c 200 -T 5 "http://127.0.0.1:$P_DELAY/app/concurrent" >"$TEST_TMP/h2load.out" 2>&1 ||
    fail "h2load failed: $(cat "$TEST_TMP/h2load.out")"
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
h2=$(cat "$TEST_TMP/h2load.out")
assert_contains "$h2" "requests: 200 total, 200 started, 200 done, 200 succeeded" "h2load (200 delayed requests)"
assert_contains "$h2" "status codes: 200 2xx" "h2load status codes"
# Paused streams hold no worker: one at a time, 200 x 200 ms would take
# 40 s. Far below that (any machine load) proves they were paused together.
((elapsed_ms < 20000)) || fail "200 concurrent delayed requests took ${elapsed_ms} ms on one worker (serial would be 40 s)"
assert_eq "$((d0 + 200))" "$(metric 'weft_filter_delay_delayed{')" "delay: delayed counter"
assert_eq 0 "$(metric 'weft_filter_delay_resume_failed{')" "delay: resume refusals"
log "delay: 200 concurrent paused streams done in ${elapsed_ms} ms (one worker)"

# ---- upper -----------------------------------------------------------------
U="http://127.0.0.1:$P_UPPER"
fetch --data-binary 'hello, weft filters 123' -H 'content-type: text/plain' "$U/echo"
assert_eq 200 "$ST" "upper: status"
assert_eq 'HELLO, WEFT FILTERS 123|upper' "$BD" "upper: echoed body"
"$PYTHON" -c 'import sys; sys.stdout.write("abcdefghijklmnopqrstuvwxyz0123456789\n" * 8000)' >"$TEST_TMP/big.txt"
tr '[:lower:]' '[:upper:]' <"$TEST_TMP/big.txt" >"$TEST_TMP/big.want"
printf '|upper' >>"$TEST_TMP/big.want"
calls0=$(metric 'weft_filter_upper_request_calls{')
curl -s --max-time 10 --data-binary "@$TEST_TMP/big.txt" "$U/echo" -o "$TEST_TMP/big.got" ||
    fail "upper: large body request failed"
cmp -s "$TEST_TMP/big.want" "$TEST_TMP/big.got" ||
    fail "upper: $(wc -c <"$TEST_TMP/big.txt")-byte body not upper-cased whole ($(wc -c <"$TEST_TMP/big.got") bytes back)"
calls=$(($(metric 'weft_filter_upper_request_calls{') - calls0))
((calls > 1)) || fail "upper: the large body came in $calls on_request_body call(s), want > 1 (held and re-called)"
curl -s --max-time 10 -H 'transfer-encoding: chunked' --data-binary "@$TEST_TMP/big.txt" "$U/echo" \
    -o "$TEST_TMP/big-chunked.got" || fail "upper: chunked request failed"
cmp -s "$TEST_TMP/big.want" "$TEST_TMP/big-chunked.got" || fail "upper: chunked body not upper-cased whole"
upper_bytes=$((23 + 2 * $(wc -c <"$TEST_TMP/big.txt")))
log "upper: small, $(wc -c <"$TEST_TMP/big.txt")-byte ($calls body calls) and chunked bodies upper-cased; suffix appended"

# ---- authcall --------------------------------------------------------------
A="http://127.0.0.1:$P_AUTH"
fetch -H 'x-token: good' "$A/app/a"
assert_eq 200 "$ST" "authcall allowed: status"
assert_eq be "$(hdr x-backend)" "authcall allowed: reached the backend"
fetch -H 'x-token: bad' "$A/app/a"
assert_eq 403 "$ST" "authcall denied: status"
assert_eq 401 "$(hdr x-auth-status)" "authcall denied: x-auth-status"
assert_eq auth_denied "$(hdr x-weft-reason)" "authcall denied: x-weft-reason"
fetch "$A/app/a"
assert_eq 403 "$ST" "authcall without a token: status"
start_ns=$(date +%s%N)
fetch -H 'x-token: slow' "$A/app/a"
ms=$((($(date +%s%N) - start_ns) / 1000000))
assert_eq 503 "$ST" "authcall timeout: status"
assert_eq timeout "$(hdr x-auth-error)" "authcall timeout: x-auth-error"
((ms >= 250 && ms < 1500)) || fail "authcall timeout answered after ${ms} ms (timeout 300ms, service 2 s)"
assert_eq 1 "$(metric 'weft_filter_authcall_allowed{listener="auth"}')" "authcall allowed counter"
assert_eq 2 "$(metric 'weft_filter_authcall_denied{listener="auth"}')" "authcall denied counter"
assert_eq 1 "$(metric 'weft_filter_authcall_failed{listener="auth"}')" "authcall failed counter"
fetch -H 'x-token: good' "$A/app/after-timeout"
assert_eq 200 "$ST" "authcall allowed after a timeout"
log "authcall: allowed, denied (401 -> 403), timeout (503 after ${ms} ms)"

# ---- retry_once ------------------------------------------------------------
R="http://127.0.0.1:$P_RETRY"
flaky_count() { curl -s --max-time 5 "http://127.0.0.1:$FB_PORT/count" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["flaky"])'; }
f0=$(flaky_count)
att0=$(metric 'weft_filter_retry_once_attempts{')
for i in 1 2 3; do
    fetch "$R/flaky"
    assert_eq 200 "$ST" "retry_once GET $i: status (first attempt 503, retried)"
done
fetch -X POST --data-binary 'replay me' "$R/flaky"
assert_eq 200 "$ST" "retry_once POST with a body: status (body replayed)"
assert_eq "$((f0 + 8))" "$(flaky_count)" "flaky backend requests (2 per client request)"
assert_eq 4 "$(metric 'weft_filter_retry_once_retries{')" "retry_once retries"
assert_eq "$((att0 + 8))" "$(metric 'weft_filter_retry_once_attempts{')" "retry_once attempts counter"
assert_eq 2 "$(metric 'weft_filter_retry_once_last_attempts{')" "retry_once last_attempts gauge"
fetch "$R/dead"
assert_eq 503 "$ST" "retry_once connect failure: status"
assert_eq 5 "$(metric 'weft_filter_retry_once_retries{')" "retry_once retries after a connect failure"
assert_eq "$((att0 + 10))" "$(metric 'weft_filter_retry_once_attempts{')" "retry_once attempts after a connect failure"
assert_eq 0 "$(metric 'weft_filter_retry_once_retry_refused{')" "retry_once refused retries"
log "retry_once: 4 requests retried after a 503 (one with a body), a connect failure retried once"

# ---- bad_hook --------------------------------------------------------------
fetch "http://127.0.0.1:$P_BAD/app/x"
assert_eq 500 "$ST" "bad_hook: status"
assert_eq filter_error "$(hdr x-weft-reason)" "bad_hook: x-weft-reason"
grep -q 'filter bad_hook: hook returned 7' "$WEFT_LOG" || fail "bad_hook: no log line for the bad return value"
fetch "$C/app/still-up"
assert_eq 200 "$ST" "weft serves after bad_hook"

# ---- log phase -------------------------------------------------------------
# A reset: the client goes away while the backend is still answering.
"$PYTHON" - "$P_CHAIN" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /delay/1500 HTTP/1.1\r\nhost: x\r\n\r\n")
time.sleep(0.3)
s.close()
PY
wait_until 5 "logphase counts the reset stream" \
    bash -c "curl -s http://127.0.0.1:$ADMIN_PORT/stats/prometheus | grep -q '^weft_filter_logphase_no_response{listener=\"chain\"} 1\$'"
assert_eq 2 "$(metric 'weft_filter_logphase_status_4xx{listener="chain"}')" "logphase 4xx (403 deny + 404)"
assert_eq 3 "$(metric 'weft_filter_logphase_status_2xx{listener="chain"}')" \
    "logphase 2xx (order, gRPC deny as Trailers-Only 200, still-up)"
assert_eq 0 "$(metric 'weft_filter_logphase_status_5xx{listener="chain"}')" "logphase 5xx"
assert_eq 6 "$(metric 'weft_filter_logphase_completed{listener="chain"}')" "logphase on_stream_complete calls"
log "logphase: 3 2xx, 2 4xx (local replies), 1 reset"

# ---- stats -----------------------------------------------------------------
prom=$(admin_get /stats/prometheus)
for want in 'weft_filter_hdr_a_requests{listener="chain"} 6' 'weft_filter_hdr_b_requests{listener="chain"} 6' \
    '# TYPE weft_filter_hdr_a_requests counter' "weft_filter_upper_request_bytes{listener=\"upper\"} $upper_bytes" \
    '# TYPE weft_filter_retry_once_last_attempts gauge' 'weft_filter_delay_resumed{listener="delay"} 201'; do
    grep -qxF -- "$want" <<<"$prom" || fail "/stats/prometheus: no line [$want]: $(grep weft_filter_ <<<"$prom" | head -40)"
done
log "filter stats in /stats/prometheus"

# ---- a filter config error on SIGHUP -----------------------------------------
config '"Bad Header"' >"$TEST_TMP/badcfg.yaml"
bad_line=$(grep -n -F '"Bad Header"' "$TEST_TMP/badcfg.yaml" | cut -d: -f1)
bad_col=$(sed -n "${bad_line}p" "$TEST_TMP/badcfg.yaml" | awk '{ print index($0, "\"Bad Header\"") }')
refused0=$(metric 'weft_config_reload_total{result="refused"}')
cp "$TEST_TMP/badcfg.yaml" "$CONFIG.new"
mv -f "$CONFIG.new" "$CONFIG"
weft_signal HUP
wait_until 5 "weft logs the refused reload" grep -q "reload refused" "$WEFT_LOG"
line=$(grep "reload refused" "$WEFT_LOG")
assert_contains "$line" "$CONFIG:$bad_line:$bad_col: filter \"hdr_a\": name must be" "reload refused line"
assert_eq "$((refused0 + 1))" "$(metric 'weft_config_reload_total{result="refused"}')" "refused reloads"
fetch "$C/app/after-refused"
assert_eq 200 "$ST" "old config after the refused reload: status"
assert_eq "b,a" "$(hdr x-order)" "old config after the refused reload: the old chain still runs"
fetch -H 'x-deny: 1' "$C/app/after-refused"
assert_eq 403 "$ST" "old config after the refused reload: deny still runs"
log "SIGHUP with a bad filter config refused: $line"
cp "$TEST_TMP/good.yaml" "$CONFIG.new"
mv -f "$CONFIG.new" "$CONFIG"
stop_weft 15

# ---- startup refusals ------------------------------------------------------
# one_filter FILTER_LINE: a minimal config with one filter on one listener.
one_filter() {
    cat <<YAML
workers: 1
admin: { address: 127.0.0.1, port: $ADMIN_PORT }
listeners:
  - name: l
    address: 127.0.0.1
    port: $P_CHAIN
    filters:
      - $1
    virtual_hosts:
      - name: d
        domains: ["*"]
        routes: [{ match: { prefix: / }, cluster: be }]
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
}
for so in bad_major newer_minor no_entry null_desc; do
    one_filter "{ name: $so }" >"$TEST_TMP/$so.yaml"
done
export WEFT_FILTER_PATH="$FILTER_DIR"
expect_refused bad_major "$TEST_TMP/bad_major.yaml" "$TEST_TMP/bad_major.yaml:" "$FILTER_DIR/bad_major.so" \
    "filter ABI $((ABI_MAJOR + 1)).0 is not supported by this weft (ABI $ABI_MAJOR.$ABI_MINOR)"
expect_refused newer_minor "$TEST_TMP/newer_minor.yaml" "$FILTER_DIR/newer_minor.so" \
    "filter ABI $ABI_MAJOR.$((ABI_MINOR + 1)) is not supported by this weft (ABI $ABI_MAJOR.$ABI_MINOR)"
expect_refused no_entry "$TEST_TMP/no_entry.yaml" "$FILTER_DIR/no_entry.so" weft_filter_entry_v1
expect_refused null_desc "$TEST_TMP/null_desc.yaml" "$FILTER_DIR/null_desc.so" "descriptor"
one_filter "{ name: nosuch }" >"$TEST_TMP/nosuch.yaml"
expect_refused nosuch "$TEST_TMP/nosuch.yaml" 'filter "nosuch"' "nosuch.so"
unset WEFT_FILTER_PATH
# logphase and hdr_b load before hdr_a refuses: their "loaded" log lines
# come first on stderr.
REFUSE_LOG_LINES=1
expect_refused badcfg "$TEST_TMP/badcfg.yaml" \
    "$TEST_TMP/badcfg.yaml:$bad_line:$bad_col: filter \"hdr_a\": name must be a lower-case header name"
REFUSE_LOG_LINES=0
# hdr without any config, found through $WEFT_FILTER_PATH (no filter_path,
# no path): refused at the filter's own position.
one_filter "{ name: hdr }" >"$TEST_TMP/noconfig.yaml"
pos_line=$(grep -n -F '{ name: hdr }' "$TEST_TMP/noconfig.yaml" | cut -d: -f1)
pos_col=$(sed -n "${pos_line}p" "$TEST_TMP/noconfig.yaml" | awk '{ print index($0, "{ name: hdr }") }')
export WEFT_FILTER_PATH="$TEST_TMP/nonexistent:$FILTER_DIR"
REFUSE_LOG_LINES=1
expect_refused noconfig "$TEST_TMP/noconfig.yaml" "$TEST_TMP/noconfig.yaml:$pos_line:$pos_col: filter \"hdr\": config must be a map"
unset WEFT_FILTER_PATH
