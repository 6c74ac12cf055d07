#!/usr/bin/env bash
# ABI 1.0 compatibility: abi_v1_0.so is compiled against the frozen header
# tests/abi/filter_v1_0.h (not the current SDK). Asserts:
#   - the frozen header is, below its "never edit" comment, the ABI 1.0
#     header (WEFT_ABI_MAJOR 1, WEFT_ABI_MINOR 0, the v1 entry symbol);
#   - weft loads it (logs "ABI 1.0"), it parses its config (header name),
#     adds the response header and the request header the backend sees,
#     answers a local reply (418, x-weft-reason abi_v1_0_reply), and its
#     stat shows in /stats/prometheus;
#   - SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

frozen_abi_check 0

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
cat >"$TEST_TMP/weft.yaml" <<YAML
workers: 1
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
      - name: abi_v1_0
        config: { header: x-abi-version }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes: [{ match: { prefix: / }, cluster: be }]
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$TEST_TMP/weft.yaml"
grep -q "filter abi_v1_0 loaded from $FILTER_DIR/abi_v1_0.so (ABI 1.0)" "$WEFT_LOG" ||
    fail "no load line for abi_v1_0.so with ABI 1.0"

fetch "http://127.0.0.1:$LISTEN_PORT/app/abi"
assert_eq 200 "$ST" "status"
assert_eq 1.0 "$(hdr x-abi-version)" "response header added by the ABI 1.0 filter"
seen=$("$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["headers"].get("x-abi-request", "-"))' <<<"$BD")
assert_eq 1.0 "$seen" "request header the backend saw"
fetch -H 'x-abi-reply: 1' "http://127.0.0.1:$LISTEN_PORT/app/abi"
assert_eq 418 "$ST" "local reply from the ABI 1.0 filter"
assert_eq abi_v1_0_reply "$(hdr x-weft-reason)" "local reply reason"
assert_eq 2 "$(metric 'weft_filter_abi_v1_0_requests{listener="abi"}')" "the ABI 1.0 filter's stat"
log "ABI 1.0 filter loaded and working"
stop_weft 10
