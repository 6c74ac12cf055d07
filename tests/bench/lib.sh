# lib.sh: what tests/bench/run.sh and h2.sh share: a temp dir and the
# cleanup of every process they start (track), free ports, stopping a
# process, CPU time / RSS summed over a process tree from /proc, TIME_WAIT
# counts, a Release build of weft.
# Sourced after BENCH_TMP_NAME and PYTHON are set.
# shellcheck shell=bash

TMP="$(mktemp -d "${TMPDIR:-/tmp}/${BENCH_TMP_NAME:-weft-bench}.XXXXXX")"
chmod 755 "$TMP"
STARTED=()
declare -A STIME=()

# starttime PID: the process's start time (clock ticks after boot), which
# tells it apart from a later process that got the same PID.
starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }

# track PID: registers a process this script started, stopped on exit.
# Only a process with the same PID *and* start time is ever signalled, so
# a PID the system handed to someone else's process since is left alone.
track() {
    STIME[$1]="$(starttime "$1")"
    STARTED+=("$1")
}

# ours PID: the tracked process is still the one we started.
ours() { [[ -n "${STIME[$1]:-}" && "$(starttime "$1")" == "${STIME[$1]}" ]]; }

cleanup() {
    local rc=$? pid i alive
    set +e
    for pid in "${STARTED[@]}"; do
        ours "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "${STARTED[@]}"; do
            ours "$pid" && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${STARTED[@]}"; do
        ours "$pid" && kill -KILL "$pid" 2>/dev/null
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

# stop_pid PID: SIGTERM, SIGKILL after 5 s (a tracked process only while
# it is still ours).
stop_pid() {
    local pid="$1" i
    if [[ -n "${STIME[$pid]:-}" ]] && ! ours "$pid"; then
        wait "$pid" 2>/dev/null || true
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "${STIME[$pid]:-}" ]] || ours "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
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

