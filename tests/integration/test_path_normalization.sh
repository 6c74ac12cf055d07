#!/usr/bin/env bash
# Request path normalization before routing, over HTTP/1.1 (curl
# --path-as-is) and HTTP/2 (h2_get.py sends :path untouched). Routes:
# /public/ -> backend "pub", /admin -> a direct 403, / -> backend "other".
#   A request that climbs out of /public/ with dot segments, encoded dots
#   (%2e%2e, %2E%2e) is routed as its normalized path (the /admin route,
#   or "other"), and the upstream gets the normalized path; unreserved
#   escapes are decoded (%7e), the query is untouched; ".." above the root
#   and invalid escapes get 400 with x-weft-reason; %2F is kept by default;
#   merge_slashes + escaped_slashes reject, unescape_and_redirect (307)
#   and normalize_path: false on other listeners.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

H2_GET="$REPO_ROOT/tests/integration/h2_get.py"
PUB_PORT=$(free_port)
OTHER_PORT=$(free_port)
P_DEF=$(free_port)
P_STRICT=$(free_port)
P_REDIR=$(free_port)
P_OFF=$(free_port)
ADMIN_PORT=$(free_port)
start_backend pub "$PUB_PORT"
start_backend other "$OTHER_PORT"

vhosts='
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: {prefix: /public/}
            cluster: pub
          - match: {prefix: /admin}
            direct_response: {status: 403, body: "admin route"}
          - match: {prefix: /}
            cluster: other'
CONFIG=$(render_config - <<YAML
workers: 1
drain_timeout: 1s
admin: {address: 127.0.0.1, port: @ADMIN_PORT@}
listeners:
  - name: def
    address: 127.0.0.1
    port: @P_DEF@$vhosts
  - name: strict
    address: 127.0.0.1
    port: @P_STRICT@
    merge_slashes: true
    escaped_slashes: reject$vhosts
  - name: redir
    address: 127.0.0.1
    port: @P_REDIR@
    escaped_slashes: unescape_and_redirect$vhosts
  - name: off
    address: 127.0.0.1
    port: @P_OFF@
    normalize_path: false$vhosts
clusters:
  - name: pub
    endpoints: [{address: 127.0.0.1, port: @PUB_PORT@}]
  - name: other
    endpoints: [{address: 127.0.0.1, port: @OTHER_PORT@}]
YAML
)
start_weft "$CONFIG"

# h1 PORT PATH: "<status> <x-backend or -> <path the backend saw or ->
# <x-weft-reason or ->"
h1() {
    local out
    out=$(curl -s --path-as-is --max-time 5 -D - "http://127.0.0.1:$1$2" | tr -d '\r' || true)
    summarize "$out" HTTP/
}
h2() {
    local out
    out=$("$PYTHON" "$H2_GET" "$1" "$2" 2>&1 || true)
    summarize "$out" STATUS
}
summarize() {
    local out="$1" status backend path reason
    status=$(awk -v k="$2" 'index($0, k) == 1 { print $2; exit }' <<<"$out")
    backend=$(awk -F': ' 'tolower($1) == "x-backend" { print $2; exit }' <<<"$out")
    reason=$(awk -F': ' 'tolower($1) == "x-weft-reason" { print $2; exit }' <<<"$out")
    path=$(grep -o '"path": *"[^"]*"' <<<"$out" | head -1 | sed 's/.*: *"//; s/"$//' || true)
    query=$(grep -o '"query": *"[^"]*"' <<<"$out" | head -1 | sed 's/.*: *"//; s/"$//' || true)
    echo "${status:-none} ${backend:--} ${path:--}${query:+?$query} ${reason:--}"
}

# expect PROTO PORT PATH WANT
expect() {
    local got
    got=$("$1" "$2" "$3")
    [[ "$got" == "$4" ]] || fail "$1 $3 (port $2): got [$got], want [$4]"
}

for proto in h1 h2; do
    log "$proto"
    expect $proto "$P_DEF" /public/a "200 pub /public/a -"
    expect $proto "$P_DEF" /public/../admin/x "403 - - -"
    expect $proto "$P_DEF" /public/%2e%2e/admin/x "403 - - -"
    expect $proto "$P_DEF" /public/%2E%2e/admin "403 - - -"
    expect $proto "$P_DEF" /public/%2E%2e/ "200 other / -"
    expect $proto "$P_DEF" /public/x/../../secret "200 other /secret -"
    expect $proto "$P_DEF" /public/a/./b "200 pub /public/a/b -"
    expect $proto "$P_DEF" "/public/%7euser?q=%2e%2e/../x" "200 pub /public/~user?q=%2e%2e/../x -"
    expect $proto "$P_DEF" /public/a%2Fb "200 pub /public/a%2Fb -"
    expect $proto "$P_DEF" /public/a%2fb%5c "200 pub /public/a%2Fb%5C -"
    expect $proto "$P_DEF" /public//a "200 pub /public//a -"
    expect $proto "$P_DEF" /.. "400 - - invalid_path_dot_segments"
    expect $proto "$P_DEF" /public/../../etc/passwd "400 - - invalid_path_dot_segments"
    expect $proto "$P_DEF" /public/%zz "400 - - invalid_path_encoding"
    expect $proto "$P_STRICT" /public//a///b "200 pub /public/a/b -"
    expect $proto "$P_STRICT" //public/a "200 pub /public/a -"
    expect $proto "$P_STRICT" /public/a%2fb "400 - - escaped_slash_in_path"
    expect $proto "$P_STRICT" /public/a%5Cb "400 - - escaped_slash_in_path"
    expect $proto "$P_REDIR" /public/a/%2e%2e/b "200 pub /public/b -"
    expect $proto "$P_REDIR" "/public/a%2Fb?x=1" "307 - - path_redirect"
    expect $proto "$P_OFF" /public/a/./b "200 pub /public/a/./b -"
done
loc=$(curl -s --path-as-is -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$P_REDIR/public/a%2F..%2Fb?x=1")
assert_eq "http://127.0.0.1:$P_REDIR/public/b?x=1" "$loc" "Location of the unescape_and_redirect answer"
stop_weft
