#!/usr/bin/env bash
# Upstream timeouts and failures, each checked on the client side (status,
# x-weft-reason) and in the access log (response_flags):
#   route timeout 300ms + /delay/2000      -> 504 upstream_response_timeout, UT
#   nothing listening on the endpoint      -> 503 upstream_connect_failure, UF
#   handshake never completes (full accept
#   queue), connect_timeout 300ms          -> 503 upstream_connect_timeout, UF
#   route idle_timeout 300ms, silent upstream -> 504 stream_idle_timeout, SI
#   upstream closes half way through a body -> client sees the cut (curl 18),
#                                              access log UC or LR
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

BACKEND_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config; nothing ever listens there
REFUSED_PORT=$(free_port)
BLACKHOLE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend good "$BACKEND_PORT"

# A listener whose accept queue (backlog 0 -> one slot) is filled by a
# connection that is never accepted: further SYNs are dropped, so a connect
# to it neither succeeds nor fails until the client gives up.
"$PYTHON" -c '
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(0)
held = []
for _ in range(2):
    c = socket.socket()
    c.settimeout(0.3)
    try:
        c.connect(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        pass
    held.append(c)
open(sys.argv[2], "w").write("ready\n")
time.sleep(120)
' "$BLACKHOLE_PORT" "$TEST_TMP/blackhole.ready" >"$TEST_TMP/blackhole.log" 2>&1 &
track_pid $!
wait_until 10 "blackhole listener ready" test -s "$TEST_TMP/blackhole.ready"
code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 "http://127.0.0.1:$BLACKHOLE_PORT/" || true)
assert_eq 000 "$code" "direct connect to the blackhole port (must not answer)"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: stdout
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: rt_timeout
            match: { prefix: /t300/ }
            cluster: good
            timeout: 300ms
            prefix_rewrite: /
          - name: rt_idle
            match: { prefix: /idle300/ }
            cluster: good
            timeout: 10s
            idle_timeout: 300ms
            prefix_rewrite: /
          - name: rt_refused
            match: { prefix: /refused/ }
            cluster: refused
            prefix_rewrite: /
          - name: rt_blackhole
            match: { prefix: /blackhole/ }
            cluster: blackhole
            prefix_rewrite: /
          - name: rt_default
            match: { prefix: / }
            cluster: good
clusters:
  - name: good
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
  - name: refused
    endpoints:
      - address: 127.0.0.1
        port: @REFUSED_PORT@
  - name: blackhole
    connect_timeout: 300ms
    endpoints:
      - address: 127.0.0.1
        port: @BLACKHOLE_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# request PATH: sets CODE, REASON, ELAPSED_MS and CURL_RC for one GET.
request() {
    local hdr="$TEST_TMP/hdr" t0 t1
    : >"$hdr"
    t0=$(date +%s%N)
    CURL_RC=0
    CODE=$(curl -sS --max-time 10 -D "$hdr" -o "$TEST_TMP/body" -w '%{http_code}' "$URL$1" \
        2>"$TEST_TMP/curl.err") || CURL_RC=$?
    t1=$(date +%s%N)
    ELAPSED_MS=$(((t1 - t0) / 1000000))
    REASON=$(tr -d '\r' <"$hdr" | awk -F': ' 'tolower($1) == "x-weft-reason" { print $2 }')
}

# access_line PATH: the access log line of the request for PATH.
access_line() {
    local line
    line=$(grep -F "\"path\":\"$1\"" "$WEFT_LOG" | tail -n 1 || true)
    [[ -n "$line" ]] || fail "no access log line for $1"
    printf '%s\n' "$line"
}

# wait_access_line PATH: access lines are written when the stream ends,
# which can be a moment after the client saw the reply.
wait_access_line() {
    wait_until 5 "access log line for $1" grep -qF "\"path\":\"$1\"" "$WEFT_LOG"
}

# Sanity: the good route works.
request /hello
assert_eq 200 "$CODE" "GET /hello"

# 1. Route timeout.
request /t300/delay/2000
assert_eq 504 "$CODE" "route timeout status"
assert_eq upstream_response_timeout "$REASON" "route timeout x-weft-reason"
((ELAPSED_MS >= 250 && ELAPSED_MS < 1500)) ||
    fail "route timeout answered after ${ELAPSED_MS}ms, expected ~300ms"
