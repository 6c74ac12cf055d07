#!/usr/bin/env bash
# run.sh: weft against HAProxy and nginx, one run, same backend, same load.
#
#   tests/bench/run.sh                      # wrk -t1 -c50 -d10s per target
#   BENCH_DURATION=3s tests/bench/run.sh    # a short run
#
# See tests/bench/README for what each column means and every setting.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH_DURATION="${BENCH_DURATION:-10s}"
BENCH_THREADS="${BENCH_THREADS:-1}"
BENCH_CONNS="${BENCH_CONNS:-50}"
BENCH_WARMUP="${BENCH_WARMUP:-2s}"
BENCH_IDLE_CONNS="${BENCH_IDLE_CONNS:-10000}"
BENCH_TARGETS="${BENCH_TARGETS:-direct weft weft_filters8 haproxy nginx}"
# weft_filters8: the same weft with a chain of 8 no-op filters (noop.so).
NOOP_SO="${NOOP_SO:-$ROOT/build/tests/filters/noop.so}"
BENCH_OUT="${BENCH_OUT:-$ROOT/tests/bench/results-latest.md}"
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
# 100 bytes, fixed, served by the backend nginx for every request.
BODY='weft-bench: a fixed response body of exactly one hundred bytes, the same for each and every request.'

say() { printf '[bench] %s\n' "$*" >&2; }

# 10,000 idle connections need more descriptors than the usual 1024. Where
# the hard limit is lower than 65536 (containers), take the hard limit.
if ! ulimit -n 65536 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)"
    say "RLIMIT_NOFILE capped at $(ulimit -n) (hard limit)"
fi
NOFILE="$(ulimit -n)"

if [[ "${BENCH_SKIP_SETUP:-0}" != 1 ]]; then
    "$ROOT/scripts/setup.sh" >&2
fi
for tool in wrk haproxy nginx taskset curl; do
    command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench: $tool not found" >&2
        exit 1
    }
done

BENCH_TMP_NAME=weft-bench
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"

