#!/usr/bin/env bash
# workers: default. Without `workers:` weft runs one worker per CPU the
# process may use: under `taskset -c 0` that is one worker, whatever the
# host's core count (it used to be the host's online CPUs). Checked three
# ways: the resolved `workers` in /config_dump, the start-up log line, and
# the process's threads (main + one per worker). Without taskset the count
# is the CPUs in the affinity mask (nproc) when no cgroup quota applies.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

command -v taskset >/dev/null || fail "taskset not found (util-linux)"
CPUS=$(nproc)
log "nproc: $CPUS, online: $(getconf _NPROCESSORS_ONLN)"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)
start_backend w "$BACKEND_PORT"

CONFIG=$(render_config - <<'YAML'
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: w
clusters:
  - name: w
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

# dumped_workers: the resolved workers: from /config_dump.
dumped_workers() {
    admin_get /config_dump | awk '$1 == "workers:" {print $2; exit}'
}

# threads PID: number of threads of PID.
threads() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }

# One CPU allowed (the first of the test's own mask): one worker. start_weft
# runs $WEFT_BIN, so a wrapper execs weft under taskset (same pid).
weft_under_taskset() {
    local first
    first=$(taskset -pc $$ | sed -E 's/.*: *//; s/[,-].*//')
    WEFT_BIN_REAL="$WEFT_BIN"
    WEFT_BIN="$TEST_TMP/weft-taskset"
    printf '#!/bin/sh\nexec taskset -c %s "%s" "$@"\n' "$first" "$WEFT_BIN_REAL" >"$WEFT_BIN"
    chmod +x "$WEFT_BIN"
}
weft_under_taskset
start_weft "$CONFIG"
assert_eq 1 "$(dumped_workers)" "workers in /config_dump under taskset -c one CPU"
assert_contains "$(cat "$WEFT_LOG")" "1 worker(s) (CPUs usable: 1 in the affinity mask" "start-up log line"
# Sanitizer runtimes (ThreadSanitizer) add a background thread of their
# own: the counts below are relative to this one-worker process.
assert_eq 200 "$(http_status "http://127.0.0.1:$LISTEN_PORT/")" "request through the single worker"
ONE_THREADS=$(threads "$WEFT_PID")
weft_signal TERM
wait "$WEFT_PID" 2>/dev/null || true

# All CPUs of the test's own mask: one worker each (unless a cgroup quota
# is tighter, which the log line then names).
WEFT_BIN="$WEFT_BIN_REAL"
start_weft "$CONFIG"
n=$(dumped_workers)
if grep -q "no cgroup quota" "$WEFT_LOG"; then
    assert_eq "$CPUS" "$n" "workers in /config_dump = CPUs in the affinity mask"
else
    log "a cgroup quota applies: $(grep -o 'CPUs usable[^)]*' "$WEFT_LOG")"
    ((n >= 1 && n <= CPUS)) || fail "workers $n not within 1..$CPUS"
fi
assert_eq $((ONE_THREADS - 1 + n)) "$(threads "$WEFT_PID")" "threads (main + $n workers)"
assert_contains "$(cat "$WEFT_LOG")" "$n worker(s) (CPUs usable: $CPUS in the affinity mask" "start-up log line"

# An explicit workers: wins over the default, even above the usable CPUs.
sed -i '1i workers: 3' "$CONFIG"
weft_signal TERM
wait "$WEFT_PID" 2>/dev/null || true
WEFT_BIN="$TEST_TMP/weft-taskset"
start_weft "$CONFIG"
assert_eq 3 "$(dumped_workers)" "explicit workers: 3 under taskset"
assert_eq $((ONE_THREADS + 2)) "$(threads "$WEFT_PID")" "threads (main + 3 workers)"
log "ok"
