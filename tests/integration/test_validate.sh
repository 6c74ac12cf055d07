#!/usr/bin/env bash
# weft --validate: a good config exits 0; each bad config exits 2 with
# exactly one line on stderr, `FILE:LINE:COL: message`, pointing at the
# offending line and column (unknown key in a route and at the top level,
# bad duration, bad size, out-of-range port, unknown cluster, bad regex;
# a YAML syntax error at its line). `weft -c BAD` (no --validate) also
# exits 2 with the same line, and never listens.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"

[[ -x "$WEFT_BIN" ]] || fail "weft binary not found at $WEFT_BIN"
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
BACKEND_PORT=$(free_port)

GOOD=$(render_config - "$TEST_TMP/good.yaml" <<'YAML'
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    limits:
      max_body_bytes: 1MiB
      headers_timeout: 5s
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { regex: "/api/[a-z]+" }
            cluster: be
            timeout: 5s
          - match: { prefix: / }
            cluster: be
clusters:
  - name: be
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

rc=0
"$WEFT_BIN" --validate -c "$GOOD" >"$TEST_TMP/good.out" 2>"$TEST_TMP/good.err" || rc=$?
assert_eq 0 "$rc" "weft --validate good.yaml exit status (stderr: $(cat "$TEST_TMP/good.err"))"

# bad NAME SED_EXPR TOKEN [LINE_ONLY]: applies SED_EXPR to good.yaml as
# NAME.yaml; --validate must exit 2 and print one line FILE:LINE:COL: msg
# where LINE:COL is where TOKEN (a unique string of the bad file) starts.
# With LINE_ONLY=1, only the line is checked.
bad() {
    local name="$1" expr="$2" token="$3" line_only="${4:-0}" f want_line want_col rc err
    f="$TEST_TMP/$name.yaml"
    sed "$expr" "$GOOD" >"$f"
    cmp -s "$GOOD" "$f" && fail "$name: the sed expression changed nothing"
    want_line=$(grep -n -F -- "$token" "$f" | head -n 1 | cut -d: -f1)
    [[ -n "$want_line" ]] || fail "$name: token [$token] not in the bad file"
    want_col=$(sed -n "${want_line}p" "$f" | awk -v t="$token" '{ print index($0, t) }')
    rc=0
    "$WEFT_BIN" --validate -c "$f" >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.err" || rc=$?
    err=$(cat "$TEST_TMP/$name.err")
    assert_eq 2 "$rc" "$name: exit status of weft --validate"
    assert_eq 1 "$(wc -l <"$TEST_TMP/$name.err")" "$name: stderr lines ($err)"
    [[ "$err" =~ ^"$f":([0-9]+):([0-9]+):\ .+$ ]] ||
        fail "$name: stderr [$err] is not '$f:LINE:COL: message'"
    assert_eq "$want_line" "${BASH_REMATCH[1]}" "$name: line in [$err]"
    if ((!line_only)); then
        assert_eq "$want_col" "${BASH_REMATCH[2]}" "$name: column in [$err]"
    fi
    log "$name: $err"
}

bad unknown-key 's/^            timeout: 5s/            timeoutt: 5s/' timeoutt
bad unknown-top-key 's/^drain_timeout: 2s/drain_timeuot: 2s/' drain_timeuot
bad bad-duration 's/^            timeout: 5s/            timeout: 5 seconds/' "5 seconds"
bad bad-duration-limit 's/headers_timeout: 5s/headers_timeout: 5x/' 5x
bad bad-size 's/max_body_bytes: 1MiB/max_body_bytes: 1 lots/' "1 lots"
bad bad-port "s/port: $BACKEND_PORT/port: 70000/" 70000
bad unknown-cluster '0,/cluster: be/s//cluster: nope/' nope
bad bad-regex 's|regex: "/api/\[a-z\]+"|regex: "/a(["|' '"/a(["'
bad yaml-syntax 's/domains: \["\*"\]/domains: ["*"/' 'routes:' 1

# The same message from `weft -c` without --validate; nothing listens.
f="$TEST_TMP/unknown-cluster.yaml"
rc=0
"$WEFT_BIN" -c "$f" >"$TEST_TMP/run.out" 2>"$TEST_TMP/run.err" &
pid=$!
_lib_track "$pid"
listened=0
for ((i = 0; i < 100; i++)); do
    if "$PYTHON" -c 'import socket, sys
s = socket.socket()
s.settimeout(0.2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$LISTEN_PORT"; then
        listened=1
    fi
    _lib_running "$pid" || break
    sleep 0.05
done
wait_exit "$pid" 10
assert_eq 2 "$EXIT_STATUS" "weft -c bad.yaml exit status"
assert_eq 0 "$listened" "weft -c bad.yaml accepted a connection on its listener"
assert_eq "$(cat "$TEST_TMP/unknown-cluster.err")" "$(cat "$TEST_TMP/run.err")" "weft -c bad.yaml stderr"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ADMIN_PORT/ready" || true)
assert_eq 000 "$code" "admin /ready after weft -c bad.yaml"

# A missing file: exit 2, one line naming the file.
rc=0
"$WEFT_BIN" --validate -c "$TEST_TMP/absent.yaml" 2>"$TEST_TMP/absent.err" >/dev/null || rc=$?
assert_eq 2 "$rc" "weft --validate on a missing file"
assert_eq 1 "$(wc -l <"$TEST_TMP/absent.err")" "stderr lines for a missing file"
assert_contains "$(cat "$TEST_TMP/absent.err")" "$TEST_TMP/absent.yaml" "message for a missing file"
