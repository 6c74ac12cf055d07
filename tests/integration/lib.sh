# lib.sh: helpers sourced by every tests/integration/test_*.sh.
#
#   #!/usr/bin/env bash
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
#
# ctest runs each test as `bash test_x.sh BUILD_DIR`; the build dir comes
# from $1 (or $WEFT_BUILD, else <repo>/build). Everything a test starts is
# tracked and stopped by the EXIT trap (SIGTERM, SIGKILL after 5 s); the
# temp dir $TEST_TMP is removed. On failure the weft and backend logs are
# printed. Every helper fails the test (exit 1) with a one-line reason.
#
# Globals a test may use:
#   REPO_ROOT  TEST_TMP  BUILD  WEFT_BIN  ADMIN_PORT  WEFT_PID  WEFT_LOG
#   BACKEND_PY  PYTHON (/usr/bin/python3)
# shellcheck shell=bash

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BACKEND_PY="$REPO_ROOT/tests/integration/backend.py"
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=python3

BUILD="${1:-${WEFT_BUILD:-$REPO_ROOT/build}}"
BUILD="$(cd "$BUILD" 2>/dev/null && pwd || echo "$BUILD")"
WEFT_BIN="${WEFT_BIN:-$BUILD/bin/weft}"
TEST_NAME="$(basename "${0%.sh}")"
TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/weft-${TEST_NAME}.XXXXXX")"
ADMIN_PORT="${ADMIN_PORT:-}"
WEFT_PID=""
WEFT_LOG=""

_LIB_PIDS=()          # every process started by a helper
_LIB_WEFT_LOGS=()     # every weft log, printed on failure
# Ports handed out by free_port are listed, with the time, in one registry
# shared by every test of the machine ($WEFT_TEST_PORTS, under flock), so
# tests that run in parallel (ctest -j) never get the same port while one
# of them has not bound it yet; an entry is taken for 30 minutes.
WEFT_TEST_PORTS="${WEFT_TEST_PORTS:-${TMPDIR:-/tmp}/weft-test-ports.$(id -u)}"
_LIB_WEFT_COUNT=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
    printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
    exit 1
}

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago and
# that no test has been handed in the last 30 minutes (the registry above).
free_port() {
    "$PYTHON" - "$WEFT_TEST_PORTS" <<'PY' || fail "free_port: no free port found"
import fcntl, socket, sys, time
now = time.time()
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.seek(0)
    fresh = []
    for line in f:
        try:
            port, t = line.split()
            if now - float(t) < 1800:
                fresh.append((int(port), t))
        except ValueError:
            pass
    taken = {p for p, _ in fresh}
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in taken:
            break
    else:
        sys.exit(1)
    if len(fresh) > 4000:  # keep the file small: rewrite it without stale entries
        f.seek(0)
        f.truncate()
        f.writelines("%d %s\n" % e for e in fresh)
    f.write("%d %.0f\n" % (port, now))
print(port)
PY
}

# _lib_track PID: registers a process for the cleanup trap.
_lib_track() { _LIB_PIDS+=("$1"); }

