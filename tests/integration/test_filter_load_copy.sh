#!/usr/bin/env bash
# The filter loader's fallback when no memfd can be made (an old kernel, a
# seccomp policy, memfds refused as code), forced with WEFT_FILTER_LOAD=copy
# (the documented ops/test switch): the library is copied into a fresh
# private directory (mode 0700, under $XDG_RUNTIME_DIR, else $TMPDIR),
# dlopen'd from there, and the copy and its directory are removed once
# mapped.
#   - the filter runs (x-filter-version: 1); /proc/<pid>/maps shows the
#     code mapped from "<TMPDIR>/weft-filter.XXXXXX/version.so (deleted)",
#     not from the library's own file; nothing is left in TMPDIR;
#   - the library overwritten in place keeps serving the loaded code, and
#     SIGHUP loads the new code ("reloaded: new code loaded"), again from
#     a private copy that is removed;
#   - an unknown WEFT_FILTER_LOAD value is said in one line and ignored
#     (memfd: maps show /memfd:weft-filter:...).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)
start_backend be "$BE_PORT"

LIBDIR="$TEST_TMP/filters"
mkdir -m 0755 "$LIBDIR"
cp "$FILTER_DIR/version_v1.so" "$LIBDIR/version.so"
RT="$TEST_TMP/rt"
mkdir -m 0700 "$RT"
CONFIG="$TEST_TMP/weft.yaml"
cat >"$CONFIG" <<YAML
workers: 1
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$LIBDIR]
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $LISTEN_PORT
    filters:
      - name: version
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - { match: { prefix: / }, cluster: be }
clusters:
  - name: be
    endpoints: [{ address: 127.0.0.1, port: $BE_PORT }]
YAML
unset XDG_RUNTIME_DIR
WEFT_FILTER_LOAD=copy TMPDIR="$RT" start_weft "$CONFIG"
URL="http://127.0.0.1:$LISTEN_PORT"

fetch "$URL/before"
assert_eq 200 "$ST" "status through the filter loaded from a private directory"
assert_eq 1 "$(hdr x-filter-version)" "x-filter-version"
maps=$(grep 'version.so' "/proc/$WEFT_PID/maps" || true)
grep -Eq "$RT/weft-filter\.[A-Za-z0-9]{6}/version\.so \(deleted\)" <<<"$maps" ||
    fail "the filter's code is not mapped from a removed private copy: $(head -n 3 <<<"$maps")"
assert_not_contains "$maps" "$LIBDIR/version.so" "maps of the library's own file"
assert_eq "" "$(ls -A "$RT")" "what is left in TMPDIR after the load"

cp "$FILTER_DIR/whoami.so" "$LIBDIR/version.so"
for ((i = 0; i < 10; i++)); do
    fetch "$URL/after/$i"
    assert_eq 200 "$ST" "request $i after the overwrite"
    assert_eq 1 "$(hdr x-filter-version)" "x-filter-version of request $i after the overwrite"
done
weft_signal HUP
wait_until 10 "weft logs config v2" grep -q "config v2 loaded" "$WEFT_LOG"
assert_eq 1 "$(grep -c "filter whoami reloaded: new code loaded from $LIBDIR/version.so" "$WEFT_LOG")" \
    "reload line"
new_code() {
    fetch "$URL/check"
    [[ "$ST" == 200 && -z "$(hdr x-filter-version)" && "$(hdr x-peer-tls)" == false ]]
}
wait_until 5 "responses from the new code" new_code
assert_eq "" "$(ls -A "$RT")" "what is left in TMPDIR after the reload"
stop_weft 5

# An unknown value: one line, then the memfd as usual.
WEFT_FILTER_LOAD=bogus start_weft "$CONFIG"
fetch "$URL/memfd"
assert_eq 200 "$ST" "status with WEFT_FILTER_LOAD=bogus"
assert_contains "$(cat "$WEFT_LOG")" "WEFT_FILTER_LOAD=bogus is not memfd or copy: ignored" "the warning"
grep -q 'memfd:weft-filter:version.so' "/proc/$WEFT_PID/maps" ||
    fail "WEFT_FILTER_LOAD=bogus: the filter was not loaded from a memfd"
stop_weft 5
