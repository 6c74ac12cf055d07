#!/usr/bin/env bash
# /config_dump never shows a secret: a filter config value tagged !secret
# (the hdr test filter still receives and uses the real value: the backend
# sees it), values under keys named like *token*, *secret*, *password*,
# *private_key* in a filter config, a credential header added by a route,
# and the admin token. Everything else stays visible.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BACKEND_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend sec "$BACKEND_PORT"

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 1s
filter_path: [@FILTER_DIR@]
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
  token: adm-TOKEN-0001
listeners:
  - name: in
    address: 127.0.0.1
    port: @LISTEN_PORT@
    filters:
      - name: hdr
        config:
          request_header: {name: x-api-key, value: !secret "k-TAGGED-0002"}
          response_header: {name: x-visible, value: shown-0003}
      - name: noop
        config:
          upstream_token: t-NAMED-0004
          Client_Secret: {id: c-NESTED-0005}
          db_password: p-NAMED-0006
          tls: {private_key: pk-NAMED-0007, cert: visible-cert-0008}
          keys: [!secret l-LISTED-0009, plain-0010]
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: {prefix: /}
            cluster: b
            request_headers_to_add:
              - {name: authorization, value: "Bearer h-HEADER-0011"}
              - {name: x-trace, value: visible-0012}
clusters:
  - name: b
    endpoints: [{address: 127.0.0.1, port: @BACKEND_PORT@}]
YAML
)
start_weft "$CONFIG"

body=$(curl -sS --max-time 5 "http://127.0.0.1:$LISTEN_PORT/x")
assert_contains "$body" "k-TAGGED-0002" "backend sees the !secret header value the filter added"
assert_contains "$body" "h-HEADER-0011" "backend sees the route's authorization header"

dump=$(admin_get /config_dump)
for s in adm-TOKEN-0001 k-TAGGED-0002 t-NAMED-0004 c-NESTED-0005 p-NAMED-0006 pk-NAMED-0007 \
    l-LISTED-0009 h-HEADER-0011; do
    assert_not_contains "$dump" "$s" "/config_dump"
done
for s in shown-0003 visible-cert-0008 plain-0010 visible-0012 '"[redacted]"'; do
    assert_contains "$dump" "$s" "/config_dump"
done
log "$(grep -c redacted <<<"$dump") redacted lines"
stop_weft
