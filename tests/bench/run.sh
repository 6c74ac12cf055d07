#!/usr/bin/env bash
# run.sh: the HTTP/1.1 benchmark. weft against HAProxy and nginx (and the
# backend reached directly), every peer configured as its documentation
# recommends for a keep-alive reverse proxy, the same backend and load,
# measured in alternating rounds (A B C D, D C B A, ...).
#
#   tests/bench/run.sh                                   # 6 rounds of 5 s per target
#   BENCH_ROUNDS=2 BENCH_DURATION=2 BENCH_IDLE_CONNS=2000 tests/bench/run.sh   # a quick look
#
# See tests/bench/README for what each column means and every setting.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH_ROUNDS="${BENCH_ROUNDS:-6}"
BENCH_DURATION="${BENCH_DURATION:-5}"
BENCH_WARMUP="${BENCH_WARMUP:-1}"
BENCH_THREADS="${BENCH_THREADS:-1}"
BENCH_CONNS="${BENCH_CONNS:-50}"
BENCH_IDLE_CONNS="${BENCH_IDLE_CONNS:-10000}"
BENCH_BURST_WAIT="${BENCH_BURST_WAIT:-5}"
BENCH_WORKERS="${BENCH_WORKERS:-1}"
BENCH_TARGETS="${BENCH_TARGETS:-direct weft weft_filters8 haproxy nginx}"
BENCH_NOTE="${BENCH_NOTE:-}"
BENCH_OUT="${BENCH_OUT:-$ROOT/tests/bench/results-latest.md}"
BENCH_BUILD="${BENCH_BUILD:-1}"
BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$ROOT/build-bench}"
WEFT_BIN_GIVEN="${WEFT_BIN:-}"
WEFT_BIN="${WEFT_BIN:-$BENCH_BUILD_DIR/bin/weft}"
# weft_filters8: the same weft with a chain of 8 no-op filters (noop.so).
NOOP_SO="${NOOP_SO:-$BENCH_BUILD_DIR/tests/filters/noop.so}"
# weft_route8 (issue 8's benchmark): 8 bench_route filters, each reading its
# per-route config and bumping a labelled counter (filter_config on the route).
ROUTE_SO="${ROUTE_SO:-$BENCH_BUILD_DIR/tests/filters/bench_route.so}"
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$BENCH_CONNS}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
if (($(nproc) < 2)); then
    PROXY_CPU="$LOAD_CPU"
fi
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=python3
CLK_TCK="$(getconf CLK_TCK)"

say() { printf '[bench] %s\n' "$*" >&2; }

BENCH_TMP_NAME=weft-bench
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"

DURATION=$(secs "$BENCH_DURATION")
WARMUP=$(secs "$BENCH_WARMUP")
if ! [[ "$BENCH_ROUNDS" =~ ^[0-9]+$ ]] || ((BENCH_ROUNDS < 1 || BENCH_ROUNDS > 30)); then
    echo "bench: BENCH_ROUNDS must be 1..30" >&2
    exit 2
fi
((NGINX_KEEPALIVE >= BENCH_CONNS)) || say "warning: NGINX_KEEPALIVE $NGINX_KEEPALIVE < $BENCH_CONNS client connections: nginx will churn upstream connections"

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
PATH="$PATH:/usr/sbin:/sbin"
for tool in wrk haproxy nginx taskset curl ss; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench: $tool not found" >&2
        exit 1
    }
done

