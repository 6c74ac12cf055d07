#!/usr/bin/env bash
# A custom filter built OUT OF TREE against the INSTALLED SDK, as a user
# would build one, then loaded into weft and driven with curl.
#
#  1. `cmake --install BUILD --prefix $TEST_TMP/prefix` (BUILD is $1; it is
#     configured / built first only when it lacks what the install needs).
#  2. examples/custom_filter is copied to two temp dirs and built there:
#     once with pkg-config + make (`make check` runs its unit test with the
#     SDK test kit), once with CMake find_package(weft-sdk) through
#     CMAKE_PREFIX_PATH (ctest runs the same unit test). Neither build may
#     see the source tree's sdk/ directory.
#  3. Each denylist.so is loaded into weft (by name, its build directory in
#     `filter_path:`): a denied
#     user agent gets 403 + x-weft-reason: denylisted + x-denylist: deny; an
#     allowed one reaches the backend with x-denylist: pass (the backend
#     echoes the request headers) and the response carries x-denylist: pass.
#     Stats, a reload picking up an edited deny-list, and a config error
#     with its position are checked too.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

for tool in cmake make pkg-config curl; do
    command -v "$tool" >/dev/null || fail "$tool is required"
done

# ---- 1. build (if needed) and install the SDK to a temporary prefix -------
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
    log "configuring $BUILD"
    cmake -S "$REPO_ROOT" -B "$BUILD" >"$TEST_TMP/configure.log" 2>&1 ||
        { tail -n 30 "$TEST_TMP/configure.log" >&2; fail "cannot configure $BUILD"; }
fi
if [[ ! -x "$BUILD/bin/weft" || -n "${WEFT_TEST_REBUILD:-}" ]] ||
    ! find "$BUILD" -name 'libweft_filtertest.a' -print -quit | grep -q .; then
    log "building weft and the SDK in $BUILD"
    cmake --build "$BUILD" --target weft weft_filtertest -j "$(nproc)" >"$TEST_TMP/build.log" 2>&1 ||
        { tail -n 30 "$TEST_TMP/build.log" >&2; fail "cannot build $BUILD"; }
fi

PREFIX="$TEST_TMP/prefix"
cmake --install "$BUILD" --prefix "$PREFIX" >"$TEST_TMP/install.log" 2>&1 ||
    { cat "$TEST_TMP/install.log" >&2; fail "cmake --install $BUILD --prefix $PREFIX failed"; }
for f in include/weft/filter.h include/weft/filtertest.h lib/pkgconfig/weft-sdk.pc \
    lib/pkgconfig/weft-filtertest.pc lib/cmake/weft-sdk/weft-sdkConfig.cmake; do
    [[ -f "$PREFIX/$f" ]] || fail "the install lacks $f"
done
# The .pc files keep two versions apart: Version is the SDK release (the
# project's), the `abi` variable the header's WEFT_ABI_MAJOR.WEFT_ABI_MINOR.
PROJECT_VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD/CMakeCache.txt")
HDR_ABI="$(sed -n 's/^#define WEFT_ABI_MAJOR \([0-9]*\)$/\1/p' "$REPO_ROOT/sdk/include/weft/filter.h").$(sed -n 's/^#define WEFT_ABI_MINOR \([0-9]*\)$/\1/p' "$REPO_ROOT/sdk/include/weft/filter.h")"
for pc in weft-sdk weft-filtertest; do
    v=$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --modversion "$pc")
    a=$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --variable=abi "$pc")
    [[ -z "$PROJECT_VERSION" || "$v" == "$PROJECT_VERSION" ]] || fail "$pc: Version $v, expected the project's $PROJECT_VERSION"
    [[ "$a" == "$HDR_ABI" ]] || fail "$pc: abi variable '$a', expected $HDR_ABI from filter.h"
done
log ".pc files: Version $PROJECT_VERSION, abi $HDR_ABI"

# weft itself: the installed binary if the install has one, else the build's.
if [[ -x "$PREFIX/bin/weft" ]]; then
    WEFT_BIN="$PREFIX/bin/weft"
fi

