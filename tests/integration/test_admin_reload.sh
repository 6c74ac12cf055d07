#!/usr/bin/env bash
# A reload (SIGHUP) applies the admin section's changes that can be made
# live, and says in one line what needs a restart:
#   - token "one" -> token_file with "two": after SIGHUP, POST /drain with
#     "one" gets 401 and nothing happens; with "two" it drains (200);
#   - max_header_bytes 8KiB -> 1KiB: a 2 KiB header answered 200 before
#     the reload, refused (400) after it;
#   - admin port changed in the file: one log line "needs a restart", the
#     admin keeps answering on the old port, nothing listens on the new one;
#   - a second SIGHUP with the same admin section logs nothing about it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

ADMIN_PORT=$(free_port)
NEW_ADMIN_PORT=$(free_port)
A="http://127.0.0.1:$ADMIN_PORT"
CONFIG="$TEST_TMP/weft.yaml"
write_config() { # PORT TOKEN-LINES MAX-HEADER
    cat >"$CONFIG" <<YAML
workers: 1
drain_timeout: 1s
admin:
  address: 127.0.0.1
  port: $1
$2
  max_header_bytes: $3
YAML
}
write_config "$ADMIN_PORT" "  token: one" 8KiB
start_weft "$CONFIG"
big=$(head -c 2048 /dev/zero | tr '\0' 'x')
assert_eq 200 "$(http_status -H "X-Big: $big" "$A/ready")" "2 KiB header, max_header_bytes 8KiB"
assert_eq 401 "$(http_status -X POST -H 'Authorization: Bearer two' "$A/drain")" "token two before the reload"

printf 'two\n' >"$TEST_TMP/admin.token"
write_config "$NEW_ADMIN_PORT" "  token_file: admin.token" 1KiB
weft_signal HUP
wait_until 10 "config v2" grep -q "config v2 loaded" "$WEFT_LOG"
assert_eq 1 "$(grep -c "admin: address 127.0.0.1:$ADMIN_PORT -> 127.0.0.1:$NEW_ADMIN_PORT needs a restart" "$WEFT_LOG")" \
    "the one line about the address"
assert_eq 1 "$(grep -c "admin: token changed" "$WEFT_LOG")" "the token line"
assert_eq 000 "$(http_status --max-time 2 "http://127.0.0.1:$NEW_ADMIN_PORT/ready")" "the new port (not bound)"
assert_eq 400 "$(http_status -H "X-Big: $big" "$A/ready")" "2 KiB header after max_header_bytes 1KiB"
assert_eq 401 "$(http_status -X POST -H 'Authorization: Bearer one' "$A/drain")" "the old token after the reload"
assert_contains "$(curl -s --max-time 5 "$A/ready")" LIVE "/ready after the refused POST"

weft_signal HUP
wait_until 10 "config v3" grep -q "config v3 loaded" "$WEFT_LOG"
assert_eq 1 "$(grep -c "admin: token changed" "$WEFT_LOG")" "token lines after a reload that keeps it"
assert_eq 2 "$(grep -c "needs a restart" "$WEFT_LOG")" "address lines (said on every reload that asks for it)"

assert_eq 200 "$(http_status -X POST -H 'Authorization: Bearer two' "$A/drain")" "the new token"
assert_contains "$(curl -s --max-time 5 "$A/ready")" DRAINING "/ready after the authorized POST"
stop_weft
