#!/usr/bin/env bash
# h2.sh: the HTTP/2 benchmark. h2load (h2c prior knowledge) through weft,
# nghttpx, HAProxy and nginx, every peer configured as its documentation
# recommends for a keep-alive reverse proxy, the same nginx HTTP/1.1
# backend and load, measured in alternating rounds (A B C D, D C B A, ...).
#
#   tests/bench/h2.sh                                          # 6 rounds of 5 s per target
#   BENCH_ROUNDS=2 BENCH_DURATION=2 tests/bench/h2.sh          # a quick look
#
# Each proxy has $BENCH_WORKERS worker(s)/thread(s), pinned to $PROXY_CPU;
# h2load and the backend share $LOAD_CPU. Per target (medians over the
# rounds): req/s, p50/p99 latency (from h2load's per-request log), failed
# and errored requests, proxy and backend CPU µs per request (from /proc,
# all the proxy's processes and threads), TIME_WAIT sockets to the backend
# (upstream connection churn), RSS idle, after load and a few seconds
# later. Per ratio (weft /
# each peer, weft / the best peer of the round): the median, min-max and
# interquartile range of the per-round ratios. See tests/bench/README.
#
# Settings (environment):
#   BENCH_ROUNDS     rounds (each target once per round)          6
#   BENCH_DURATION   h2load measured seconds per target and round 5
#   BENCH_WARMUP     h2load warm-up seconds before each run       1
#   BENCH_CLIENTS    h2load -c                                   10
#   BENCH_STREAMS    h2load -m (concurrent streams per client)   10
#   BENCH_WORKERS    workers/threads of every proxy               1
#   BENCH_TARGETS    targets (order of the first round)  "weft nghttpx haproxy nginx"
#   BENCH_IDLE_WAIT  seconds after the last round before "RSS after idle"  5
#   BENCH_NOTE       a line printed at the top of the report (e.g. "taken under load")
#   BENCH_OUT        where the table goes     tests/bench/results-h2-latest.md
#   LOAD_CPU / PROXY_CPU                                          0 / 1
#   WEFT_BIN         weft binary (no build when set)             build-bench/bin/weft
#   BENCH_BUILD      1: build weft Release in build-bench/ first  1
#   BENCH_SKIP_SETUP 1: do not run scripts/setup.sh               0
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

BENCH_ROUNDS="${BENCH_ROUNDS:-6}"
BENCH_DURATION="${BENCH_DURATION:-5}"
BENCH_WARMUP="${BENCH_WARMUP:-1}"
BENCH_CLIENTS="${BENCH_CLIENTS:-10}"
BENCH_STREAMS="${BENCH_STREAMS:-10}"
BENCH_WORKERS="${BENCH_WORKERS:-1}"
BENCH_TARGETS="${BENCH_TARGETS:-weft nghttpx haproxy nginx}"
BENCH_IDLE_WAIT="${BENCH_IDLE_WAIT:-5}"
BENCH_NOTE="${BENCH_NOTE:-}"
BENCH_OUT="${BENCH_OUT:-$ROOT/tests/bench/results-h2-latest.md}"
BENCH_BUILD="${BENCH_BUILD:-1}"
BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$ROOT/build-bench}"
WEFT_BIN_GIVEN="${WEFT_BIN:-}"
WEFT_BIN="${WEFT_BIN:-$BENCH_BUILD_DIR/bin/weft}"
LOAD_CPU="${LOAD_CPU:-0}"
PROXY_CPU="${PROXY_CPU:-1}"
if (($(nproc) < 2)); then
    PROXY_CPU="$LOAD_CPU"
fi
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=python3
CLK_TCK="$(getconf CLK_TCK)"
STREAMS=$((BENCH_CLIENTS * BENCH_STREAMS))
# Idle upstream connections nginx keeps: at least the concurrent streams.
NGINX_KEEPALIVE="${NGINX_KEEPALIVE:-$STREAMS}"

say() { printf '[bench-h2] %s\n' "$*" >&2; }

BENCH_TMP_NAME=weft-bench-h2
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"

DURATION=$(secs "$BENCH_DURATION")
WARMUP=$(secs "$BENCH_WARMUP")
if ! [[ "$BENCH_ROUNDS" =~ ^[0-9]+$ ]] || ((BENCH_ROUNDS < 1 || BENCH_ROUNDS > 30)); then
    echo "bench-h2: BENCH_ROUNDS must be 1..30" >&2
    exit 2
fi
if ! ulimit -n 65536 2>/dev/null; then
    ulimit -n "$(ulimit -Hn)"
fi
NOFILE="$(ulimit -n)"

