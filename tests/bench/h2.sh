#!/usr/bin/env bash
# h2.sh: the HTTP/2 benchmark. h2load (h2c prior knowledge) through weft,
# nghttpx and HAProxy, one run, the same nginx HTTP/1.1 backend, the same load.
#
#   tests/bench/h2.sh                                   # 10 s per target
#   BENCH_DURATION=3 BENCH_WARMUP=1 tests/bench/h2.sh   # a short run
#
# Each proxy has one worker/thread, pinned to $PROXY_CPU; h2load and the
# backend share $LOAD_CPU. Columns: req/s, mean and max latency (h2load's
# "time for request"), failed+errored requests, proxy CPU µs per request
# (utime+stime from /proc/PID/stat over the measured run, summed over the
# proxy's processes, divided by completed requests), RSS idle and after load
# (VmRSS summed over the proxy's processes). Under the table: weft's CPU per
# request divided by the best of nghttpx and HAProxy. The markdown table goes
# to stdout and to $BENCH_OUT.
#
# Settings (environment):
#   BENCH_DURATION   h2load measured seconds per target          10
#   BENCH_WARMUP     h2load warm-up seconds (discarded)          2
#   BENCH_CLIENTS    h2load -c                                   10
#   BENCH_STREAMS    h2load -m (concurrent streams per client)   10
#   BENCH_TARGETS    targets and their order                     "weft nghttpx haproxy"
#   BENCH_OUT        where the table goes     tests/bench/results-h2-latest.md
#   LOAD_CPU / PROXY_CPU                                          0 / 1
#   WEFT_BIN         weft binary (no build when set)             build/bin/weft
#   BENCH_BUILD      1: build weft Release in build/ first        1
#   BENCH_SKIP_SETUP 1: do not run scripts/setup.sh               0
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH_DURATION="${BENCH_DURATION:-10}"
BENCH_WARMUP="${BENCH_WARMUP:-2}"
BENCH_CLIENTS="${BENCH_CLIENTS:-10}"
BENCH_STREAMS="${BENCH_STREAMS:-10}"
BENCH_TARGETS="${BENCH_TARGETS:-weft nghttpx haproxy}"
BENCH_OUT="${BENCH_OUT:-$ROOT/tests/bench/results-h2-latest.md}"
BENCH_BUILD="${BENCH_BUILD:-1}"
WEFT_BIN_GIVEN="${WEFT_BIN:-}"
WEFT_BIN="${WEFT_BIN:-$ROOT/build/bin/weft}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
if (($(nproc) < 2)); then
    PROXY_CPU="$LOAD_CPU"
fi
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=python3
CLK_TCK="$(getconf CLK_TCK)"
BODY='weft-bench: a fixed response body of exactly one hundred bytes, the same for each and every request.'

say() { printf '[bench-h2] %s\n' "$*" >&2; }

if [[ "${BENCH_SKIP_SETUP:-0}" != 1 ]]; then
    "$ROOT/scripts/setup.sh" >&2
fi
PATH="$PATH:/usr/sbin:/sbin"
for tool in h2load nghttpx haproxy nginx taskset curl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench-h2: $tool not found" >&2
        exit 1
    }
done

BENCH_TMP_NAME=weft-bench-h2
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"

