#!/usr/bin/env bash
# Headers weft sets from what it knows, not from what the client claims:
#   X-Forwarded-Proto is "http" on a plaintext listener even when the
#   client sent "https" (HTTP/1.1 and HTTP/2);
#   x-request-id: by default a client's id is replaced by a fresh UUID v4
#   (the backend and the access log see weft's id); on a listener with
#   preserve_external_request_id: true the client's id is kept, and a
#   request without one still gets a UUID.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

H2_GET="$REPO_ROOT/tests/integration/h2_get.py"
BACKEND_PORT=$(free_port)
P_EDGE=$(free_port)
P_TRUST=$(free_port)
ADMIN_PORT=$(free_port)
start_backend fwd "$BACKEND_PORT"

vhosts='
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: {prefix: /}
            cluster: b'
CONFIG=$(render_config - <<YAML
workers: 1
drain_timeout: 1s
admin: {address: 127.0.0.1, port: @ADMIN_PORT@}
access_log: {path: @TEST_TMP@/access.log}
listeners:
  - name: edge
    address: 127.0.0.1
    port: @P_EDGE@$vhosts
  - name: trusted
    address: 127.0.0.1
    port: @P_TRUST@
    preserve_external_request_id: true$vhosts
clusters:
  - name: b
    endpoints: [{address: 127.0.0.1, port: @BACKEND_PORT@}]
YAML
)
start_weft "$CONFIG"

# seen BODY NAME: a request header's value in backend.py's JSON echo
seen() {
    "$PYTHON" -c 'import json, sys
body = sys.stdin.read()
body = body[body.index("{"):]
print(json.loads(body)["headers"].get(sys.argv[1], "<none>"))' "$2" <<<"$1"
}
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# ---- edge listener (defaults) ----------------------------------------------
body=$(curl -sS --max-time 5 -H 'X-Forwarded-Proto: https' -H 'X-Request-Id: client-chosen-1' \
    "http://127.0.0.1:$P_EDGE/a")
assert_eq http "$(seen "$body" x-forwarded-proto)" "X-Forwarded-Proto (h1, client sent https)"
rid=$(seen "$body" x-request-id)
[[ "$rid" =~ $UUID_RE ]] || fail "edge: x-request-id [$rid] is not a fresh UUID v4"
body=$("$PYTHON" "$H2_GET" "$P_EDGE" /a 'x-forwarded-proto:https' 'x-request-id:client-chosen-2')
assert_contains "$body" "STATUS 200" "h2 request"
assert_eq http "$(seen "$body" x-forwarded-proto)" "X-Forwarded-Proto (h2, client sent https)"
rid2=$(seen "$body" x-request-id)
[[ "$rid2" =~ $UUID_RE ]] || fail "edge h2: x-request-id [$rid2] is not a fresh UUID v4"
[[ "$rid" != "$rid2" ]] || fail "two requests got the same id"
wait_until 5 "access log lines" grep -q "$rid2" "$TEST_TMP/access.log"
grep -q "$rid" "$TEST_TMP/access.log" || fail "access log does not carry weft's id $rid"
if grep -q client-chosen "$TEST_TMP/access.log"; then
    fail "access log carries the client's id on the edge listener"
fi

# ---- trusted listener ----------------------------------------------------------
body=$(curl -sS --max-time 5 -H 'X-Forwarded-Proto: https' -H 'X-Request-Id: client-chosen-3' \
    "http://127.0.0.1:$P_TRUST/a")
assert_eq http "$(seen "$body" x-forwarded-proto)" "X-Forwarded-Proto (trusted listener)"
assert_eq client-chosen-3 "$(seen "$body" x-request-id)" "preserved x-request-id"
body=$(curl -sS --max-time 5 "http://127.0.0.1:$P_TRUST/a")
rid=$(seen "$body" x-request-id)
[[ "$rid" =~ $UUID_RE ]] || fail "trusted, no id sent: x-request-id [$rid] is not a UUID v4"
stop_weft
