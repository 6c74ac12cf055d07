#!/usr/bin/env bash
# Admin server security and limits:
#   without a token: POST /drain without X-Weft-Admin gets 403 and nothing
#   happens (/ready stays LIVE); GET and HEAD /drain get 405; a Host that
#   is not an IP literal or localhost gets 403 (DNS rebinding), on GET and
#   POST; with X-Weft-Admin the drain happens;
#   with a token (token_file): no Authorization, X-Weft-Admin alone, a
#   wrong token and a token prefix get 401 and nothing happens; the right
#   token drains; /config_dump shows the token as "[redacted]", never its
#   value;
#   limits: headers over max_header_bytes and a body over max_body_bytes
#   are refused (400 / 413); a client that drips its request is cut after
#   request_timeout (no answer, connection closed); with max_connections
#   idle connections open, one more gets no answer, and once they are gone
#   the admin answers again.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

H1_RAW="$REPO_ROOT/tests/integration/h1_raw.py"
ADMIN_PORT=$(free_port)

CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
  max_header_bytes: 1KiB
  max_body_bytes: 64
  request_timeout: 1s
  max_connections: 3
YAML
)
A="http://127.0.0.1:$ADMIN_PORT"
start_weft "$CONFIG"

ready_body() { curl -s --max-time 5 "$A/ready" || true; }

# ---- POST without the header: refused, nothing happens ----------------------
assert_eq 403 "$(http_status -X POST "$A/drain")" "POST /drain without X-Weft-Admin"
assert_eq 403 "$(http_status -X POST -H 'Content-Type: text/plain' --data x "$A/drain")" \
    "simple-request POST /drain (what a cross-origin form can send)"
assert_eq 405 "$(http_status "$A/drain")" "GET /drain"
assert_eq 405 "$(http_status -I -H 'X-Weft-Admin: 1' "$A/drain")" "HEAD /drain"
assert_eq 403 "$(http_status -X POST -H 'X-Weft-Admin: 1' -H 'Host: rebind.example:'"$ADMIN_PORT" \
    "$A/drain")" "POST /drain with a DNS name as Host"
assert_eq 403 "$(http_status -H 'Host: rebind.example' "$A/config_dump")" \
    "GET /config_dump with a DNS name as Host"
assert_eq 200 "$(http_status -H "Host: localhost:$ADMIN_PORT" "$A/ready")" "Host: localhost"
assert_eq 200 "$(http_status -H "Host: [::1]:$ADMIN_PORT" "$A/ready")" "Host: [::1]"
assert_contains "$(ready_body)" LIVE "/ready after the refused POSTs"

# ---- limits -------------------------------------------------------------------
big=$(head -c 2000 /dev/zero | tr '\0' a)
code=$(http_status -H "X-Big: $big" "$A/ready")
[[ "$code" == 4* ]] || fail "2000-byte header (max_header_bytes 1KiB) answered $code"
assert_eq 200 "$(http_status -H "X-Small: ${big:0:500}" "$A/ready")" "500-byte header"
assert_eq 413 "$(http_status -X POST -H 'X-Weft-Admin: 1' --data "${big:0:100}" "$A/drain")" \
    "100-byte body (max_body_bytes 64)"
assert_contains "$(ready_body)" LIVE "/ready after the oversize body"

# A client that sends one byte every 200 ms never completes its request:
# it is cut after request_timeout (1 s) without an answer, although every
# byte arrives well within any per-read timeout.
out=$("$PYTHON" "$H1_RAW" "$ADMIN_PORT" 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n' \
    --drip 0.2 --timeout 5)
assert_not_contains "$out" "HTTP/1.1 200" "slow client"
assert_contains "$out" "END CLOSED" "slow client cut"
elapsed=$(sed -n 's/.*elapsed=\([0-9.]*\).*/\1/p' <<<"$out")
awk -v e="$elapsed" 'BEGIN { exit !(e < 15) }' || fail "slow client cut after ${elapsed}s"
log "slow client cut after ${elapsed}s"

# max_connections 3: three idle connections held open (until the test
# releases them, at most 10 s), a fourth gets no answer; after they close
# the admin answers again.
"$PYTHON" - "$ADMIN_PORT" "$TEST_TMP/release" >"$TEST_TMP/hold.out" 2>&1 <<'PY' &
import os, socket, sys, time
port, release = int(sys.argv[1]), sys.argv[2]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
print("held", flush=True)
deadline = time.monotonic() + 10
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.05)
for s in socks:
    s.close()
PY
hold_pid=$!
track_pid "$hold_pid"
wait_until 5 "idle connections opened" grep -q held "$TEST_TMP/hold.out"
code=$(http_status --max-time 2 "$A/ready")
assert_eq 000 "$code" "4th connection with 3 held open (max_connections 3)"
touch "$TEST_TMP/release"
wait "$hold_pid" || true
wait_until 5 "admin answers after the held connections closed" \
    bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 $A/ready) == 200 ]]"

# ---- the header makes POST work ----------------------------------------------
assert_eq 200 "$(http_status -X POST -H 'X-Weft-Admin: 1' "$A/drain")" "POST /drain with X-Weft-Admin"
assert_contains "$(ready_body)" DRAINING "/ready after the POST"
stop_weft

# ---- token ----------------------------------------------------------------------
TOKEN="s3cr3t-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$TOKEN" >"$TEST_TMP/admin.token"
ADMIN_PORT=$(free_port)
A="http://127.0.0.1:$ADMIN_PORT"
CONFIG=$(render_config - <<'YAML'
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
  token_file: admin.token
YAML
)
start_weft "$CONFIG"
assert_eq 401 "$(http_status -X POST "$A/drain")" "POST without Authorization"
assert_eq 401 "$(http_status -X POST -H 'X-Weft-Admin: 1' "$A/drain")" \
    "POST with X-Weft-Admin but no token"
assert_eq 401 "$(http_status -X POST -H 'Authorization: Bearer wrong' "$A/drain")" "wrong token"
assert_eq 401 "$(http_status -X POST -H "Authorization: Bearer ${TOKEN:0:10}" "$A/drain")" \
    "token prefix"
assert_eq 401 "$(http_status -X POST -H "Authorization: Bearer ${TOKEN}x" "$A/drain")" \
    "token plus one byte"
assert_eq 401 "$(http_status -X POST -H "Authorization: Basic $TOKEN" "$A/drain")" "Basic scheme"
assert_contains "$(ready_body)" LIVE "/ready after the refused POSTs"
dump=$(admin_get /config_dump)
assert_not_contains "$dump" "$TOKEN" "/config_dump"
assert_contains "$dump" 'token: "[redacted]"' "/config_dump"
assert_eq 200 "$(http_status -X POST -H "Authorization: Bearer $TOKEN" "$A/drain")" "right token"
assert_contains "$(ready_body)" DRAINING "/ready after the authorized POST"
stop_weft