# wait_h2 URL PID [SECONDS]: until URL answers over h2c with the bench body.
wait_h2() {
    local url="$1" pid="$2" limit="${3:-10}" i body
    for ((i = 0; i < limit * 10; i++)); do
        body=$(curl -s --http2-prior-knowledge --max-time 1 "$url" 2>/dev/null || true)
        [[ "$body" == "$BODY" ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- backend
BACKEND_PORT=$(free_port)
mkdir -p "$TMP/backend"
NGINX_USER=""
[[ $(id -u) -eq 0 ]] && NGINX_USER="user root;"
cat >"$TMP/backend/nginx.conf" <<CONF
$NGINX_USER
worker_processes 1;
daemon off;
master_process on;
pid $TMP/backend/nginx.pid;
error_log $TMP/backend/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $TMP/backend/client_body;
    proxy_temp_path $TMP/backend/proxy;
    fastcgi_temp_path $TMP/backend/fastcgi;
    uwsgi_temp_path $TMP/backend/uwsgi;
    scgi_temp_path $TMP/backend/scgi;
    server {
        listen 127.0.0.1:$BACKEND_PORT backlog=4096;
        location / { default_type text/plain; return 200 "$BODY"; }
    }
}
CONF
taskset -c "$LOAD_CPU" nginx -p "$TMP/backend/" -e "$TMP/backend/error.log" -c "$TMP/backend/nginx.conf" \
    >"$TMP/backend/stdout.log" 2>&1 &
BACKEND_PID=$!
STARTED+=("$BACKEND_PID")
for ((i = 0; i < 100; i++)); do
    [[ "$(curl -s --max-time 1 "http://127.0.0.1:$BACKEND_PORT/" 2>/dev/null || true)" == "$BODY" ]] && break
    sleep 0.1
done
[[ "$(curl -s --max-time 1 "http://127.0.0.1:$BACKEND_PORT/" || true)" == "$BODY" ]] || {
    cat "$TMP/backend/error.log" >&2 || true
    echo "bench-h2: backend nginx did not start" >&2
    exit 1
}
say "backend nginx (HTTP/1.1) on 127.0.0.1:$BACKEND_PORT, cpu $LOAD_CPU; proxies on cpu $PROXY_CPU"

# ---------------------------------------------------------------- weft build
WEFT_NOTE=""
if [[ " $BENCH_TARGETS " == *" weft "* && "$BENCH_BUILD" == 1 && -z "$WEFT_BIN_GIVEN" ]]; then
    say "building weft (Release, build/)"
    if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZE= -DWEFT_FUZZ=OFF -DWEFT_WERROR=OFF &&
        cmake --build build -j "$(nproc)" --target weft; } >"$TMP/weft-build.log" 2>&1; then
        WEFT_NOTE="build failed"
        tail -n 20 "$TMP/weft-build.log" >&2
    fi
fi

# start_target NAME PORT: starts the proxy pinned to PROXY_CPU; TARGET_PID.
start_target() {
    local name="$1" port="$2" admin
    mkdir -p "$TMP/$name"
    case "$name" in
    weft)
        [[ -z "$WEFT_NOTE" ]] || return 1
        [[ -x "$WEFT_BIN" ]] || {
            WEFT_NOTE="no binary at $WEFT_BIN"
            return 1
        }
        admin=$(free_port)
        cat >"$TMP/weft/weft.yaml" <<CONF
workers: 1
drain_timeout: 2s
admin: {address: 127.0.0.1, port: $admin}
listeners:
  - name: bench
    address: 127.0.0.1
    port: $port
    http2: {max_concurrent_streams: 100}
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: backend
clusters:
  - name: backend
    endpoints:
      - {address: 127.0.0.1, port: $BACKEND_PORT}
CONF
        taskset -c "$PROXY_CPU" "$WEFT_BIN" -c "$TMP/weft/weft.yaml" >"$TMP/weft/stdout.log" 2>&1 &
        ;;
    nghttpx)
        # h2c frontend (no TLS), HTTP/1.1 backend, one worker
        taskset -c "$PROXY_CPU" nghttpx --frontend="127.0.0.1,$port;no-tls" \
            --backend="127.0.0.1,$BACKEND_PORT;;proto=http/1.1" --workers=1 \
            --frontend-http2-max-concurrent-streams=100 --backend-keep-alive-timeout=300s \
            --no-ocsp --errorlog-file="$TMP/nghttpx/error.log" --accesslog-file=/dev/null \
            --conf=/dev/null >"$TMP/nghttpx/stdout.log" 2>&1 &
        ;;
    haproxy)
        cat >"$TMP/haproxy/haproxy.cfg" <<CONF
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
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s

frontend bench
    bind 127.0.0.1:$port proto h2
    default_backend backend

backend backend
    server b1 127.0.0.1:$BACKEND_PORT
CONF
        taskset -c "$PROXY_CPU" haproxy -db -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/stdout.log" 2>&1 &
        ;;
    *)
        return 1
        ;;
    esac
    TARGET_PID=$!
    STARTED+=("$TARGET_PID")
}

declare -A R_RPS R_MEAN R_MAX R_ERR R_CPU R_RSS0 R_RSS1 R_NOTE

# to_ms VALUE: h2load time ("393us", "1.02ms", "1.50s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000
        printf "%.3f", n }'
}