if [[ "${BENCH_SKIP_SETUP:-0}" != 1 ]]; then
    "$ROOT/scripts/setup.sh" >&2
fi
PATH="$PATH:/usr/sbin:/sbin"
for tool in h2load nghttpx haproxy nginx taskset curl ss; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench-h2: $tool not found" >&2
        exit 1
    }
done

# ---------------------------------------------------------------- weft build
WEFT_NOTE=""
if [[ " $BENCH_TARGETS " == *" weft "* && "$BENCH_BUILD" == 1 && -z "$WEFT_BIN_GIVEN" ]]; then
    build_weft "$BENCH_BUILD_DIR" weft
fi

# ---------------------------------------------------------------- backend
start_backend
say "backend nginx (HTTP/1.1) on 127.0.0.1:$BACKEND_PORT, cpu $LOAD_CPU; proxies on cpu $PROXY_CPU"

# ---------------------------------------------------------------- targets
declare -A PID PORT NOTE RSS0 RSS1 RSS2

# start_target NAME: starts the proxy pinned to PROXY_CPU on a free port.
start_target() {
    local name="$1" port admin
    port=$(free_port)
    PORT[$name]="$port"
    mkdir -p "$TMP/$name"
    case "$name" in
    weft)
        [[ -z "$WEFT_NOTE" ]] || {
            NOTE[$name]="failed: $WEFT_NOTE"
            return 1
        }
        [[ -x "$WEFT_BIN" ]] || {
            NOTE[$name]="failed: no binary at $WEFT_BIN"
            return 1
        }
        admin=$(free_port)
        cat >"$TMP/weft/weft.yaml" <<CONF
workers: $BENCH_WORKERS
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
        # h2c frontend (no TLS), HTTP/1.1 backend; nghttpx keeps backend
        # HTTP/1.1 connections alive and reuses them by default.
        taskset -c "$PROXY_CPU" nghttpx --frontend="127.0.0.1,$port;no-tls" \
            --backend="127.0.0.1,$BACKEND_PORT;;proto=http/1.1" --workers="$BENCH_WORKERS" \
            --frontend-http2-max-concurrent-streams=100 --backend-keep-alive-timeout=300s \
            --no-ocsp --errorlog-file="$TMP/nghttpx/error.log" --accesslog-file=/dev/null \
            --conf=/dev/null >"$TMP/nghttpx/stdout.log" 2>&1 &
        ;;
    haproxy)
        cat >"$TMP/haproxy/haproxy.cfg" <<CONF
