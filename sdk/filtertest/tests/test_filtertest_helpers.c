/* test_filtertest_helpers.c: the ABI 1.1 author helpers as the kit hosts
 * them: weft_str_c, weft_logf / weft_setup_logf (the YAML name, format,
 * escaping, the length cut, the level), typed metadata (integers, bytes,
 * the type-mismatch error, one key space with string metadata). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <weft/filter.h>
#include <weft/filtertest.h>

/* ---------- the filter under test ---------- */

static struct {
    weft_result get_int_missing, get_str_of_int, get_int_of_str, get_bytes_of_int;
    weft_result set_empty_key, get_int_null;
    int64_t got_int;
    const void *got_bytes;
    size_t got_len;
    size_t cstr_null_len, cstr_len;
} R;

static int h_config(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    (void)node;
    weft_setup_logf(setup, WEFT_LOG_LEVEL_INFO, "configured with %d rules", 3);
    *config = NULL;
    return 0;
}

static weft_status h_req(void *ctx, weft_stream *s, bool end) {
    (void)ctx;
    (void)end;
    R.cstr_null_len = weft_str_c(NULL).len;
    R.cstr_len = weft_str_c("abc").len;
    weft_str path;
    weft_request_get(s, NULL, &path, NULL, NULL);
    weft_logf(s, WEFT_LOG_LEVEL_WARN, "path %.*s id=%d", (int)path.len, path.ptr, 7);
    weft_logf(s, WEFT_LOG_LEVEL_INFO, "evil\nforged [error] line\x7f");
    weft_logf(NULL, WEFT_LOG_LEVEL_INFO, "no stream");
    weft_logf(s, WEFT_LOG_LEVEL_DEBUG, "debug %s", "hidden");
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    weft_logf(s, WEFT_LOG_LEVEL_INFO, "%s", big);

    weft_metadata_set_int(s, weft_str_c("n"), -42);
    weft_metadata_set_bytes(s, weft_str_c("b"), "a\0b", 3);
    weft_metadata_set(s, weft_str_c("s"), weft_str_c("text"));
    R.get_int_missing = weft_metadata_get_int(s, weft_str_c("nope"), &R.got_int);
    weft_str sv;
    R.get_str_of_int = weft_metadata_get(s, weft_str_c("n"), &sv);
    int64_t v = 0;
    R.get_int_of_str = weft_metadata_get_int(s, weft_str_c("s"), &v);
    const void *bp;
    size_t bl;
    R.get_bytes_of_int = weft_metadata_get_bytes(s, weft_str_c("n"), &bp, &bl);
    R.set_empty_key = weft_metadata_set_int(s, weft_str_c(""), 1);
    R.get_int_null = weft_metadata_get_int(s, weft_str_c("n"), NULL);
    weft_metadata_get_int(s, weft_str_c("n"), &R.got_int);
    weft_metadata_get_bytes(s, weft_str_c("b"), &R.got_bytes, &R.got_len);
    /* A key set again changes type. */
    weft_metadata_set_int(s, weft_str_c("s"), 5);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = h_config,
    .on_request_headers = h_req,
};
static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("helpers", WEFT_FILTER_HTTP),
    .http = &ops,
};
WEFT_FILTER_DEFINE(desc)

/* ---------- tests ---------- */

static wft_env *env_new(void) {
    char err[256];
    wft_env *env = wft_env_new(weft_filter_entry_v1, err, sizeof(err));
    assert_non_null(env);
    return env;
}

static void test_logf_names_and_escapes(void **state) {
    (void)state;
    wft_env *env = env_new();
    assert_int_equal(wft_env_set_filter_name(env, "authz-edge"), 0);
    wft_log_set_level(env, WEFT_LOG_LEVEL_INFO);
    char err[256];
    assert_int_equal(wft_env_configure(env, NULL, err, sizeof(err)), 0);
    assert_true(wft_log_contains(env, "authz-edge: configured with 3 rules"));
    wft_stream *st = wft_stream_new(env, "GET", "/a/b", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(R.cstr_null_len, 0);
    assert_int_equal(R.cstr_len, 3);
    assert_true(wft_log_contains(env, "authz-edge: path /a/b id=7"));
    weft_log_level_t lvl;
    bool found = false;
    for (size_t i = 0; i < wft_log_count(env); i++) {
        const char *l = wft_log_line(env, i, &lvl);
        if (strstr(l, "path /a/b"))
            assert_int_equal(lvl, WEFT_LOG_LEVEL_WARN);
        if (strstr(l, "evil")) {
            found = true;
            assert_string_equal(l, "authz-edge: evil\\x0aforged [error] line\\x7f");
        }
        assert_null(strchr(l, '\n'));
        assert_null(strstr(l, "hidden")); /* below the level: never formatted */
        if (strstr(l, "xxxx")) {
            size_t n = strlen(l);
            assert_int_equal(n, strlen("authz-edge: ") + 800);
            assert_string_equal(l + n - 3, "...");
        }
    }
    assert_true(found);
    /* Without a stream the host cannot tell the filter. */
    assert_true(wft_log_contains(env, "?: no stream"));
    wft_stream_free(st);
    wft_env_free(env);
}

static void test_typed_metadata(void **state) {
    (void)state;
    wft_env *env = env_new();
    wft_stream *st = wft_stream_new(env, "GET", "/", NULL);
    wft_metadata_put_int(st, "earlier", 9);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(R.got_int, -42);
    assert_int_equal(R.got_len, 3);
    assert_memory_equal(R.got_bytes, "a\0b", 3);
    assert_int_equal(R.get_int_missing, WEFT_ERR_NOT_FOUND);
    assert_int_equal(R.get_str_of_int, WEFT_ERR_INVALID);
    assert_int_equal(R.get_int_of_str, WEFT_ERR_INVALID);
    assert_int_equal(R.get_bytes_of_int, WEFT_ERR_INVALID);
    assert_int_equal(R.set_empty_key, WEFT_ERR_INVALID);
    assert_int_equal(R.get_int_null, WEFT_ERR_INVALID);
    assert_true(wft_misuse_count(env) >= 5);
    int64_t v;
    assert_true(wft_metadata_int(st, "n", &v));
    assert_int_equal(v, -42);
    assert_true(wft_metadata_int(st, "earlier", &v));
    assert_int_equal(v, 9);
    const void *d;
    size_t n;
    assert_true(wft_metadata_bytes(st, "b", &d, &n));
    assert_int_equal(n, 3);
    /* "s" was a string, then set as an integer: its type changed. */
    assert_null(wft_metadata(st, "s"));
    assert_true(wft_metadata_int(st, "s", &v));
    assert_int_equal(v, 5);
    assert_false(wft_metadata_bytes(st, "n", &d, &n));
    wft_stream_free(st);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logf_names_and_escapes),
        cmocka_unit_test(test_typed_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
