#!/usr/bin/env bash
# gRPC local replies: a reply weft makes itself for a gRPC request has the
# Trailers-Only shape (HTTP 200, content-type application/grpc,
# grpc-status) and its grpc-message is percent-encoded as the gRPC spec
# says (bytes outside 0x20-0x7E and '%' as %XX), over HTTP/1.1 and h2c.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
DEAD_PORT=$(free_port)
CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 1s
admin: { address: 127.0.0.1, port: @ADMIN_PORT@ }
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /pct/ }
            direct_response: { status: 503, body: "down: 100% \u2713 done" }
          - match: { prefix: /dead/ }
            cluster: dead
clusters:
  - name: dead
    connect_timeout: 200ms
    endpoints:
      - { address: 127.0.0.1, port: @DEAD_PORT@ }
YAML
)
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

grpc_head() { # URL [curl args...]: the response head of a gRPC POST
    local url="$1"
    shift
    curl -s -D - -o /dev/null --max-time 5 -X POST -H 'content-type: application/grpc' \
        -H 'te: trailers' --data-binary '' "$@" "$url" | tr -d '\r'
}
field() { awk -v k="$1" 'BEGIN { IGNORECASE = 1 } index(tolower($0), tolower(k) ":") == 1 { sub(/^[^:]*: ?/, ""); print }' <<<"$2"; }

for proto in http1.1 http2-prior-knowledge; do
    head=$(grpc_head "$URL/pct/x" "--$proto")
    assert_contains "$head" " 200" "$proto: Trailers-Only status line"
    assert_eq "application/grpc" "$(field content-type "$head")" "$proto: content-type"
    assert_eq 14 "$(field grpc-status "$head")" "$proto: grpc-status for 503 (UNAVAILABLE)"
    assert_eq "down: 100%25 %E2%9C%93 done" "$(field grpc-message "$head")" \
        "$proto: grpc-message percent-encoded"
    head=$(grpc_head "$URL/dead/x" "--$proto")
    assert_eq 14 "$(field grpc-status "$head")" "$proto: grpc-status for a dead upstream"
    assert_eq "upstream_connect_failure" "$(field grpc-message "$head")" "$proto: plain message unchanged"
done
log "gRPC local replies: Trailers-Only, grpc-message percent-encoded over HTTP/1.1 and h2c"
stop_weft 5
