#!/usr/bin/env bash
# Routing: virtual host selection (exact domain, longest *.suffix, "*";
# case-insensitive; Host with a port), first matching route wins, path
# (exact) vs prefix vs regex (anchored), case_sensitive: false, methods,
# header matches (exact/prefix/regex/present/invert), query matches,
# 404 route_not_found with x-weft-reason, redirects (301 default, 302,
# 308; Location from scheme/host/path/prefix_rewrite, query kept),
# direct_response (status and body), prefix_rewrite (query kept),
# host_rewrite, request/response header add/remove (append and replace
# seen in the raw head at the upstream), absolute-form targets.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

HEADS_PORT=$(free_port)

start_backend be "$BACKEND_PORT"
start_head_echo "$HEADS_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: star
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200, body: "vh:star" }
      - name: wild
        domains: ["*.example.com"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200, body: "vh:wild" }
      - name: deep
        domains: ["*.deep.example.com"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200, body: "vh:deep" }
      - name: api
        domains: ["api.example.com", "Other.Example.Org"]
        routes:
          - match: { path: /exact }
            direct_response: { status: 200, body: "r:exact" }
          - match: { prefix: /exact }
            direct_response: { status: 200, body: "r:prefix-exact" }
          - match: { regex: "/re/[0-9]+" }
            direct_response: { status: 200, body: "r:regex" }
          - match: { prefix: /CaseLess, case_sensitive: false }
            direct_response: { status: 200, body: "r:caseless" }
          - match: { regex: "/ri/[a-z]+", case_sensitive: false }
            direct_response: { status: 200, body: "r:regex-caseless" }
          - match: { prefix: /m, methods: [POST, PUT] }
            direct_response: { status: 200, body: "r:methods" }
          - match: { prefix: /m }
            direct_response: { status: 200, body: "r:m-other" }
          - match:
              prefix: /h
              headers: [{ name: X-Exact, exact: "yes" }]
            direct_response: { status: 200, body: "r:h-exact" }
          - match:
              prefix: /h
              headers: [{ name: x-pre, prefix: "ab" }]
            direct_response: { status: 200, body: "r:h-prefix" }
          - match:
              prefix: /h
              headers: [{ name: x-re, regex: "v[0-9]+" }]
            direct_response: { status: 200, body: "r:h-regex" }
          - match:
              prefix: /h
              headers: [{ name: x-present, present: true }]
            direct_response: { status: 200, body: "r:h-present" }
          - match:
              prefix: /h
              headers: [{ name: x-deny, present: true, invert: true }]
            direct_response: { status: 200, body: "r:h-invert" }
          - match: { prefix: /h }
            direct_response: { status: 200, body: "r:h-fallback" }
          - match:
              prefix: /q
              query: [{ name: debug, exact: "1" }]
            direct_response: { status: 200, body: "r:q-exact" }
          - match:
              prefix: /q
              query: [{ name: flag, present: true }]
            direct_response: { status: 200, body: "r:q-present" }
          - match: { prefix: /q }
            direct_response: { status: 200, body: "r:q-none" }
          - match: { prefix: /order }
            direct_response: { status: 200, body: "r:order-first" }
          - match: { path: /order/x }
            direct_response: { status: 200, body: "r:order-second" }
          - match: { path: /redir/default }
            redirect: { host: new.example.com }
          - match: { prefix: /redir/old/ }
            redirect: { prefix_rewrite: /new/, response_code: 308 }
          - match: { path: /redir/https }
            redirect: { scheme: https }
          - match: { path: /redir/path }
            redirect: { path: /elsewhere, response_code: 302 }
          - match: { path: /direct }
            direct_response: { status: 418, body: "short and stout" }
          - match: { path: /direct-empty }
            direct_response: { status: 503 }
          - match: { prefix: /rw/ }
            prefix_rewrite: /rewritten/
            cluster: be
          - match: { prefix: /zhr }
            host_rewrite: internal.svc
            cluster: be
          - match: { prefix: /zhdr }
            cluster: be
            request_headers_to_add:
              - { name: x-added, value: v1 }
              - { name: x-replaced, value: new }
            request_headers_to_remove: [x-drop]
            response_headers_to_add:
              - { name: x-resp-added, value: r1 }
            response_headers_to_remove: [x-backend]
          - match: { prefix: /zapp }
            cluster: heads
            request_headers_to_add:
              - { name: x-multi, value: two, append: true }
              - { name: x-replaced, value: new }
