#!/usr/bin/env bash
# ABI 1.1 compatibility: abi_v1_1.so is compiled against the frozen header
# tests/abi/filter_v1_1.h (not the current SDK). Asserts:
#   - the frozen header is, below its "never edit" comment, the ABI 1.1
#     header (WEFT_ABI_MAJOR 1, WEFT_ABI_MINOR 1, the v1 entry symbol);
#   - weft loads it (logs "ABI 1.1") on 2 workers; its per-route config
#     reaches the stream (x-abi11-tag differs per route), the route's name
#     too (x-abi11-route); WEFT_HOST_HAS sees the 1.1 TCP callout call;
#   - its local reply runs through its response hook (x-abi11-local);
#   - a weft_callout_start2 callout pauses the request and its status
#     reaches the backend (x-abi11-callout-status);
#   - its labelled family counts per route; its worker timers tick without
#     traffic (the ticks counter grows while no request is made);
#   - SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

frozen_abi_check 1

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
cat >"$TEST_TMP/weft.yaml" <<YAML
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
  - name: abi
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: abi_v1_1
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - name: red
            match: { prefix: /red }
            cluster: be
            filter_config: { abi_v1_1: { tag: crimson } }
          - name: blue
            match: { prefix: / }
            cluster: be
            filter_config: { abi_v1_1: { tag: navy } }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$TEST_TMP/weft.yaml"
grep -q "filter abi_v1_1 loaded from $FILTER_DIR/abi_v1_1.so (ABI 1.1)" "$WEFT_LOG" ||
    fail "no load line for abi_v1_1.so with ABI 1.1"

# Worker timers tick from worker_create on, before any request: two
# workers at 50 ms each make well over 4 ticks in a second.
ticks_over() { (($(metric 'weft_filter_abi_v1_1_ticks{listener="abi"}') > $1)); }
wait_until 10 "worker timer ticks without traffic" ticks_over 4

fetch "http://127.0.0.1:$LISTEN_PORT/red/x"
assert_eq 200 "$ST" "status on route red"
assert_eq crimson "$(hdr x-abi11-tag)" "per-route config of route red"
assert_eq red "$(hdr x-abi11-route)" "route name of route red"
seen=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["headers"].get("x-abi11-host", "-"))' <<<"$BD")
assert_eq tcp "$seen" "WEFT_HOST_HAS(tcp_callout_open) on a 1.1 host"
for _ in 1 2 3; do
    fetch "http://127.0.0.1:$LISTEN_PORT/other"
    assert_eq navy "$(hdr x-abi11-tag)" "per-route config of route blue"
done
fetch -H 'x-abi11-callout: /status/204' "http://127.0.0.1:$LISTEN_PORT/other"
assert_eq 200 "$ST" "status after the callout"
cst=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["headers"].get("x-abi11-callout-status", "-"))' <<<"$BD")
assert_eq 204 "$cst" "callout status forwarded by the ABI 1.1 filter"
fetch -H 'x-abi-reply: 1' "http://127.0.0.1:$LISTEN_PORT/red/y"
assert_eq 418 "$ST" "local reply from the ABI 1.1 filter"
assert_eq abi_v1_1_reply "$(hdr x-weft-reason)" "local reply reason"
assert_eq 1 "$(hdr x-abi11-local)" "the local reply ran through the response hook"
assert_eq 2 "$(metric 'weft_filter_abi_v1_1_requests_total{listener="abi",route="red"}')" \
    "family series route=red (one proxied, one local reply)"
assert_eq 4 "$(metric 'weft_filter_abi_v1_1_requests_total{listener="abi",route="blue"}')" \
    "family series route=blue"
grep -q "abi 1.1 local reply 418" "$WEFT_LOG" || fail "weft_logf line of the 1.1 filter missing"
log "ABI 1.1 filter loaded and working"
stop_weft 10
