/* test_denylist.c: unit test of the denylist filter with weft's filter
 * test kit (weft/filtertest.h). The kit loads denylist.so the way weft
 * does (dlopen, ABI check) and plays host: no proxy, no sockets.
 *
 * Built by `make check` (pkg-config) and by CMake (ctest). DENYLIST_SO is
 * the path of the filter under test. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <weft/filtertest.h>

#ifndef DENYLIST_SO
#error "define DENYLIST_SO as the path of denylist.so"
#endif

/* A scratch directory per test with a deny-list file in it. */
typedef struct fixture {
    char dir[64];
    char list[128];
    wft_env *env;
} fixture;

static const char LIST[] = "# bots we do not serve\n"
                           "\n"
                           "   BadBot/1.0   \n"
                           "curl/*\n"
                           "\tscanner*\r\n"
                           "# exact-only entry below\n"
                           "python-requests/2.31.0\n";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_denylist.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->list, sizeof(fx->list), "%s/deny.txt", fx->dir);
    write_file(fx->list, LIST);
    char err[512];
    fx->env = wft_env_load(DENYLIST_SO, err, sizeof(err));
    if (!fx->env)
        fail_msg("cannot load %s: %s", DENYLIST_SO, err);
    wft_env_set_config_dir(fx->env, fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    wft_env_free(fx->env);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
    return 0;
}

static void configure_ok(fixture *fx, const char *yaml) {
    char err[512];
    if (wft_env_configure(fx->env, yaml, err, sizeof(err)) != 0)
        fail_msg("config refused: %s", err);
}

/* Runs one GET with the given headers; returns the stream (caller frees). */
static wft_stream *get(fixture *fx, const char *const *headers, int *rc) {
    wft_stream *st = wft_stream_new(fx->env, "GET", "/", headers);
    assert_non_null(st);
    *rc = wft_request_headers(st, true);
    return st;
}