# wait_http URL PID [SECONDS]: until URL answers 200 with the bench body.
wait_http() {
    local url="$1" pid="$2" limit="${3:-10}" i body
    for ((i = 0; i < limit * 10; i++)); do
        body=$(curl -s --max-time 1 "$url" 2>/dev/null || true)
        if [[ "$body" == "$BODY" ]]; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# to_ms VALUE: wrk latency ("393.00us", "1.02ms", "1.50s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# ---------------------------------------------------------------- configs
NGINX_USER=""
if [[ $(id -u) -eq 0 ]]; then
    NGINX_USER="user root;"
fi

nginx_common() { # NAME
    cat <<CONF
$NGINX_USER
worker_processes 1;
worker_rlimit_nofile $NOFILE;
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

write_backend_conf() { # PORT
    mkdir -p "$TMP/backend"
    {
        nginx_common backend
        echo "http {"
        nginx_http_common backend
        cat <<CONF
    server {
        listen 127.0.0.1:$1 backlog=4096;
        location / {
            default_type text/plain;
            return 200 "$BODY";
        }
    }
}
CONF
    } >"$TMP/backend/nginx.conf"
}

write_nginx_conf() { # PORT BACKEND_PORT
    mkdir -p "$TMP/nginx"
    {
        nginx_common nginx
        echo "http {"
        nginx_http_common nginx
        cat <<CONF
    upstream backend {
        server 127.0.0.1:$2;
        keepalive 32;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$1 backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
    } >"$TMP/nginx/nginx.conf"
}

write_haproxy_conf() { # PORT BACKEND_PORT
    mkdir -p "$TMP/haproxy"
    cat >"$TMP/haproxy/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 20000
    # Where the hard RLIMIT_NOFILE is below what maxconn implies (2 x maxconn),
    # run with what there is instead of refusing to start.
    no strict-limits
    log stderr format short local0 warning

defaults
    mode http
    log global
    option http-keep-alive
    http-reuse always
    maxconn 20000
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 10s
    timeout http-keep-alive 300s

frontend bench
    bind 127.0.0.1:$1 backlog 4096
    default_backend backend

backend backend
    server b1 127.0.0.1:$2
CONF
}

write_weft_conf() { # PORT BACKEND_PORT ADMIN_PORT [N_NOOP_FILTERS]
    local i filters=""
    mkdir -p "$TMP/weft"
    if [[ "${4:-0}" -gt 0 ]]; then
        filters="    filters:"
        for ((i = 0; i < $4; i++)); do
            filters+=$'\n'"      - {name: noop, path: $NOOP_SO}"
        done
    fi
    cat >"$TMP/weft/weft.yaml" <<CONF
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $3
listeners:
  - name: bench
    address: 127.0.0.1
    port: $1
$filters
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: backend
clusters:
  - name: backend
    endpoints:
      - address: 127.0.0.1
        port: $2
CONF
}

# ---------------------------------------------------------------- weft build
WEFT_NOTE=""
if [[ " $BENCH_TARGETS " == *" weft"* && "$BENCH_BUILD" == 1 && -z "$WEFT_BIN_GIVEN" ]]; then
    say "building weft (Release, build/)"
    if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZE= -DWEFT_FUZZ=OFF -DWEFT_WERROR=OFF -DWEFT_TESTS=ON &&
        cmake --build build -j "$(nproc)" --target weft weft_test_filter_noop; } >"$TMP/weft-build.log" 2>&1; then
        WEFT_NOTE="build failed"
        tail -n 20 "$TMP/weft-build.log" >&2
    fi
fi

# ---------------------------------------------------------------- backend
BACKEND_PORT=$(free_port)
write_backend_conf "$BACKEND_PORT"
taskset -c "$LOAD_CPU" nginx -p "$TMP/backend/" -e "$TMP/backend/error.log" -c "$TMP/backend/nginx.conf" \
    >"$TMP/backend/stdout.log" 2>&1 &
BACKEND_PID=$!
STARTED+=("$BACKEND_PID")
if ! wait_http "http://127.0.0.1:$BACKEND_PORT/" "$BACKEND_PID"; then
    cat "$TMP/backend/error.log" "$TMP/backend/stdout.log" >&2 || true
    echo "bench: backend nginx did not start" >&2
    exit 1
fi
say "backend nginx on 127.0.0.1:$BACKEND_PORT (cpu $LOAD_CPU), proxies on cpu $PROXY_CPU"

# ---------------------------------------------------------------- one target
declare -A R_RPS R_P50 R_P99 R_ERR R_CPU R_RSS0 R_RSS1 R_IDLE R_NOTE

# start_target NAME PORT: starts the proxy (pinned), sets TARGET_PID.
start_target() {
    local name="$1" port="$2" admin
    TARGET_PID=""
    case "$name" in
    direct)
        TARGET_PID="$BACKEND_PID"
        return 0
        ;;
    nginx)
        write_nginx_conf "$port" "$BACKEND_PORT"
        taskset -c "$PROXY_CPU" nginx -p "$TMP/nginx/" -e "$TMP/nginx/error.log" \
            -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
        ;;
    haproxy)
        write_haproxy_conf "$port" "$BACKEND_PORT"
        taskset -c "$PROXY_CPU" haproxy -db -f "$TMP/haproxy/haproxy.cfg" \
            >"$TMP/haproxy/stdout.log" 2>&1 &
        ;;
    weft | weft_filters8)
        if [[ -n "$WEFT_NOTE" ]]; then
            return 1
        fi
        if [[ ! -x "$WEFT_BIN" ]]; then
            WEFT_NOTE="no binary at $WEFT_BIN"
            return 1
        fi
        if [[ "$name" == weft_filters8 && ! -f "$NOOP_SO" ]]; then
            WEFT_NOTE="no $NOOP_SO"
            return 1
        fi
        admin=$(free_port)
        write_weft_conf "$port" "$BACKEND_PORT" "$admin" "$([[ "$name" == weft_filters8 ]] && echo 8 || echo 0)"
        taskset -c "$PROXY_CPU" "$WEFT_BIN" -c "$TMP/weft/weft.yaml" >"$TMP/weft/stdout.log" 2>&1 &
        ;;
    esac
    TARGET_PID=$!
    STARTED+=("$TARGET_PID")
}