# A sanitized weft build installs a sanitized test kit: the example's unit
# test must then be compiled and linked the same way (same compiler).
SAN=$(sed -n 's/^WEFT_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt")
CC_USED=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
CC_USED="${CC_USED:-cc}"
XFLAGS="-O2 -g"
if [[ -n "$SAN" ]]; then
    XFLAGS="$XFLAGS -fsanitize=$SAN -fno-omit-frame-pointer"
    log "sanitized build ($SAN): example built with $CC_USED $XFLAGS"
fi

copy_example() {
    local dest="$1"
    mkdir -p "$dest"
    cp "$REPO_ROOT"/examples/custom_filter/{denylist.c,test_denylist.c,Makefile,CMakeLists.txt,denylist.txt,weft.yaml} \
        "$dest/"
}

# ---- 2a. pkg-config + make ------------------------------------------------
MK="$TEST_TMP/src-make"
copy_example "$MK"
# a clean environment: only the prefix's .pc files, nothing from the tree
env -u PKG_CONFIG_PATH -u CPATH -u C_INCLUDE_PATH -u LIBRARY_PATH \
    make -C "$MK" PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" CC="$CC_USED" CFLAGS="$XFLAGS" check \
    >"$TEST_TMP/make.log" 2>&1 || { tail -n 40 "$TEST_TMP/make.log" >&2; fail "make check (pkg-config) failed"; }
mk_log=$(cat "$TEST_TMP/make.log")
assert_contains "$mk_log" "-I$PREFIX/lib/pkgconfig/../../include" "make: include path from the installed .pc"
assert_not_contains "$mk_log" "$REPO_ROOT/sdk" "make: the build must not see the source tree"
assert_contains "$mk_log" "[  PASSED  ]" "make check: unit test"
assert_not_contains "$mk_log" "FAILED" "make check: unit test"
SO_MAKE="$MK/denylist.so"
[[ -f "$SO_MAKE" ]] || fail "make produced no denylist.so"
log "pkg-config + make: built $SO_MAKE, unit test passed"

# ---- 2b. CMake find_package(weft-sdk) ---------------------------------------
CM="$TEST_TMP/src-cmake"
copy_example "$CM"
cmake -S "$CM" -B "$CM/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_COMPILER="$CC_USED" \
    -DCMAKE_C_FLAGS="$XFLAGS" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
    >"$TEST_TMP/cmake-configure.log" 2>&1 ||
    { tail -n 40 "$TEST_TMP/cmake-configure.log" >&2; fail "cmake configure (find_package) failed"; }
found_dir=$(sed -n 's/^weft-sdk_DIR:PATH=//p' "$CM/build/CMakeCache.txt")
assert_eq "$PREFIX/lib/cmake/weft-sdk" "$found_dir" "find_package(weft-sdk) location"
cmake --build "$CM/build" >"$TEST_TMP/cmake-build.log" 2>&1 ||
    { tail -n 40 "$TEST_TMP/cmake-build.log" >&2; fail "cmake --build failed"; }
[[ -x "$CM/build/test_denylist" ]] || fail "CMake did not build test_denylist (test kit not found?)"
ctest --test-dir "$CM/build" --output-on-failure >"$TEST_TMP/ctest.log" 2>&1 ||
    { tail -n 40 "$TEST_TMP/ctest.log" >&2; fail "ctest of the example failed"; }
assert_contains "$(cat "$TEST_TMP/ctest.log")" "100% tests passed" "example ctest"
SO_CMAKE="$CM/build/denylist.so"
[[ -f "$SO_CMAKE" ]] || fail "CMake produced no denylist.so"
log "CMake find_package: built $SO_CMAKE, ctest passed"

# ---- 3. each .so in weft -------------------------------------------------------
BACKEND_PORT=$(free_port)
start_backend echo "$BACKEND_PORT"

# run_in_weft LABEL SO: one weft with the filter; traffic; stats; reload.
run_in_weft() {
    local label="$1" so="$2" dir url code hdrs body denied_before
    dir="$TEST_TMP/run-$label"
    mkdir -p "$dir"
    cp "$REPO_ROOT/examples/custom_filter/denylist.txt" "$dir/denylist.txt"
    LISTEN_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    # shellcheck disable=SC2034 # read by render_config through @SO_DIR@
    SO_DIR="$(dirname "$so")"
    # the deny-list path is relative: resolved against the config's dir
    render_config - "$dir/weft.yaml" >/dev/null <<'YAML'
workers: 2
drain_timeout: 2s
admin:
  address: 127.0.0.1
  port: @ADMIN_PORT@
filter_path: [@SO_DIR@]
listeners:
  - name: ingress
    address: 127.0.0.1
    port: @LISTEN_PORT@
    filters:
      - name: denylist
        config:
          header: user-agent
          file: denylist.txt
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            cluster: echo
clusters:
  - name: echo
    endpoints:
      - address: 127.0.0.1
        port: @BACKEND_PORT@
YAML
    start_weft "$dir/weft.yaml"
    assert_contains "$(cat "$WEFT_LOG")" "filter denylist loaded from" "$label: load log line"
    url="http://127.0.0.1:$LISTEN_PORT"

    # denied: prefix entry, exact entry with spaces and parentheses
    local ua
    for ua in 'curl/8.5.0' 'python-requests/2.31.0' 'BadBot/1.0 (+http://badbot.example/about)'; do
        code=$(curl -sS --max-time 5 -A "$ua" -D "$dir/h" -o "$dir/b" -w '%{http_code}' "$url/x") ||
            fail "$label: no answer for UA [$ua]"
        assert_eq 403 "$code" "$label: status for UA [$ua]"
        hdrs=$(tr -d '\r' <"$dir/h" | tr '[:upper:]' '[:lower:]')
        assert_contains "$hdrs" "x-weft-reason: denylisted" "$label: reason for UA [$ua]"
        assert_contains "$hdrs" "x-denylist: deny" "$label: tag for UA [$ua]"
        assert_not_contains "$hdrs" "x-backend:" "$label: a denied request must not reach the backend"
        assert_eq "denied" "$(cat "$dir/b")" "$label: body for UA [$ua]"
    done

    # allowed: reaches the backend with x-denylist: pass, even when the
    # client tries to set the header itself
    for ua in 'Mozilla/5.0 (X11; Linux x86_64)' 'BadBot/1.0' 'curl'; do
        code=$(curl -sS --max-time 5 -A "$ua" -H 'x-denylist: forged' -D "$dir/h" -o "$dir/b" \
            -w '%{http_code}' "$url/hello") || fail "$label: no answer for UA [$ua]"
        assert_eq 200 "$code" "$label: status for allowed UA [$ua]"
        hdrs=$(tr -d '\r' <"$dir/h" | tr '[:upper:]' '[:lower:]')
        body=$(cat "$dir/b")
        assert_contains "$hdrs" "x-backend: echo" "$label: allowed request reached the backend"
        assert_contains "$hdrs" "x-denylist: pass" "$label: response tag for UA [$ua]"
        assert_contains "$body" '"x-denylist": "pass"' "$label: backend saw the request tag"
        assert_not_contains "$body" 'forged' "$label: client's x-denylist replaced"
    done

    # stats: weft_filter_<yaml name>_<stat>{listener="..."}
    assert_eq 3 "$(metric 'weft_filter_denylist_denied_total{listener="ingress"}')" "$label: denied_total"
    assert_eq 3 "$(metric 'weft_filter_denylist_allowed_total{listener="ingress"}')" "$label: allowed_total"

    # the list is parsed per config: edit it, SIGHUP, the new entry applies
    printf 'Mozilla/5.0 (X11; Linux x86_64)\n' >>"$dir/denylist.txt"
    weft_signal HUP
    # every worker (2) on config v2, not just the one a request reaches
    wait_workers_at 2 2
    code=$(http_status -A 'Mozilla/5.0 (X11; Linux x86_64)' "$url/hello")
    assert_eq 403 "$code" "$label: UA denied after the reload"
    code=$(http_status -A 'Mozilla/5.0 (Macintosh)' "$url/hello")
    assert_eq 200 "$code" "$label: other UA still allowed after the reload"
    denied_before=$(metric 'weft_filter_denylist_denied_total{listener="ingress"}')
    [[ "$denied_before" -ge 4 ]] || fail "$label: denied_total after reload: $denied_before"

    # a reload that breaks the list is refused; the running list stays
    printf 'oops*not-at-the-end\n' >>"$dir/denylist.txt"
    weft_signal HUP
    reload_refused() { [[ "$(metric 'weft_config_reload_total{result="refused"}')" -ge 1 ]]; }
    wait_until 10 "$label: refused reload" reload_refused
    assert_contains "$(cat "$WEFT_LOG")" "only allowed at the end" "$label: refused reload reason"
    workers_at 2 2 || fail "$label: a worker left config v2 on the refused reload"
    assert_eq 403 "$(http_status -A 'curl/1' "$url/")" "$label: old list still in force"

    stop_weft 10
}

run_in_weft make "$SO_MAKE"
run_in_weft cmake "$SO_CMAKE"

# ---- config error: the missing file is reported on the `file:` node -------
BAD="$TEST_TMP/bad"
mkdir -p "$BAD"
cat >"$BAD/weft.yaml" <<YAML
filter_path: [$(dirname "$SO_MAKE")]
listeners:
  - name: ingress
    address: 127.0.0.1
    port: $(free_port)
    filters:
      - name: denylist
        config:
          file: missing.txt
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
YAML
set +e
out=$("$WEFT_BIN" -c "$BAD/weft.yaml" --validate 2>&1)
rc=$?
set -e
assert_eq 2 "$rc" "--validate exit status for a missing deny-list"
assert_contains "$out" "$BAD/weft.yaml:9:17: filter \"denylist\": cannot read deny-list $BAD/missing.txt: No such file or directory" \
    "missing deny-list error"
# one line names the problem (other lines are info logs)
[[ "$(printf '%s\n' "$out" | grep -c 'weft.yaml:')" -eq 1 ]] || fail "the config error is not one line: $out"

log "both builds loaded and served traffic"
