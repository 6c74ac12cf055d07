# lib_h2.sh: helpers for the HTTP/2, gRPC, WebSocket and CONNECT tests
# (test_h2_*, test_grpc, test_websocket, test_connect_tunnel). Source it
# after lib.sh:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
#   source "$(dirname "${BASH_SOURCE[0]}")/lib_h2.sh"
#
# The python helpers need Debian's python3-h2, python3-grpcio and
# python3-websockets for /usr/bin/python3 (scripts/setup.sh installs them);
# the clients are curl, nghttp and h2load (nghttp2-client).
# shellcheck shell=bash

H2_DIR="$REPO_ROOT/tests/integration"

# h2_need_tools: fails the test with one line when a tool or python module
# it needs is missing (scripts/setup.sh installs them all).
h2_need_tools() {
    local t
    for t in curl nghttp h2load; do
        command -v "$t" >/dev/null 2>&1 || fail "$t not found (run scripts/setup.sh)"
    done
    "$PYTHON" -c 'import h2, hpack, grpc, websockets' 2>/dev/null ||
        fail "$PYTHON lacks h2/hpack/grpc/websockets (run scripts/setup.sh)"
}

# h2f PORT SCENARIO [h2_frames.py options...]: runs tests/integration/h2_frames.py
# and prints its report (see its header). Fails only when it cannot run.
h2f() {
    "$PYTHON" "$H2_DIR/h2_frames.py" "$@" || fail "h2_frames.py $2 could not run (exit $?)"
}

# h2_error_seen OUTPUT STREAM CODE: true when OUTPUT (h2_frames.py) has
# RST_STREAM on STREAM with CODE, or a GOAWAY with CODE.
h2_error_seen() {
    grep -Eq "^RST_STREAM stream=$2 code=$3\$|^GOAWAY last_stream=[0-9]+ code=$3 " <<<"$1"
}

# assert_h2_stream_error OUTPUT STREAM CODE WHAT: a stream error (RST_STREAM)
# or a connection error (GOAWAY) with exactly CODE.
assert_h2_stream_error() {
    h2_error_seen "$1" "$2" "$3" ||
        fail "$4: expected RST_STREAM stream=$2 or GOAWAY with $3, got: $(h2_summary "$1")"
}

# assert_h2_goaway OUTPUT CODE WHAT: a GOAWAY with exactly CODE.
assert_h2_goaway() {
    grep -Eq "^GOAWAY last_stream=[0-9]+ code=$2 " <<<"$1" ||
        fail "$3: expected GOAWAY $2, got: $(h2_summary "$1")"
}

# h2_summary OUTPUT: the report without HEADER lines, on one line.
h2_summary() {
    grep -v '^HEADER ' <<<"$1" | tr '\n' '|' | head -c 1500
}

# h2_status OUTPUT STREAM: the :status of STREAM's response ("" when none).
h2_status() {
    sed -n "s/^RESPONSE stream=$2 status=\\([0-9]*\\)\$/\\1/p" <<<"$1" | head -n 1
}

# h2_header OUTPUT STREAM NAME: the first response header (or trailer) NAME
# of STREAM.
h2_header() {
    sed -n -E "s/^(HEADER|TRAILER) stream=$2 $3: //p" <<<"$1" | head -n 1
}

# h2_end_field OUTPUT FIELD: from the END line: state (CLOSED/OPEN/RESET)
# or elapsed.
h2_end_field() {
    local line
    line=$(grep '^END ' <<<"$1" | tail -n 1)
    case "$2" in
    state) awk '{ print $2 }' <<<"$line" ;;
    elapsed) sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$line" ;;
    esac
}

# float_lt A B: true when A < B (decimal numbers).
float_lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# proc_rss_kb PID: VmRSS of PID in kB.
proc_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# h2_get_ok PORT [PATH=/]: a GET over h2c (curl --http2-prior-knowledge)
# answers 200 over HTTP/2.
h2_get_ok() {
    local port="$1" path="${2:-/}" got
    got=$(curl -sS --http2-prior-knowledge --max-time 10 -o /dev/null \
        -w '%{http_code} %{http_version}' "http://127.0.0.1:$port$path" 2>&1) || true
    [[ "$got" == "200 2" ]] || fail "h2c GET $path on port $port: want [200 2], got [$got]"
}

