#!/usr/bin/env bash
# A filter library overwritten IN PLACE (cp over the loaded file: same
# inode, new bytes) while weft runs. weft maps a private copy of the file
# (a sealed memfd), so the code it runs never changes under it:
#   - version.so (a copy of version_v1.so, loaded by name from filter_path)
#     is overwritten in place with another build, whoami.so;
#   - requests keep being served by the loaded code (x-filter-version: 1),
#     weft stays up (before the private copy: SIGSEGV, no log line);
#   - SIGHUP loads the new code: the log says "reloaded: new code loaded",
#     responses now carry whoami's x-peer-tls and no x-filter-version, and
#     the old copy is released once its last snapshot is gone;
#   - SIGTERM exits 0 (sanitizers clean).
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
ino=$(stat -c %i "$LIBDIR/version.so")
CONFIG="$TEST_TMP/weft.yaml"
cat >"$CONFIG" <<YAML
workers: 2
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
start_weft "$CONFIG" --log-level debug
URL="http://127.0.0.1:$LISTEN_PORT"

fetch "$URL/before"
assert_eq 200 "$ST" "status before the overwrite"
assert_eq 1 "$(hdr x-filter-version)" "x-filter-version before the overwrite"

# In place: cp truncates and rewrites the same inode.
cp "$FILTER_DIR/whoami.so" "$LIBDIR/version.so"
assert_eq "$ino" "$(stat -c %i "$LIBDIR/version.so")" "inode after cp (in place)"
for ((i = 0; i < 40; i++)); do
    fetch "$URL/after/$i"
    [[ "$ST" == 200 ]] || fail "request $i after the overwrite: status $ST (weft alive: $(kill -0 "$WEFT_PID" 2>/dev/null && echo yes || echo no))"
    assert_eq 1 "$(hdr x-filter-version)" "x-filter-version of request $i after the overwrite"
done
kill -0 "$WEFT_PID" 2>/dev/null || fail "weft died after the overwrite"
log "40 requests after the in-place overwrite: all 200 from the loaded code"

weft_signal HUP
wait_until 10 "weft logs config v2" grep -q "config v2 loaded" "$WEFT_LOG"
assert_eq 1 "$(grep -c "filter whoami reloaded: new code loaded from $LIBDIR/version.so" "$WEFT_LOG")" \
    "reload line"
new_code() {
    local k
    for ((k = 0; k < 4; k++)); do
        fetch "$URL/check"
        [[ "$ST" == 200 && -z "$(hdr x-filter-version)" && "$(hdr x-peer-tls)" == false ]] || return 1
    done
}
wait_until 5 "responses from the new code on both workers" new_code
wait_until 10 "the old copy is released" \
    grep -q "filter library $LIBDIR/version.so: old copy released" "$WEFT_LOG"
log "SIGHUP: new code loaded, old copy released"

stop_weft 15
