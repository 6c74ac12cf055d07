#!/usr/bin/env bash
# Access log (access_log: {path: stdout}, then a file): one JSON object per
# line, parsed with python's json; for a proxied POST of a known body the
# fields time (ISO 8601 UTC), method, authority, path, status,
# response_flags ("-"), bytes_received/bytes_sent (exact body sizes),
# duration_ms, upstream_host, upstream_cluster, request_id (the
# x-request-id the backend saw) and user_agent; a 404 logs response_flags
# "NR"; a request with a 5000-byte path and user agent still logs one
# valid JSON line; the file path variant writes the same lines to a file.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ACCESS_LOG_PATH@
ACCESS_LOG_PATH="$TEST_TMP/access.log"

start_backend al "$BACKEND_PORT"

TEMPLATE='workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
access_log:
  path: @ACCESS_LOG_PATH@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: to-al
            match: { prefix: /api }
            cluster: al
          - match: { prefix: /echo }
            cluster: al
clusters:
  - name: al
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@'
URL="http://127.0.0.1:$LISTEN_PORT"

# access_lines FILE: the JSON access log lines of FILE (weft's own log
# lines start with a timestamp, access log lines with "{").
access_lines() { grep -a '^{' "$1" || true; }

# wait_lines FILE N: waits until FILE holds at least N access log lines.
wait_lines() {
    local i
    for ((i = 0; i < 50; i++)); do
        (($(access_lines "$1" | wc -l) >= $2)) && return 0
        sleep 0.1
    done
    fail "access log $1: fewer than $2 lines after 5 s: $(tail -n 5 "$1")"
}

# check_log FILE: every line from the first "{" on is one JSON object.
check_log() {
    "$PYTHON" - "$1" <<'PY' || fail "access log $1 has a line that is not one JSON object"
import json, sys
bad = 0
with open(sys.argv[1], "rb") as f:
    for n, raw in enumerate(f, 1):
        if not raw.startswith(b"{"):
            continue
        try:
            doc = json.loads(raw.decode("utf-8"))
            assert isinstance(doc, dict)
        except Exception as e:
            bad += 1
            sys.stderr.write("line %d: %s: %r\n" % (n, e, raw[:200] + b"..." + raw[-200:]))
sys.exit(1 if bad else 0)
PY
}


CONFIG=$(render_config - <<<"$TEMPLATE")
start_weft "$CONFIG"
curl -sS --max-time 10 -o /dev/null "$URL/api/to-file" || fail "GET /api/to-file: no HTTP answer"
curl -sS --max-time 10 -o /dev/null "$URL/api/to-file-2" || fail "GET /api/to-file-2: no HTTP answer"
wait_lines "$ACCESS_LOG_PATH" 2
check_log "$ACCESS_LOG_PATH"
assert_eq 2 "$(access_lines "$ACCESS_LOG_PATH" | wc -l)" "lines in the access log file"
assert_eq "/api/to-file-2" "$(json_field "$(access_lines "$ACCESS_LOG_PATH" | sed -n 2p)" path)" "path in the file"
assert_eq 0 "$(access_lines "$WEFT_LOG" | wc -l)" "access log lines on stdout when logging to a file"
stop_weft 15

# --- access log to stdout ------------------------------------------------------------
# shellcheck disable=SC2034 # read by render_config through @ACCESS_LOG_PATH@
ACCESS_LOG_PATH=stdout
CONFIG=$(render_config - <<<"$TEMPLATE")
start_weft "$CONFIG"
head -c 1234 /dev/urandom >"$TEST_TMP/body"
curl -sS --max-time 10 -A 'weft-test-agent/1.0' -H 'Expect:' --data-binary @"$TEST_TMP/body" \
    -o "$TEST_TMP/body.back" "$URL/echo?n=1" || fail "POST /echo: no HTTP answer"
cmp -s "$TEST_TMP/body" "$TEST_TMP/body.back" || fail "POST /echo body differs"
seen=$(curl -sS --max-time 10 -A 'agent "quoted" \ back' "$URL/api/rid") || fail "GET /api/rid: no HTTP answer"
backend_rid=$(json_field "$seen" headers x-request-id)
code=$(http_status "$URL/missing")
assert_eq 404 "$code" "GET /missing"
wait_lines "$WEFT_LOG" 3
check_log "$WEFT_LOG"

# field LINE_NO KEY: KEY of the LINE_NO-th access log line (1-based).
field() { json_field "$(access_lines "$WEFT_LOG" | sed -n "${1}p")" "$2"; }

assert_eq POST "$(field 1 method)" "method"
assert_eq "127.0.0.1:$LISTEN_PORT" "$(field 1 authority)" "authority"
assert_eq "/echo?n=1" "$(field 1 path)" "path"
assert_eq 200 "$(field 1 status)" "status"
assert_eq "-" "$(field 1 response_flags)" "response_flags of a proxied 200"
assert_eq 1234 "$(field 1 bytes_received)" "bytes_received (request body)"
assert_eq 1234 "$(field 1 bytes_sent)" "bytes_sent (response body)"
assert_eq "127.0.0.1:$BACKEND_PORT" "$(field 1 upstream_host)" "upstream_host"
assert_eq al "$(field 1 upstream_cluster)" "upstream_cluster"
assert_eq "weft-test-agent/1.0" "$(field 1 user_agent)" "user_agent"
t=$(field 1 time)
[[ "$t" =~ ^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]+)?Z$ ]] ||
    fail "time [$t] is not ISO 8601 UTC"
d=$(field 1 duration_ms)
awk -v d="$d" 'BEGIN { exit !(d + 0 == d && d >= 0 && d < 10000) }' || fail "duration_ms [$d]"
rid1=$(field 1 request_id)
[[ -n "$rid1" && "$rid1" != "<missing>" ]] || fail "request_id missing on the POST line"

assert_eq GET "$(field 2 method)" "method of the second line"
assert_eq "$backend_rid" "$(field 2 request_id)" "request_id vs the x-request-id the backend saw"
assert_eq 'agent "quoted" \ back' "$(field 2 user_agent)" "user_agent with quotes and a backslash"
assert_eq to-al "$(field 2 route)" "route name"

assert_eq 404 "$(field 3 status)" "status of the 404 line"
assert_eq NR "$(field 3 response_flags)" "response_flags of a 404 without a route"
assert_eq "/missing" "$(field 3 path)" "path of the 404 line"

# Awkward fields: each line stays one JSON object in UTF-8: a user agent
# with obs-text bytes (0x80-0xff, allowed in field values), and a
# 5000-byte path and user agent.
out=$(h1_raw "$LISTEN_PORT" 'GET /api/obs-text HTTP/1.1\r\nHost: a\r\nUser-Agent: caf\xe9 \xff\xfe\r\n\r\n' --timeout 1)
assert_eq 200 "$(status_lines "$out")" "GET with obs-text in the user agent"
long=$(head -c 5000 /dev/zero | tr '\0' p)
code=$(http_status -A "ua-$long" "$URL/api/$long")
assert_eq 200 "$code" "GET with a 5000-byte path"
wait_lines "$WEFT_LOG" 5
check_log "$WEFT_LOG"
assert_eq 200 "$(field 5 status)" "status of the long line"
stop_weft 15

