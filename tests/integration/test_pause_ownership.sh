#!/usr/bin/env bash
# Owned pauses (issue 8): an authorization filter waiting on its callout
# cannot be released by an unrelated filter's timer.
# Chain [meddler, authcall]: meddler's 50 ms timer calls
# weft_stream_resume while authcall (after it in the chain) waits on a
# callout to an auth service that answers after 700 ms.
#   - deny (the auth service answers 403): the client gets 403
#     auth_denied, no later than the decision (>= 0.6 s), the backend
#     never sees the request, meddler's resume returned WEFT_ERR_STATE
#     (resume_refused 1, resume_ok 0) and weft logged one line naming
#     both filters;
#   - allow (200): the request goes upstream after the decision, the
#     response carries x-meddler-rc: -3;
#   - tokens: chain [meddler(token_key), tokenpause]: tokenpause publishes
#     its pause's token in metadata; meddler's plain resume is refused
#     (-3), its resume with the token works (0), the same token again is
#     refused (-3): x-meddler-rc "-3 0 -3", the request reaches the backend;
#   - SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

for f in meddler authcall tokenpause; do
    [[ -f "$FILTER_DIR/$f.so" ]] || fail "$f.so not built"
done
BE_PORT=$(free_port)
AUTH_PORT=$(free_port)
P_DENY=$(free_port)
P_ALLOW=$(free_port)
P_TOKEN=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT" --request-log "$TEST_TMP/be-requests.log"
start_backend auth "$AUTH_PORT" --latency-ms 700

listener() { # NAME PORT FILTERS...
    local name="$1" port="$2"
    shift 2
    cat <<YAML
  - name: $name
    address: 127.0.0.1
    port: $port
    filters:
YAML
    local f
    for f in "$@"; do
        echo "      - $f"
    done
    cat <<YAML
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
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$FILTER_DIR]
listeners:
YAML
    listener deny "$P_DENY" "{ name: meddler, config: { delay: 50ms } }" \
        "{ name: authcall, config: { cluster: auth, path: /status/403, timeout: 5s } }"
    listener allow "$P_ALLOW" "{ name: meddler, config: { delay: 50ms } }" \
        "{ name: authcall, config: { cluster: auth, path: /status/200, timeout: 5s } }"
    listener token "$P_TOKEN" "{ name: meddler, config: { delay: 50ms, token_key: tokenpause.token } }" \
        "{ name: tokenpause, config: { timeout: 5s } }"
    cat <<YAML
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
  - name: auth
    endpoints: [{ address: 127.0.0.1, port: $AUTH_PORT }]
YAML
} >"$TEST_TMP/weft.yaml"
start_weft "$TEST_TMP/weft.yaml"

# ---- deny: the unrelated timer must not let the request through
t0=$(date +%s%N)
fetch "http://127.0.0.1:$P_DENY/secret-deny"
t1=$(date +%s%N)
assert_eq 403 "$ST" "deny: status"
assert_eq auth_denied "$(hdr x-weft-reason)" "deny: reason"
elapsed_ms=$(((t1 - t0) / 1000000))
((elapsed_ms >= 600)) || fail "deny: answered after ${elapsed_ms} ms, before the auth decision (700 ms)"
sleep 0.2
if grep -q "secret-deny" "$TEST_TMP/be-requests.log" 2>/dev/null; then
    fail "deny: the request reached the backend without the decision"
fi
assert_eq 1 "$(metric 'weft_filter_meddler_resume_refused{listener="deny"')" "deny: meddler's resume refused"
assert_eq 0 "$(metric 'weft_filter_meddler_resume_ok{listener="deny"')" "deny: meddler's resume never worked"
assert_contains "$(cat "$WEFT_LOG")" "filter meddler: stream_resume: the stream is paused by filter authcall" \
    "deny: the log line names both filters"
log "deny: 403 after ${elapsed_ms} ms, backend untouched, meddler's resume refused"

# ---- allow: upstream only after the decision
t0=$(date +%s%N)
fetch "http://127.0.0.1:$P_ALLOW/fine-allow"
t1=$(date +%s%N)
assert_eq 200 "$ST" "allow: status"
assert_eq -3 "$(hdr x-meddler-rc)" "allow: meddler's resume result"
elapsed_ms=$(((t1 - t0) / 1000000))
((elapsed_ms >= 600)) || fail "allow: answered after ${elapsed_ms} ms, before the auth decision"
grep -q "fine-allow" "$TEST_TMP/be-requests.log" || fail "allow: the backend never saw the request"
log "allow: 200 after ${elapsed_ms} ms (the decision), x-meddler-rc -3"

# ---- tokens: the pausing filter's token resumes, once
fetch "http://127.0.0.1:$P_TOKEN/by-token"
assert_eq 200 "$ST" "token: status"
assert_eq "-3 0 -3" "$(hdr x-meddler-rc)" "token: plain resume, token resume, token again"
grep -q "by-token" "$TEST_TMP/be-requests.log" || fail "token: the backend never saw the request"
assert_eq 1 "$(metric 'weft_filter_meddler_token_ok{listener="token"')" "token: one token resume"
assert_eq 1 "$(metric 'weft_filter_meddler_token_refused{listener="token"')" "token: reuse refused"
log "token: x-meddler-rc '-3 0 -3', request went upstream"

kill -0 "$WEFT_PID" || fail "weft died"
stop_weft 10
