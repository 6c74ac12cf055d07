/* test_path_norm.c: request path normalization (core/http/path_norm.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/path_norm.h"

static const weft_path_norm_opts DEF = {true, false, WEFT_SLASHES_KEEP};
static const weft_path_norm_opts MERGE = {true, true, WEFT_SLASHES_KEEP};
static const weft_path_norm_opts REJECT = {true, false, WEFT_SLASHES_REJECT};
static const weft_path_norm_opts UNESC = {true, false, WEFT_SLASHES_UNESCAPE};
static const weft_path_norm_opts REDIR = {true, false, WEFT_SLASHES_UNESCAPE_AND_REDIRECT};
static const weft_path_norm_opts OFF = {false, false, WEFT_SLASHES_KEEP};

/* Normalizes `in` and checks result and output; then checks the
 * invariants: never longer, idempotent, is_normal agrees. */
static void check(const weft_path_norm_opts *o, const char *in, weft_path_result want_r,
                  const char *want) {
    size_t len = strlen(in), n = 99;
    char *out = malloc(len + 1);
    assert_non_null(out);
    weft_path_result r = weft_path_normalize(in, len, o, out, &n);
    if (r != want_r)
        fail_msg("%s: result %d, want %d", in, r, want_r);
    if (r != WEFT_PATH_OK && r != WEFT_PATH_REDIRECT) {
        assert_int_equal(n, 0);
        free(out);
        return;
    }
    assert_true(n <= len);
    out[n] = '\0';
    if (strcmp(out, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", in, out, want);
    if (weft_path_is_normal(in, len, o))
        assert_string_equal(out, in);
    char *again = malloc(n + 1);
    size_t n2 = 0;
    assert_non_null(again);
    weft_path_result r2 = weft_path_normalize(out, n, o, again, &n2);
    assert_true(r2 == WEFT_PATH_OK);
    again[n2] = '\0';
    if (strcmp(again, out) != 0)
        fail_msg("%s: not idempotent: \"%s\" -> \"%s\"", in, out, again);
    free(again);
    free(out);
}

static void test_dot_segments(void **state) {
    (void)state;
    check(&DEF, "/", WEFT_PATH_OK, "/");
    check(&DEF, "/a/b/c", WEFT_PATH_OK, "/a/b/c");
    check(&DEF, "/a/../b", WEFT_PATH_OK, "/b");
    check(&DEF, "/a/./b", WEFT_PATH_OK, "/a/b");
    check(&DEF, "/a/b/..", WEFT_PATH_OK, "/a/");
    check(&DEF, "/a/b/.", WEFT_PATH_OK, "/a/b/");
    check(&DEF, "/a/b/../", WEFT_PATH_OK, "/a/");
    check(&DEF, "/a/..", WEFT_PATH_OK, "/");
    check(&DEF, "/.", WEFT_PATH_OK, "/");
    check(&DEF, "/./", WEFT_PATH_OK, "/");
    check(&DEF, "/a/b/c/./../../g", WEFT_PATH_OK, "/a/g"); /* RFC 3986 5.2.4 example */
    check(&DEF, "/mid/content=5/../6", WEFT_PATH_OK, "/mid/6");
    check(&DEF, "/api/../admin/x", WEFT_PATH_OK, "/admin/x");
    check(&DEF, "/a/.../b", WEFT_PATH_OK, "/a/.../b");
    check(&DEF, "/a/..b/.c/b..", WEFT_PATH_OK, "/a/..b/.c/b..");
    check(&DEF, "/a//../b", WEFT_PATH_OK, "/a/b");
    check(&DEF, "/..", WEFT_PATH_ABOVE_ROOT, NULL);
    check(&DEF, "/../a", WEFT_PATH_ABOVE_ROOT, NULL);
    check(&DEF, "/a/../..", WEFT_PATH_ABOVE_ROOT, NULL);
    check(&DEF, "/a/../../b", WEFT_PATH_ABOVE_ROOT, NULL);
}

static void test_encoded_dots(void **state) {
    (void)state;
    check(&DEF, "/a/%2e%2e/b", WEFT_PATH_OK, "/b");
    check(&DEF, "/a/%2E%2e/b", WEFT_PATH_OK, "/b");
    check(&DEF, "/api/%2E%2e/admin", WEFT_PATH_OK, "/admin");
    check(&DEF, "/a/%2E%2e/", WEFT_PATH_OK, "/");
    check(&DEF, "/a/.%2e/b", WEFT_PATH_OK, "/b");
    check(&DEF, "/a/%2e/b", WEFT_PATH_OK, "/a/b");
    check(&DEF, "/%2e%2e", WEFT_PATH_ABOVE_ROOT, NULL);
    check(&DEF, "/%2e%2e/etc/passwd", WEFT_PATH_ABOVE_ROOT, NULL);
}

static void test_percent(void **state) {
    (void)state;
    check(&DEF, "/%7e/x", WEFT_PATH_OK, "/~/x");
    check(&DEF, "/%7E%41%61%30%2D%5F%2E", WEFT_PATH_OK, "/~Aa0-_.");
    check(&DEF, "/a%20b", WEFT_PATH_OK, "/a%20b");
    check(&DEF, "/a%3fb%3Fc", WEFT_PATH_OK, "/a%3Fb%3Fc");
    check(&DEF, "/%e2%82%ac", WEFT_PATH_OK, "/%E2%82%AC");
    check(&DEF, "/%00", WEFT_PATH_OK, "/%00");
    check(&DEF, "/%25", WEFT_PATH_OK, "/%25");
    check(&DEF, "/%252e%252e", WEFT_PATH_OK, "/%252e%252e"); /* one level only */
    check(&DEF, "/%zz", WEFT_PATH_BAD_ENCODING, NULL);
    check(&DEF, "/a%", WEFT_PATH_BAD_ENCODING, NULL);
    check(&DEF, "/a%4", WEFT_PATH_BAD_ENCODING, NULL);
    check(&DEF, "/a%4g", WEFT_PATH_BAD_ENCODING, NULL);
    check(&DEF, "/a%g4", WEFT_PATH_BAD_ENCODING, NULL);
}

static void test_slashes(void **state) {
    (void)state;
    /* KEEP: escaped slashes stay (hex uppercased) and are no separators */
    check(&DEF, "/a%2Fb", WEFT_PATH_OK, "/a%2Fb");
    check(&DEF, "/a%2fb", WEFT_PATH_OK, "/a%2Fb");
    check(&DEF, "/a%5cb", WEFT_PATH_OK, "/a%5Cb");
    check(&DEF, "/a/..%2F..%2Fetc", WEFT_PATH_OK, "/a/..%2F..%2Fetc");
    check(&DEF, "//", WEFT_PATH_OK, "//");
    check(&DEF, "/a//b", WEFT_PATH_OK, "/a//b");
    /* REJECT */
    check(&REJECT, "/a%2Fb", WEFT_PATH_ESCAPED_SLASH, NULL);
    check(&REJECT, "/a%2fb", WEFT_PATH_ESCAPED_SLASH, NULL);
    check(&REJECT, "/a%5Cb", WEFT_PATH_ESCAPED_SLASH, NULL);
    check(&REJECT, "/a%5cb", WEFT_PATH_ESCAPED_SLASH, NULL);
    check(&REJECT, "/a%2eb", WEFT_PATH_OK, "/a.b");
    /* UNESCAPE: decoded, then dot segments removed again */
    check(&UNESC, "/a%2Fb", WEFT_PATH_OK, "/a/b");
    check(&UNESC, "/a%5Cb", WEFT_PATH_OK, "/a/b");
    check(&UNESC, "/a/b%2F..%2Fc", WEFT_PATH_OK, "/a/c");
    check(&UNESC, "/a%2F..%2F..%2Fetc", WEFT_PATH_ABOVE_ROOT, NULL);
    check(&UNESC, "/a%5C..%5Cb", WEFT_PATH_OK, "/b");
    /* UNESCAPE_AND_REDIRECT: same path, told to redirect */
    check(&REDIR, "/a%2Fb", WEFT_PATH_REDIRECT, "/a/b");
    check(&REDIR, "/a/b", WEFT_PATH_OK, "/a/b");
    check(&REDIR, "/a/%2e%2e/b", WEFT_PATH_OK, "/b");
    /* merge_slashes */
    check(&MERGE, "//", WEFT_PATH_OK, "/");
    check(&MERGE, "/a//b///c", WEFT_PATH_OK, "/a/b/c");
    check(&MERGE, "//a/..//b", WEFT_PATH_OK, "/b");
    check(&MERGE, "/a/b//", WEFT_PATH_OK, "/a/b/");
}

static void test_off_and_non_origin(void **state) {
    (void)state;
    /* normalize off: nothing changes (even invalid escapes) */
    check(&OFF, "/a/../b%zz", WEFT_PATH_OK, "/a/../b%zz");
    assert_true(weft_path_is_normal("/a/../b", 7, &OFF));
    const weft_path_norm_opts off_merge = {false, true, WEFT_SLASHES_KEEP};
    check(&off_merge, "/a//../b", WEFT_PATH_OK, "/a/../b");
    const weft_path_norm_opts off_unesc = {false, false, WEFT_SLASHES_UNESCAPE};
    check(&off_unesc, "/a/%2e%2e%2Fb", WEFT_PATH_OK, "/a/%2e%2e/b");
    /* not origin-form: left alone */
    check(&DEF, "*", WEFT_PATH_OK, "*");
    check(&DEF, "", WEFT_PATH_OK, "");
    check(&DEF, "a/../b", WEFT_PATH_OK, "a/../b");
}

static void test_fast_path(void **state) {
    (void)state;
    assert_true(weft_path_is_normal("/a/b/c.html", 11, &DEF));
    assert_true(weft_path_is_normal("/a//b", 5, &DEF));
    assert_false(weft_path_is_normal("/a//b", 5, &MERGE));
    assert_false(weft_path_is_normal("/a/./b", 6, &DEF));
    assert_false(weft_path_is_normal("/a/.hidden", 10, &DEF)); /* conservative */
    assert_false(weft_path_is_normal("/a%41", 5, &DEF));
    check(&DEF, "/a/.hidden", WEFT_PATH_OK, "/a/.hidden");
    assert_string_equal(weft_path_result_reason(WEFT_PATH_BAD_ENCODING), "invalid_path_encoding");
    assert_string_equal(weft_path_result_reason(WEFT_PATH_ABOVE_ROOT), "invalid_path_dot_segments");
    assert_string_equal(weft_path_result_reason(WEFT_PATH_ESCAPED_SLASH), "escaped_slash_in_path");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_segments),
        cmocka_unit_test(test_encoded_dots),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_slashes),
        cmocka_unit_test(test_off_and_non_origin),
        cmocka_unit_test(test_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