run_target() {
    local name="$1" port url out t0 t1 done_n failed errored rps line
    port=$(free_port)
    url="http://127.0.0.1:$port/"
    R_NOTE[$name]=""
    if ! start_target "$name" "$port"; then
        R_NOTE[$name]="failed: ${WEFT_NOTE:-did not start}"
        say "$name: ${R_NOTE[$name]}"
        return 0
    fi
    if ! wait_h2 "$url" "$TARGET_PID" 15; then
        R_NOTE[$name]="failed: no correct h2c answer on $url"
        say "$name: ${R_NOTE[$name]}"
        tail -n 20 "$TMP/$name"/*.log >&2 2>/dev/null || true
        stop_pid "$TARGET_PID"
        return 0
    fi
    sleep 0.5
    R_RSS0[$name]=$(rss_kb "$TARGET_PID")
    say "$name: warm-up ${BENCH_WARMUP}s"
    taskset -c "$LOAD_CPU" h2load -c "$BENCH_CLIENTS" -m "$BENCH_STREAMS" -D "$BENCH_WARMUP" "$url" >/dev/null 2>&1 || true
    out="$TMP/h2load-$name.txt"
    say "$name: h2load -c $BENCH_CLIENTS -m $BENCH_STREAMS -D $BENCH_DURATION $url"
    t0=$(cpu_ticks "$TARGET_PID")
    taskset -c "$LOAD_CPU" h2load -c "$BENCH_CLIENTS" -m "$BENCH_STREAMS" -D "$BENCH_DURATION" "$url" >"$out" 2>&1 ||
        R_NOTE[$name]="failed: h2load error"
    t1=$(cpu_ticks "$TARGET_PID")
    R_RSS1[$name]=$(rss_kb "$TARGET_PID")
    if ! kill -0 "$TARGET_PID" 2>/dev/null; then
        R_NOTE[$name]="failed: the proxy exited during the run"
        tail -n 20 "$TMP/$name"/*.log >&2 2>/dev/null || true
    fi
    sed 's/^/    /' "$out" >&2
    line=$(grep -E '^requests:' "$out" || true)
    done_n=$(sed -E 's/.* ([0-9]+) succeeded.*/\1/' <<<"$line")
    failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    errored=$(sed -E 's/.* ([0-9]+) errored.*/\1/' <<<"$line")
    rps=$(awk '/^finished in/ {print $4}' "$out")
    if [[ -z "$line" || -z "$done_n" || "$done_n" == 0 ]]; then
        R_NOTE[$name]="${R_NOTE[$name]:-failed: no requests completed}"
    else
        R_RPS[$name]=$(awk -v r="$rps" 'BEGIN {printf "%.0f", r}')
        R_ERR[$name]=$((failed + errored))
        line=$(grep -E '^time for request:' "$out" || true)
        R_MEAN[$name]=$(to_ms "$(awk '{print $6}' <<<"$line")")
        R_MAX[$name]=$(to_ms "$(awk '{print $5}' <<<"$line")")
        R_CPU[$name]=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$done_n" \
            'BEGIN {printf "%.2f", d * 1000000 / hz / n}')
        if (((failed + errored) * 100 > done_n)); then
            R_NOTE[$name]="failed: $((failed + errored)) errors"
        fi
    fi
    stop_pid "$TARGET_PID"
}

for t in $BENCH_TARGETS; do
    run_target "$t"
done

fmt_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

report() {
    local t best="" best_name="" cpu_model
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    echo "# weft HTTP/2 benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- machine: $(nproc) CPUs${cpu_model:+, $cpu_model}, kernel $(uname -r)"
    echo "- load: \`h2load -c $BENCH_CLIENTS -m $BENCH_STREAMS -D $BENCH_DURATION\` (h2c prior knowledge, $((BENCH_CLIENTS * BENCH_STREAMS)) concurrent streams) after a ${BENCH_WARMUP}s warm-up, on cpu $LOAD_CPU with the backend"
    echo "- backend: nginx, 1 worker, HTTP/1.1, fixed ${#BODY}-byte 200 body"
    echo "- proxies: one worker each, pinned to cpu $PROXY_CPU, h2c frontend, HTTP/1.1 keep-alive backend;" \
        "$(nghttpx --version 2>/dev/null | head -n 1), $(haproxy -v 2>/dev/null | head -n 1 | awk '{print "HAProxy", $3}')," \
        "weft $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "| target | req/s | mean ms | max ms | errors | proxy CPU µs/req | RSS idle MiB | RSS after load MiB | note |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for t in $BENCH_TARGETS; do
        if [[ -z "${R_RPS[$t]:-}" ]]; then
            echo "| $t | failed | | | | | | | ${R_NOTE[$t]:-failed} |"
            continue
        fi
        echo "| $t | ${R_RPS[$t]} | ${R_MEAN[$t]} | ${R_MAX[$t]} | ${R_ERR[$t]} | ${R_CPU[$t]} |" \
            "$(fmt_mib "${R_RSS0[$t]}") | $(fmt_mib "${R_RSS1[$t]}") | ${R_NOTE[$t]:-} |"
    done
    for t in nghttpx haproxy; do
        [[ -n "${R_CPU[$t]:-}" && -z "${R_NOTE[$t]:-}" ]] || continue
        if [[ -z "$best" ]] || awk -v a="${R_CPU[$t]}" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best="${R_CPU[$t]}"
            best_name="$t"
        fi
    done
    echo
    if [[ -n "$best" && -n "${R_CPU[weft]:-}" ]]; then
        echo "CPU per request, weft / best of nghttpx and HAProxy ($best_name): $(awk -v a="${R_CPU[weft]}" -v b="$best" \
            'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
    else
        echo "CPU per request, weft / best of nghttpx and HAProxy: n/a"
    fi
}

mkdir -p "$(dirname "$BENCH_OUT")"
report | tee "$BENCH_OUT"
say "results written to $BENCH_OUT"