global
    nbthread $BENCH_WORKERS
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
    nginx)
        # h2c with prior knowledge (`listen ... http2` without ssl); the
        # upstream as its keepalive documentation says, with a cache at
        # least as large as the concurrent streams.
        {
            nginx_common nginx "$BENCH_WORKERS"
            echo "http {"
            nginx_http_common nginx
            cat <<CONF
    http2_max_concurrent_streams 128;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive $NGINX_KEEPALIVE;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$port http2 backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
        } >"$TMP/nginx/nginx.conf"
        taskset -c "$PROXY_CPU" nginx -p "$TMP/nginx/" -e "$TMP/nginx/error.log" \
            -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/stdout.log" 2>&1 &
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
    if ! wait_http "http://127.0.0.1:${PORT[$t]}/" "${PID[$t]}" 15 --http2-prior-knowledge; then
        NOTE[$t]="failed: no correct h2c answer on port ${PORT[$t]}"
        say "$t: ${NOTE[$t]}"
        tail -n 20 "$TMP/$t"/*.log >&2 2>/dev/null || true
        stop_pid "${PID[$t]}"
        continue
    fi
    ACTIVE+=("$t")
done
((${#ACTIVE[@]})) || {
    echo "bench-h2: no target answers" >&2
    exit 1
}
sleep 0.5
for t in "${ACTIVE[@]}"; do
    RSS0[$t]=$(rss_kb "${PID[$t]}")
done
say "targets: ${ACTIVE[*]}; $BENCH_ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up) each:" \
    "about $(((WARMUP + DURATION + 2) * ${#ACTIVE[@]} * BENCH_ROUNDS))s"
LOAD_START=$(loadavg)

# ---------------------------------------------------------------- one run
ROUNDS_TSV="$TMP/rounds.tsv"
printf 'round\ttarget\trps\tp50_ms\tp99_ms\tmean_ms\terrors\trequests\tproxy_us\tbackend_us\ttw_mid\ttw_new\twake_k\tpreempt_k\n' >"$ROUNDS_TSV"

# to_ms VALUE: h2load time ("393us", "1.02ms", "1.50s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000
        printf "%.3f", n }'
}

measure() { # NAME ROUND
    local name="$1" round="$2" url out log p0 p1 b0 b1 v0 v1 n0 n1 tw tw_mid hpid line done_n failed errored rps pct mean errs
    url="http://127.0.0.1:${PORT[$name]}/"
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
        NOTE[$name]="failed: exited before round $round"
        return 0
    fi
    if ((WARMUP > 0)); then
        run_wait taskset -c "$LOAD_CPU" timeout $((WARMUP + 30)) h2load -c "$BENCH_CLIENTS" -m "$BENCH_STREAMS" \
            -D "$WARMUP" "$url" >/dev/null 2>&1 || true
    fi
    out="$TMP/h2load-$name-$round.txt"
    log="$TMP/h2load-$name.log"
    tw_list "$BACKEND_PORT" >"$TMP/tw-before"
    read -r v0 n0 < <(ctx_switches "${PID[$name]}")
    p0=$(cpu_ns "${PID[$name]}")
    b0=$(cpu_ns "$BACKEND_PID")
    taskset -c "$LOAD_CPU" timeout $((DURATION + 30)) h2load -c "$BENCH_CLIENTS" -m "$BENCH_STREAMS" \
        -D "$DURATION" --log-file="$log" "$url" >"$out" 2>&1 &
    hpid=$!
    track "$hpid"
    # TIME_WAIT while the load runs (1 s before its end): churn; at the
    # end, streams still in flight are cancelled when h2load stops, and a
    # proxy may close their upstream connections (see README).
    if ((DURATION >= 2)); then
        sleep $((DURATION - 1))
        tw_mid=$(tw_new "$BACKEND_PORT" "$TMP/tw-before")
    else
        tw_mid=""
    fi
    wait "$hpid" || say "$name round $round: h2load failed"
    p1=$(cpu_ns "${PID[$name]}")
    b1=$(cpu_ns "$BACKEND_PID")
    read -r v1 n1 < <(ctx_switches "${PID[$name]}")
    tw=$(tw_new "$BACKEND_PORT" "$TMP/tw-before")
    if ! kill -0 "${PID[$name]}" 2>/dev/null; then
        NOTE[$name]="failed: exited during round $round"
        tail -n 20 "$TMP/$name"/*.log >&2 2>/dev/null || true
        return 0
    fi
    line=$(grep -E '^requests:' "$out" || true)
    done_n=$(sed -E 's/.* ([0-9]+) succeeded.*/\1/' <<<"$line")
    failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
    errored=$(sed -E 's/.* ([0-9]+) errored.*/\1/' <<<"$line")
    rps=$(awk '/^finished in/ {print $4}' "$out")
    if [[ -z "$line" || -z "$done_n" || "$done_n" == 0 ]]; then
        say "$name round $round: no requests completed"
        sed 's/^/    /' "$out" >&2
        rm -f "$log"
        return 0
    fi
    errs=$((failed + errored))
    ((errs * 100 <= done_n)) || NOTE[$name]="$errs errors in round $round"
    # p50 and p99 of the successful requests' times (µs) in h2load's log.
    pct=$(awk -F'\t' '$2 >= 200 && $2 < 400 {print $3}' "$log" | sort -n |
        awk '{v[NR] = $1} END { if (NR) { i = int(NR * 0.5 + 0.999999); j = int(NR * 0.99 + 0.999999)
            printf "%.3f %.3f", v[i] / 1000, v[j] / 1000 } }')
    rm -f "$log"
    mean=$(to_ms "$(awk '/^time for request:/ {print $6}' "$out")")
    printf '%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "${pct% *}" "${pct#* }" "$mean" \
        "$errs" "$done_n" "$(awk -v d="$((p1 - p0))" -v n="$done_n" 'BEGIN {printf "%.3f", d / 1000 / n}')" \
        "$(awk -v d="$((b1 - b0))" -v n="$done_n" 'BEGIN {printf "%.3f", d / 1000 / n}')" "$tw_mid" "$tw" \
        "$(awk -v d="$((v1 - v0))" -v n="$done_n" 'BEGIN {printf "%.1f", d * 1000 / n}')" \
        "$(awk -v d="$((n1 - n0))" -v n="$done_n" 'BEGIN {printf "%.1f", d * 1000 / n}')" >>"$ROUNDS_TSV"
    say "round $round $name: $(tail -n 1 "$ROUNDS_TSV" | cut -f3-)"
}

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
    [[ "${NOTE[$t]}" == failed* ]] || RSS1[$t]=$(rss_kb "${PID[$t]}")