# to_ms VALUE: wrk latency ("393.00us", "1.02ms", "1.50s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# ---------------------------------------------------------------- configs
# nginx as its documentation recommends for keep-alive upstream
# connections (ngx_http_upstream_module, "keepalive"): HTTP/1.1 to the
# upstream, the Connection header cleared, and a cache of idle upstream
# connections at least as large as the client concurrency, so no request
# has to open a new one (keepalive_requests/timeout raised so the cache is
# never recycled during the run).
write_nginx_conf() { # PORT BACKEND_PORT
    mkdir -p "$TMP/nginx"
    {
        nginx_common nginx "$BENCH_WORKERS"
        echo "http {"
        nginx_http_common nginx
        cat <<CONF
    upstream backend {
        server 127.0.0.1:$2;
        keepalive $NGINX_KEEPALIVE;
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

# HAProxy: keep-alive on both sides is its default (http-keep-alive);
# http-reuse always shares idle server connections between clients.
write_haproxy_conf() { # PORT BACKEND_PORT
    mkdir -p "$TMP/haproxy"
    cat >"$TMP/haproxy/haproxy.cfg" <<CONF
global
    nbthread $BENCH_WORKERS
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

write_weft_conf() { # NAME PORT BACKEND_PORT ADMIN_PORT N_FILTERS [FILTER_SO]
    local i filters="" fpath="" fname so="${6:-$NOOP_SO}" rcfg=""
    mkdir -p "$TMP/$1"
    if [[ "$5" -gt 0 ]]; then
        # filters by name, looked up in the directory of the .so
        fname=$(basename "$so" .so)
        fpath="filter_path: [\"$(dirname "$so")\"]"
        [[ "$fname" != bench_route ]] || rcfg="            filter_config: {bench_route: {route: bench}}"
        filters="    filters:"
        for ((i = 0; i < $5; i++)); do
            filters+=$'\n'"      - {name: $fname}"
        done
    fi
    cat >"$TMP/$1/weft.yaml" <<CONF
workers: $BENCH_WORKERS
$fpath
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $4
listeners:
  - name: bench
    address: 127.0.0.1
    port: $2
$filters
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: backend
$rcfg
clusters:
  - name: backend
    endpoints:
      - address: 127.0.0.1
        port: $3
CONF
}

# ---------------------------------------------------------------- weft build
WEFT_NOTE=""
if [[ " $BENCH_TARGETS " == *" weft"* && "$BENCH_BUILD" == 1 && -z "$WEFT_BIN_GIVEN" ]]; then
    build_weft "$BENCH_BUILD_DIR" weft weft_test_filter_noop weft_test_filter_bench_route
fi

# ---------------------------------------------------------------- backend
start_backend
say "backend nginx on 127.0.0.1:$BACKEND_PORT (cpu $LOAD_CPU), proxies on cpu $PROXY_CPU"

# ---------------------------------------------------------------- targets
# Every proxy is started once, before the first round, and runs until the
# end: an idle proxy costs no CPU, and each is measured from /proc on its
# own processes only.
declare -A PID PORT NOTE RSS0 RSS1 IDLE_B IDLE_RSS BURST_RSS

start_target() { # NAME: sets PID[NAME] and PORT[NAME]; returns 1 on failure
    local name="$1" port admin nf=0 so
    if [[ "$name" == direct ]]; then
        PID[$name]="$BACKEND_PID"
        PORT[$name]="$BACKEND_PORT"
        return 0
    fi
    port=$(free_port)
    PORT[$name]="$port"
    mkdir -p "$TMP/$name"
    case "$name" in
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
    weft | weft_filters8 | weft_route8)
        if [[ -n "$WEFT_NOTE" ]]; then
            NOTE[$name]="failed: $WEFT_NOTE"
            return 1
        fi
        if [[ ! -x "$WEFT_BIN" ]]; then
            NOTE[$name]="failed: no binary at $WEFT_BIN"
            return 1
        fi
        if [[ "$name" == weft_filters8 ]]; then
            [[ -f "$NOOP_SO" ]] || {
                NOTE[$name]="failed: no $NOOP_SO"
                return 1
            }
            nf=8
        fi
        so="$NOOP_SO"
        if [[ "$name" == weft_route8 ]]; then
            [[ -f "$ROUTE_SO" ]] || {
                NOTE[$name]="failed: no $ROUTE_SO"
                return 1
            }
            nf=8
            so="$ROUTE_SO"
        fi
        admin=$(free_port)
        write_weft_conf "$name" "$port" "$BACKEND_PORT" "$admin" "$nf" "$so"
        taskset -c "$PROXY_CPU" "$WEFT_BIN" -c "$TMP/$name/weft.yaml" >"$TMP/$name/stdout.log" 2>&1 &
        ;;
    *)
        NOTE[$name]="failed: unknown target"
        return 1
        ;;
    esac
    PID[$name]=$!
    track "${PID[$name]}"
}

ACTIVE=()
for t in $BENCH_TARGETS; do
    NOTE[$t]=""
    if ! start_target "$t"; then
        say "$t: ${NOTE[$t]}"
        continue
    fi
    if ! wait_http "http://127.0.0.1:${PORT[$t]}/" "${PID[$t]}" 15; then
        NOTE[$t]="failed: no correct answer on port ${PORT[$t]}"
        say "$t: ${NOTE[$t]}"
        tail -n 20 "$TMP/$t"/*.log >&2 2>/dev/null || true
        [[ "$t" == direct ]] || stop_pid "${PID[$t]}"
        continue
    fi
    ACTIVE+=("$t")
done
((${#ACTIVE[@]})) || {
    echo "bench: no target answers" >&2
    exit 1
}
sleep 0.5
for t in "${ACTIVE[@]}"; do
    [[ "$t" == direct ]] || RSS0[$t]=$(rss_kb "${PID[$t]}")
done

per_run=$((WARMUP + DURATION + 1))
say "targets: ${ACTIVE[*]}; $BENCH_ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up) each:" \
    "about $((per_run * ${#ACTIVE[@]} * BENCH_ROUNDS))s, then the idle/burst tests"
LOAD_START=$(loadavg)

# ---------------------------------------------------------------- one run
ROUNDS_TSV="$TMP/rounds.tsv"
printf 'round\ttarget\trps\tp50_ms\tp99_ms\terrors\trequests\tproxy_us\tbackend_us\tserver_us\ttw_new\twake_k\tpreempt_k\n' >"$ROUNDS_TSV"

measure() { # NAME ROUND
    local name="$1" round="$2" url out p0 p1 b0 b1 v0 v1 n0 n1 tw rps reqs p50 p99 errs line proxy_us="" backend_us server_us wake_k="" preempt_k=""
    url="http://127.0.0.1:${PORT[$name]}/"
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
        NOTE[$name]="failed: exited before round $round"
        return 0
    fi
    if ((WARMUP > 0)); then
        run_wait taskset -c "$LOAD_CPU" timeout $((WARMUP + 30)) wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"${WARMUP}s" \
            "$url" >/dev/null 2>&1 || true
    fi
    out="$TMP/wrk-$name-$round.txt"
    tw_list "$BACKEND_PORT" >"$TMP/tw-before"
    read -r v0 n0 < <(ctx_switches "${PID[$name]}")
    p0=$(cpu_ns "${PID[$name]}")
    b0=$(cpu_ns "$BACKEND_PID")
    run_wait taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"${DURATION}s" \
        --latency "$url" >"$out" 2>&1 || say "$name round $round: wrk failed"
    p1=$(cpu_ns "${PID[$name]}")
    b1=$(cpu_ns "$BACKEND_PID")
    read -r v1 n1 < <(ctx_switches "${PID[$name]}")
    tw=$(tw_new "$BACKEND_PORT" "$TMP/tw-before")
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
        NOTE[$name]="failed: exited during round $round"
        tail -n 20 "$TMP/$name"/*.log >&2 2>/dev/null || true
        return 0
    fi
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    reqs=$(awk '/requests in/ {print $1; exit}' "$out")
    p50=$(awk '$1 == "50%" {print $2; exit}' "$out")
    p99=$(awk '$1 == "99%" {print $2; exit}' "$out")
    errs=0
    line=$(grep -E 'Non-2xx or 3xx responses:' "$out" || true)
    [[ -z "$line" ]] || errs=$((errs + ${line##*: }))
    line=$(grep -E 'Socket errors:' "$out" || true)
    if [[ -n "$line" ]]; then
        errs=$((errs + $(sed -E 's/[^0-9]+/ /g' <<<"$line" | awk '{s = 0; for (i = 1; i <= NF; i++) s += $i; print s}')))
    fi
    if [[ -z "$rps" || -z "$reqs" || "$reqs" == 0 ]]; then
        say "$name round $round: no requests completed"
        sed 's/^/    /' "$out" >&2
        return 0
    fi
    if ((errs * 100 > reqs)); then
        NOTE[$name]="$errs errors in round $round"
    fi
    backend_us=$(awk -v d="$((b1 - b0))" -v n="$reqs" 'BEGIN {printf "%.3f", d / 1000 / n}')
    if [[ "$name" == direct ]]; then
        server_us="$backend_us"
    else
        proxy_us=$(awk -v d="$((p1 - p0))" -v n="$reqs" 'BEGIN {printf "%.3f", d / 1000 / n}')
        server_us=$(awk -v a="$proxy_us" -v b="$backend_us" 'BEGIN {printf "%.3f", a + b}')
        wake_k=$(awk -v d="$((v1 - v0))" -v n="$reqs" 'BEGIN {printf "%.1f", d * 1000 / n}')
        preempt_k=$(awk -v d="$((n1 - n0))" -v n="$reqs" 'BEGIN {printf "%.1f", d * 1000 / n}')
    fi
    printf '%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$(to_ms "$p50")" "$(to_ms "$p99")" \
        "$errs" "$reqs" "$proxy_us" "$backend_us" "$server_us" "$tw" "$wake_k" "$preempt_k" >>"$ROUNDS_TSV"
    say "round $round $name: $(printf '%.0f' "$rps") req/s, p50 $(to_ms "$p50") ms, p99 $(to_ms "$p99") ms," \
        "proxy ${proxy_us:-–} µs/req, backend $backend_us µs/req, new TIME_WAIT $tw, errors $errs"
}

# Rounds: the targets in order, then reversed, and so on, so that no
# target always runs first or after the same neighbour.
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
    order=("${ACTIVE[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((i = ${#ACTIVE[@]} - 1; i >= 0; i--)); do
            order+=("${ACTIVE[$i]}")
        done
    fi
    say "round $r/$BENCH_ROUNDS: ${order[*]} (load average $(loadavg))"
    for t in "${order[@]}"; do
        [[ "${NOTE[$t]}" == failed* ]] || measure "$t" "$r"
    done
done
LOAD_END=$(loadavg)
for t in "${ACTIVE[@]}"; do
    [[ "$t" == direct || "${NOTE[$t]}" == failed* ]] || RSS1[$t]=$(rss_kb "${PID[$t]}")
done

# ---------------------------------------------------------------- idle and burst
# idle_burst NAME: RSS with BENCH_IDLE_CONNS idle keep-alive client
# connections open (each after one request), the delta per connection,
# then RSS BENCH_BURST_WAIT seconds after they all closed.
idle_burst() {
    local name="$1" pid="${PID[$1]}" before after out ipid i ok failed
    before=$(rss_kb "$pid")
    out="$TMP/idle-$name.txt"
    say "$name: opening $BENCH_IDLE_CONNS idle keep-alive connections"
    taskset -c "$LOAD_CPU" "$PYTHON" "$ROOT/tests/bench/idle_conns.py" --port "${PORT[$name]}" \
        -n "$BENCH_IDLE_CONNS" --hold 300 >"$out" 2>&1 &
    ipid=$!
    track "$ipid"
    for ((i = 0; i < 1200; i++)); do
        grep -q '^ready' "$out" && break
        kill -0 "$ipid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^ready' "$out"; then
        IDLE_B[$name]="failed"
        cat "$out" >&2
        stop_pid "$ipid"
        return 0
    fi
    sleep 1
    after=$(rss_kb "$pid")
    read -r _ ok failed _ < <(grep '^ready' "$out")
    sed 's/^/    /' "$out" >&2
    IDLE_RSS[$name]="$after"
    if ((ok == 0)); then
        IDLE_B[$name]="failed"
    else
        IDLE_B[$name]=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
        if ((failed > 0)); then
            IDLE_B[$name]+=" ($ok ok, $failed failed)"
        fi
    fi
    stop_pid "$ipid"
    sleep "$BENCH_BURST_WAIT"
    BURST_RSS[$name]=$(rss_kb "$pid")
    say "$name: RSS ${before} kB -> ${after} kB with $ok idle connections -> ${BURST_RSS[$name]} kB ${BENCH_BURST_WAIT}s after they closed"
}

if ((BENCH_IDLE_CONNS > 0)); then
    for t in "${ACTIVE[@]}"; do
        [[ "$t" == direct || "${NOTE[$t]}" == failed* ]] || idle_burst "$t"
    done
fi

# ---------------------------------------------------------------- report
fmt_mib() { [[ -n "${1:-}" ]] && awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}' || echo "–"; }

report() {
    local t cpu_model notes=()
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    for t in $BENCH_TARGETS; do
        [[ -z "${NOTE[$t]:-}" ]] || notes+=(--note "$t=${NOTE[$t]}")
    done
    echo "# weft HTTP/1.1 benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    if [[ -n "$BENCH_NOTE" ]]; then
        echo "**$BENCH_NOTE**"
        echo
    fi
    echo "- machine: $(nproc) CPUs${cpu_model:+, $cpu_model}, kernel $(uname -r);" \
        "load average $LOAD_START at the start of the rounds, $LOAD_END at the end"
    echo "- load: \`wrk -t$BENCH_THREADS -c$BENCH_CONNS -d${DURATION}s --latency\` (keep-alive) after a ${WARMUP}s warm-up," \
        "on cpu $LOAD_CPU with the backend; $BENCH_ROUNDS rounds, targets alternated (${ACTIVE[*]}, then reversed)"
    echo "- backend: nginx, 1 worker, fixed ${#BODY}-byte 200 body, the same for every target"
    echo "- proxies: $BENCH_WORKERS worker(s)/thread(s) each, pinned to cpu $PROXY_CPU, upstream keep-alive" \
        "(nginx keepalive $NGINX_KEEPALIVE, HAProxy http-reuse always);" \
        "$(haproxy -v 2>/dev/null | head -n 1 | awk '{print "HAProxy", $3}'), $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')," \
        "weft $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "Per target, medians over the rounds (CPU: min–max in brackets):"
    echo
    "$PYTHON" "$ROOT/tests/bench/stats.py" "$ROUNDS_TSV" --targets "$BENCH_TARGETS" \
        --column "rps:req/s:%.0f" --column "p50_ms:p50 ms:%.3f" --column "p99_ms:p99 ms:%.3f" \
        --column "proxy_us:proxy CPU µs/req:%.2f:spread" --column "backend_us:backend CPU µs/req:%.2f" \
        --column "wake_k:proxy wake-ups /1k req:%.0f" --column "preempt_k:proxy preempted /1k req:%.0f" \
        --sum "errors:errors" --max "tw_new:new TIME_WAIT (max)" "${notes[@]}" \
        --ratio "weft/haproxy:proxy_us:proxy CPU per request" \
        --ratio "weft/nginx:proxy_us:proxy CPU per request" \
        --ratio "weft/haproxy|nginx:proxy_us:proxy CPU per request" \
        --ratio "weft_filters8/weft:proxy_us:proxy CPU per request" \
        --ratio "weft_route8/weft:proxy_us:proxy CPU per request" \
        --ratio "weft/direct:server_us:server-side CPU per request (proxy + backend)" \
        --ratio "weft/direct:rps:req/s" \
        --ratio "haproxy/direct:server_us:server-side CPU per request (proxy + backend)" \
        --ratio "nginx/direct:server_us:server-side CPU per request (proxy + backend)"
    echo
    echo "Ratios are taken within each round (the two runs of a pair back to back), then summarised; \"best of\" divides by the peer with the lowest CPU per request in that round. Below 1 means weft uses less."
    echo
    echo "Memory (VmRSS summed over the proxy's processes):"
    echo
    echo "| target | RSS idle MiB | RSS after load MiB | RSS with $BENCH_IDLE_CONNS idle conns MiB | bytes per idle conn | RSS ${BENCH_BURST_WAIT}s after they closed MiB |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for t in "${ACTIVE[@]}"; do
        [[ "$t" != direct ]] || continue
        echo "| $t | $(fmt_mib "${RSS0[$t]:-}") | $(fmt_mib "${RSS1[$t]:-}") | $(fmt_mib "${IDLE_RSS[$t]:-}") |" \
            "${IDLE_B[$t]:-–} | $(fmt_mib "${BURST_RSS[$t]:-}") |"
    done
    echo
    echo "new TIME_WAIT: TIME_WAIT sockets to or from the backend's port that appeared during one measured run (the largest over the rounds);" \
        "a proxy that keeps its upstream connections has none (direct: wrk's own $BENCH_CONNS connections closing)."
}

mkdir -p "$(dirname "$BENCH_OUT")"
report | tee "$BENCH_OUT"
cp "$ROUNDS_TSV" "${BENCH_OUT%.md}.tsv"
say "results written to $BENCH_OUT (per-round data: ${BENCH_OUT%.md}.tsv)"
