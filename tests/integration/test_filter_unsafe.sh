#!/usr/bin/env bash
# Filter libraries that someone other than root and weft's own user could
# change are refused, with one line naming the file and the reason:
#   - a group-writable .so, a world-writable .so, a .so owned by another
#     user (nobody), a .so in a world-writable directory, in a
#     group-writable one, and in one owned by another user: `weft -c` exits
#     2 with that one line;
#   - on SIGHUP, the same library made group-writable refuses the reload
#     (weft_config_reload_total{result="refused"}, "reload refused" line
#     naming the file) and the old config keeps serving; once fixed, the
#     next SIGHUP is accepted;
#   - names, not paths: a filter with `path:` is refused (exit 2, one line
#     pointing at the path) unless the static config says
#     `allow_filter_paths: true`, and then it loads; a name with a '/' or
#     ".." is refused;
#   - SIGTERM exits 0.
# Run as root (as the test suite is): chown to nobody needs it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib_filter.sh"

[[ "$(id -u)" == 0 ]] || fail "needs root (chown to nobody)"
NOBODY=$(id -u nobody)

BE_PORT=$(free_port)
LISTEN_PORT=$(free_port)
ADMIN_PORT=$(free_port)

# config DIR: one listener loading the filter "version" from DIR.
config() {
    cat <<YAML
workers: 1
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: $ADMIN_PORT
filter_path: [$1]
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
}

# case NAME DIR_MODE DIR_OWNER FILE_MODE FILE_OWNER NEEDLE: a fresh
# directory with version.so, modes and owners set, must be refused.
case_refused() {
    local name="$1" dmode="$2" downer="$3" fmode="$4" fowner="$5" needle="$6"
    local d="$TEST_TMP/$name"
    mkdir "$d"
    cp "$FILTER_DIR/version_v1.so" "$d/version.so"
    chmod "$fmode" "$d/version.so"
    chown "$fowner" "$d/version.so"
    chmod "$dmode" "$d"
    chown "$downer" "$d"
    config "$d" >"$TEST_TMP/$name.yaml"
    REFUSE_LOG_LINES=1 expect_refused "$name" "$TEST_TMP/$name.yaml" "$d/version.so" "refused" "$needle"
}

case_refused file_group_writable 0755 0 0664 0 "group-writable (mode 0664)"
case_refused file_world_writable 0755 0 0646 0 "world-writable (mode 0646)"
case_refused file_other_owner 0755 0 0755 "$NOBODY" "owned by uid $NOBODY, neither root nor weft's user"
case_refused dir_world_writable 0777 0 0755 0 "its directory $TEST_TMP/dir_world_writable is world-writable (mode 0777)"
case_refused dir_sticky_world_writable 1777 0 0755 0 "is world-writable (mode 1777)"
case_refused dir_group_writable 0775 0 0755 0 "its directory $TEST_TMP/dir_group_writable is group-writable"
case_refused dir_other_owner 0755 "$NOBODY" 0755 0 "its directory $TEST_TMP/dir_other_owner is owned by uid $NOBODY"

# Names, not paths.
SAFE="$TEST_TMP/safe"
mkdir -m 0755 "$SAFE"
cp "$FILTER_DIR/version_v1.so" "$SAFE/version.so"
by_path() {
    sed "s|      - name: version|      - { name: version, path: $SAFE/version.so }|" <(config "$SAFE")
}
by_path >"$TEST_TMP/by_path.yaml"
grep -q "path: $SAFE/version.so" "$TEST_TMP/by_path.yaml" || fail "by_path config not written"
expect_refused by_path "$TEST_TMP/by_path.yaml" "$TEST_TMP/by_path.yaml:12:32:" 'filter "version": loading by path needs allow_filter_paths: true'
{ echo "allow_filter_paths: true"; by_path; } >"$TEST_TMP/by_path_allowed.yaml"
"$WEFT_BIN" -c "$TEST_TMP/by_path_allowed.yaml" --validate >"$TEST_TMP/by_path_allowed.out" 2>&1 ||
    fail "allow_filter_paths: true did not load by path: $(cat "$TEST_TMP/by_path_allowed.out")"
assert_contains "$(cat "$TEST_TMP/by_path_allowed.out")" "filter version loaded from $SAFE/version.so" "load by allowed path"
for bad in "../safe/version" "safe/version" ".."; do
    sed "s|      - name: version|      - name: \"$bad\"|" <(config "$SAFE") >"$TEST_TMP/badname.yaml"
    expect_refused badname "$TEST_TMP/badname.yaml" "must be 1-48 of [a-z0-9_-]"
done

# A safe library loads; made group-writable, the reload is refused.
start_backend be "$BE_PORT"
LIBDIR="$TEST_TMP/lib"
mkdir -m 0755 "$LIBDIR"
cp "$FILTER_DIR/version_v1.so" "$LIBDIR/version.so"
chmod 0755 "$LIBDIR/version.so"
config "$LIBDIR" >"$TEST_TMP/weft.yaml"
start_weft "$TEST_TMP/weft.yaml"
URL="http://127.0.0.1:$LISTEN_PORT"
fetch "$URL/a"
assert_eq 1 "$(hdr x-filter-version)" "x-filter-version at start"

cp "$FILTER_DIR/version_v2.so" "$LIBDIR/version.so.new"
chmod 0664 "$LIBDIR/version.so.new"
mv "$LIBDIR/version.so.new" "$LIBDIR/version.so"
weft_signal HUP
wait_until 10 "the reload is refused" grep -q "reload refused" "$WEFT_LOG"
line=$(grep "reload refused" "$WEFT_LOG")
assert_contains "$line" "$LIBDIR/version.so: refused: group-writable (mode 0664)" "reload refusal line"
assert_eq 1 "$(metric 'weft_config_reload_total{result="refused"}')" "refused reloads"
for ((i = 0; i < 5; i++)); do
    fetch "$URL/b/$i"
    assert_eq 200 "$ST" "status after the refused reload"
    assert_eq 1 "$(hdr x-filter-version)" "x-filter-version after the refused reload (old config)"
done
log "refused reload: $line"

chmod 0644 "$LIBDIR/version.so"
weft_signal HUP
wait_until 10 "the fixed reload is accepted" grep -q "config v2 loaded" "$WEFT_LOG"
fetch "$URL/c"
assert_eq 2 "$(hdr x-filter-version)" "x-filter-version after the accepted reload"

stop_weft 10