clusters:
  - name: heads
    endpoints:
      - address: 127.0.0.1
        port: @HEADS_PORT@
  - name: be
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"
API="api.example.com"

# get HOST PATH [curl args...]: the response body (with Host: HOST).
get() {
    local host="$1" path="$2"
    shift 2
    curl -sS --max-time 10 -H "Host: $host" "$@" "$URL$path" || fail "GET $host$path: no HTTP answer"
}

# --- virtual hosts ---------------------------------------------------------------
assert_eq "r:exact" "$(get "$API" /exact)" "exact domain"
assert_eq "r:exact" "$(get "API.Example.COM" /exact)" "exact domain, other case"
assert_eq "r:exact" "$(get "$API:8443" /exact)" "exact domain, Host with a port"
assert_eq "r:exact" "$(get "other.example.org" /exact)" "second domain of a vhost (declared mixed case)"
assert_eq "vh:wild" "$(get "www.example.com" /exact)" "*.example.com"
assert_eq "vh:wild" "$(get "www.example.com:81" /exact)" "*.example.com with a port"
assert_eq "vh:deep" "$(get "a.deep.example.com" /)" "longest suffix wins (*.deep.example.com)"
assert_eq "vh:wild" "$(get "deep.example.com" /)" "*.deep.example.com needs a label before the suffix"
assert_eq "vh:star" "$(get "example.com" /)" "*.example.com does not match example.com"
assert_eq "vh:star" "$(get "unknown.test" /)" "fallback *"
assert_eq "vh:star" "$(get "127.0.0.1:$LISTEN_PORT" /)" "IP:port Host"

# --- path matching, order ------------------------------------------------------------
assert_eq "r:exact" "$(get "$API" /exact)" "path /exact"
assert_eq "r:prefix-exact" "$(get "$API" /exactly)" "prefix /exact on /exactly"
assert_eq "r:prefix-exact" "$(get "$API" /exact/sub)" "prefix /exact on /exact/sub"
assert_eq "r:exact" "$(get "$API" '/exact?x=1')" "path match ignores the query"
assert_eq "r:regex" "$(get "$API" /re/123)" "regex /re/[0-9]+"
assert_eq 404 "$(http_status -H "Host: $API" "$URL/re/123/x")" "regex is anchored at the end"
assert_eq 404 "$(http_status -H "Host: $API" "$URL/x/re/123")" "regex is anchored at the start"
assert_eq 404 "$(http_status -H "Host: $API" "$URL/EXACT")" "case-sensitive path by default"
assert_eq "r:caseless" "$(get "$API" /caseless/a)" "case_sensitive false, lower case"
assert_eq "r:caseless" "$(get "$API" /CASELESS/a)" "case_sensitive false, upper case"
assert_eq "r:regex-caseless" "$(get "$API" /RI/AbC)" "case-insensitive regex"
assert_eq "r:order-first" "$(get "$API" /order/x)" "first matching route wins"

# --- methods -------------------------------------------------------------------------
assert_eq "r:methods" "$(get "$API" /m -X POST -d x)" "methods POST"
assert_eq "r:methods" "$(get "$API" /m -X PUT -d x)" "methods PUT"
assert_eq "r:m-other" "$(get "$API" /m)" "GET is not in methods"
assert_eq "r:m-other" "$(get "$API" /m -X DELETE)" "DELETE is not in methods"

# --- header matches --------------------------------------------------------------------
assert_eq "r:h-exact" "$(get "$API" /h -H 'X-Exact: yes')" "header exact"
assert_eq "r:h-fallback" "$(get "$API" /h -H 'X-Exact: yess' -H 'X-Deny: 1')" "header exact, other value"
assert_eq "r:h-fallback" "$(get "$API" /h -H 'X-Exact: YES' -H 'X-Deny: 1')" "header exact is case-sensitive"
assert_eq "r:h-prefix" "$(get "$API" /h -H 'X-Pre: abc')" "header prefix"
assert_eq "r:h-fallback" "$(get "$API" /h -H 'X-Pre: xab' -H 'X-Deny: 1')" "header prefix, no match"
assert_eq "r:h-regex" "$(get "$API" /h -H 'X-Re: v42')" "header regex"
assert_eq "r:h-fallback" "$(get "$API" /h -H 'X-Re: v42x' -H 'X-Deny: 1')" "header regex is anchored"
assert_eq "r:h-present" "$(get "$API" /h -H 'X-Present: anything')" "header present"
assert_eq "r:h-present" "$(get "$API" /h -H 'X-Present;')" "header present with an empty value"
assert_eq "r:h-invert" "$(get "$API" /h)" "inverted present: header absent"
assert_eq "r:h-fallback" "$(get "$API" /h -H 'X-Deny: 1')" "inverted present: header present"

