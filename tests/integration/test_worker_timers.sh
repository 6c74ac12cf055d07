#!/usr/bin/env bash
# SDK 1.1 worker handles, worker and config timers (group "callout"). Two
# workers; the test filter "wtimer" (tests/filters/wtimer.c) starts, in
# worker_create, a worker timer that re-arms every 50 ms and bumps the
# stat "ticks", and in config_create a config timer (50 ms, re-arming) on
# the main thread; it answers every request with its counts per config
# tag (created / destroyed worker contexts, contexts ticking, ticks,
# config ticks, failed handle and thread checks).
#   1. without any traffic both workers' timers tick (worker_create runs
#      when a worker adopts the config) and the stat advances; the config
#      timer fires on the main thread;
#   2. a SIGHUP reload to another tag: both old worker contexts are
#      destroyed (their timers cancelled first: a timer started inside
#      worker_destroy is refused) and the old config's worker and config
#      timers stop; the new config's tick on both workers;
#   3. no failed checks; SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
UNUSED_PORT=$(free_port)
URL="http://127.0.0.1:$LISTEN_PORT"
CONFIG="$TEST_TMP/weft.yaml"

# write_config TAG
write_config() {
    cat >"$CONFIG.tmp" <<YAML
workers: 2
drain_timeout: 2s
filter_path: [$FILTER_DIR]
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: wtimer
        config: { tag: $1, period_ms: 50, config_period_ms: 50 }
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $UNUSED_PORT }]
YAML
    mv -f "$CONFIG.tmp" "$CONFIG"
}

# field TAG NAME: NAME=value of TAG's line in the filter's answer (empty
# when the tag has no line).
field() {
    fetch "$URL/"
    [[ "$ST" == 200 ]] || fail "the filter did not answer (status $ST)"
    awk -v t="tag=$1" -v n="$2" '$1 == t { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == n) print kv[2] } }' <<<"$BD"
}
at_least() { local v; v=$(field "$1" "$2"); [[ -n "$v" ]] && ((v >= $3)); }

write_config 1
start_weft "$CONFIG"
wait_workers_at 2 1 20

# ---- 1. timers tick without traffic, on both workers ----
wait_until 20 "both workers made tag 1's worker context" at_least 1 created 2
wait_until 20 "both workers' timers tick" at_least 1 ticking 2
wait_until 20 "tag 1 ticks" at_least 1 ticks 10
wait_until 20 "tag 1's config timer fires" at_least 1 cfg_ticks 3
assert_eq 2 "$(field 1 created)" "worker contexts of tag 1 (one per worker)"
m1=$(metric 'weft_filter_wtimer_ticks{')
stat_advanced() { (($(metric 'weft_filter_wtimer_ticks{') > m1)); }
wait_until 10 "the ticks stat advances" stat_advanced
log "worker timers tick on both workers (stat $m1 -> more), config timer on the main thread"

# ---- 2. a reload stops the old config's timers ----
write_config 2
weft_signal HUP
wait_until 20 "weft logs config v2" grep -q "config v2 loaded" "$WEFT_LOG"
wait_workers_at 2 2 20
wait_until 20 "both old worker contexts destroyed" at_least 1 destroyed 2
wait_until 20 "the old config destroyed" at_least 1 cfg_destroyed 1
wait_until 20 "the new config ticks on both workers" at_least 2 ticking 2
wait_until 20 "the new config timer fires" at_least 2 cfg_ticks 2
t1=$(field 1 ticks)
c1=$(field 1 cfg_ticks)
n2=$(field 2 ticks)
sleep 0.5 # ten periods: a timer of the old config would have fired
assert_eq "$t1" "$(field 1 ticks)" "tag 1's worker ticks after its worker contexts went"
assert_eq "$c1" "$(field 1 cfg_ticks)" "tag 1's config ticks after its config went"
assert_eq 2 "$(field 1 destroyed)" "tag 1's worker contexts destroyed"
(($(field 2 ticks) > n2)) || fail "tag 2's timers stopped"
log "reload: tag 1 stopped at $t1 worker / $c1 config ticks; tag 2 ticks"

# ---- 3. no failed checks; clean exit ----
assert_eq 0 "$(field 1 bad)" "failed handle/thread checks of tag 1"
assert_eq 0 "$(field 2 bad)" "failed handle/thread checks of tag 2"
stop_weft
log "ok"
