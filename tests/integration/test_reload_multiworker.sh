#!/usr/bin/env bash
# Hot reload under load, two workers. wrk runs from before the first
# reload until after the last (load_stop fails if it ended earlier) while
# the config file is switched between two valid versions and SIGHUP is
# sent 6 times:
#   A: route to backend "one", response header x-weft-cfg: A
#   B: route to backend "two", response header x-weft-cfg: B
# Asserts: after each reload EVERY worker runs the new version
# (weft_worker_config_version{worker="0"} and {worker="1"}, not a few
# connections SO_REUSEPORT may send to one worker), and answers follow the
# file (header and x-backend); wrk saw no non-2xx answer and no socket
# error; a broken file on SIGHUP is refused (log line,
# weft_config_reload_total{result="refused"} + 1) while the previous config
# keeps serving on every worker; SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

command -v wrk >/dev/null || fail "wrk is not installed"

ONE_PORT=$(free_port)
TWO_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend one "$ONE_PORT"
start_backend two "$TWO_PORT"

# config_text CFG CLUSTER: a complete config; CFG is the x-weft-cfg value.
config_text() {
    cat <<YAML
workers: 2
drain_timeout: 5s
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
          - name: all
            match: { prefix: / }
            cluster: $2
            response_headers_to_add:
              - { name: x-weft-cfg, value: "$1" }
clusters:
  - name: one
    endpoints:
      - address: 127.0.0.1
        port: $ONE_PORT
  - name: two
    endpoints:
      - address: 127.0.0.1
        port: $TWO_PORT
YAML
}

CONFIG="$TEST_TMP/weft.yaml"
# install_config FILE: replaces the live config file atomically (rename).
install_config() {
    cp "$1" "$CONFIG.new"
    mv -f "$CONFIG.new" "$CONFIG"
}
config_text A one >"$TEST_TMP/a.yaml"
config_text B two >"$TEST_TMP/b.yaml"
# Broken: the route names a cluster that does not exist.
config_text C nosuchcluster >"$TEST_TMP/bad.yaml"
"$WEFT_BIN" --validate -c "$TEST_TMP/a.yaml" >/dev/null 2>&1 || fail "config A does not validate"
"$WEFT_BIN" --validate -c "$TEST_TMP/b.yaml" >/dev/null 2>&1 || fail "config B does not validate"
if "$WEFT_BIN" --validate -c "$TEST_TMP/bad.yaml" >/dev/null 2>&1; then
    fail "the broken config validates"
fi

install_config "$TEST_TMP/a.yaml"
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# served_by: prints "<x-weft-cfg>/<x-backend>" of one GET ("none" when no
# 200 answer).
served_by() {
    local hdr
    hdr=$(curl -s --max-time 5 -D - -o /dev/null "$URL/who" | tr -d '\r' | tr '[:upper:]' '[:lower:]') || true
    if [[ "$hdr" != "http/1.1 200"* ]]; then
        echo none
        return
    fi
    printf '%s/%s\n' "$(awk -F': ' '$1 == "x-weft-cfg" { print $2 }' <<<"$hdr")" \
        "$(awk -F': ' '$1 == "x-backend" { print $2 }' <<<"$hdr")"
}
assert_eq "a/one" "$(served_by)" "served by config A at start"
WORKERS=2
workers_at "$WORKERS" 1 || fail "weft_worker_config_version: not every worker on v1 at start"

# served_by_is WANT: true when 5 GETs in a row are served by WANT.
served_by_is() {
    local i
    for ((i = 0; i < 5; i++)); do
        [[ "$(served_by)" == "$1" ]] || return 1
    done
}

ok0=$(metric 'weft_config_reload_total{result="ok"}')
refused0=$(metric 'weft_config_reload_total{result="refused"}')

# Load: wrk, one thread, 10 connections, until load_stop.
load_start "$TEST_TMP/wrk.out" -t1 -c10 --timeout 3s "$URL/load"
sleep 0.3

RELOADS=6
for ((i = 1; i <= RELOADS; i++)); do
    if ((i % 2)); then
        install_config "$TEST_TMP/b.yaml"
        want="b/two"
    else
        install_config "$TEST_TMP/a.yaml"
        want="a/one"
    fi
    weft_signal HUP
    wait_workers_at "$WORKERS" "$((1 + i))"
    served_by_is "$want" || fail "reload $i: every worker on v$((1 + i)) but not served by $want"
    sleep 0.3
done
log "$RELOADS reloads under load, each reached every worker"

load_stop
wrk_out=$(cat "$TEST_TMP/wrk.out")
log "wrk: $(grep -E 'requests in|Requests/sec' <<<"$wrk_out" | tr -s ' ' | tr '\n' ' ')"
assert_contains "$wrk_out" "requests in" "wrk output"
assert_not_contains "$wrk_out" "Non-2xx or 3xx responses" "wrk output (reloads under load)"
assert_not_contains "$wrk_out" "Socket errors" "wrk output (reloads under load)"
total=$(awk '/requests in/ { print $1 }' <<<"$wrk_out")
((total > 100)) || fail "wrk completed only $total requests across the reloads"

ok1=$(metric 'weft_config_reload_total{result="ok"}')
assert_eq "$((ok0 + RELOADS))" "$ok1" 'weft_config_reload_total{result="ok"}'
assert_eq "$((1 + RELOADS))" "$(metric 'weft_config_version')" "weft_config_version"

# The last valid config was A (RELOADS is even). A broken file is refused.
assert_eq "a/one" "$(served_by)" "served by config A before the bad reload"
install_config "$TEST_TMP/bad.yaml"
weft_signal HUP
wait_until 5 "weft logs the refused reload" grep -q "reload refused" "$WEFT_LOG"
assert_contains "$(grep "reload refused" "$WEFT_LOG")" nosuchcluster "reload refused log line"
refused_is() { (($(metric 'weft_config_reload_total{result="refused"}') == $1)); }
wait_until 5 "refused counter increments" refused_is "$((refused0 + 1))"
assert_eq "$ok1" "$(metric 'weft_config_reload_total{result="ok"}')" "ok reloads after the refused one"
assert_eq "$((1 + RELOADS))" "$(metric 'weft_config_version')" "weft_config_version after the refused reload"
workers_at "$WORKERS" "$((1 + RELOADS))" || fail "a worker left v$((1 + RELOADS)) on the refused reload"
for ((i = 0; i < 10; i++)); do
    assert_eq "a/one" "$(served_by)" "served by the old config after the refused reload"
done
kill -0 "$WEFT_PID" 2>/dev/null || fail "weft died on the bad reload"

# A good file after the bad one is picked up again.
install_config "$TEST_TMP/b.yaml"
weft_signal HUP
wait_workers_at "$WORKERS" "$((2 + RELOADS))"
served_by_is "b/two" || fail "not served by b/two after the reload that followed the refused one"

stop_weft 15
