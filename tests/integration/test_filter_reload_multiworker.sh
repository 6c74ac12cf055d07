#!/usr/bin/env bash
# Live swap of a filter library under load, two workers. The config loads
# the filter "version" from ./current.so, a COPY of version_v1.so (adds
# x-filter-version: 1). While wrk runs, version_v2.so is copied
# over current.so (temp file + mv: a new inode at the same path) and weft
# gets SIGHUP. Asserts:
#   - wrk saw no non-2xx answer and no socket error;
#   - every worker runs config v2 (weft_worker_config_version{worker=...});
#   - a sampler loop saw x-filter-version 1 before the swap, only 2 once
#     every worker was on v2, and never a failed request;
#   - wrk ran from before the swap until after every worker switched;
#   - weft logged the load and the reload, and after the load ended the
#     old library is unloaded: the debug line "filter library
#     .../current.so unloaded", and /proc/<pid>/maps holds one private
#     copy (memfd) of current.so, never the file itself;
#   - SIGTERM exits 0 (sanitizers clean).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

command -v wrk >/dev/null || fail "wrk is not installed"

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"

cp "$FILTER_DIR/version_v1.so" "$TEST_TMP/current.so"
old_ino=$(stat -c %i "$TEST_TMP/current.so")
CONFIG="$TEST_TMP/weft.yaml"
cat >"$CONFIG" <<YAML
workers: 2
drain_timeout: 5s
allow_filter_paths: true
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: version
        path: ./current.so
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
start_weft "$CONFIG" --log-level debug
URL="http://127.0.0.1:$LISTEN_PORT"

fetch "$URL/first"
assert_eq 200 "$ST" "status before the swap"
assert_eq 1 "$(hdr x-filter-version)" "x-filter-version before the swap"

# Sampler: one request every ~20 ms on a new connection (so both workers
# are sampled), "<seq> <status> <x-filter-version>" per line. It runs until
# told to stop and has taken at least 25 samples (a loaded machine makes
# each sample slow: the count, not the time, is what the test needs).
SAMPLES="$TEST_TMP/samples.txt"
: >"$SAMPLES"
(
    i=0
    while [[ ! -f "$TEST_TMP/stop-sampler" ]] || ((i < 25)); do
        i=$((i + 1))
        out=$(curl -s -o /dev/null -D - --max-time 5 "$URL/sample/$i" | tr -d '\r' || true)
        st=$(awk 'NR == 1 { print $2 }' <<<"$out")
        v=$(awk -F': ' 'tolower($1) == "x-filter-version" { print $2 }' <<<"$out")
        echo "$i ${st:-000} ${v:--}" >>"$SAMPLES"
        sleep 0.02
    done
) &
SAMPLER_PID=$!
track_pid "$SAMPLER_PID"

workers_at 2 1 || fail "not every worker on config v1 at start"
load_start "$TEST_TMP/wrk.out" -t1 -c10 --timeout 3s "$URL/load"
sleep 1.5

# The swap: a new file (new inode) renamed over current.so, then SIGHUP.
cp "$FILTER_DIR/version_v2.so" "$TEST_TMP/current.so.tmp"
mv -f "$TEST_TMP/current.so.tmp" "$TEST_TMP/current.so"
new_ino=$(stat -c %i "$TEST_TMP/current.so")
[[ "$old_ino" != "$new_ino" ]] || fail "the swapped file kept inode $old_ino"
swap_seq=$(wc -l <"$SAMPLES")
weft_signal HUP
wait_until 5 "weft logs config v2" grep -q "config v2 loaded" "$WEFT_LOG"
wait_workers_at 2 2
switched_seq=$(wc -l <"$SAMPLES")
log "swap at sample $swap_seq, every worker on v2 by sample $switched_seq"
# Keep sampling (and loading) a little on v2.
sample_after_switch() { (($(wc -l <"$SAMPLES") >= switched_seq + 10)); }
wait_until 60 "10 samples after the switch" sample_after_switch
fetch "$URL/check"
assert_eq 2 "$(hdr x-filter-version)" "x-filter-version once every worker is on v2"

load_stop
wrk_out=$(cat "$TEST_TMP/wrk.out")
log "wrk: $(grep -E 'requests in|Requests/sec' <<<"$wrk_out" | tr -s ' ' | tr '\n' ' ')"
assert_contains "$wrk_out" "requests in" "wrk output"
assert_not_contains "$wrk_out" "Non-2xx or 3xx responses" "wrk output (library swap under load)"
assert_not_contains "$wrk_out" "Socket errors" "wrk output (library swap under load)"
total=$(awk '/requests in/ { print $1 }' <<<"$wrk_out")
((total > 100)) || fail "wrk completed only $total requests across the swap"
touch "$TEST_TMP/stop-sampler"
wait_exit "$SAMPLER_PID" 60

# Samples: all 200; 1 before the swap; 2 after the switch; 1 then 2, never back.
bad=$(awk '$2 != 200' "$SAMPLES" | head -n 3)
[[ -z "$bad" ]] || fail "sampler saw failed requests: $bad"
n_samples=$(wc -l <"$SAMPLES")
((n_samples > 20)) || fail "only $n_samples samples"
pre=$(awk -v s="$swap_seq" '$1 <= s && $3 != 1' "$SAMPLES" | head -n 3)
[[ -z "$pre" ]] || fail "samples before the swap not from version 1: $pre"
post=$(awk -v s="$switched_seq" '$1 > s + 1 && $3 != 2' "$SAMPLES" | head -n 3)
[[ -z "$post" ]] || fail "samples after the switch not from version 2: $post"
((n_samples > switched_seq)) || fail "no sample after the switch"
back=$(awk 'seen2 && $3 == 1 { print; exit } $3 == 2 { seen2 = 1 }' "$SAMPLES")
[[ -z "$back" ]] || fail "a version 1 answer after a version 2 one: $back"
log "sampler: $n_samples requests, all 200, version 1 -> 2"

# The old library goes once the last stream of the old snapshot is gone.
# weft maps private copies (memfds named weft-filter:current.so), never
# the file itself: two copies mapped after the reload, one in the end.
assert_eq 1 "$(grep -c "filter version loaded from $TEST_TMP/current.so" "$WEFT_LOG")" "first load logged"
assert_eq 1 "$(grep -c "filter version reloaded: new code loaded from $TEST_TMP/current.so" "$WEFT_LOG")" "reload logged"
wait_until 10 "the old library is unloaded (debug log)" \
    grep -q "filter library $TEST_TMP/current.so unloaded" "$WEFT_LOG"
assert_contains "$(cat "$WEFT_LOG")" "filter library $TEST_TMP/current.so: old copy released" "release logged"
copies() { awk '$6 ~ /memfd:weft-filter:current\.so/ { print $5 }' "/proc/$WEFT_PID/maps" | sort -u | grep -c . || true; }
one_copy() { [[ "$(copies)" == 1 ]]; }
wait_until 5 "one private copy left in /proc/$WEFT_PID/maps" one_copy
maps_has_ino() { awk -v i="$1" '$5 == i' "/proc/$WEFT_PID/maps" | grep -q .; }
! maps_has_ino "$old_ino" || fail "the file itself (inode $old_ino) is mapped"
! maps_has_ino "$new_ino" || fail "the file itself (inode $new_ino) is mapped"
assert_eq 1 "$(grep -c "filter library $TEST_TMP/current.so unloaded" "$WEFT_LOG")" "unload lines (only the old one)"
fetch "$URL/last"
assert_eq 2 "$(hdr x-filter-version)" "x-filter-version at the end"
log "old copy unloaded, one private copy mapped"

stop_weft 15
