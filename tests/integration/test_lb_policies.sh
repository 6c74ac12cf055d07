#!/usr/bin/env bash
# Load-balancing policies, observed through the x-backend header of the
# answers (one worker, so one balancer state).
#   round_robin, weights a:b:c = 1:1:2   400 requests -> 100/100/200 (+-2)
#   random over a, b, c                  300 requests -> each 60..140
#   least_request over a and slow (+200ms), 4 concurrent clients -> a
#                                        serves the large majority
#   peak_ewma over a and slow (+200ms)   sequential -> slow almost never
#   ring_hash on header x-user           a user always lands on one backend;
#                                        30 users use all three backends
#   ring_hash on cookie session          same, keyed by the cookie
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

A_PORT=$(free_port)
B_PORT=$(free_port)
C_PORT=$(free_port)
SLOW_PORT=$(free_port)
LISTEN_PORT=$(free_port)
# shellcheck disable=SC2034 # read by render_config through @ADMIN_PORT@
ADMIN_PORT=$(free_port)

start_backend a "$A_PORT"
start_backend b "$B_PORT"
start_backend c "$C_PORT"
start_backend slow "$SLOW_PORT" --latency-ms 200

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
          - { match: { prefix: /rr/ }, cluster: rr, prefix_rewrite: / }
          - { match: { prefix: /random/ }, cluster: random, prefix_rewrite: / }
          - { match: { prefix: /lr/ }, cluster: lr, prefix_rewrite: / }
          - { match: { prefix: /ewma/ }, cluster: ewma, prefix_rewrite: / }
          - { match: { prefix: /rh-header/ }, cluster: rh_header, prefix_rewrite: / }
          - { match: { prefix: /rh-cookie/ }, cluster: rh_cookie, prefix_rewrite: / }
clusters:
  - name: rr
    lb_policy: round_robin
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@, weight: 1 }
      - { address: 127.0.0.1, port: @B_PORT@, weight: 1 }
      - { address: 127.0.0.1, port: @C_PORT@, weight: 2 }
  - name: random
    lb_policy: random
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @B_PORT@ }
      - { address: 127.0.0.1, port: @C_PORT@ }
  - name: lr
    lb_policy: least_request
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @SLOW_PORT@ }
  - name: ewma
    lb_policy: peak_ewma
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @SLOW_PORT@ }
  - name: rh_header
    lb_policy: ring_hash
    ring_hash: { hash_on: header, name: x-user }
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @B_PORT@ }
      - { address: 127.0.0.1, port: @C_PORT@ }
  - name: rh_cookie
    lb_policy: ring_hash
    ring_hash: { hash_on: cookie, name: session }
    endpoints:
      - { address: 127.0.0.1, port: @A_PORT@ }
      - { address: 127.0.0.1, port: @B_PORT@ }
      - { address: 127.0.0.1, port: @C_PORT@ }
YAML
)

start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

# count FILE NAME: answers in FILE that are 200 from backend NAME.
count() { awk -v n="$2" '$2 == "200" && $3 == n' "$1" | wc -l; }
# all_ok FILE WHAT: every request in FILE got a 200.
all_ok() {
    local bad
    bad=$(awk '$2 != "200"' "$1" | head -n 3)
    [[ -z "$bad" ]] || fail "$2: non-200 answers: $bad"
}
# within N LO HI WHAT
within() { (($1 >= $2 && $1 <= $3)) || fail "$4: $1 not in [$2, $3]"; }