# h1_get_ok PORT [PATH=/]: a GET over HTTP/1.1 answers 200.
h1_get_ok() {
    local port="$1" path="${2:-/}" got
    got=$(curl -sS --http1.1 --max-time 10 -o /dev/null -w '%{http_code} %{http_version}' \
        "http://127.0.0.1:$port$path" 2>&1) || true
    [[ "$got" == "200 1.1" ]] || fail "HTTP/1.1 GET $path on port $port: want [200 1.1], got [$got]"
}

# weft_alive: the current weft still runs.
weft_alive() {
    _lib_running "$WEFT_PID" || fail "weft (pid $WEFT_PID) is not running any more"
}

# _h2_start_py NAME PORT READY_URL SCRIPT [ARGS...]: starts a python helper
# with its log at $TEST_TMP/backend-NAME.log, waits until READY_URL answers
# (any status; "h2c:" prefix: with curl --http2-prior-knowledge). Sets
# HELPER_PID.
_h2_start_py() {
    local name="$1" port="$2" url="$3" script="$4" deadline code
    shift 4
    "$PYTHON" "$H2_DIR/$script" "$@" >"$TEST_TMP/backend-$name.log" 2>&1 &
    HELPER_PID=$!
    track_pid "$HELPER_PID"
    deadline=$((SECONDS + 15))
    while ((SECONDS <= deadline)); do
        if [[ "$url" == h2c:* ]]; then
            code=$(curl -s --http2-prior-knowledge --max-time 1 -o /dev/null -w '%{http_code}' \
                "${url#h2c:}" 2>/dev/null || true)
        elif [[ "$url" == tcp:* ]]; then
            code=000
            if "$PYTHON" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "${url#tcp:}" 2>/dev/null; then
                code=200
            fi
        else
            code=$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' "$url" 2>/dev/null || true)
        fi
        [[ -n "$code" && "$code" != 000 ]] && return 0
        _lib_running "$HELPER_PID" || fail "$script ($name) exited: $(tail -n 5 "$TEST_TMP/backend-$name.log")"
        sleep 0.1
    done
    fail "$script ($name) not ready on port $port after 15s"
}

# start_h2_backend NAME PORT [h2_backend.py options...]: the h2c backend;
# its events go to $TEST_TMP/events-NAME.log. Sets HELPER_PID.
start_h2_backend() {
    local name="$1" port="$2"
    shift 2
    _h2_start_py "$name" "$port" "h2c:http://127.0.0.1:$port/ready" h2_backend.py \
        --port "$port" --name "$name" --events "$TEST_TMP/events-$name.log" "$@"
}

# start_grpc_backend NAME PORT: grpc_backend.py; events in
# $TEST_TMP/events-NAME.log. Sets HELPER_PID.
start_grpc_backend() {
    _h2_start_py "$1" "$2" "h2c:http://127.0.0.1:$2/" grpc_backend.py \
        --port "$2" --events "$TEST_TMP/events-$1.log"
}

# start_ws_backend NAME PORT: ws_backend.py; events in
# $TEST_TMP/events-NAME.log. Sets HELPER_PID.
start_ws_backend() {
    _h2_start_py "$1" "$2" "http://127.0.0.1:$2/healthz" ws_backend.py \
        --port "$2" --events "$TEST_TMP/events-$1.log"
}

# start_tcp_echo NAME PORT: tcp_echo.py; events in $TEST_TMP/events-NAME.log.
start_tcp_echo() {
    _h2_start_py "$1" "$2" "tcp:$2" tcp_echo.py --port "$2" --events "$TEST_TMP/events-$1.log"
}

# events_count NAME REGEX: lines of $TEST_TMP/events-NAME.log matching REGEX.
events_count() {
    local f="$TEST_TMP/events-$1.log"
    [[ -f "$f" ]] || {
        echo 0
        return 0
    }
    grep -Ec -- "$2" "$f" || true
}

# access_log_field LOG PATH FIELD: FIELD of the last access-log line (JSON)
# whose path, without its query string, is PATH ("<none>" when there is no
# such line).
access_log_field() {
    "$PYTHON" -c '
import json, sys
found = "<none>"
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if str(d.get("path", "")).split("?", 1)[0] == sys.argv[2]:
        v = d.get(sys.argv[3], "<missing>")
        found = v if isinstance(v, str) else json.dumps(v)
print(found)
' "$1" "$2" "$3"
}