run_target() {
    local name="$1" port url wrk_out rps p50 p99 reqs errs t0 t1 rss_idle line
    if [[ "$name" == direct ]]; then
        port="$BACKEND_PORT"
    else
        port=$(free_port)
    fi
    url="http://127.0.0.1:$port/"
    R_NOTE[$name]=""
    if ! start_target "$name" "$port"; then
        R_NOTE[$name]="failed: ${WEFT_NOTE:-did not start}"
        say "$name: ${R_NOTE[$name]}"
        return 0
    fi
    if ! wait_http "$url" "$TARGET_PID" 15; then
        R_NOTE[$name]="failed: no correct answer on $url"
        say "$name: ${R_NOTE[$name]}"
        tail -n 20 "$TMP/$name"/*.log >&2 2>/dev/null || true
        [[ "$name" == direct ]] || stop_pid "$TARGET_PID"
        return 0
    fi
    sleep 0.5
    rss_idle=$(rss_kb "$TARGET_PID")

    say "$name: warm-up $BENCH_WARMUP"
    taskset -c "$LOAD_CPU" wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_WARMUP" "$url" >/dev/null 2>&1 || true

    say "$name: wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION --latency $url"
    wrk_out="$TMP/wrk-$name.txt"
    t0=$(cpu_ticks "$TARGET_PID")
    if ! taskset -c "$LOAD_CPU" wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$BENCH_DURATION" --latency "$url" \
        >"$wrk_out" 2>&1; then
        R_NOTE[$name]="failed: wrk error"
    fi
    t1=$(cpu_ticks "$TARGET_PID")
    R_RSS0[$name]="$rss_idle"
    R_RSS1[$name]=$(rss_kb "$TARGET_PID")
    sed 's/^/    /' "$wrk_out" >&2

    rps=$(awk '/^Requests\/sec:/ {print $2}' "$wrk_out")
    reqs=$(awk '/requests in/ {print $1; exit}' "$wrk_out")
    p50=$(awk '$1 == "50%" {print $2; exit}' "$wrk_out")
    p99=$(awk '$1 == "99%" {print $2; exit}' "$wrk_out")
    errs=0
    line=$(grep -E 'Non-2xx or 3xx responses:' "$wrk_out" || true)
    [[ -z "$line" ]] || errs=$((errs + ${line##*: }))
    line=$(grep -E 'Socket errors:' "$wrk_out" || true)
    if [[ -n "$line" ]]; then
        errs=$((errs + $(sed -E 's/[^0-9]+/ /g' <<<"$line" | awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; print s}')))
    fi
    if [[ -z "$rps" || -z "$reqs" || "$reqs" == 0 ]]; then
        R_NOTE[$name]="failed: no requests completed"
    else
        R_RPS[$name]=$(awk -v r="$rps" 'BEGIN {printf "%.0f", r}')
        R_P50[$name]=$(to_ms "$p50")
        R_P99[$name]=$(to_ms "$p99")
        R_ERR[$name]="$errs"
        if ((errs * 100 > reqs)); then
            R_NOTE[$name]="failed: $errs errors"
        fi
        if [[ "$name" != direct ]]; then
            R_CPU[$name]=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$reqs" \
                'BEGIN {printf "%.2f", d * 1000000 / hz / n}')
        fi
    fi

    if [[ "$name" != direct && "$BENCH_IDLE_CONNS" -gt 0 ]]; then
        idle_test "$name" "$port"
        stop_pid "$TARGET_PID"
    fi
}

# idle_test NAME PORT: RSS delta per idle keep-alive client connection.
idle_test() {
    local name="$1" port="$2" before after out ipid i ok failed
    before=$(rss_kb "$TARGET_PID")
    out="$TMP/idle-$name.txt"
    say "$name: opening $BENCH_IDLE_CONNS idle keep-alive connections"
    taskset -c "$LOAD_CPU" "$PYTHON" "$ROOT/tests/bench/idle_conns.py" --port "$port" \
        -n "$BENCH_IDLE_CONNS" --hold 300 >"$out" 2>&1 &
    ipid=$!
    STARTED+=("$ipid")
    for ((i = 0; i < 1200; i++)); do
        grep -q '^ready' "$out" && break
        kill -0 "$ipid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$out"; then
        R_IDLE[$name]="failed"
        cat "$out" >&2
        stop_pid "$ipid"
        return 0
    fi
    sleep 1
    after=$(rss_kb "$TARGET_PID")
    read -r _ ok failed _ < <(grep '^ready' "$out")
    sed 's/^/    /' "$out" >&2
    if ((ok == 0)); then
        R_IDLE[$name]="failed"
    else
        R_IDLE[$name]=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
        if ((failed > 0)); then
            R_IDLE[$name]+=" ($ok ok, $failed failed)"
        fi
    fi
    say "$name: RSS ${before} kB -> ${after} kB with $ok idle connections"
    stop_pid "$ipid"
}

for t in $BENCH_TARGETS; do
    run_target "$t"
done

# ---------------------------------------------------------------- report
fmt_mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { # A B
    if [[ -n "$1" && -n "$2" ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
    else
        echo "n/a"
    fi
}

report() {
    local t cpu_model
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    echo "# weft benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- machine: $(nproc) CPUs${cpu_model:+, $cpu_model}, kernel $(uname -r)"
    echo "- load: \`wrk -t$BENCH_THREADS -c$BENCH_CONNS -d$BENCH_DURATION --latency\` (keep-alive) after a $BENCH_WARMUP warm-up, on cpu $LOAD_CPU with the backend"
    echo "- backend: nginx, 1 worker, fixed ${#BODY}-byte 200 body"
    echo "- proxies: one worker each, pinned to cpu $PROXY_CPU, upstream keep-alive;" \
        "$(haproxy -v 2>/dev/null | head -n 1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')," \
        "weft $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "| target | req/s | p50 ms | p99 ms | errors | proxy CPU µs/req | RSS idle MiB | RSS after load MiB | bytes per idle conn | note |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    for t in $BENCH_TARGETS; do
        if [[ -z "${R_RPS[$t]:-}" ]]; then
            echo "| $t | failed | | | | | | | | ${R_NOTE[$t]:-failed} |"
            continue
        fi
        if [[ "$t" == direct ]]; then
            echo "| $t | ${R_RPS[$t]} | ${R_P50[$t]} | ${R_P99[$t]} | ${R_ERR[$t]} | – | – | – | – | no proxy |"
        else
            echo "| $t | ${R_RPS[$t]} | ${R_P50[$t]} | ${R_P99[$t]} | ${R_ERR[$t]} | ${R_CPU[$t]:-n/a} |" \
                "$(fmt_mib "${R_RSS0[$t]}") | $(fmt_mib "${R_RSS1[$t]}") | ${R_IDLE[$t]:-n/a} | ${R_NOTE[$t]:-} |"
        fi
    done
    echo
    echo "CPU per request, weft / HAProxy: $(ratio "${R_CPU[weft]:-}" "${R_CPU[haproxy]:-}")"
    echo
    echo "CPU per request, weft / nginx: $(ratio "${R_CPU[weft]:-}" "${R_CPU[nginx]:-}")"
    echo
    echo "CPU per request, weft with 8 no-op filters / weft without filters: $(ratio "${R_CPU[weft_filters8]:-}" "${R_CPU[weft]:-}")"
    echo
    echo "Idle connections: $BENCH_IDLE_CONNS keep-alive client connections, each after one request; bytes per idle conn = proxy RSS delta / connections."
}

mkdir -p "$(dirname "$BENCH_OUT")"
report | tee "$BENCH_OUT"
say "results written to $BENCH_OUT"
