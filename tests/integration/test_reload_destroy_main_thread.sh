#!/usr/bin/env bash
# Filter configs are destroyed on the main thread (sdk/include/weft/filter.h:
# "Config-time calls happen on the main thread"), also when the last
# reference to an old config snapshot goes away on a worker thread.
# Two workers, the test filter threadcheck on the listener: its
# config_destroy appends "destroy main" or "destroy worker <tid>" to a
# report file. Under wrk load (running across every reload), 6 SIGHUPs,
# each waited for on every worker (weft_worker_config_version). Asserts:
# the 6 replaced configs are destroyed while weft runs (once wrk closed
# the keep-alive connections that held them), the 7th at
# SIGTERM, each exactly once and every one on the main thread; wrk saw no
# error; SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

command -v wrk >/dev/null || fail "wrk is not installed"

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
REPORT="$TEST_TMP/destroyed.txt"
CONFIG="$TEST_TMP/weft.yaml"
cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: 5s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: threadcheck
        config: { report: $REPORT }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"
wait_workers_at 2 1
[[ "$(http_status "$URL/x")" == 200 ]] || fail "no 200 at start"

load_start "$TEST_TMP/wrk.out" -t1 -c8 --timeout 3s "$URL/load"
sleep 0.3
RELOADS=6
for ((i = 1; i <= RELOADS; i++)); do
    weft_signal HUP
    wait_workers_at 2 "$((1 + i))"
    sleep 0.2
done
load_stop
# A replaced config goes once nothing on a worker holds it: its streams
# and the connections accepted on it (wrk's keep-alive connections, closed
# now), so the last reference is dropped on a worker thread.
lines() { if [[ -f "$REPORT" ]]; then wc -l <"$REPORT"; else echo 0; fi; }
destroyed_n() { (($(lines) == $1)); }
wait_until 10 "$RELOADS replaced configs destroyed" destroyed_n "$RELOADS"
wrk_out=$(cat "$TEST_TMP/wrk.out")
log "wrk: $(grep -E 'requests in|Requests/sec' <<<"$wrk_out" | tr -s ' ' | tr '\n' ' ')"
assert_not_contains "$wrk_out" "Non-2xx or 3xx responses" "wrk output"
assert_not_contains "$wrk_out" "Socket errors" "wrk output"

stop_weft 15
assert_eq "$((RELOADS + 1))" "$(lines)" "config_destroy calls (each config once)"
off=$(grep -v '^destroy main$' "$REPORT" || true)
[[ -z "$off" ]] || fail "config_destroy ran off the main thread: $(tr '\n' ' ' <<<"$off")"
log "$((RELOADS + 1)) configs destroyed, all on the main thread"