log "route timeout: 504 after ${ELAPSED_MS}ms"
wait_access_line /t300/delay/2000
line=$(access_line /t300/delay/2000)
assert_eq 504 "$(jq -r .status <<<"$line")" "access log status (route timeout)"
assert_contains "$(jq -r .response_flags <<<"$line")" UT "access log response_flags (route timeout)"
assert_eq upstream_response_timeout "$(jq -r .reason <<<"$line")" "access log reason (route timeout)"
(($(metric 'weft_upstream_rq_timeout_total{cluster="good"}') >= 1)) ||
    fail "weft_upstream_rq_timeout_total{cluster=good} did not count the timeout"

# A fast request on the same route is not affected by the timeout.
request /t300/delay/50
assert_eq 200 "$CODE" "fast request on the 300ms-timeout route"

# 2. Connection refused.
request /refused/x
assert_eq 503 "$CODE" "connection refused status"
assert_eq upstream_connect_failure "$REASON" "connection refused x-weft-reason"
wait_access_line /refused/x
line=$(access_line /refused/x)
assert_contains "$(jq -r .response_flags <<<"$line")" UF "access log response_flags (refused)"
(($(metric 'weft_upstream_cx_connect_fail_total{cluster="refused"}') >= 1)) ||
    fail "weft_upstream_cx_connect_fail_total{cluster=refused} did not count"

# 3. Connect timeout.
request /blackhole/y
assert_eq 503 "$CODE" "connect timeout status"
assert_eq upstream_connect_timeout "$REASON" "connect timeout x-weft-reason"
((ELAPSED_MS >= 250 && ELAPSED_MS < 2000)) ||
    fail "connect timeout answered after ${ELAPSED_MS}ms, expected ~300ms"
log "connect timeout: 503 after ${ELAPSED_MS}ms"
wait_access_line /blackhole/y
line=$(access_line /blackhole/y)
assert_contains "$(jq -r .response_flags <<<"$line")" UF "access log response_flags (connect timeout)"
(($(metric 'weft_upstream_cx_connect_timeout_total{cluster="blackhole"}') >= 1)) ||
    fail "weft_upstream_cx_connect_timeout_total{cluster=blackhole} did not count"

# 4. Upstream closes half way through a content-length body.
request /truncate/200000
assert_eq 200 "$CODE" "truncated response status (headers were sent)"
((CURL_RC == 18 || CURL_RC == 56)) ||
    fail "truncated response: expected curl error 18 or 56 (cut connection), got $CURL_RC: $(cat "$TEST_TMP/curl.err")"
got=$(stat -c %s "$TEST_TMP/body")
((got < 200000)) || fail "truncated response: client got the full $got bytes"
log "truncated response: curl rc $CURL_RC after $got of 200000 bytes"
wait_access_line /truncate/200000
line=$(access_line /truncate/200000)
flags=$(jq -r .response_flags <<<"$line")
[[ "$flags" == *UC* || "$flags" == *LR* ]] ||
    fail "access log response_flags for the truncated response: expected UC or LR, got [$flags]"

# 5. Stream idle timeout: the upstream is silent for 2 s, idle_timeout 300ms.
request /idle300/delay/2000
assert_eq 504 "$CODE" "stream idle timeout status"
assert_eq stream_idle_timeout "$REASON" "stream idle timeout x-weft-reason"
((ELAPSED_MS >= 250 && ELAPSED_MS < 1500)) ||
    fail "stream idle timeout answered after ${ELAPSED_MS}ms, expected ~300ms"
log "stream idle timeout: 504 after ${ELAPSED_MS}ms"
wait_access_line /idle300/delay/2000
line=$(access_line /idle300/delay/2000)
assert_contains "$(jq -r .response_flags <<<"$line")" SI "access log response_flags (idle)"
# ... while a slow but steady upstream within idle_timeout is fine.
request /idle300/delay/100
assert_eq 200 "$CODE" "request within the stream idle timeout"

# The proxy is still healthy after all that.
request /hello
assert_eq 200 "$CODE" "GET /hello after the failures"

stop_weft 15
