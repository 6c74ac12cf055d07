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
TCP_PORT=$(free_port)
ECHO_PORT=$(free_port)
ADMIN_PORT=$(free_port)
"$PYTHON" "$REPO_ROOT/tests/integration/tcp_echo.py" --port "$ECHO_PORT" >"$TEST_TMP/echo.log" 2>&1 &
track_pid "$!"
wait_until 5 "the echo server listens" grep -q listening "$TEST_TMP/echo.log"
CONFIG="$TEST_TMP/weft.yaml"

# start_blocked: a fresh weft (the stall dir emptied), then one worker
# blocked; sets BLOCKED (its number).
start_blocked() {
    STALL="$TEST_TMP/stall"
    rm -rf "$STALL"
    mkdir -p "$STALL"
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
  - name: tcp
    address: 127.0.0.1
    port: $TCP_PORT
    tcp_proxy: { cluster: echo }
clusters:
  - name: echo
    endpoints: [{ address: 127.0.0.1, port: $ECHO_PORT }]
YAML
    start_weft "$CONFIG"
    touch "$STALL/block"
    wait_until 5 "a worker blocks" test -f "$STALL/blocked"
    BLOCKED=$(sed -n 's/^worker=//p' "$STALL/blocked")
    log "worker $BLOCKED blocks its loop for 3 s"
}

# queued_across_term WHAT PORT [queued_conns.py options]: queued_conns.py
# (SIGTERM, then a request on each queued connection); fails unless at
# least one connection was queued and each got its answer. Sets OUT and
# QUEUED.
queued_across_term() {
    local what="$1" port="$2" rc=0
    shift 2
    "$PYTHON" "$REPO_ROOT/tests/integration/queued_conns.py" --port "$port" --pid "$WEFT_PID" \
        -n 16 --after-term-ms 300 --timeout 15 "$@" >"$TEST_TMP/queued.out" 2>&1 || rc=$?
    OUT=$(cat "$TEST_TMP/queued.out")
    log "queued_conns.py ($what): $(tr '\n' ';' <<<"$OUT")"
    assert_contains "$OUT" "queued " "queued_conns.py output ($what)"
    QUEUED=$(awk '$1 == "queued" { print $2 }' <<<"$OUT")
    ((QUEUED >= 1)) || fail "no connection waited in the blocked worker's accept queue ($what)"
    assert_not_contains "$OUT" "ERROR" "queued $what connections across SIGTERM"
    assert_eq 0 "$rc" "queued_conns.py exit status ($what)"
}

# exited_after_unblock WHAT: weft exits 0 by "drained: exiting", logged
# after the blocked worker woke, not by the drain timeout.
exited_after_unblock() {
    wait_exit "$WEFT_PID" 15
    WEFT_PID=""
    assert_eq 0 "$EXIT_STATUS" "weft exit status after the drain ($1)"
    test -f "$STALL/woke" || fail "weft exited before the blocked worker woke ($1)"
    grep -q "drained: exiting" "$WEFT_LOG" || fail "weft did not exit by \"drained: exiting\" ($1)"
    ! grep -q "drain timeout" "$WEFT_LOG" || fail "the drain ran into drain_timeout ($1)"
    local order
    order=$(grep -oE "worker loop unblocked|drained: exiting" "$WEFT_LOG" | tr '\n' ';')
    assert_eq "worker loop unblocked;drained: exiting;" "$order" "weft log: unblocked, then drained ($1)"
}

# ---- 1. HTTP: SIGTERM, then a GET on every queued connection ---------------
start_blocked
queued_across_term HTTP "$LISTEN_PORT"
answers=$(grep -c '^conn .*: 200 connection=close x-worker='"$BLOCKED"' ' <<<"$OUT" || true)
assert_eq "$QUEUED" "$answers" "queued connections answered 200, Connection: close, by worker $BLOCKED"
exited_after_unblock HTTP
log "HTTP: $QUEUED queued connection(s) served by worker $BLOCKED after SIGTERM; exit 0, drained"

# ---- 2. tcp_proxy: connects completed after SIGTERM, bytes echoed -----------
# The free worker closes its tcp_proxy socket at once; the blocked one's
# stays open until its loop runs the drain, so the 16 connects made after
# SIGTERM all wait in its queue. When it wakes it runs the drain before
# its listener's accept (the drain's wake-up came first): it accepts
# what the queue holds, then closes the listener.
start_blocked
queued_across_term tcp_proxy "$TCP_PORT" --tcp --late
assert_contains "$OUT" "queued 16 accepted 0 listen_queue 16" "tcp_proxy connects after SIGTERM"
answers=$(grep -c '^conn .*: echo ' <<<"$OUT" || true)
assert_eq 16 "$answers" "queued tcp_proxy connections echoed"
exited_after_unblock tcp_proxy
log "tcp_proxy: 16 connections queued after SIGTERM proxied once the worker woke; exit 0, drained"