# --- query matches -----------------------------------------------------------------------
assert_eq "r:q-exact" "$(get "$API" '/q?debug=1')" "query exact"
assert_eq "r:q-exact" "$(get "$API" '/q?a=2&debug=1&b')" "query exact among others"
assert_eq "r:q-none" "$(get "$API" '/q?debug=10')" "query exact, other value"
assert_eq "r:q-present" "$(get "$API" '/q?flag')" "query present without a value"
assert_eq "r:q-present" "$(get "$API" '/q?x=1&flag=0')" "query present with a value"
assert_eq "r:q-none" "$(get "$API" '/q?flagx=1')" "query present needs the exact name"
assert_eq "r:q-none" "$(get "$API" /q)" "no query"

# --- no route ------------------------------------------------------------------------------
code=$(curl -sS --max-time 10 -H "Host: $API" -D "$TEST_TMP/nr.hdr" -o /dev/null -w '%{http_code}' \
    "$URL/nothing/here") || fail "GET /nothing/here: no HTTP answer"
assert_eq 404 "$code" "no matching route"
assert_eq "route_not_found" "$(hdr_value "$TEST_TMP/nr.hdr" x-weft-reason)" "404 x-weft-reason"

# --- redirects -------------------------------------------------------------------------------
# redirect_check HOST PATH STATUS LOCATION
redirect_check() {
    local code
    code=$(curl -sS --max-time 10 -H "Host: $1" -D "$TEST_TMP/rd.hdr" -o /dev/null -w '%{http_code}' \
        "$URL$2") || fail "GET $2: no HTTP answer"
    assert_eq "$3" "$code" "redirect status for $1$2"
    assert_eq "$4" "$(hdr_value "$TEST_TMP/rd.hdr" location)" "Location for $1$2"
}
redirect_check "$API" /redir/default 301 "http://new.example.com/redir/default"
redirect_check "$API" '/redir/default?a=1&b=2' 301 "http://new.example.com/redir/default?a=1&b=2"
redirect_check "$API" '/redir/old/rest/of/path?x=y' 308 "http://$API/new/rest/of/path?x=y"
redirect_check "$API:8080" /redir/old/z 308 "http://$API:8080/new/z"
redirect_check "$API" /redir/https 301 "https://$API/redir/https"
redirect_check "$API:80" '/redir/https?k=v' 301 "https://$API/redir/https?k=v"
redirect_check "$API:8080" /redir/https 301 "https://$API:8080/redir/https"
redirect_check "$API" '/redir/path?q=1' 302 "http://$API/elsewhere?q=1"

# --- direct_response -------------------------------------------------------------------------
code=$(curl -sS --max-time 10 -H "Host: $API" -D "$TEST_TMP/dr.hdr" -o "$TEST_TMP/dr.body" -w '%{http_code}' \
    "$URL/direct") || fail "GET /direct: no HTTP answer"
assert_eq 418 "$code" "direct_response status"
assert_eq "short and stout" "$(cat "$TEST_TMP/dr.body")" "direct_response body"
assert_eq 15 "$(hdr_value "$TEST_TMP/dr.hdr" content-length)" "direct_response content-length"
code=$(curl -sS --max-time 10 -H "Host: $API" -o "$TEST_TMP/dr2.body" -w '%{http_code}' "$URL/direct-empty") ||
    fail "GET /direct-empty: no HTTP answer"
assert_eq 503 "$code" "direct_response without a body: status"
assert_eq 0 "$(stat -c %s "$TEST_TMP/dr2.body")" "direct_response without a body: body"

