#!/usr/bin/env bash
# Callout responses deliver every header (SDK 1.1, group "callout"; 1.0
# kept 64 and dropped the rest silently). The test filter "authcall" asks
# an auth service (backend.py /headers/<n>: 200 with n extra headers
# x-h-0 .. x-h-<n-1>) and passes the answer's header count and the value
# of its last x-h-* header on to the backend (x-auth-headers,
# x-auth-last-x), which echoes them:
#   1. 80 extra headers (past 1.0's 64): all delivered, the last one too;
#   2. past the parser's limit (100 headers): no silent cut, the callout
#      fails with reason too_many_headers (503, x-auth-error);
#   3. SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
MANY_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"
CONFIG="$TEST_TMP/weft.yaml"

# listener NAME PORT AUTH_PATH
listener() {
    cat <<YAML
  - name: $1
    address: 127.0.0.1
    port: $2
    filters:
      - { name: authcall, config: { cluster: auth, path: $3, timeout: 5s } }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
YAML
}
{
    cat <<YAML
workers: 1
filter_path: [$FILTER_DIR]
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
YAML
    listener ingress "$LISTEN_PORT" /headers/80
    listener many "$MANY_PORT" /headers/120
    cat <<YAML
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: auth
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
} >"$CONFIG"
start_weft "$CONFIG"

# ---- 1. 80 extra headers: every one delivered ----
fetch "http://127.0.0.1:$LISTEN_PORT/app"
assert_eq 200 "$ST" "allowed: status"
n=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["headers"].get("x-auth-headers", ""))' <<<"$BD")
last=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["headers"].get("x-auth-last-x", ""))' <<<"$BD")
[[ -n "$n" ]] && ((n >= 80)) || fail "headers delivered to the filter: '$n' (want >= 80)"
assert_eq v79 "$last" "the last x-h-* header reached the filter"
log "80 extra headers: $n delivered, the last one (x-h-79) too"

# ---- 2. past the limit: an error reason, not a silent cut ----
fetch "http://127.0.0.1:$MANY_PORT/app"
assert_eq 503 "$ST" "too many headers: status"
assert_eq too_many_headers "$(hdr x-auth-error)" "too many headers: reason"
log "120 extra headers: the callout fails with too_many_headers"

stop_weft
log "ok"
