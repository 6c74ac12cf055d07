#!/usr/bin/env bash
# reload.sh: what a config reload (SIGHUP of the same file) costs weft, by
# config size: CPU time per reload and RSS after load and after batches of
# reloads (memory must not ratchet).
#
#   tests/bench/reload.sh                                 # 10, 1000, 5000 clusters; 5 + 20 reloads
#   RELOAD_SIZES="10 1000" RELOAD_BATCHES="5" tests/bench/reload.sh   # a quick look
#
# For each size: a generated config with that many clusters (10 static
# endpoints each, one prefix route per cluster on one listener), weft
# started fresh, RSS after load; then for each batch size in
# RELOAD_BATCHES, that many SIGHUPs, one after the other, each awaited
# (the log line "config vN loaded" and the admin gauge
# weft_config_version = N, and every per-worker version gauge where weft
# has them), never a blind sleep. Per batch: CPU time per reload of the
# main thread (it reads, validates and builds the new snapshot; from
# /proc/PID/task/PID/schedstat, ns) and of the whole process (the workers
# switch and free the old snapshot), wall time per reload (from the signal
# to weft's "loaded" log line, by its millisecond timestamp), and RSS after
# the batch once the workers have switched ($RELOAD_SETTLE s later).
#
# Settings (environment):
#   RELOAD_SIZES     cluster counts                      "10 1000 5000"
#   RELOAD_BATCHES   reloads per batch, in order         "5 20"
#   RELOAD_ENDPOINTS static endpoints per cluster        10
#   RELOAD_WORKERS   weft workers                        2
#   RELOAD_SETTLE    seconds between the last reload of a batch and RSS   1
#   RELOAD_TIMEOUT   seconds one reload may take before the run fails    120
#   BENCH_NOTE       a line at the top of the report
#   BENCH_OUT        where the table goes   tests/bench/results-reload-latest.md
#   PROXY_CPU        CPU(s) weft is pinned to            1 (0 on a 1-CPU machine)
#   WEFT_BIN         weft binary (no build when set)     build-bench/bin/weft
#   BENCH_BUILD      1: build weft Release first         1
#   BENCH_SKIP_SETUP 1: do not run scripts/setup.sh      0
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

RELOAD_SIZES="${RELOAD_SIZES:-10 1000 5000}"
RELOAD_BATCHES="${RELOAD_BATCHES:-5 20}"
RELOAD_ENDPOINTS="${RELOAD_ENDPOINTS:-10}"
RELOAD_WORKERS="${RELOAD_WORKERS:-2}"
RELOAD_SETTLE="${RELOAD_SETTLE:-1}"
RELOAD_TIMEOUT="${RELOAD_TIMEOUT:-120}"
BENCH_NOTE="${BENCH_NOTE:-}"
BENCH_OUT="${BENCH_OUT:-$ROOT/tests/bench/results-reload-latest.md}"
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

say() { printf '[bench-reload] %s\n' "$*" >&2; }

BENCH_TMP_NAME=weft-bench-reload
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"

for n in $RELOAD_SIZES $RELOAD_BATCHES $RELOAD_ENDPOINTS $RELOAD_WORKERS; do
    if ! [[ "$n" =~ ^[0-9]+$ ]] || ((n < 1 || n > 100000)); then
        echo "bench-reload: not a count in 1..100000: $n" >&2
        exit 2
    fi
done

if [[ "${BENCH_SKIP_SETUP:-0}" != 1 ]]; then
    "$ROOT/scripts/setup.sh" >&2
fi
for tool in taskset curl; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "bench-reload: $tool not found" >&2
        exit 1
    }
done

WEFT_NOTE=""
if [[ "$BENCH_BUILD" == 1 && -z "$WEFT_BIN_GIVEN" ]]; then
    build_weft "$BENCH_BUILD_DIR" weft
