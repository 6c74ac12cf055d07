#!/usr/bin/env bash
# instr.sh: the instruction-count benchmark. Every proxy runs under
# `valgrind --tool=callgrind`, which counts the instructions the process
# executes exactly, whatever else runs on the machine; a fixed number of
# requests (h2load -n) goes through it, and the instructions counted over
# them (callgrind_control -z before, -d after) are divided by the requests
# completed. HTTP/1.1 keep-alive and h2c: weft, weft with a chain of
# filters (8 x noop.so by default), weft with issue 8's benchmark chain
# (weft_routeN: N x bench_route.so, each reading its per-route config and
# bumping a counter of the route and status class), HAProxy, nginx and
# nghttpx, each
# configured as in run.sh and h2.sh, in a single process with one thread
# of work. A second, native run (no valgrind) of each target counts its
# system calls per request (strace -c) under the same load: instructions
# are user space only.
#
#   tests/bench/instr.sh                                  # 2 rounds, 20,000 requests per run
#   BENCH_TARGETS="h1:weft h1:weft_route8" BENCH_ROUNDS=6 BENCH_SYSCALLS=0 \
#       tests/bench/instr.sh                              # issue 8's 8-filter benchmark
#   BENCH_REQUESTS=2000 BENCH_WARMUP_REQUESTS=200 tests/bench/instr.sh   # a quick look
#   BENCH_PROFILE=1 tests/bench/instr.sh                  # + where weft's instructions go
#
# Settings (environment):
#   BENCH_TARGETS     PROTO:NAME list, PROTO h1 or h2; NAME weft, weft_filtersN
#                     (a chain of N $BENCH_FILTER filters), weft_routeN (a chain
#                     of N bench_route filters, per-route config {route: bench}
#                     on the benchmark route), haproxy, nginx, nghttpx
#                     default "h1:weft h1:weft_filters8 h1:haproxy h1:nginx
#                              h2:weft h2:weft_filters8 h2:haproxy h2:nginx h2:nghttpx"
#   BENCH_ROUNDS      callgrind runs per target (a fresh process each;
#                     0: only the native run); rounds alternate the order of
#                     the targets (A B C, then C B A, ...) and every ratio is
#                     taken within a round, then summarised (median, min-max) 2
#   BENCH_REQUESTS    measured requests per run (h2load -n)           20000
#   BENCH_WARMUP_REQUESTS  requests before the counters are zeroed     2000
#   BENCH_CLIENTS     h2load -c                                          10
#   BENCH_STREAMS     h2load -m for h2 (h1: 1, no pipelining)            10
#   BENCH_SYSCALLS    1: the native run per target: user/system split of
#                     its CPU time, then syscalls (strace -c)             1
#   BENCH_SPLIT_REQUESTS  requests of the native user/system split    100000
#   BENCH_PROFILE     1: keep the callgrind files of round 1 in
#                     BENCH_PROFILE_DIR and print weft's top functions   0
#   BENCH_PROFILE_DIR                       tests/bench/results-callgrind
#   BENCH_PROFILE_TOP functions listed per table                         25
#   BENCH_FILTER      the filter of weft_filtersN (<name>.so)          noop
#   BENCH_FILTER_DIR  where <name>.so is       $BENCH_BUILD_DIR/tests/filters
#   BENCH_FILTER_TARGET  the CMake target that builds it
#                                             weft_test_filter_$BENCH_FILTER
#   BENCH_FILTER_CONFIG  a YAML flow value for each filter's `config:` (none)
#   BENCH_ROUTE_EXTRA    YAML `key: value` lines added to weft's route (none)
#   BENCH_SPREAD_MAX  % spread of a target's rounds above which it is flagged 1
#   BENCH_START_WAIT  seconds a proxy under valgrind may take to answer  120
#   BENCH_VALGRIND_OPTS  extra valgrind options                       (none)
#   BENCH_NOTE, BENCH_OUT (tests/bench/results-instr-latest.md), WEFT_BIN,
#   BENCH_BUILD, BENCH_BUILD_DIR, BENCH_SKIP_SETUP, LOAD_CPU, PROXY_CPU:
#                     as in run.sh (see tests/bench/README)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH_TARGETS="${BENCH_TARGETS:-h1:weft h1:weft_filters8 h1:haproxy h1:nginx h2:weft h2:weft_filters8 h2:haproxy h2:nginx h2:nghttpx}"
BENCH_ROUNDS="${BENCH_ROUNDS:-2}"
BENCH_REQUESTS="${BENCH_REQUESTS:-20000}"
BENCH_WARMUP_REQUESTS="${BENCH_WARMUP_REQUESTS:-2000}"
BENCH_CLIENTS="${BENCH_CLIENTS:-10}"
BENCH_STREAMS="${BENCH_STREAMS:-10}"
BENCH_SYSCALLS="${BENCH_SYSCALLS:-1}"
BENCH_SPLIT_REQUESTS="${BENCH_SPLIT_REQUESTS:-100000}"
BENCH_PROFILE="${BENCH_PROFILE:-0}"
BENCH_PROFILE_DIR="${BENCH_PROFILE_DIR:-$ROOT/tests/bench/results-callgrind}"
BENCH_PROFILE_TOP="${BENCH_PROFILE_TOP:-25}"
BENCH_SPREAD_MAX="${BENCH_SPREAD_MAX:-1}"
BENCH_START_WAIT="${BENCH_START_WAIT:-120}"
BENCH_VALGRIND_OPTS="${BENCH_VALGRIND_OPTS:-}"
BENCH_NOTE="${BENCH_NOTE:-}"
BENCH_OUT="${BENCH_OUT:-$ROOT/tests/bench/results-instr-latest.md}"
BENCH_BUILD="${BENCH_BUILD:-1}"
BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$ROOT/build-bench}"
WEFT_BIN_GIVEN="${WEFT_BIN:-}"
WEFT_BIN="${WEFT_BIN:-$BENCH_BUILD_DIR/bin/weft}"
BENCH_FILTER="${BENCH_FILTER:-noop}"
BENCH_FILTER_DIR="${BENCH_FILTER_DIR:-$BENCH_BUILD_DIR/tests/filters}"
BENCH_FILTER_TARGET="${BENCH_FILTER_TARGET:-weft_test_filter_$BENCH_FILTER}"
BENCH_FILTER_CONFIG="${BENCH_FILTER_CONFIG:-}"
BENCH_ROUTE_EXTRA="${BENCH_ROUTE_EXTRA:-}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
if (($(nproc) < 2)); then
    PROXY_CPU="$LOAD_CPU"
