# lib_drain.sh: the drain tests' weft config (source after lib.sh).
#
# drain_write_config DRAIN_TIMEOUT [ROUTE_TIMEOUT]: a 2-worker config on
# fresh listener and admin ports, /direct answered by weft, everything
# else proxied to cluster "slow" on $BACKEND_PORT (with ROUTE_TIMEOUT as
# the route's timeout when given); sets CONFIG, LISTEN_PORT, ADMIN_PORT,
# URL.
drain_write_config() {
    LISTEN_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    URL="http://127.0.0.1:$LISTEN_PORT"
    CONFIG="$TEST_TMP/weft-$LISTEN_PORT.yaml"
    cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: $1
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: /direct }
            direct_response: { status: 200, body: "ok\n" }
          - match: { prefix: / }
            cluster: slow${2:+
            timeout: $2}
clusters:
  - name: slow
    endpoints: [{ address: 127.0.0.1, port: $BACKEND_PORT }]
YAML
}
