#!/usr/bin/env bash
# SIGTERM while connections wait in a worker's accept queue and no
# connection is open anywhere (issue 7: the drain must not exit then; the
# fix: core/main.c clients_gone reads weft_listen_set_queued).
# Two workers, each with its own SO_REUSEPORT socket; the test filter
# "stall" (tests/filters/stall.c) blocks one worker's event loop for 3 s
# when the file $STALL/block appears, and answers every request with the
# serving worker's number (x-worker).
#   1. the blocked worker is known ($STALL/blocked); queued_conns.py opens
#      16 connections: those hashed to the free worker are accepted, those
#      hashed to the blocked one stay in its accept queue (seen in
#      /proc/net/tcp: no socket inode yet, and the listening sockets'
#      queues hold exactly them). At least one is queued. The accepted ones
#      are closed: no connection is open in weft.
#   2. SIGTERM, 300 ms later (6 drain polls) a GET on each queued
#      connection: every one is answered 200 with Connection: close by the
#      blocked worker once it wakes; weft exits 0 with "drained: exiting"
#      after that worker woke (the log says so in that order), not by the
#      drain timeout.
# Without the fix weft decides to exit ~100 ms after SIGTERM and the
# queued connections are reset when it does (no answer).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
STALL="$TEST_TMP/stall"
mkdir -p "$STALL"
CONFIG="$TEST_TMP/weft.yaml"
cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: 10s
filter_path: [$FILTER_DIR]
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: stall
        config: { dir: "$STALL", block_ms: 3s }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200, body: "not the filter\n" }
YAML
start_weft "$CONFIG"

# ---- 1. one worker blocked, connections queued on it ------------------------
touch "$STALL/block"
wait_until 5 "a worker blocks" test -f "$STALL/blocked"
blocked=$(sed -n 's/^worker=//p' "$STALL/blocked")
log "worker $blocked blocks its loop for 3 s"

# ---- 2. SIGTERM, then a request on every queued connection ---------------
rc=0
"$PYTHON" "$REPO_ROOT/tests/integration/queued_conns.py" --port "$LISTEN_PORT" --pid "$WEFT_PID" \
    -n 16 --after-term-ms 300 --timeout 15 >"$TEST_TMP/queued.out" 2>&1 || rc=$?
out=$(cat "$TEST_TMP/queued.out")
log "queued_conns.py: $(tr '\n' ';' <<<"$out")"
assert_contains "$out" "queued " "queued_conns.py output"
queued=$(awk '$1 == "queued" { print $2 }' <<<"$out")
((queued >= 1)) || fail "no connection waited in the blocked worker's accept queue"
assert_not_contains "$out" "ERROR" "queued connections across SIGTERM"
assert_eq 0 "$rc" "queued_conns.py exit status"
answers=$(grep -c '^conn .*: 200 connection=close x-worker='"$blocked"' ' <<<"$out" || true)
assert_eq "$queued" "$answers" "queued connections answered 200, Connection: close, by worker $blocked"

wait_exit "$WEFT_PID" 15
WEFT_PID=""
assert_eq 0 "$EXIT_STATUS" "weft exit status after the drain"
test -f "$STALL/woke" || fail "weft exited before the blocked worker woke"
grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not exit by \"drained: exiting\""
! grep -q "drain timeout" "$WEFT_LOG" || fail "the drain ran into drain_timeout"
# The exit decision came after the blocked worker woke (and served).
order=$(grep -oE "worker loop unblocked|drained: exiting" "$WEFT_LOG" | tr '\n' ';')
assert_eq "worker loop unblocked;drained: exiting;" "$order" "weft log: unblocked, then drained"
log "$queued queued connection(s) served by worker $blocked after SIGTERM; exit 0, drained"