fi
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=python3

say() { printf '[bench-instr] %s\n' "$*" >&2; }
die() {
    echo "bench-instr: $*" >&2
    exit 2
}

BENCH_TMP_NAME=weft-bench-instr
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"

for v in BENCH_ROUNDS BENCH_REQUESTS BENCH_WARMUP_REQUESTS BENCH_SPLIT_REQUESTS BENCH_CLIENTS BENCH_STREAMS BENCH_PROFILE_TOP BENCH_START_WAIT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
((BENCH_ROUNDS <= 30)) || die "BENCH_ROUNDS must be 0..30"
((BENCH_REQUESTS >= BENCH_CLIENTS && BENCH_CLIENTS >= 1)) || die "BENCH_REQUESTS must be at least BENCH_CLIENTS (>= 1)"
((BENCH_STREAMS >= 1)) || die "BENCH_STREAMS must be at least 1"
[[ "$BENCH_SPREAD_MAX" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "BENCH_SPREAD_MAX must be a number"
[[ "$BENCH_FILTER" =~ ^[A-Za-z0-9_-]+$ ]] || die "BENCH_FILTER must be a filter name"
for spec in $BENCH_TARGETS; do
    [[ "$spec" =~ ^(h1|h2):(weft|weft_filters[0-9]+|weft_route[0-9]+|haproxy|nginx|nghttpx)$ ]] ||
        die "not a target: $spec (PROTO:NAME, PROTO h1 or h2, NAME weft, weft_filtersN, weft_routeN, haproxy, nginx, nghttpx)"
done

if ! ulimit -n 65536 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)"
fi
NOFILE="$(ulimit -n)"

if [[ "${BENCH_SKIP_SETUP:-0}" != 1 ]]; then
    "$ROOT/scripts/setup.sh" >&2
fi
PATH="$PATH:/usr/sbin:/sbin"
need=(valgrind callgrind_control h2load nginx taskset curl)
[[ "$BENCH_PROFILE" != 1 ]] || need+=(callgrind_annotate)
[[ "$BENCH_SYSCALLS" != 1 ]] || need+=(strace)
[[ " $BENCH_TARGETS " != *:haproxy* ]] || need+=(haproxy)
[[ " $BENCH_TARGETS " != *:nghttpx* ]] || need+=(nghttpx)
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench-instr: $tool not found" >&2
        exit 1
    }
done

# ---------------------------------------------------------------- weft build
WEFT_NOTE=""
if [[ " $BENCH_TARGETS " == *:weft* && "$BENCH_BUILD" == 1 && -z "$WEFT_BIN_GIVEN" ]]; then
    build_targets=(weft)
    [[ " $BENCH_TARGETS " != *:weft_filters* ]] || build_targets+=("$BENCH_FILTER_TARGET")
    [[ " $BENCH_TARGETS " != *:weft_route* ]] || build_targets+=(weft_test_filter_bench_route)
    build_weft "$BENCH_BUILD_DIR" "${build_targets[@]}"
fi

# ---------------------------------------------------------------- backend
start_backend
say "backend nginx on 127.0.0.1:$BACKEND_PORT (native, cpu $LOAD_CPU), proxies on cpu $PROXY_CPU"

# ---------------------------------------------------------------- configs
# The same peers and settings as run.sh (HTTP/1.1) and h2.sh (h2c), with
# one difference: one process doing the work (nginx: master_process off,
# so the worker is the process valgrind runs; nghttpx: --single-process;
# HAProxy: nbthread 1, weft: workers 1), and timeouts generous enough for
# a proxy that runs about 50 times slower than natively.