done
# RSS a while after the load ended: memory held for streams and buffers
# that the proxy gives back (or not) once idle.
sleep "$BENCH_IDLE_WAIT"
for t in "${ACTIVE[@]}"; do
    [[ "${NOTE[$t]}" == failed* ]] || RSS2[$t]=$(rss_kb "${PID[$t]}")
done

# ---------------------------------------------------------------- report
fmt_mib() { [[ -n "${1:-}" ]] && awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}' || echo "–"; }

report() {
    local t cpu_model notes=() peers=()
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    for t in $BENCH_TARGETS; do
        [[ -z "${NOTE[$t]:-}" ]] || notes+=(--note "$t=${NOTE[$t]}")
        [[ "$t" == weft ]] || peers+=("$t")
    done
    echo "# weft HTTP/2 benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    if [[ -n "$BENCH_NOTE" ]]; then
        echo "**$BENCH_NOTE**"
        echo
    fi
    echo "- machine: $(nproc) CPUs${cpu_model:+, $cpu_model}, kernel $(uname -r);" \
        "load average $LOAD_START at the start of the rounds, $LOAD_END at the end"
    echo "- load: \`h2load -c $BENCH_CLIENTS -m $BENCH_STREAMS -D $DURATION\` (h2c prior knowledge, $STREAMS concurrent streams)" \
        "after a ${WARMUP}s warm-up, on cpu $LOAD_CPU with the backend; $BENCH_ROUNDS rounds, targets alternated (${ACTIVE[*]}, then reversed)"
    echo "- backend: nginx, 1 worker, HTTP/1.1, fixed ${#BODY}-byte 200 body"
    echo "- proxies: $BENCH_WORKERS worker(s)/thread(s) each, pinned to cpu $PROXY_CPU, h2c frontend, HTTP/1.1 keep-alive backend" \
        "(nginx keepalive $NGINX_KEEPALIVE, HAProxy http-reuse always);" \
        "$(nghttpx --version 2>/dev/null | head -n 1), $(haproxy -v 2>/dev/null | head -n 1 | awk '{print "HAProxy", $3}')," \
        "$(nginx -v 2>&1 | sed 's/.*nginx\//nginx /'), weft $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "Per target, medians over the rounds (CPU: min–max in brackets):"
    echo
    local ratios=()
    for t in "${peers[@]}"; do
        ratios+=(--ratio "weft/$t:proxy_us:proxy CPU per request")
    done
    if ((${#peers[@]} > 1)); then
        ratios+=(--ratio "weft/$(
            IFS='|'
            echo "${peers[*]}"
        ):proxy_us:proxy CPU per request")
    fi
    "$PYTHON" "$ROOT/tests/bench/stats.py" "$ROUNDS_TSV" --targets "$BENCH_TARGETS" \
        --column "rps:req/s:%.0f" --column "p50_ms:p50 ms:%.3f" --column "p99_ms:p99 ms:%.3f" \
        --column "mean_ms:mean ms:%.3f" \
        --column "proxy_us:proxy CPU µs/req:%.2f:spread" --column "backend_us:backend CPU µs/req:%.2f" \
        --column "wake_k:proxy wake-ups /1k req:%.0f" --column "preempt_k:proxy preempted /1k req:%.0f" \
        --sum "errors:errors" --max "tw_mid:new TIME_WAIT during the run (max)" \
        --max "tw_new:new TIME_WAIT with its end (max)" "${notes[@]}" "${ratios[@]}"
    echo
    echo "Ratios are taken within each round, then summarised; \"best of\" divides by the peer with the lowest CPU per request in that round. Below 1 means weft uses less."
    echo
    echo "| target | RSS idle MiB | RSS after load MiB | RSS ${BENCH_IDLE_WAIT}s after load MiB |"
    echo "| --- | ---: | ---: | ---: |"
    for t in "${ACTIVE[@]}"; do
        echo "| $t | $(fmt_mib "${RSS0[$t]:-}") | $(fmt_mib "${RSS1[$t]:-}") | $(fmt_mib "${RSS2[$t]:-}") |"
    done
    echo
    echo "new TIME_WAIT: TIME_WAIT sockets to or from the backend's port that appeared during one measured run (the largest over the rounds): \"during\" counts up to 1 s before the load stops," \
        "a proxy that keeps its upstream connections has none; \"with its end\" adds the requests in flight when h2load stops, whose upstream HTTP/1.1 connections a proxy may close (at most $STREAMS)."
}

mkdir -p "$(dirname "$BENCH_OUT")"
report | tee "$BENCH_OUT"
cp "$ROUNDS_TSV" "${BENCH_OUT%.md}.tsv"
say "results written to $BENCH_OUT (per-round data: ${BENCH_OUT%.md}.tsv)"
