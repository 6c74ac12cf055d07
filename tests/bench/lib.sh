# lib.sh: what tests/bench/run.sh and h2.sh share: a temp dir and the
# cleanup of every process they start (STARTED), free ports, stopping a
# process, and CPU time / RSS summed over a process tree from /proc.
# Sourced after BENCH_TMP_NAME and PYTHON are set.
# shellcheck shell=bash

TMP="$(mktemp -d "${TMPDIR:-/tmp}/${BENCH_TMP_NAME:-weft-bench}.XXXXXX")"
chmod 755 "$TMP"
STARTED=()
cleanup() {
    local rc=$? pid i alive
    set +e
    for pid in "${STARTED[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${STARTED[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${STARTED[@]}"; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# stop_pid PID: SIGTERM, SIGKILL after 5 s.
stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# tree PID: PID and all its descendants.
tree() {
    local p c
    for p in "$@"; do
        echo "$p"
        for c in $(pgrep -P "$p" || true); do
            tree "$c"
        done
    done
}

# cpu_ticks PID: utime+stime (clock ticks) summed over the process tree.
cpu_ticks() {
    local total=0 p t
    for p in $(tree "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# rss_kb PID: VmRSS (kB) summed over the process tree.
rss_kb() {
    local total=0 p r
    for p in $(tree "$1"); do
        r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || r=0
        total=$((total + ${r:-0}))
    done
    echo "$total"
}
