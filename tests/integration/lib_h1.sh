# lib_h1.sh: helpers for the HTTP/1.1 protocol, limits and routing tests
# (test_h1_framing, test_h1_smuggling, test_limits, test_routing,
# test_access_log, test_validate). Source it after lib.sh:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
#   source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"
# shellcheck shell=bash

H1_RAW="$REPO_ROOT/tests/integration/h1_raw.py"

# h1_raw PORT DATA [h1_raw.py options...]: sends DATA (escapes decoded) to
# 127.0.0.1:PORT and prints the framed responses (see h1_raw.py). Never
# fails by itself: the caller asserts on the output.
h1_raw() {
    "$PYTHON" "$H1_RAW" "$@" || fail "h1_raw.py $1 failed (exit $?)"
}

# status_lines OUTPUT: the status codes of h1_raw output, space separated
# ("100 200").
status_lines() {
    printf '%s\n' "$1" | awk '/^HTTP\/1\.[01] [0-9][0-9][0-9]/ { printf "%s%s", sep, $2; sep = " " }'
}

# end_state OUTPUT: CLOSED, OPEN or RESET from h1_raw output.
end_state() {
    printf '%s\n' "$1" | awk '/^END / { print $2 }'
}

# end_elapsed OUTPUT: the seconds h1_raw took, from its END line.
end_elapsed() {
    printf '%s\n' "$1" | sed -n 's/^END .* elapsed=\([0-9.]*\)$/\1/p'
}

# backend_seen NAME NEEDLE: how many request lines in the (--verbose)
# backend log of NAME contain NEEDLE.
backend_seen() {
    local f="$TEST_TMP/backend-$1.log"
    [[ -f "$f" ]] || fail "backend_seen: no log for backend $1"
    grep -F -c -- "$2" "$f" || true
}

# json_field JSON KEY...: prints JSON[KEY][KEY]... (strings bare, other
# values as JSON, "<missing>" when absent).
json_field() {
    local doc="$1"
    shift
    "$PYTHON" -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2:]:
    if isinstance(v, dict) and k in v:
        v = v[k]
    else:
        print("<missing>")
        sys.exit(0)
print(v if isinstance(v, str) else json.dumps(v))
' "$doc" "$@"
}

# metric_sum NAME: the sum of every sample of the Prometheus metric NAME on
# the admin listener (0 when absent).
metric_sum() {
    admin_get /stats/prometheus | awk -v m="$1" '
        $1 == m || index($1, m "{") == 1 { s += $NF }
        END { printf "%d\n", s }'
}

# rss_kb PID: VmRSS of PID in kB.
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# hdr_value HEADERS_FILE NAME: the value of the first header NAME
# (case-insensitive) in a curl -D dump, without CR.
hdr_value() {
    tr -d '\r' <"$1" | awk -v n="$2" 'BEGIN { n = tolower(n) }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) {
              v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }'
}

# start_head_echo PORT: starts head_echo_backend.py (answers with the raw
# request head) on 127.0.0.1:PORT and waits until it answers.
start_head_echo() {
    local pid
    "$PYTHON" "$REPO_ROOT/tests/integration/head_echo_backend.py" --port "$1" \
        >"$TEST_TMP/backend-head-echo.log" 2>&1 &
    pid=$!
    _lib_track "$pid"
    wait_for_url "http://127.0.0.1:$1/" 10 any "$pid"
}
