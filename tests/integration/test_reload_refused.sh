#!/usr/bin/env bash
# A reload that fails late is refused as a whole and leaves nothing behind.
# Two workers on config v1 (listener "ingress", cluster "one", access log
# a.log). Three configs, each adding a cluster only it has and an access
# log path of its own, fail after parsing:
#   1. a new listener on a free port, then one on a port another process
#      holds (the second bind fails: the first socket is closed again);
#   2. the same new listener and an access log in a directory that does
#      not exist (open fails after the sockets were bound: closed again);
#   3. a filter whose config_create refuses (after the chain's first
#      filter and the refusing filter itself registered stats).
# For each: one "reload refused" line naming the cause; the refused counter
# goes up; every worker stays on v1 and it keeps serving; no series of the
# refused config appears in /stats/prometheus (its cluster, its filters'
# stats); no file exists at its access log path.
# Then good reloads: v2 adds a listener on a new port (bound by the main
# thread: every worker accepts on it) and a cluster; v3 drops that listener
# again (the port is closed once every worker is on v3). weft's open
# descriptors are back to their v1 count after each refusal and on v3 (no
# socket or file leaked). SIGTERM exits 0.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
BUSY_PORT=$(free_port)
LISTEN_PORT=$(free_port)
NEW_PORT=$(free_port)
FRESH_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend one "$BE_PORT"
start_backend busy "$BUSY_PORT" # holds BUSY_PORT (no SO_REUSEPORT)

# config_text ACCESS_LOG EXTRA_CLUSTER [EXTRA_LISTENER_YAML] [FILTERS_YAML]
config_text() {
    cat <<YAML
workers: 2
drain_timeout: 5s
access_log: { path: $1 }
filter_path: [$FILTER_DIR]
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
${4:-}
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: one }
${3:-}
clusters:
  - name: one
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
    if [[ -n "$2" ]]; then
        cat <<YAML
  - name: $2
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
    fi
}

# extra_listener NAME PORT
extra_listener() {
    cat <<YAML
  - name: $1
    address: 127.0.0.1
    port: $2
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: one }
YAML
}

CONFIG="$TEST_TMP/weft.yaml"
install() {
    cp "$1" "$CONFIG.new"
    mv -f "$CONFIG.new" "$CONFIG"
}
config_text "$TEST_TMP/a.log" "" >"$TEST_TMP/v1.yaml"
config_text "$TEST_TMP/refused-1.log" only_refused_one \
    "$(extra_listener fresh "$FRESH_PORT")
$(extra_listener busy "$BUSY_PORT")" >"$TEST_TMP/r1.yaml"
config_text "$TEST_TMP/no-such-dir/refused-2.log" only_refused_two \
    "$(extra_listener fresh "$FRESH_PORT")" >"$TEST_TMP/r2.yaml"
config_text "$TEST_TMP/refused-3.log" only_refused_three "" "    filters:
      - { name: logphase }
      - name: threadcheck
        config: { report: $TEST_TMP/destroyed.txt, fail: true }" >"$TEST_TMP/r3.yaml"
config_text "$TEST_TMP/a.log" later "$(extra_listener extra "$NEW_PORT")" >"$TEST_TMP/v2.yaml"
config_text "$TEST_TMP/a.log" later >"$TEST_TMP/v3.yaml"
for f in v1 r1 r2 r3 v2 v3; do
    [[ "$f" == r3 ]] && continue # refused by the filter: validate loads it, so it fails there too
    "$WEFT_BIN" --validate -c "$TEST_TMP/$f.yaml" >/dev/null 2>&1 || fail "$f.yaml does not validate"
done
# --validate is pure: it created none of the access logs above.
for f in refused-1.log refused-2.log; do
    [[ ! -e "$TEST_TMP/$f" ]] || fail "--validate created $f"
done

install "$TEST_TMP/v1.yaml"
start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"
wait_workers_at 2 1
[[ "$(http_status "$URL/x")" == 200 ]] || fail "v1 does not serve"