fi
[[ -z "$WEFT_NOTE" && -x "$WEFT_BIN" ]] || {
    echo "bench-reload: no weft binary (${WEFT_NOTE:-$WEFT_BIN})" >&2
    exit 1
}

# gen_config CLUSTERS LISTEN_PORT ADMIN_PORT OUT: clusters c0..cN-1, each
# with RELOAD_ENDPOINTS static endpoints (10.x.y.z:8080, never contacted:
# no request is sent and no health check is configured), one prefix route
# per cluster.
gen_config() {
    "$PYTHON" - "$@" "$RELOAD_ENDPOINTS" "$RELOAD_WORKERS" <<'PY'
import sys
n, listen, admin, out, eps, workers = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
                                       int(sys.argv[5]), sys.argv[6])
n = int(n)
w = []
w.append("workers: %s\ndrain_timeout: 1s\n" % workers)
w.append("admin: {address: 127.0.0.1, port: %s}\n" % admin)
w.append("listeners:\n  - name: bench\n    address: 127.0.0.1\n    port: %s\n" % listen)
w.append("    virtual_hosts:\n      - name: default\n        domains: [\"*\"]\n        routes:\n")
for i in range(n):
    w.append("          - match: {prefix: /c%d/}\n            cluster: c%d\n" % (i, i))
w.append("clusters:\n")
for i in range(n):
    w.append("  - name: c%d\n    endpoints:\n" % i)
    for j in range(eps):
        k = i * eps + j
        w.append("      - {address: 10.%d.%d.%d, port: 8080}\n"
                 % ((k >> 16) & 255, (k >> 8) & 255, k & 255))
with open(out, "w") as f:
    f.write("".join(w))
PY
}

# gauge NAME: the values of a gauge family in /stats/prometheus, one a line.
gauge() {
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN/stats/prometheus" 2>/dev/null |
        awk -v n="$1" '$1 == n || index($1, n "{") == 1 {print $2}'
}

# wait_reload VERSION: until weft logged "config vVERSION loaded" (or
# refused it: the run fails) and its admin gauges say VERSION.
wait_reload() {
    local v="$1" deadline vals
    deadline=$((SECONDS + RELOAD_TIMEOUT))
    while ((SECONDS <= deadline)); do
        if grep -q "reload refused" "$LOG"; then
            grep "reload refused" "$LOG" >&2
            echo "bench-reload: weft refused the config" >&2
            exit 1
        fi
        kill -0 "$WPID" 2>/dev/null || {
            tail -n 20 "$LOG" >&2
            echo "bench-reload: weft exited" >&2
            exit 1
        }
        if grep -q "config v$v loaded" "$LOG"; then
            # weft_config_version, and the per-worker versions where they exist
            vals=$(
                gauge weft_config_version
                gauge weft_worker_config_version
            )
            if [[ -n "$vals" ]] && ! grep -qvx "$v" <<<"$vals"; then
                return 0
            fi
        fi
        sleep 0.02
    done
    echo "bench-reload: reload to v$v not done after ${RELOAD_TIMEOUT}s" >&2
    exit 1
}