static void assert_denied(fixture *fx, const char *const *headers) {
    int rc, status = 0;
    const char *reason = NULL, *body = NULL;
    wft_stream *st = get(fx, headers, &rc);
    assert_int_equal(rc, WEFT_REPLIED);
    assert_true(wft_replied(st, &status, &body, &reason));
    assert_int_equal(status, 403);
    assert_string_equal(reason, "denylisted");
    assert_string_equal(body, "denied\n");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-denylist"), "deny");
    assert_false(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_int_equal(wft_misuse_count(fx->env), 0);
    wft_stream_free(st);
}

static void assert_allowed(fixture *fx, const char *const *headers) {
    int rc;
    wft_stream *st = get(fx, headers, &rc);
    assert_int_equal(rc, WEFT_CONTINUE);
    assert_false(wft_replied(st, NULL, NULL, NULL));
    assert_true(wft_forwarded_headers(st, WEFT_REQUEST_BODY));
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-denylist"), "pass");
    assert_int_equal(wft_header_count(st, WEFT_REQUEST_HEADERS, "x-denylist"), 1);
    assert_int_equal(
        wft_response_headers(st, 200, (const char *[]){"content-length: 0", NULL}, true),
        WEFT_CONTINUE);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-denylist"), "pass");
    assert_int_equal(wft_misuse_count(fx->env), 0);
    wft_stream_free(st);
}

/* ---- matching ---- */

static void test_exact_and_prefix(void **state) {
    fixture *fx = *state;
    configure_ok(fx, "file: deny.txt\n");
    assert_denied(fx, (const char *[]){"host: a", "user-agent: BadBot/1.0", NULL});
    assert_denied(fx, (const char *[]){"host: a", "user-agent: curl/8.5.0", NULL});
    assert_denied(fx, (const char *[]){"host: a", "user-agent: curl/", NULL});
    assert_denied(fx, (const char *[]){"host: a", "user-agent: scanner", NULL});
    assert_denied(fx, (const char *[]){"host: a", "user-agent: python-requests/2.31.0", NULL});
    /* exact entries match whole values only; case matters by default */
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: BadBot/1.0 (compatible)", NULL});
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: badbot/1.0", NULL});
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: python-requests/2.31.1", NULL});
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: Mozilla/5.0 curl/8", NULL});
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: curl", NULL});
    /* no header at all: nothing to match */
    assert_allowed(fx, (const char *[]){"host: a", NULL});
    assert_int_equal(wft_stat(fx->env, "denied_total"), 5);
    assert_int_equal(wft_stat(fx->env, "allowed_total"), 6);
}

static void test_client_cannot_forge_pass(void **state) {
    fixture *fx = *state;
    configure_ok(fx, "file: deny.txt\n");
    int rc;
    wft_stream *st = get(
        fx,
        (const char *[]){"host: a", "user-agent: ok", "x-denylist: deny", "x-denylist: x", NULL},
        &rc);
    assert_int_equal(rc, WEFT_CONTINUE);
    assert_int_equal(wft_header_count(st, WEFT_REQUEST_HEADERS, "x-denylist"), 1);
    assert_string_equal(wft_header(st, WEFT_REQUEST_HEADERS, "x-denylist"), "pass");
    wft_stream_free(st);
}

static void test_any_value_of_a_repeated_header(void **state) {
    fixture *fx = *state;
    configure_ok(fx, "file: deny.txt\n");
    assert_denied(fx, (const char *[]){"host: a", "user-agent: fine", "user-agent: curl/7", NULL});
}

static void test_other_header_ignore_case(void **state) {
    fixture *fx = *state;
    write_file(fx->list, "# client ids\nTEAM-A-*\nclient-42\n");
    configure_ok(fx, "header: X-Client-Id\nfile: deny.txt\nignore_case: true\n");
    assert_denied(fx, (const char *[]){"host: a", "x-client-id: team-a-7", NULL});
    assert_denied(fx, (const char *[]){"host: a", "X-Client-ID: CLIENT-42", NULL});
    assert_allowed(fx, (const char *[]){"host: a", "x-client-id: client-421", NULL});
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: client-42", NULL});
}

static void test_star_matches_everything(void **state) {
    fixture *fx = *state;
    write_file(fx->list, "*\n");
    configure_ok(fx, "file: deny.txt\n");
    assert_denied(fx, (const char *[]){"host: a", "user-agent: anything", NULL});
    assert_denied(fx, (const char *[]){"host: a", "user-agent:", NULL});
    assert_allowed(fx, (const char *[]){"host: a", NULL});
}

static void test_empty_list_allows(void **state) {
    fixture *fx = *state;
    write_file(fx->list, "# nothing yet\n\n");
    configure_ok(fx, "file: deny.txt\n");
    assert_allowed(fx, (const char *[]){"host: a", "user-agent: curl/8", NULL});
}

static void test_absolute_path_and_config_file(void **state) {
    fixture *fx = *state;
    char yaml[512], cfg[160], err[512];
    snprintf(yaml, sizeof(yaml), "file: %s\n", fx->list);
    wft_env_set_config_dir(fx->env, "/nonexistent");
    configure_ok(fx, yaml);
    assert_denied(fx, (const char *[]){"host: a", "user-agent: curl/8", NULL});
    /* from a config file: relative paths resolve against its directory */
    snprintf(cfg, sizeof(cfg), "%s/filter.yaml", fx->dir);
    write_file(cfg, "header: user-agent\nfile: deny.txt\n");
    if (wft_env_configure_file(fx->env, cfg, err, sizeof(err)) != 0)
        fail_msg("config file refused: %s", err);
    assert_denied(fx, (const char *[]){"host: a", "user-agent: scanner-3000", NULL});
}

static void test_grpc_request_gets_grpc_status(void **state) {
    fixture *fx = *state;
    configure_ok(fx, "file: deny.txt\n");
    int rc, status = 0;
    wft_stream *st = wft_stream_new(
        fx->env, "POST", "/pkg.Svc/Call",
        (const char *[]){"host: a", "content-type: application/grpc", "user-agent: curl/8", NULL});
    rc = wft_request_headers(st, false);
    assert_int_equal(rc, WEFT_REPLIED);
    assert_true(wft_replied(st, &status, NULL, NULL));
    assert_int_equal(status, 200);
    assert_int_equal(wft_reply_http_status(st), 403);
    const char *gs = wft_header(st, WEFT_RESPONSE_HEADERS, "grpc-status");
    if (!gs)
        gs = wft_header(st, WEFT_RESPONSE_TRAILERS, "grpc-status");
    assert_non_null(gs);
    assert_string_equal(gs, "7"); /* PERMISSION_DENIED */
    wft_stream_free(st);
}

static void test_complete_after_deny(void **state) {
    fixture *fx = *state;
    configure_ok(fx, "file: deny.txt\n");
    int rc;
    wft_stream *st = get(fx, (const char *[]){"host: a", "user-agent: curl/8", NULL}, &rc);
    assert_int_equal(rc, WEFT_REPLIED);
    assert_int_equal(wft_complete(st, "LR"), 0);
    assert_true(wft_completed(st));
    wft_stream_free(st);
    assert_int_equal(wft_misuse_count(fx->env), 0);
}

/* ---- config errors: one line, with the position of the culprit ---- */

static void assert_config_error(fixture *fx, const char *yaml, const char *where,
                                const char *what) {
    char err[512] = "";
    assert_int_equal(wft_env_configure(fx->env, yaml, err, sizeof(err)), -1);
    if (!strstr(err, where) || !strstr(err, what))
        fail_msg("error [%s] lacks [%s] or [%s]", err, where, what);
}

static void test_config_errors(void **state) {
    fixture *fx = *state;
    /* missing file: reported on the `file:` value (line 2, column 7) */
    assert_config_error(fx, "header: user-agent\nfile: nope.txt\n",
                        ":2:7:", "No such file or directory");
    assert_config_error(fx, "header: user-agent\nfile: nope.txt\n", ":2:7:", "/nope.txt");
    assert_config_error(fx, "header: user-agent\n", ":1:1:", "missing key \"file\"");
    assert_config_error(fx, "file: deny.txt\nheadr: x\n", ":2:8:", "unknown key \"headr\"");
    assert_config_error(fx, "file: deny.txt\nheader: \"bad header\"\n", ":2:9:", "header:");
    assert_config_error(fx, "file: deny.txt\nignore_case: yes\n", ":2:14:", "true or false");
    assert_config_error(fx, "file: [a, b]\n", ":1:7:", "expected a file name");
    assert_config_error(fx, "- file\n", ":1:1:", "expected a mapping");
    char err[512] = "";
    assert_int_equal(wft_env_configure(fx->env, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "needs a config"));
    /* a bad line in the deny-list names the list file and its line */
    write_file(fx->list, "ok\n# fine\nbad*entry\n");
    assert_config_error(fx, "file: deny.txt\n", "deny.txt:3:", "only allowed at the end");
    write_file(fx->list, "ok\nbell\a\n");
    assert_config_error(fx, "file: deny.txt\n", "deny.txt:2:", "control character");
    /* after all that, a good config still works */
    write_file(fx->list, LIST);
    configure_ok(fx, "file: deny.txt\n");
    assert_denied(fx, (const char *[]){"host: a", "user-agent: BadBot/1.0", NULL});
}

static void test_stats_declared(void **state) {
    fixture *fx = *state;
    configure_ok(fx, "file: deny.txt\n");
    assert_true(wft_stat_exists(fx->env, "allowed_total"));
    assert_true(wft_stat_exists(fx->env, "denied_total"));
    assert_non_null(wft_stat_help(fx->env, "denied_total"));
    assert_true(wft_log_contains(fx->env, "2 exact and 2 prefix entries"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_cannot_forge_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_value_of_a_repeated_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_header_ignore_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_star_matches_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_list_allows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absolute_path_and_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_request_gets_grpc_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_after_deny, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_declared, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