# wait_for_url URL [TIMEOUT_S=10] [STATUS=200|any] [PID]
# Polls until URL answers with STATUS (any HTTP answer for "any"). Fails if
# PID (when given) exits first or the timeout passes.
wait_for_url() {
    local url="$1" timeout="${2:-10}" want="${3:-200}" pid="${4:-}"
    local deadline code
    deadline=$((SECONDS + timeout))
    while ((SECONDS <= deadline)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
        if [[ "$want" == any && -n "$code" && "$code" != 000 ]] || [[ "$code" == "$want" ]]; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! _lib_running "$pid"; then
            fail "process $pid exited while waiting for $url"
        fi
        sleep 0.1
    done
    fail "timed out after ${timeout}s waiting for $url (last status ${code:-none}, want $want)"
}

# start_backend NAME PORT [backend.py options...]
# Starts tests/integration/backend.py on 127.0.0.1:PORT and waits until it
# answers. Sets BACKEND_PID; the log is $TEST_TMP/backend-NAME.log.
start_backend() {
    local name="$1" port="$2"
    shift 2
    "$PYTHON" "$BACKEND_PY" --port "$port" --name "$name" "$@" \
        >"$TEST_TMP/backend-$name.log" 2>&1 &
    BACKEND_PID=$!
    _lib_track "$BACKEND_PID"
    wait_for_url "http://127.0.0.1:$port/" 10 any "$BACKEND_PID"
    # The answer may come from another process on that port: only ours says
    # it is listening (it writes that once it has bound the port).
    local i
    for ((i = 0; i < 50; i++)); do
        grep -q "listening on" "$TEST_TMP/backend-$name.log" 2>/dev/null && return 0
        _lib_running "$BACKEND_PID" || break
        sleep 0.1
    done
    fail "backend $name did not bind port $port (another process answers there): $(tail -n 3 "$TEST_TMP/backend-$name.log")"
}

# _lib_admin_port_of CONFIG: the admin port a config names in block style
# (admin:\n  port: N); else $ADMIN_PORT; else 15000.
_lib_admin_port_of() {
    local p
    p=$(awk '
        /^admin:/ { inadmin = 1; next }
        inadmin && /^[^[:space:]#]/ { inadmin = 0 }
        inadmin && $1 == "port:" { gsub(/[^0-9]/, "", $2); print $2; exit }
    ' "$1")
    echo "${p:-${ADMIN_PORT:-15000}}"
}

# start_weft CONFIG [extra weft args...]
# Runs $WEFT_BIN -c CONFIG, logs to $TEST_TMP/weft-N.log, waits for the
# admin /ready. Sets WEFT_PID, WEFT_LOG and ADMIN_PORT (from the config's
# admin.port).
start_weft() {
    local config="$1"
    shift
    [[ -x "$WEFT_BIN" ]] || fail "weft binary not found at $WEFT_BIN"
    [[ -f "$config" ]] || fail "config not found: $config"
    _LIB_WEFT_COUNT=$((_LIB_WEFT_COUNT + 1))
    WEFT_LOG="$TEST_TMP/weft-$_LIB_WEFT_COUNT.log"
    _LIB_WEFT_LOGS+=("$WEFT_LOG")
    ADMIN_PORT="$(_lib_admin_port_of "$config")"
    "$WEFT_BIN" -c "$config" "$@" >"$WEFT_LOG" 2>&1 &
    WEFT_PID=$!
    _lib_track "$WEFT_PID"
    wait_for_url "http://127.0.0.1:$ADMIN_PORT/ready" 20 200 "$WEFT_PID"
    log "weft pid $WEFT_PID ready (admin $ADMIN_PORT)"
}

# admin_get PATH: GET from the admin listener; prints the body, fails on a
# non-2xx answer.
admin_get() {
    local path="$1"
    [[ -n "$ADMIN_PORT" ]] || fail "admin_get: ADMIN_PORT not set (start_weft first)"
    curl -sS --fail --max-time 5 "http://127.0.0.1:$ADMIN_PORT$path" ||
        fail "admin_get $path failed"
}

# http_status [curl args...] URL: prints the response status code ("000"
# when there was no HTTP answer).
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    if [[ "$1" != "$2" ]]; then
        fail "${3:-value}: expected [$1], got [$2]"
    fi
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
    if [[ "$1" != *"$2"* ]]; then
        fail "${3:-output}: [$2] not found in: $(printf '%s' "$1" | head -c 2000)"
    fi
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    if [[ "$1" == *"$2"* ]]; then
        fail "${3:-output}: [$2] unexpectedly present in: $(printf '%s' "$1" | head -c 2000)"
    fi
}

# render_config TEMPLATE [OUT]
# Replaces every @NAME@ in TEMPLATE ("-" reads stdin) with the value of the
# shell variable NAME (which must be set), writes OUT (default
# $TEST_TMP/<template name>, or $TEST_TMP/config-N.yaml for stdin) and
# prints OUT's path.
_LIB_RENDER_COUNT=0
render_config() {
    local template="$1" out="${2:-}" text name value esc
    if [[ "$template" == - ]]; then
        text=$(cat)
        _LIB_RENDER_COUNT=$((_LIB_RENDER_COUNT + 1))
        out="${out:-$TEST_TMP/config-$_LIB_RENDER_COUNT.yaml}"
    else
        [[ -f "$template" ]] || fail "render_config: no such template $template"
        text=$(cat "$template")
        out="${out:-$TEST_TMP/$(basename "$template")}"
    fi
    printf '%s\n' "$text" >"$out"
    for name in $(printf '%s\n' "$text" | grep -o '@[A-Za-z_][A-Za-z0-9_]*@' | tr -d @ | sort -u); do
        [[ -n "${!name+x}" ]] || fail "render_config: @$name@ used in $template but \$$name is not set"
        value="${!name}"
        esc=$(printf '%s' "$value" | sed -e 's/[\\&|]/\\&/g')
        sed -i "s|@${name}@|${esc}|g" "$out"
    done
    echo "$out"
}

# weft_signal SIG: sends SIG (HUP, TERM, ...) to the current weft.
weft_signal() {
    [[ -n "$WEFT_PID" ]] || fail "weft_signal: weft not started"
    kill -s "$1" "$WEFT_PID"
}

# _lib_running PID: true while PID runs (a zombie counts as exited).
_lib_running() {
    kill -0 "$1" 2>/dev/null && ps -o stat= -p "$1" 2>/dev/null | grep -qv Z
}

# wait_exit PID [TIMEOUT_S=10]: waits for a child of this shell to exit and
# sets EXIT_STATUS to its exit status. Fails on timeout. Call it directly,
# not inside $(...): only this shell can collect its children's status.
EXIT_STATUS=""
wait_exit() {
    local pid="$1" timeout="${2:-10}" deadline
    deadline=$((SECONDS + timeout))
    while _lib_running "$pid"; do
        if ((SECONDS > deadline)); then
            fail "process $pid still running after ${timeout}s"
        fi
        sleep 0.1
    done
    EXIT_STATUS=0
    wait "$pid" 2>/dev/null || EXIT_STATUS=$?
}

# stop_weft [TIMEOUT_S=10]: SIGTERM (drain) and wait; fails if weft does
# not exit in time or exits non-zero (a sanitizer report makes it so).
stop_weft() {
    [[ -n "$WEFT_PID" ]] || return 0
    local pid="$WEFT_PID"
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" "${1:-10}"
    WEFT_PID=""
    [[ "$EXIT_STATUS" == 0 ]] || fail "weft exited with status $EXIT_STATUS after SIGTERM"
}

_lib_print_logs() {
    local f
    for f in "${_LIB_WEFT_LOGS[@]}"; do
        [[ -f "$f" ]] || continue
        printf '\n----- %s (last 200 lines) -----\n' "$(basename "$f")" >&2
        tail -n 200 "$f" >&2
    done
    for f in "$TEST_TMP"/backend-*.log; do
        [[ -f "$f" ]] || continue
        printf '\n----- %s (last 20 lines) -----\n' "$(basename "$f")" >&2
        tail -n 20 "$f" >&2
    done
}

_lib_cleanup() {
    local rc=$? pid alive deadline
    set +e
    for pid in "${_LIB_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "${_LIB_PIDS[@]}"; do
            if _lib_running "$pid"; then
                alive=1
            fi
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${_LIB_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if ((rc != 0)); then
        _lib_print_logs
        printf '[%s] FAILED (exit %d)\n' "$TEST_NAME" "$rc" >&2
    else
        printf '[%s] PASSED\n' "$TEST_NAME" >&2
    fi
    rm -rf "$TEST_TMP"
    exit "$rc"
}
trap _lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- lifecycle / upstream helpers ----------------------------------------

# start_backend_at HOST NAME PORT [backend.py options...]
# Like start_backend, on HOST (127.0.0.1, ::1, ...). Sets BACKEND_PID.
start_backend_at() {
    local host="$1" name="$2" port="$3" urlhost
    shift 3
    "$PYTHON" "$BACKEND_PY" --host "$host" --port "$port" --name "$name" "$@" \
        >"$TEST_TMP/backend-$name.log" 2>&1 &
    BACKEND_PID=$!
    _lib_track "$BACKEND_PID"
    urlhost="$host"
    [[ "$host" == *:* ]] && urlhost="[$host]"
    wait_for_url "http://$urlhost:$port/" 10 any "$BACKEND_PID"
}

# metric VALUE_PREFIX: sum of the /stats/prometheus samples whose line
# starts with VALUE_PREFIX (e.g. 'weft_config_reload_total{result="ok"}'
# or 'weft_upstream_cx_total{cluster="c"'); 0 when there is none.
metric() {
    admin_get /stats/prometheus | awk -v p="$1" '
        index($0, p) == 1 { s += $NF } END { printf "%d\n", s + 0 }'
}

# wait_until TIMEOUT_S WHAT CMD [ARGS...]: polls CMD (every 0.1 s) until it
# succeeds; fails the test with WHAT on timeout. ARGS are expanded once, by
# the caller: to poll a changing value, pass a function that computes it.
wait_until() {
    local timeout="$1" what="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS <= deadline)) || fail "timed out after ${timeout}s: $what"
        sleep 0.1
    done
}

# track_pid PID: have the cleanup trap stop PID too (a process a test
# starts itself).
track_pid() { _lib_track "$1"; }

# rqloop URL [rqloop.py options...]: runs tests/integration/rqloop.py, a
# request loop that prints "<start_ms> <status> <x-backend> <x-weft-reason>
# <elapsed_ms>" per request (see its header for the options).
RQLOOP_PY="$REPO_ROOT/tests/integration/rqloop.py"
rqloop() { "$PYTHON" "$RQLOOP_PY" "$@"; }

# ---- reload helpers ------------------------------------------------------

# workers_at N VERSION: true when /stats/prometheus shows exactly N
# weft_worker_config_version{worker=...} series, all at VERSION: every
# worker runs that config (not just those a few connections reached).
workers_at() {
    admin_get /stats/prometheus | awk -v n="$1" -v v="$2" '
        index($0, "weft_worker_config_version{") == 1 { w++; if ($NF == v) ok++ }
        END { exit !(w == n && ok == n) }'
}

# wait_workers_at N VERSION [TIMEOUT_S=10]: waits for workers_at.
wait_workers_at() {
    wait_until "${3:-10}" "all $1 workers on config v$2" workers_at "$1" "$2"
}

# reload_config WORKERS: SIGHUP to weft, then waits (20 s) for the log
# line "config vN loaded" and for all WORKERS workers on vN, where N is
# CFG_VERSION + 1 (CFG_VERSION counts the configs loaded: 1 after
# start_weft; updated here).
CFG_VERSION=1
reload_config() {
    CFG_VERSION=$((CFG_VERSION + 1))
    weft_signal HUP
    wait_until 20 "weft logs config v$CFG_VERSION" grep -q "config v$CFG_VERSION loaded" "$WEFT_LOG"
    wait_workers_at "$1" "$CFG_VERSION" 20
}

# load_start OUT [wrk args...]: wrk in the background for 120 s at most
# (sets LOAD_PID); load_stop ends it. A load that covers events (reloads,
# drains) must outlast them: load_stop fails when wrk already ended, then
# stops it with SIGINT (wrk prints its summary) and waits for it.
LOAD_PID=""
load_start() {
    local out="$1"
    shift
    wrk -d120s "$@" >"$out" 2>&1 &
    LOAD_PID=$!
    track_pid "$LOAD_PID"
}
load_stop() {
    _lib_running "$LOAD_PID" || fail "the load (wrk) ended before the events it covers did"
    kill -INT "$LOAD_PID"
    wait_exit "$LOAD_PID" 20
    [[ "$EXIT_STATUS" == 0 ]] || fail "wrk exited $EXIT_STATUS"
    LOAD_PID=""
}