ROWS=()
LOAD_START=$(loadavg)
for size in $RELOAD_SIZES; do
    LISTEN=$(free_port)
    ADMIN=$(free_port)
    CONF="$TMP/weft-$size.yaml"
    gen_config "$size" "$LISTEN" "$ADMIN" "$CONF"
    KIB=$(($(stat -c %s "$CONF") / 1024))
    LOG="$TMP/weft-$size.log"
    say "$size clusters ($KIB KiB config): starting weft"
    t_start=$(date +%s%N)
    taskset -c "$PROXY_CPU" "$WEFT_BIN" -c "$CONF" >"$LOG" 2>&1 &
    WPID=$!
    track "$WPID"
    for ((i = 0; i < RELOAD_TIMEOUT * 10; i++)); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ADMIN/ready" || true)" == 200 ]] && break
        kill -0 "$WPID" 2>/dev/null || break
        sleep 0.1
    done
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ADMIN/ready" || true)" == 200 ]] || {
        tail -n 20 "$LOG" >&2
        echo "bench-reload: weft with $size clusters did not become ready" >&2
        exit 1
    }
    t_ready=$(date +%s%N)
    sleep "$RELOAD_SETTLE"
    rss_fresh=$(rss_kb "$WPID")
    load_ms=$(awk -v n="$(thread_cpu_ns "$WPID" "$WPID")" 'BEGIN {printf "%.0f", n / 1e6}')
    say "$size clusters: ready in $(((t_ready - t_start) / 1000000)) ms, main thread CPU $load_ms ms, RSS $rss_fresh kB"
    ROWS+=("| $size | $KIB | load | 1 | $load_ms | – | $(((t_ready - t_start) / 1000000)) | $(awk -v k="$rss_fresh" 'BEGIN {printf "%.1f", k / 1024}') | 1.00 |")
    version=1
    for batch in $RELOAD_BATCHES; do
        m0=$(thread_cpu_ns "$WPID" "$WPID")
        p0=$(cpu_ns "$WPID")
        wall=0
        for ((i = 0; i < batch; i++)); do
            version=$((version + 1))
            w0=$(date +%s%N)
            kill -HUP "$WPID"
            wait_reload "$version"
            # latency: from the signal to weft's own "loaded" log line (ms
            # timestamps), not to when this script noticed it
            w1=$(date -d "$(grep -m1 "config v$version loaded" "$LOG" | awk '{print $1}')" +%s%N)
            wall=$((wall + w1 - w0))
        done
        m1=$(thread_cpu_ns "$WPID" "$WPID")
        sleep "$RELOAD_SETTLE"
        p1=$(cpu_ns "$WPID")
        rss=$(rss_kb "$WPID")
        row=$(awk -v m="$((m1 - m0))" -v p="$((p1 - p0))" -v w="$wall" -v n="$batch" -v r="$rss" -v f="$rss_fresh" \
            'BEGIN {printf "%.1f | %.1f | %.1f | %.1f | %.2f", m / n / 1e6, p / n / 1e6, w / n / 1e6, r / 1024, r / f}')
        ROWS+=("| $size | $KIB | $batch reloads | $version | $row |")
        say "$size clusters: $batch reloads (now v$version): main ms/reload | process ms/reload | wall ms/reload | RSS MiB | vs fresh: $row"
    done
    stop_pid "$WPID"
done
LOAD_END=$(loadavg)

report() {
    local cpu_model
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
    echo "# weft reload benchmark ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    if [[ -n "$BENCH_NOTE" ]]; then
        echo "**$BENCH_NOTE**"
        echo
    fi
    echo "- machine: $(nproc) CPUs${cpu_model:+, $cpu_model}, kernel $(uname -r); load average $LOAD_START at the start, $LOAD_END at the end"
    echo "- weft $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $RELOAD_WORKERS workers, pinned to cpu $PROXY_CPU;" \
        "configs: N clusters of $RELOAD_ENDPOINTS static endpoints, one prefix route each; SIGHUP of the same file, each reload awaited"
    echo
    echo "| clusters | config KiB | step | config version | main thread CPU ms/reload | process CPU ms/reload | wall ms/reload | RSS after MiB | RSS / fresh |"
    echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "The \"load\" row: the first load at start-up (main thread CPU until ready, wall time from exec until /ready answered, RSS ${RELOAD_SETTLE}s later)."
    echo "A batch row: per reload of that batch (wall: from SIGHUP to weft's \"config vN loaded\" log line); RSS ${RELOAD_SETTLE}s after its last reload, and divided by the fresh RSS."
}

mkdir -p "$(dirname "$BENCH_OUT")"
report | tee "$BENCH_OUT"
say "results written to $BENCH_OUT"
