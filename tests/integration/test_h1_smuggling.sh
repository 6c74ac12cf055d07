#!/usr/bin/env bash
# Request smuggling and malformed framing (raw sockets): every request below
# must be answered `HTTP/1.1 400` and the connection closed, and no request
# hidden behind it (in its body or pipelined after it, paths /smuggled-*)
# may reach the backend. Requests rejected on their headers must not reach
# the backend at all.
#   CL+TE; two Content-Length (same and different values); "5, 5";
#   Transfer-Encoding gzip,chunked / chunked,gzip / identity; obs-fold;
#   NUL and bare CR in a header value; space before the colon; invalid
#   header name character; oversize and non-hex chunk size; missing Host
#   in HTTP/1.1; two Host headers; a bad chunk terminator; TE in
#   HTTP/1.0; unknown coding "xchunked"; huge and hex Content-Length; bare
#   LF line ends; malformed request lines; a valid pipelined pair after a
#   smuggling attempt.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_h1.sh"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend smug "$BACKEND_PORT" --verbose

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
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: smug
clusters:
  - name: smug
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
)

start_weft "$CONFIG"

FAILURES=()
# The request that must never be processed, sent in the same write.
SMUGGLED='GET /smuggled-%s HTTP/1.1\r\nHost: a\r\n\r\n'

# expect_400_close NAME HEADER_ONLY DATA: DATA (h1_raw escapes; %s in it is
# replaced by NAME) must get exactly one response, 400, then a close.
# HEADER_ONLY=1: the request is bad in its header block, so not even its
# own path (/case-NAME) may reach the backend.
expect_400_close() {
    local name="$1" header_only="$2" data out st
    data="${3//%s/$name}${SMUGGLED//%s/$name}"
    out=$(h1_raw "$LISTEN_PORT" "$data" --timeout 3)
    st=$(status_lines "$out")
    if [[ "$st" != 400 ]]; then
        FAILURES+=("$name: statuses [$st], want [400]")
        log "case $name: statuses [$st]: $(printf '%s' "$out" | head -c 600 | tr '\n' '|')"
    elif [[ "$(end_state "$out")" != CLOSED && "$(end_state "$out")" != RESET ]]; then
        FAILURES+=("$name: connection $(end_state "$out") after the 400, want closed")
    fi
    if ((header_only)); then
        CASES_HEADER_ONLY+=("$name")
    fi
    CASES_ALL+=("$name")
}
CASES_ALL=()
CASES_HEADER_ONLY=()

# CL and TE together.
expect_400_close cl-te 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
expect_400_close te-cl 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n'
# Two Content-Length, same and different values; a list value.
expect_400_close cl-twice-same 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'
expect_400_close cl-twice-diff 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello'
expect_400_close cl-list 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello'
expect_400_close cl-sign 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello'
# Transfer codings weft does not implement, or chunked not last.
expect_400_close te-gzip-chunked 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'
expect_400_close te-chunked-gzip 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'
expect_400_close te-identity 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n'
expect_400_close te-twice 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
# Header syntax.
expect_400_close obs-fold 1 'GET /case-%s HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n'
expect_400_close obs-fold-te 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'
expect_400_close nul-in-value 1 'GET /case-%s HTTP/1.1\r\nHost: a\r\nX-Nul: a\x00b\r\n\r\n'
expect_400_close bare-cr-in-value 1 'GET /case-%s HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n'
expect_400_close space-before-colon 1 'GET /case-%s HTTP/1.1\r\nHost : a\r\n\r\n'
expect_400_close space-before-colon-te 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'
expect_400_close bad-name-char 1 'GET /case-%s HTTP/1.1\r\nHost: a\r\nX(Bad): 1\r\n\r\n'
expect_400_close bad-name-slash 1 'GET /case-%s HTTP/1.1\r\nHost: a\r\nX/Bad: 1\r\n\r\n'
# Chunk sizes.
expect_400_close chunk-size-huge 0 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n'
expect_400_close chunk-size-xyz 0 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n'
expect_400_close chunk-size-negative 0 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n'
expect_400_close chunk-bad-terminator 0 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n'
# Other framing.
expect_400_close te-http10 1 'POST /case-%s HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
expect_400_close te-xchunked 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'
expect_400_close cl-huge 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n'
expect_400_close cl-hex 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello'
expect_400_close bare-lf 1 'GET /case-%s HTTP/1.1\nHost: a\n\n'
expect_400_close bare-lf-header 1 'GET /case-%s HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n'
expect_400_close request-line-double-space 1 'GET  /case-%s HTTP/1.1\r\nHost: a\r\n\r\n'
expect_400_close request-line-extra 1 'GET /case-%s HTTP/1.1 x\r\nHost: a\r\n\r\n'
expect_400_close version-lowercase 1 'GET /case-%s http/1.1\r\nHost: a\r\n\r\n'
# Host.
expect_400_close no-host 1 'GET /case-%s HTTP/1.1\r\nX-A: 1\r\n\r\n'
expect_400_close two-hosts 1 'GET /case-%s HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'

# A smuggling attempt followed by a valid pipelined pair in the same write:
# one 400, then close; neither valid request is processed.
expect_400_close pair 1 'POST /case-%s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-pair-a HTTP/1.1\r\nHost: a\r\n\r\nGET /smuggled-pair-b HTTP/1.1\r\nHost: a\r\n\r\n'

# The same valid pair on its own works (the checks above are not vacuous).
out=$(h1_raw "$LISTEN_PORT" 'GET /valid-a HTTP/1.1\r\nHost: a\r\n\r\nGET /valid-b HTTP/1.1\r\nHost: a\r\n\r\n' --timeout 1)
assert_eq "200 200" "$(status_lines "$out")" "valid pipelined pair"

# The 400 is weft's own reply.
out=$(h1_raw "$LISTEN_PORT" 'GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' --timeout 2)
assert_contains "$(tr '[:upper:]' '[:lower:]' <<<"$out")" "x-weft-reason:" "400 for two Host headers"

sleep 0.3 # let the backend log whatever it received
for name in "${CASES_ALL[@]}"; do
    n=$(backend_seen smug "/smuggled-$name ")
    ((n == 0)) || FAILURES+=("$name: the smuggled request reached the backend")
done
n=$(backend_seen smug "/smuggled-pair-")
((n == 0)) || FAILURES+=("pair: a request pipelined after the smuggling attempt reached the backend")
for name in "${CASES_HEADER_ONLY[@]}"; do
    n=$(backend_seen smug "/case-$name ")
    ((n == 0)) || FAILURES+=("$name: the malformed request itself reached the backend")
done
assert_eq 2 "$(backend_seen smug '/valid-')" "valid pair at the backend"

if ((${#FAILURES[@]})); then
    printf '  %s\n' "${FAILURES[@]}" >&2
    fail "${#FAILURES[@]} smuggling case(s) not rejected as required"
fi

stop_weft 15