# --- prefix_rewrite, host_rewrite -----------------------------------------------------------
body=$(get "$API" '/rw/a/b?x=1&y=2')
assert_eq "/rewritten/a/b" "$(json_field "$body" path)" "prefix_rewrite path at the backend"
assert_eq "x=1&y=2" "$(json_field "$body" query)" "prefix_rewrite keeps the query"
body=$(get "$API" '/rw/')
assert_eq "/rewritten/" "$(json_field "$body" path)" "prefix_rewrite of the bare prefix"
body=$(get "$API" '/zhr/p?z=9')
assert_eq "internal.svc" "$(json_field "$body" headers host)" "host_rewrite at the backend"
assert_eq "/zhr/p" "$(json_field "$body" path)" "host_rewrite keeps the path"
assert_eq "z=9" "$(json_field "$body" query)" "host_rewrite keeps the query"
body=$(get "$API" '/zhdr')
assert_eq "$API" "$(json_field "$body" headers host)" "Host kept without host_rewrite"

# --- header add/remove ---------------------------------------------------------------------------
body=$(curl -sS --max-time 10 -H "Host: $API" -D "$TEST_TMP/hdr.hdr" -H 'X-Drop: secret' \
    -H 'X-Replaced: old' -H 'X-Keep: k' "$URL/zhdr") || fail "GET /zhdr: no HTTP answer"
assert_eq "v1" "$(json_field "$body" headers x-added)" "request_headers_to_add at the backend"
assert_eq "new" "$(json_field "$body" headers x-replaced)" "request_headers_to_add replaces by default"
assert_eq "<missing>" "$(json_field "$body" headers x-drop)" "request_headers_to_remove at the backend"
assert_eq "k" "$(json_field "$body" headers x-keep)" "other request headers at the backend"
assert_eq "r1" "$(hdr_value "$TEST_TMP/hdr.hdr" x-resp-added)" "response_headers_to_add at the client"
assert_eq "" "$(hdr_value "$TEST_TMP/hdr.hdr" x-backend)" "response_headers_to_remove at the client"
assert_eq "application/json" "$(hdr_value "$TEST_TMP/hdr.hdr" content-type)" "other response headers at the client"
# append: true keeps the client's value and adds one; the default
# replaces it (seen in the raw request head the upstream received).
head=$(curl -sS --max-time 10 -H "Host: $API" -H 'X-Multi: one' -H 'X-Replaced: old' "$URL/zapp") ||
    fail "GET /zapp: no HTTP answer"
head=$(tr -d '\r' <<<"$head" | tr '[:upper:]' '[:lower:]')
multi=$(grep '^x-multi:' <<<"$head" | sed 's/^x-multi: *//' | paste -sd, | sed 's/, */,/g')
assert_eq "one,two" "$multi" "request_headers_to_add append: x-multi values at the upstream"
assert_eq "x-replaced: new" "$(grep '^x-replaced:' <<<"$head")" "request_headers_to_add replace: x-replaced at the upstream"
head=$(curl -sS --max-time 10 -H "Host: $API" "$URL/zapp") || fail "GET /zapp: no HTTP answer"
assert_eq "x-multi: two" "$(tr -d '\r' <<<"$head" | grep -i '^x-multi:' | tr '[:upper:]' '[:lower:]')" \
    "request_headers_to_add append on an absent header"

# --- absolute-form request target ---------------------------------------------------------
# RFC 9112 3.2.2: the target's authority replaces Host, for routing and
# for the Host the upstream sees (both must agree).
out=$(h1_raw "$LISTEN_PORT" "GET http://$API/exact HTTP/1.1\r\nHost: unknown.test\r\n\r\n" --timeout 1)
assert_contains "$out" "BODY 7 r:exact" "absolute-form target routed by its authority"
out=$(h1_raw "$LISTEN_PORT" "GET http://$API/zapp?a=b HTTP/1.1\r\nHost: other.test\r\n\r\n" --timeout 1)
# head_echo_backend answers with the head it received (escaped by h1_raw).
assert_contains "$out" 'BODY' "absolute-form target: response"
body=$(printf '%s\n' "$out" | sed -n 's/^BODY [0-9]* //p')
assert_contains "$(tr '[:upper:]' '[:lower:]' <<<"$body")" "\\r\\nhost: $API\\r\\n" "absolute-form target: Host at the upstream"
assert_contains "$body" 'GET /zapp?a=b HTTP/1.1\r\n' "absolute-form target: origin-form request line at the upstream"

stop_weft 15