# cpu_ns PID: CPU time in nanoseconds of PID and all its descendants,
# every thread: the first field of /proc/PID/task/TID/schedstat (the
# kernel's sum_exec_runtime, ns resolution); where schedstat is missing,
# utime+stime from /proc/PID/stat (clock ticks). Threads that exited
# before the call are not counted (the proxies measured keep theirs).
cpu_ns() {
    local total=0 p t v hz
    hz="${CLK_TCK:-$(getconf CLK_TCK)}"
    for p in $(tree "$1"); do
        if [[ -r "/proc/$p/schedstat" ]]; then
            for t in /proc/"$p"/task/*; do
                v=""
                read -r v _ <"$t/schedstat" 2>/dev/null || true
                total=$((total + ${v:-0}))
            done
        else
            v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
            total=$((total + ${v:-0} * 1000000000 / hz))
        fi
    done
    echo "$total"
}

# thread_cpu_ns PID TID: CPU time (ns) of one thread.
thread_cpu_ns() {
    local v=""
    if read -r v _ <"/proc/$1/task/$2/schedstat" 2>/dev/null; then
        echo "$v"
    else
        v=$(sed 's/.*) //' "/proc/$1/task/$2/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
        echo $((${v:-0} * 1000000000 / ${CLK_TCK:-$(getconf CLK_TCK)}))
    fi
}

# tw_list PORT: the TIME_WAIT sockets with PORT at either end, one
# "local peer" pair a line, sorted. tw_new PORT FILE: how many of those
# now were not in FILE (a tw_list taken before): the connections to or
# from PORT closed since, whatever else the machine is doing.
tw_list() {
    ss -Htan state time-wait "( sport = :$1 or dport = :$1 )" 2>/dev/null |
        awk '{print $(NF - 1), $NF}' | sort
}
tw_new() {
    comm -13 "$2" <(tw_list "$1") | wc -l
}

# secs VALUE: "5", "5s" -> 5 (whole seconds).
secs() {
    local v="${1%s}"
    [[ "$v" =~ ^[0-9]+$ ]] || {
        echo "bench: not a whole number of seconds: $1" >&2
        exit 2
    }
    echo "$v"
}

# loadavg: the 1-minute load average.
loadavg() { awk '{print $1}' /proc/loadavg; }

# build_weft DIR TARGETS...: a Release build of weft in DIR (not the
# developer's build/); sets WEFT_NOTE on failure.
# shellcheck disable=SC2034 # WEFT_NOTE is read by the sourcing script
build_weft() {
    local dir="$1"
    shift
    say "building weft (Release, $dir)"
    if ! { cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZE= -DWEFT_FUZZ=OFF \
        -DWEFT_WERROR=OFF -DWEFT_TESTS=ON &&
        cmake --build "$dir" -j "$(nproc)" --target "$@"; } >"$TMP/weft-build.log" 2>&1; then
        WEFT_NOTE="build failed"
        tail -n 20 "$TMP/weft-build.log" >&2
    fi
}

# ---------------------------------------------------------------- the backend
# Every benchmark proxies to the same backend: nginx, one worker, pinned to
# $LOAD_CPU, answering every request with the fixed 100-byte $BODY.
# The sourcing script sets BODY, LOAD_CPU and NOFILE.
BENCH_BODY_DEFAULT='weft-bench: a fixed response body of exactly one hundred bytes, the same for each and every request.'
BODY="${BODY:-$BENCH_BODY_DEFAULT}"
NGINX_USER=""
if [[ $(id -u) -eq 0 ]]; then
    NGINX_USER="user root;"
fi

# wait_http URL PID [SECONDS] [curl args...]: until URL answers with the
# bench body; 1 when PID exits first or the time runs out.
wait_http() {
    local url="$1" pid="$2" limit="${3:-10}" i body
    shift 3 || shift $#
    for ((i = 0; i < limit * 10; i++)); do
        body=$(curl -s --max-time 1 "$@" "$url" 2>/dev/null || true)
        if [[ "$body" == "$BODY" ]]; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

nginx_common() { # NAME WORKERS
    cat <<CONF
$NGINX_USER
worker_processes $2;
worker_rlimit_nofile ${NOFILE:-20000};
daemon off;
master_process on;
pid $TMP/$1/nginx.pid;
error_log $TMP/$1/error.log warn;
events { worker_connections 20000; multi_accept on; }
CONF
}

nginx_http_common() { # NAME
    cat <<CONF
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $TMP/$1/client_body;
    proxy_temp_path $TMP/$1/proxy;
    fastcgi_temp_path $TMP/$1/fastcgi;
    uwsgi_temp_path $TMP/$1/uwsgi;
    scgi_temp_path $TMP/$1/scgi;
CONF
}

# start_backend: starts the backend nginx on a free port; sets BACKEND_PORT
# and BACKEND_PID; exits when it does not answer.
start_backend() {
    BACKEND_PORT=$(free_port)
    mkdir -p "$TMP/backend"
    {
        nginx_common backend 1
        echo "http {"
        nginx_http_common backend
        cat <<CONF
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        location / {
            default_type text/plain;
            return 200 "$BODY";
        }
    }
}
CONF
    } >"$TMP/backend/nginx.conf"
    taskset -c "$LOAD_CPU" nginx -p "$TMP/backend/" -e "$TMP/backend/error.log" -c "$TMP/backend/nginx.conf" \
        >"$TMP/backend/stdout.log" 2>&1 &
    BACKEND_PID=$!
    track "$BACKEND_PID"
    if ! wait_http "http://127.0.0.1:$BACKEND_PORT/" "$BACKEND_PID" 10; then
        cat "$TMP/backend/error.log" "$TMP/backend/stdout.log" >&2 || true
        echo "bench: backend nginx did not start" >&2
        exit 1
    fi
}

# ctx_switches PID: "VOLUNTARY NONVOLUNTARY" context switches summed over
# the process tree's threads: voluntary ones are wake-ups after waiting
# for events (fewer per request = more work per wake-up), involuntary ones
# are preemptions by other processes on the CPU (noise).
ctx_switches() {
    local p
    for p in $(tree "$1"); do
        cat /proc/"$p"/task/*/status 2>/dev/null
    done | awk '/^voluntary_ctxt_switches:/ {v += $2} /^nonvoluntary_ctxt_switches:/ {n += $2} END {print v + 0, n + 0}'
}

# run_wait CMD...: runs CMD in the background, tracked, and waits for it.
# A signal to the script (Ctrl-C, SIGTERM) then ends the wait at once and
# the cleanup stops CMD too; a foreground CMD would delay the script's
# traps until it ends, or make bash ignore a Ctrl-C that CMD survived.
run_wait() {
    local p rc=0
    "$@" &
    p=$!
    track "$p"
    wait "$p" || rc=$?
    return "$rc"
}