# nginx_conf DIR PROTO PORT: nginx as in run.sh/h2.sh, in one process.
nginx_conf() {
    local dir="$1" proto="$2" port="$3" ka listen
    if [[ "$proto" == h2 ]]; then
        ka=$((BENCH_CLIENTS * BENCH_STREAMS))
        listen="listen 127.0.0.1:$port http2 backlog=4096;"
    else
        ka="$BENCH_CLIENTS"
        listen="listen 127.0.0.1:$port backlog=4096;"
    fi
    cat <<CONF
$NGINX_USER
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 20000; multi_accept on; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    http2_max_concurrent_streams 128;
    proxy_connect_timeout 60s;
    proxy_read_timeout 300s;
    proxy_send_timeout 300s;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive $ka;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        $listen
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
}

# haproxy_conf PROTO PORT: HAProxy as in run.sh/h2.sh.
haproxy_conf() {
    local bind_opts=""
    [[ "$1" != h2 ]] || bind_opts=" proto h2"
    cat <<CONF
global
    nbthread 1
    maxconn 20000
    no strict-limits
    log stderr format short local0 warning

defaults
    mode http
    log global
    option http-keep-alive
    http-reuse always
    maxconn 20000
    timeout connect 60s
    timeout client 300s
    timeout server 300s
    timeout http-request 60s
    timeout http-keep-alive 300s

frontend bench
    bind 127.0.0.1:$2 backlog 4096$bind_opts
    default_backend backend

backend backend
    server b1 127.0.0.1:$BACKEND_PORT
CONF
}

# weft_conf PROTO PORT ADMIN_PORT N_FILTERS [FILTER]: weft as in
# run.sh/h2.sh, one worker; N_FILTERS > 0: a chain of that many FILTER
# filters ($BENCH_FILTER by default; bench_route: with its per-route config
# on the route, and no BENCH_FILTER_CONFIG).
weft_conf() {
    local proto="$1" port="$2" admin="$3" nf="$4" filter="${5:-$BENCH_FILTER}" i line
    echo "workers: 1"
    if ((nf > 0)); then
        echo "filter_path: [\"$BENCH_FILTER_DIR\"]"
    fi
    cat <<CONF
drain_timeout: 2s
admin: {address: 127.0.0.1, port: $admin}
listeners:
  - name: bench
    address: 127.0.0.1
    port: $port
CONF
    [[ "$proto" != h2 ]] || echo "    http2: {max_concurrent_streams: 100}"
    if ((nf > 0)); then
        echo "    filters:"
        for ((i = 0; i < nf; i++)); do
            if [[ -n "$BENCH_FILTER_CONFIG" && "$filter" == "$BENCH_FILTER" ]]; then
                echo "      - {name: $filter, config: $BENCH_FILTER_CONFIG}"
            else
                echo "      - {name: $filter}"
            fi
        done
    fi
    cat <<CONF
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: backend
CONF
    if ((nf > 0)) && [[ "$filter" == bench_route ]]; then
        echo "            filter_config: {bench_route: {route: bench}}"
    fi
    if [[ -n "$BENCH_ROUTE_EXTRA" ]]; then
        while IFS= read -r line; do
            [[ -z "$line" ]] || echo "            $line"
        done <<<"$BENCH_ROUTE_EXTRA"
    fi
    cat <<CONF
clusters:
  - name: backend
    endpoints:
      - {address: 127.0.0.1, port: $BACKEND_PORT}
CONF
}