refused0=$(metric 'weft_config_reload_total{result="refused"}')
# weft's listening sockets and open files (not its connections, which
# come and go with the pools): a refusal must leave none behind.
fds() {
    "$PYTHON" - "$WEFT_PID" <<'PY'
import os, sys
pid = sys.argv[1]
listen = set()
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    with open(f) as fh:
        for line in fh.readlines()[1:]:
            col = line.split()
            if col[3] == "0A":
                listen.add(col[9])
n = 0
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        t = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if t.startswith("/") or (t.startswith("socket:[") and t[8:-1] in listen):
        n += 1
print(n)
PY
}
fds_are() { [[ "$(fds)" == "$1" ]]; }
fds0=$(fds)
n=0
# refuse FILE CAUSE LOGPATH SERIES...: SIGHUP with FILE; asserts the refusal.
refuse() {
    local file="$1" cause="$2" logpath="$3" prom s i
    shift 3
    n=$((n + 1))
    install "$TEST_TMP/$file"
    weft_signal HUP
    refused_is() { (($(metric 'weft_config_reload_total{result="refused"}') == refused0 + n)); }
    wait_until 10 "$file: refused counter" refused_is
    assert_eq "$n" "$(grep -c "reload refused" "$WEFT_LOG")" "$file: reload refused lines"
    assert_contains "$(grep "reload refused" "$WEFT_LOG" | tail -n 1)" "$cause" "$file: refusal line"
    workers_at 2 1 || fail "$file: a worker left config v1"
    assert_eq 1 "$(metric 'weft_config_version')" "$file: weft_config_version"
    for ((i = 0; i < 6; i++)); do
        [[ "$(http_status "$URL/x")" == 200 ]] || fail "$file: the old config stopped serving"
    done
    [[ ! -e "$logpath" ]] || fail "$file: the refused config created its access log $logpath"
    wait_until 5 "$file: weft back to $fds0 open descriptors (has $(fds))" fds_are "$fds0"
    # the sockets it bound before failing are closed again
    ! curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$FRESH_PORT/" ||
        fail "$file: port $FRESH_PORT of the refused config accepts"
    prom=$(admin_get /stats/prometheus)
    for s in "$@"; do
        assert_not_contains "$prom" "$s" "$file: /stats/prometheus after the refusal"
    done
    log "$file refused: $(grep "reload refused" "$WEFT_LOG" | tail -n 1 | cut -c1-160)"
}

refuse r1.yaml "cannot listen on 127.0.0.1:$BUSY_PORT" "$TEST_TMP/refused-1.log" \
    only_refused_one 'listener="busy"' 'listener="fresh"'
refuse r2.yaml "access_log: cannot open" "$TEST_TMP/no-such-dir/refused-2.log" \
    only_refused_two 'listener="fresh"'

refuse r3.yaml "refused on purpose" "$TEST_TMP/refused-3.log" \
    only_refused_three weft_filter_logphase weft_filter_threadcheck
[[ ! -e "$TEST_TMP/destroyed.txt" ]] || fail "config_destroy ran for a config that failed config_create"
# The refused configs' access logs went nowhere; v1's still works.
assert_contains "$(cat "$TEST_TMP/a.log")" '"status":200' "v1 access log"

# v2: a new listener, bound by the main thread for every worker.
install "$TEST_TMP/v2.yaml"
weft_signal HUP
wait_workers_at 2 2
prom=$(admin_get /stats/prometheus)
assert_contains "$prom" 'cluster="later"' "/stats/prometheus on v2"
assert_not_contains "$prom" only_refused "/stats/prometheus on v2"
for ((i = 0; i < 10; i++)); do
    [[ "$(http_status "http://127.0.0.1:$NEW_PORT/x")" == 200 ]] || fail "v2: the new listener does not serve"
done
extra=$(metric 'weft_downstream_cx_total{listener="extra"}')
((extra >= 10)) || fail "v2: weft_downstream_cx_total{listener=\"extra\"} is $extra"
# v3: the listener goes; its port closes once every worker runs v3.
install "$TEST_TMP/v3.yaml"
weft_signal HUP
wait_workers_at 2 3
port_closed() { ! curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$NEW_PORT/x"; }
for ((i = 0; i < 6; i++)); do
    port_closed || fail "v3: port $NEW_PORT still accepts"
done
[[ "$(http_status "$URL/x")" == 200 ]] || fail "v3 does not serve"
# v3 has v1's listener and access log again: the sockets of "extra" (the
# main thread's copies and the workers') and v2's access log fd are gone.
wait_until 10 "v3: weft back to $fds0 open descriptors (has $(fds))" fds_are "$fds0"
log "v2 added listener extra (every worker accepts), v3 removed it (port closed)"

stop_weft 15