# round_robin 1:1:2 over one keep-alive connection.
out="$TEST_TMP/rr.txt"
rqloop "$URL/rr/x" --count 400 >"$out"
all_ok "$out" "round_robin"
na=$(count "$out" a) nb=$(count "$out" b) nc=$(count "$out" c)
log "round_robin 1:1:2 over 400: a=$na b=$nb c=$nc"
within "$na" 98 102 "round_robin weight 1 (a)"
within "$nb" 98 102 "round_robin weight 1 (b)"
within "$nc" 198 202 "round_robin weight 2 (c)"
# Smooth: c never gets three in a row, a and b never two in a row.
runs=$(awk '{ if ($3 == p) r++; else r = 1; p = $3; if (r > m[$3]) m[$3] = r }
    END { printf "%d %d %d", m["a"], m["b"], m["c"] }' "$out")
assert_eq "1 1 2" "$runs" "round_robin longest runs (a b c): smooth weighted order"

# random.
out="$TEST_TMP/random.txt"
rqloop "$URL/random/x" --count 300 >"$out"
all_ok "$out" "random"
na=$(count "$out" a) nb=$(count "$out" b) nc=$(count "$out" c)
log "random over 300: a=$na b=$nb c=$nc"
within "$na" 60 140 "random share of a"
within "$nb" 60 140 "random share of b"
within "$nc" 60 140 "random share of c"
# Not a fixed rotation: some backend repeats back to back.
repeats=$(awk '$3 == p { r++ } { p = $3 } END { print r + 0 }' "$out")
((repeats > 30)) || fail "random: only $repeats back-to-back repeats in 300 (looks like a rotation)"

# least_request: 4 concurrent clients for 2 s; slow holds requests 200ms.
out="$TEST_TMP/lr.txt"
rqloop "$URL/lr/x" --duration 2 --concurrency 4 --interval-ms 5 >"$out"
all_ok "$out" "least_request"
na=$(count "$out" a) ns=$(count "$out" slow)
log "least_request: a=$na slow=$ns"
((na + ns >= 40)) || fail "least_request: only $((na + ns)) requests in 2 s"
((ns * 10 <= na + ns)) || fail "least_request: slow served $ns of $((na + ns)) (expected at most 10%)"

# peak_ewma: sequential requests; slow adds 200ms to every answer.
out="$TEST_TMP/ewma.txt"
rqloop "$URL/ewma/x" --count 60 >"$out"
all_ok "$out" "peak_ewma"
na=$(count "$out" a) ns=$(count "$out" slow)
log "peak_ewma over 60: a=$na slow=$ns"
((ns <= 6)) || fail "peak_ewma: slow served $ns of 60 (expected at most 6)"

# ring_hash: USERS users, REPEAT requests each, interleaved (u0 u1 ... u29
# u0 ...). Prints per user the set of backends it saw; each must be one.
USERS=30 REPEAT=5
# ring_check WHAT FILE: asserts stickiness and spread.
ring_check() {
    local what="$1" file="$2" per_user used
    all_ok "$file" "$what"
    per_user=$(awk -v u="$USERS" '{ k = (NR - 1) % u; if (!((k, $3) in seen)) { seen[k, $3] = 1; n[k]++ } }
        END { for (k = 0; k < u; k++) if (n[k] != 1) printf "u%d:%d ", k, n[k] }' "$file")
    [[ -z "$per_user" ]] || fail "$what: users seen on more than one backend: $per_user"
    used=$(awk '{ print $3 }' "$file" | sort -u | tr '\n' ' ')
    log "$what: $USERS users x $REPEAT sticky, backends used: $used"
    assert_eq "a b c " "$used" "$what: backends used by $USERS users"
}
out="$TEST_TMP/rh-header.txt"
rqloop "$URL/rh-header/x" --count $((USERS * REPEAT)) --mod "$USERS" --header 'x-user: user-{m}' >"$out"
ring_check "ring_hash header x-user" "$out"
out="$TEST_TMP/rh-cookie.txt"
rqloop "$URL/rh-cookie/x" --count $((USERS * REPEAT)) --mod "$USERS" \
    --header 'Cookie: theme=dark; session=sess-{m}; lang=en' >"$out"
ring_check "ring_hash cookie session" "$out"
# The same user over new connections still lands on the same backend.
rqloop "$URL/rh-header/x" --count 10 --new-conn --header 'x-user: user-7' >"$TEST_TMP/rh-u7.txt"
all_ok "$TEST_TMP/rh-u7.txt" "ring_hash user-7 over new connections"
assert_eq 1 "$(awk '{ print $3 }' "$TEST_TMP/rh-u7.txt" | sort -u | wc -l)" \
    "ring_hash: backends seen by user-7 over new connections"
# Requests without the hash key are still served.
rqloop "$URL/rh-header/x" --count 10 >"$TEST_TMP/rh-nokey.txt"
all_ok "$TEST_TMP/rh-nokey.txt" "ring_hash without the x-user header"

stop_weft 15