# ---------------------------------------------------------------- a proxy
# start_proxy DIR MODE PROTO NAME: writes NAME's config into DIR and starts
# it pinned to PROXY_CPU, natively (MODE native) or under callgrind (MODE
# callgrind, its files in DIR/callgrind.out*); sets SPID and SPORT; 1 when
# it does not start or answer (the reason in SNOTE, its logs on stderr).
start_proxy() {
    local dir="$1" mode="$2" proto="$3" name="$4" admin nf=0 filter="$BENCH_FILTER" wait_s=15 curl_opts=() pre=()
    SNOTE=""
    SPID=""
    SPORT=$(free_port)
    mkdir -p "$dir"
    pre=(taskset -c "$PROXY_CPU")
    if [[ "$mode" == callgrind ]]; then
        # shellcheck disable=SC2206 # BENCH_VALGRIND_OPTS: words on purpose
        pre+=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" $BENCH_VALGRIND_OPTS)
        wait_s="$BENCH_START_WAIT"
    fi
    [[ "$proto" != h2 ]] || curl_opts=(--http2-prior-knowledge)
    case "$name" in
    weft | weft_filters* | weft_route*)
        if [[ -n "$WEFT_NOTE" ]]; then
            SNOTE="failed: $WEFT_NOTE"
            return 1
        fi
        if [[ ! -x "$WEFT_BIN" ]]; then
            SNOTE="failed: no binary at $WEFT_BIN"
            return 1
        fi
        if [[ "$name" == weft_filters* ]]; then
            nf="${name#weft_filters}"
        elif [[ "$name" == weft_route* ]]; then
            nf="${name#weft_route}"
            filter=bench_route
        fi
        if ((nf > 0)) && [[ ! -f "$BENCH_FILTER_DIR/$filter.so" ]]; then
            SNOTE="failed: no $BENCH_FILTER_DIR/$filter.so"
            return 1
        fi
        admin=$(free_port)
        weft_conf "$proto" "$SPORT" "$admin" "$nf" "$filter" >"$dir/weft.yaml"
        "${pre[@]}" "$WEFT_BIN" -c "$dir/weft.yaml" >"$dir/stdout.log" 2>&1 &
        ;;
    haproxy)
        haproxy_conf "$proto" "$SPORT" >"$dir/haproxy.cfg"
        "${pre[@]}" haproxy -db -f "$dir/haproxy.cfg" >"$dir/stdout.log" 2>&1 &
        ;;
    nginx)
        nginx_conf "$dir" "$proto" "$SPORT" >"$dir/nginx.conf"
        "${pre[@]}" nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
        ;;
    nghttpx)
        # as in h2.sh; --single-process: no separate worker process.
        "${pre[@]}" nghttpx --single-process --frontend="127.0.0.1,$SPORT;no-tls" \
            --backend="127.0.0.1,$BACKEND_PORT;;proto=http/1.1" --workers=1 \
            --frontend-http2-max-concurrent-streams=100 --backend-keep-alive-timeout=300s \
            --backend-read-timeout=300s --backend-write-timeout=300s --backend-connect-timeout=60s \
            --frontend-read-timeout=300s --frontend-write-timeout=300s \
            --no-ocsp --errorlog-file="$dir/error.log" --accesslog-file=/dev/null \
            --conf=/dev/null >"$dir/stdout.log" 2>&1 &
        ;;
    esac
    SPID=$!
    track "$SPID"
    if ! wait_http "http://127.0.0.1:$SPORT/" "$SPID" "$wait_s" "${curl_opts[@]}"; then
        SNOTE="failed: no correct answer on port $SPORT ($mode)"
        tail -n 20 "$dir"/*.log >&2 2>/dev/null || true
        stop_pid "$SPID"
        return 1
    fi
}

# load PROTO PORT N OUT: h2load with N requests (HTTP/1.1 keep-alive with
# --h1, one request at a time per connection; h2c prior knowledge with
# BENCH_STREAMS streams per connection), on LOAD_CPU; 0 when every one
# of the N requests succeeded with a 2xx, else 1 (the output on stderr).
load() {
    local proto="$1" port="$2" n="$3" out="$4" opts=() line ok two
    if [[ "$proto" == h1 ]]; then
        opts=(--h1 -m 1)
    else
        opts=(-m "$BENCH_STREAMS")
    fi
    run_wait taskset -c "$LOAD_CPU" timeout 1800 h2load "${opts[@]}" -c "$BENCH_CLIENTS" -n "$n" \
        "http://127.0.0.1:$port/" >"$out" 2>&1 || true
    line=$(grep -E '^requests:' "$out" || true)
    ok=$(sed -nE 's/.* ([0-9]+) succeeded.*/\1/p' <<<"$line")
    two=$(sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p' "$out")
    LOAD_OK="${ok:-0}"
    if [[ "$LOAD_OK" != "$n" || "${two:-0}" != "$n" ]]; then
        say "h2load: $LOAD_OK of $n requests succeeded, ${two:-0} with a 2xx:"
        sed 's/^/    /' "$out" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- callgrind run
IR_TSV="$TMP/instr.tsv"
printf 'proto\ttarget\tround\trequests\tir\tir_per_req\n' >"$IR_TSV"
declare -A NOTE=()
FAILED=0

# callgrind_total FILE: the event total (Ir) of a callgrind dump ("summary:",
# else "totals:"), once the dump is complete (its last line, "totals:").
callgrind_total() {
    local f="$1" i
    for ((i = 0; i < 300; i++)); do
        if [[ -f "$f" ]] && grep -q '^totals:' "$f"; then
            awk '/^summary:/ {s = $2} /^totals:/ {t = $2} END {print (s != "" ? s : t)}' "$f"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# instr_run PROTO NAME ROUND: one fresh process under callgrind: warm-up,
# zero the counters, the measured requests, dump, Ir / requests.
instr_run() {
    local proto="$1" name="$2" round="$3" key="$1:$2" dir ir per t0
    dir="$TMP/cg-$proto-$name-$round"
    t0=$SECONDS
    if ! start_proxy "$dir" callgrind "$proto" "$name"; then
        NOTE[$key]="$SNOTE"
        FAILED=1
        say "$key round $round: $SNOTE"
        return 0
    fi
    if ((BENCH_WARMUP_REQUESTS > 0)) && ! load "$proto" "$SPORT" "$BENCH_WARMUP_REQUESTS" "$dir/warmup.txt"; then
        NOTE[$key]="failed: warm-up requests failed in round $round"
        FAILED=1
        say "$key round $round: ${NOTE[$key]}"
        stop_pid "$SPID"
        return 0
    fi
    if ! callgrind_control -z "$SPID" >"$dir/zero.txt" 2>&1 || ! grep -q OK "$dir/zero.txt"; then
        NOTE[$key]="failed: callgrind_control -z"
        FAILED=1
        sed 's/^/    /' "$dir/zero.txt" >&2
        stop_pid "$SPID"
        return 0
    fi
    if ! load "$proto" "$SPORT" "$BENCH_REQUESTS" "$dir/load.txt"; then
        NOTE[$key]="failed: $LOAD_OK of $BENCH_REQUESTS requests succeeded with a 2xx in round $round"
        FAILED=1
        say "$key round $round: ${NOTE[$key]}"
        stop_pid "$SPID"
        return 0
    fi
    if ! callgrind_control -d "$SPID" >"$dir/dump.txt" 2>&1 || ! ir=$(callgrind_total "$dir/callgrind.out.1"); then
        NOTE[$key]="failed: no callgrind dump"
        FAILED=1
        sed 's/^/    /' "$dir/dump.txt" >&2
        stop_pid "$SPID"
        return 0
    fi
    stop_pid "$SPID"
    per=$(awk -v i="$ir" -v n="$BENCH_REQUESTS" 'BEGIN {printf "%.0f", i / n}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$proto" "$name" "$round" "$BENCH_REQUESTS" "$ir" "$per" >>"$IR_TSV"
    say "$key round $round: $ir instructions / $BENCH_REQUESTS requests = $per per request ($((SECONDS - t0)) s)"
    if [[ "$BENCH_PROFILE" == 1 && "$round" == 1 ]]; then
        mkdir -p "$BENCH_PROFILE_DIR"
        cp "$dir/callgrind.out.1" "$BENCH_PROFILE_DIR/callgrind.out.$proto-$name"
    fi
}

# ---------------------------------------------------------------- syscalls
SYS_TSV="$TMP/syscalls.tsv"
printf 'proto\ttarget\tsyscall\tcalls\trequests\n' >"$SYS_TSV"
SPLIT_TSV="$TMP/split.tsv"
printf 'proto\ttarget\tuser_ticks\tsystem_ticks\trequests\n' >"$SPLIT_TSV"

# user_system PID: "UTIME STIME" (clock ticks) of the process, all its
# threads (/proc/PID/stat).
user_system() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12, $13}'; }

# traced PID: every thread of PID has a tracer (strace attached).
traced() {
    local t
    for t in /proc/"$1"/task/*/status; do
        awk '/^TracerPid:/ {exit ($2 == 0)}' "$t" || return 1
    done
}

# syscall_run PROTO NAME: the target natively, warm-up, then
# BENCH_SPLIT_REQUESTS requests for the user/system split of its CPU time
# (how much of it the instruction counts can see), then strace -f -c
# attached to all its threads for BENCH_REQUESTS requests.
syscall_run() {
    local proto="$1" name="$2" key="$1:$2" dir spid i u0 s0 u1 s1
    dir="$TMP/sys-$proto-$name"
    if ! start_proxy "$dir" native "$proto" "$name"; then
        NOTE[$key]="${NOTE[$key]:-syscalls: $SNOTE}"
        say "$key syscalls: $SNOTE"
        return 0
    fi
    if ((BENCH_WARMUP_REQUESTS > 0)) && ! load "$proto" "$SPORT" "$BENCH_WARMUP_REQUESTS" "$dir/warmup.txt"; then
        NOTE[$key]="${NOTE[$key]:-syscalls: warm-up requests failed}"
        stop_pid "$SPID"
        return 0
    fi
    if ((BENCH_SPLIT_REQUESTS > 0)); then
        read -r u0 s0 < <(user_system "$SPID")
        if load "$proto" "$SPORT" "$BENCH_SPLIT_REQUESTS" "$dir/split.txt"; then
            read -r u1 s1 < <(user_system "$SPID")
            printf '%s\t%s\t%s\t%s\t%s\n' "$proto" "$name" "$((u1 - u0))" "$((s1 - s0))" "$BENCH_SPLIT_REQUESTS" >>"$SPLIT_TSV"
            say "$key native: user $((u1 - u0)) ticks, system $((s1 - s0)) ticks for $BENCH_SPLIT_REQUESTS requests"
        else
            NOTE[$key]="${NOTE[$key]:-native: $LOAD_OK of $BENCH_SPLIT_REQUESTS requests succeeded with a 2xx}"
            FAILED=1
        fi
    fi
    strace -f -c -o "$dir/strace.txt" -p "$SPID" 2>"$dir/strace.err" &
    spid=$!
    track "$spid"
    for ((i = 0; i < 100; i++)); do
        traced "$SPID" && break
        sleep 0.1
    done
    if ! traced "$SPID"; then
        NOTE[$key]="${NOTE[$key]:-syscalls: strace did not attach}"
        cat "$dir/strace.err" >&2 || true
        stop_pid "$spid"
        stop_pid "$SPID"
        return 0
    fi
    if ! load "$proto" "$SPORT" "$BENCH_REQUESTS" "$dir/load.txt"; then
        NOTE[$key]="${NOTE[$key]:-syscalls: $LOAD_OK of $BENCH_REQUESTS requests succeeded with a 2xx}"
        FAILED=1
    fi
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    stop_pid "$SPID"
    if [[ "$LOAD_OK" == "$BENCH_REQUESTS" ]]; then
        # strace -c: "% time seconds usecs/call calls [errors] syscall"
        awk -v p="$proto" -v t="$name" -v n="$BENCH_REQUESTS" \
            '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {printf "%s\t%s\t%s\t%s\t%s\n", p, t, $NF, $4, n}' \
            "$dir/strace.txt" >>"$SYS_TSV"
        say "$key syscalls: $(awk '$NF == "total" {print $4}' "$dir/strace.txt") calls / $BENCH_REQUESTS requests"
    fi
}

# ---------------------------------------------------------------- the runs
START_TIME=$(date -u '+%Y-%m-%d %H:%M UTC')
T_START=$SECONDS
LOAD_START=$(loadavg)
say "targets: $BENCH_TARGETS; $BENCH_ROUNDS callgrind round(s) of $BENCH_REQUESTS requests" \
    "(+$BENCH_WARMUP_REQUESTS warm-up) each, a fresh process per run"
# Alternated rounds: the targets in order in odd rounds, reversed in even
# ones (A B C, C B A, ...), so that a drift over the run (none is expected
# in instruction counts; the backend's and the client's timing do vary)
# does not favour one target.
read -r -a ORDER <<<"$BENCH_TARGETS"
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
    if ((r % 2)); then
        specs=("${ORDER[@]}")
    else
        specs=()
        for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
            specs+=("${ORDER[i]}")
        done
    fi
    for spec in "${specs[@]}"; do
        [[ "${NOTE[$spec]:-}" == failed* ]] || instr_run "${spec%%:*}" "${spec#*:}" "$r"
    done
done
T_INSTR=$((SECONDS - T_START))
if [[ "$BENCH_SYSCALLS" == 1 ]]; then
    for spec in $BENCH_TARGETS; do
        syscall_run "${spec%%:*}" "${spec#*:}"
    done
fi
LOAD_END=$(loadavg)
T_ALL=$((SECONDS - T_START))

# ---------------------------------------------------------------- report
NOTES_TSV="$TMP/notes.tsv"
: >"$NOTES_TSV"
for k in "${!NOTE[@]}"; do
    printf '%s\t%s\n' "$k" "${NOTE[$k]}" >>"$NOTES_TSV"
done

# top_functions FILE INCLUSIVE: the BENCH_PROFILE_TOP first functions of a
# callgrind file by inclusive (yes) or self (no) Ir, as markdown rows with
# Ir per request. A dump taken while the event loop runs lists the calls
# still active then (thread start -> worker loop) as "calls=0";
# callgrind_annotate 3.19 counts those as the caller's self cost (the
# worker loop would show 100 % self), so they are read as one call each.
top_functions() {
    sed 's/^calls=0 /calls=1 /' "$1" >"$TMP/annotate.cg"
    callgrind_annotate --inclusive="$2" --threshold=100 "$TMP/annotate.cg" 2>/dev/null |
        awk -v n="$BENCH_REQUESTS" -v top="$BENCH_PROFILE_TOP" '
            /^-+$/ {sep++; next}
            sep >= 5 && $1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ {
                ir = $1; gsub(",", "", ir)
                pct = ""
                if (match($0, /\( *[0-9.]+%\)/)) { pct = substr($0, RSTART + 1, RLENGTH - 2); gsub(/ /, "", pct) }
                fn = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", fn)
                obj = ""
                if (match(fn, / \[[^]]*\]$/)) { obj = substr(fn, RSTART + 2, RLENGTH - 3); fn = substr(fn, 1, RSTART - 1) }
                sub(/^.*\//, "", obj); sub(/^[^:]*:/, "", fn)
                gsub(/\|/, "\\|", fn)
                if (++rows <= top) printf "| %d | %.0f | %s | `%s` | %s |\n", rows, ir / n, pct, fn, obj
            }'
}

report() {
    local cpu_model f native
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    echo "# weft instruction counts (tests/bench/instr.sh, $START_TIME)"
    echo
    if [[ -n "$BENCH_NOTE" ]]; then
        echo "**$BENCH_NOTE**"
        echo
    fi
    echo "- weft $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- core sdk 2>/dev/null || echo ' (with local changes)');" \
        "$(haproxy -v 2>/dev/null | head -n 1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')," \
        "$(nghttpx --version 2>/dev/null | head -n 1 | sed 's/^nghttpx //'), $(valgrind --version)"
    echo "- machine: $(nproc) CPUs${cpu_model:+, $cpu_model}, kernel $(uname -r); load average $LOAD_START at the start, $LOAD_END at the end" \
        "(instruction counts do not depend on it)"
    echo "- load: h2load, $BENCH_CLIENTS connections, $BENCH_WARMUP_REQUESTS requests of warm-up, then the counters zeroed" \
        "and $BENCH_REQUESTS measured requests (every one must succeed with a 2xx); h1: \`--h1\` keep-alive, one request at a time per connection;" \
        "h2: h2c prior knowledge, $BENCH_STREAMS streams per connection; on cpu $LOAD_CPU with the backend (native nginx, ${#BODY}-byte 200 body)"
    echo "- proxies: one process, one thread of work (weft workers 1, HAProxy nbthread 1, nginx master_process off, nghttpx --single-process)," \
        "pinned to cpu $PROXY_CPU, upstream HTTP/1.1 keep-alive, configured as in run.sh and h2.sh;" \
        "weft_filtersN: N x $BENCH_FILTER.so${BENCH_FILTER_CONFIG:+ (config: $BENCH_FILTER_CONFIG)}${BENCH_ROUTE_EXTRA:+; in the route: $BENCH_ROUTE_EXTRA};" \
        "weft_routeN: N x bench_route.so, the route's filter_config {bench_route: {route: bench}}"
    if [[ "$BENCH_SYSCALLS" == 1 ]]; then
        native="one native run per target (after the warm-up: user/system CPU split over $BENCH_SPLIT_REQUESTS requests, then syscalls with strace -f -c over $BENCH_REQUESTS)"
    else
        native="no native run (BENCH_SYSCALLS=0)"
    fi
    echo "- $BENCH_ROUNDS callgrind run(s) per target, each a fresh process; $native;" \
        "instruction runs took $((T_INSTR / 60)) min $((T_INSTR % 60)) s, everything $((T_ALL / 60)) min $((T_ALL % 60)) s"
    echo
    "$PYTHON" - "$IR_TSV" "$SYS_TSV" "$NOTES_TSV" "$BENCH_TARGETS" "$BENCH_SPREAD_MAX" "$SPLIT_TSV" <<'PY'
import sys
from collections import defaultdict

ir_tsv, sys_tsv, notes_tsv, targets, spread_max, split_tsv = sys.argv[1:7]
spread_max = float(spread_max)
targets = targets.split()
ir = defaultdict(dict)  # (proto, target) -> round -> ir/req (exact)
with open(ir_tsv) as f:
    next(f)
    for line in f:
        p, t, r, n, total, _ = line.rstrip("\n").split("\t")
        ir[(p, t)][int(r)] = int(total) / int(n)
calls = defaultdict(dict)  # (proto, target) -> syscall -> calls/req
with open(sys_tsv) as f:
    next(f)
    for line in f:
        p, t, s, c, n = line.rstrip("\n").split("\t")
        calls[(p, t)][s] = int(c) / int(n)
split = {}  # (proto, target) -> (user ticks, system ticks)
with open(split_tsv) as f:
    next(f)
    for line in f:
        p, t, u, s, n = line.rstrip("\n").split("\t")
        split[(p, t)] = (int(u), int(s))
notes = {}
with open(notes_tsv) as f:
    for line in f:
        k, v = line.rstrip("\n").split("\t", 1)
        notes[k] = v
rounds = sorted({r for v in ir.values() for r in v})
protos = [p for p in ("h1", "h2") if any(s.startswith(p + ":") for s in targets)]
names = {"h1": "HTTP/1.1 keep-alive", "h2": "h2c"}


def mean(xs):
    return sum(xs) / len(xs)


def fmt(x):
    return f"{x:,.0f}"


for p in protos:
    tg = [s.split(":", 1)[1] for s in targets if s.startswith(p + ":")]
    print(f"### {names[p]}: instructions per request (Ir, callgrind)")
    print()
    head = ["target"] + [f"round {r}" for r in rounds] + [
        "mean", "spread", "syscalls/req (native)", "user share of CPU (native)", "note"]
    print("| " + " | ".join(head) + " |")
    print("| --- | " + " | ".join("---:" for _ in head[1:-1]) + " | --- |")
    for t in tg:
        v = ir.get((p, t), {})
        cells = [fmt(v[r]) if r in v else "–" for r in rounds]
        note = notes.get(f"{p}:{t}", "")
        if v:
            m = mean(list(v.values()))
            sp = (max(v.values()) - min(v.values())) / m * 100
            if sp > spread_max:
                note = (note + "; " if note else "") + f"spread above {spread_max:g} %"
            ms, sps = fmt(m), f"{sp:.2f} %"
        else:
            ms, sps = "–", "–"
        c = calls.get((p, t))
        cs = f"{sum(c.values()):.2f}" if c else "–"
        us = split.get((p, t))
        us = f"{us[0] / (us[0] + us[1]) * 100:.0f} %" if us and us[0] + us[1] > 0 else "–"
        print("| " + " | ".join([t] + cells + [ms, sps, cs, us, note]) + " |")
    print()
    # ratios, per round and of the means
    peers = [t for t in tg if t in ("haproxy", "nginx", "nghttpx") and (p, t) in ir]
    pairs = []
    if (p, "weft") in ir:
        for t in peers:
            pairs.append((f"weft / {t}", "weft", [t]))
        if len(peers) > 1:
            pairs.append(("weft / best of " + ", ".join(peers), "weft", peers))
        for t in tg:
            if (t.startswith("weft_filters") or t.startswith("weft_route")) and (p, t) in ir:
                pairs.append((f"{t} / weft", t, ["weft"]))
    if pairs:
        head = ["ratio"] + [f"round {r}" for r in rounds] + ["median", "min–max", "pairs", "of the means"]
        print("| " + " | ".join(head) + " |")
        print("| --- | " + " | ".join("---:" for _ in head[1:]) + " |")
        for label, a, bs in pairs:
            cells, rs = [], []
            for r in rounds:
                if r in ir[(p, a)] and all(r in ir.get((p, b), {}) for b in bs):
                    x = ir[(p, a)][r] / min(ir[(p, b)][r] for b in bs)
                    rs.append(x)
                    cells.append(f"{x:.4f}")
                else:
                    cells.append("–")
            ma = mean(list(ir[(p, a)].values()))
            mb = min(mean(list(ir[(p, b)].values())) for b in bs if ir.get((p, b)))
            if rs:
                srt = sorted(rs)
                k = len(srt)
                med = srt[k // 2] if k % 2 else (srt[k // 2 - 1] + srt[k // 2]) / 2
                summ = [f"**{med:.4f}**", f"{srt[0]:.4f}–{srt[-1]:.4f}", str(k)]
            else:
                summ = ["–", "–", "0"]
            print("| " + " | ".join([label] + cells + summ + [f"{ma / mb:.4f}"]) + " |")
        print()
        print("Ratios are paired within a round (the two runs at most a few minutes apart, in alternated order);"
              " median and min–max over the rounds' pairs.")
        print()
    # syscalls per request by syscall
    st = [t for t in tg if calls.get((p, t))]
    if st:
        allsc = sorted({s for t in st for s in calls[(p, t)]},
                       key=lambda s: -max(calls[(p, t)].get(s, 0) for t in st))
        print(f"{names[p]}: system calls per request (native run, strace -c; below 0.005 per request in every target left out):")
        print()
        print("| syscall | " + " | ".join(st) + " |")
        print("| --- | " + " | ".join("---:" for _ in st) + " |")
        for s in allsc:
            if max(calls[(p, t)].get(s, 0) for t in st) < 0.005:
                continue
            print(f"| {s} | " + " | ".join(f"{calls[(p, t)].get(s, 0):.3f}" for t in st) + " |")
        print("| **total** | " + " | ".join(f"**{sum(calls[(p, t)].values()):.3f}**" for t in st) + " |")
        print()
PY
    echo "What the counts are: the instructions the proxy's process executed in user space (its code and every library's," \
        "all its threads), counted by callgrind over the measured requests; the same for every run of the same binary and load" \
        "whatever else the machine does. What they are not: CPU time. They leave out the kernel's work (system calls, copies," \
        "network stack: see the syscalls per request, from a native run), and cache misses, branch mispredictions and instructions" \
        "per cycle (one instruction may cost a fraction of a cycle or hundreds). Under callgrind each proxy runs about 50 times slower" \
        "than natively while the client and backend do not, so each proxy finds more ready events per wake-up than it would natively" \
        "(the same regime for every target). A ratio of instruction counts is therefore a ratio of user-space work per request, not a" \
        "ratio of CPU per request. The user share of CPU (utime / (utime + stime) of the process over $BENCH_SPLIT_REQUESTS requests" \
        "in the native run, clock ticks of 1/$(getconf CLK_TCK) s, taken under whatever load the machine has) says how much of the CPU" \
        "the instruction counts can see."
    if [[ "$BENCH_PROFILE" == 1 ]]; then
        for spec in $BENCH_TARGETS; do
            [[ "${spec#*:}" == weft* ]] || continue
            f="$BENCH_PROFILE_DIR/callgrind.out.${spec%%:*}-${spec#*:}"
            [[ -f "$f" ]] || continue
            for incl in yes no; do
                echo
                if [[ "$incl" == yes ]]; then
                    echo "$spec, round 1: top $BENCH_PROFILE_TOP functions by inclusive Ir (the function and what it calls), per request ($f):"
                else
                    echo "$spec, round 1: top $BENCH_PROFILE_TOP functions by self Ir (the function's own instructions), per request:"
                fi
                echo
                echo "| # | Ir/req | % | function | object |"
                echo "| ---: | ---: | ---: | --- | --- |"
                top_functions "$f" "$incl"
            done
        done
    fi
}

mkdir -p "$(dirname "$BENCH_OUT")"
report | tee "$BENCH_OUT"
cp "$IR_TSV" "${BENCH_OUT%.md}.tsv"
cp "$SYS_TSV" "${BENCH_OUT%.md}-syscalls.tsv"
cp "$SPLIT_TSV" "${BENCH_OUT%.md}-split.tsv"
say "results written to $BENCH_OUT (per-run data: ${BENCH_OUT%.md}.tsv, ${BENCH_OUT%.md}-syscalls.tsv)"
if ((FAILED)); then
    echo "bench-instr: some runs failed (see the notes in the report)" >&2
    exit 1
fi
