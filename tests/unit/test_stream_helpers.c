/* test_stream_helpers.c: the ABI 1.1 author helpers in the core, through
 * the stream harness: weft_logf names the running filter by its YAML name,
 * escapes control characters and cuts long lines; weft_setup_logf names the
 * filter of a setup; typed metadata (integers, bytes) is shared between the
 * filters of a stream, keeps the caps of string metadata and refuses a get
 * of another type with WEFT_ERR_INVALID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "filter/filter_setup.h"
#include "stream_harness.h"
#include "stream_test_config.h"

static sh H;

static int teardown(void **state) {
    (void)state;
    sh_free(&H);
    memset(&H, 0, sizeof(H));
    return 0;
}

/* ---------- stderr capture (weft's log) ---------- */

static int saved_fd = -1;
static FILE *cap;

static void capture_begin(void) {
    fflush(stderr);
    cap = tmpfile();
    assert_non_null(cap);
    saved_fd = dup(STDERR_FILENO);
    assert_true(saved_fd >= 0);
    assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
}

static const char *capture_end(void) {
    static char buf[16384];
    fflush(stderr);
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    rewind(cap);
    size_t n = fread(buf, 1, sizeof(buf) - 1, cap);
    buf[n] = '\0';
    fclose(cap);
    return buf;
}

/* ---------- logf ---------- */

static void log_calls(tf_script *sc, weft_stream *s, tf_hook hook) {
    (void)sc;
    if (hook != TF_REQ_HEADERS)
        return;
    weft_logf(s, WEFT_LOG_LEVEL_WARN, "user %s tried %d times", "bob", 3);
    weft_logf(s, WEFT_LOG_LEVEL_INFO, "forged\n2026-01-01T00:00:00.000Z [error] x\x1b[0m");
    weft_logf(s, WEFT_LOG_LEVEL_DEBUG, "below the level %s", "never");
    weft_logf(NULL, WEFT_LOG_LEVEL_INFO, "without a stream");
    char big[3000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    weft_logf(s, WEFT_LOG_LEVEL_INFO, "%s", big);
}

static void test_logf_yaml_name(void **state) {
    (void)state;
    tf_script f1 = {.name = "edge-authz", .custom = log_calls};
    tf_script *fs[] = {&f1};
    st_start(&H, fs, 1, "", "", NULL, 0);
    weft_log_min_level = 1; /* info */
    sh_ds *d = sh_ds_new(&H);
    capture_begin();
    sh_request(d, "GET", "/direct", NULL);
    const char *out = capture_end();
    weft_log_min_level = 4;
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    assert_non_null(strstr(out, "[warn] filter edge-authz: user bob tried 3 times\n"));
    assert_non_null(
        strstr(out, "filter edge-authz: forged\\x0a2026-01-01T00:00:00.000Z [error] x\\x1b[0m\n"));
    assert_null(strstr(out, "never"));
    assert_non_null(strstr(out, "filter ?: without a stream\n"));
    /* The long line: cut at 800 bytes of message, ending in "...". */
    const char *y = strstr(out, "filter edge-authz: yyy");
    assert_non_null(y);
    const char *msg = y + strlen("filter edge-authz: ");
    const char *nl = strchr(msg, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - msg, 800);
    assert_memory_equal(nl - 3, "...", 3);
    /* Nothing but the lines above: every line ends where a log line ends. */
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    sh_ds_free(d);
}

static void test_setup_logf(void **state) {
    (void)state;
    weft_cfg_filter f = {.name = "rate-limit"};
    weft_filter_setup st = {.filter = &f};
    weft__host = weft_filter_host_api();
    int saved = weft_log_min_level;
    weft_log_min_level = 0;
    capture_begin();
    weft_setup_logf(&st, WEFT_LOG_LEVEL_INFO, "%d buckets of %s", 16, "10/s");
    weft_setup_logf(NULL, WEFT_LOG_LEVEL_ERROR, "no setup");
    const char *out = capture_end();
    weft_log_min_level = saved;
    assert_non_null(strstr(out, "[info] filter rate-limit: 16 buckets of 10/s\n"));
    assert_non_null(strstr(out, "[error] filter ?: no setup\n"));
}

/* ---------- typed metadata ---------- */

static struct {
    weft_result set_int, set_bytes, set_str, fourth_key, replace, empty_key, null_data;
    weft_result get_int, get_bytes, get_str_of_int, get_int_of_bytes, get_bytes_of_str, get_missing,
        get_int_null, log_phase_get;
    int64_t v, log_phase_v;
    char bytes[8];
    size_t blen;
} M;

static void md_writer(tf_script *sc, weft_stream *s, tf_hook hook) {
    (void)sc;
    if (hook != TF_REQ_HEADERS)
        return;
    M.set_int = weft_metadata_set_int(s, weft_str_c("a.count"), INT64_MIN);
    M.set_bytes = weft_metadata_set_bytes(s, weft_str_c("a.raw"), "\0\1\2", 3);
    M.set_str = weft_metadata_set(s, weft_str_c("a.name"), weft_str_c("bob"));
    /* filter_metadata_entries: 3 -> a fourth key is refused, a replacement is not */
    M.fourth_key = weft_metadata_set_int(s, weft_str_c("a.more"), 1);
    M.replace = weft_metadata_set_int(s, weft_str_c("a.count"), 41);
    M.replace |= weft_metadata_set_int(s, weft_str_c("a.count"), 42);
    M.empty_key = weft_metadata_set_int(s, weft_str_c(""), 1);
    M.null_data = weft_metadata_set_bytes(s, weft_str_c("a.raw"), NULL, 2);
}

static void md_reader(tf_script *sc, weft_stream *s, tf_hook hook) {
    (void)sc;
    if (hook == TF_COMPLETE) {
        M.log_phase_get = weft_metadata_get_int(s, weft_str_c("a.count"), &M.log_phase_v);
        return;
    }
    if (hook != TF_REQ_HEADERS)
        return;
    M.get_int = weft_metadata_get_int(s, weft_str_c("a.count"), &M.v);
    const void *b = NULL;
    M.get_bytes = weft_metadata_get_bytes(s, weft_str_c("a.raw"), &b, &M.blen);
    if (b && M.blen <= sizeof(M.bytes))
        memcpy(M.bytes, b, M.blen);
    weft_str sv;
    int64_t iv = 7;
    const void *bp;
    size_t bl;
    M.get_str_of_int = weft_metadata_get(s, weft_str_c("a.count"), &sv);
    M.get_int_of_bytes = weft_metadata_get_int(s, weft_str_c("a.raw"), &iv);
    M.get_bytes_of_str = weft_metadata_get_bytes(s, weft_str_c("a.name"), &bp, &bl);
    M.get_missing = weft_metadata_get_int(s, weft_str_c("a.none"), &iv);
    M.get_int_null = weft_metadata_get_int(s, weft_str_c("a.count"), NULL);
    assert_int_equal(iv, 7); /* untouched by the refused gets */
}

static void test_typed_metadata(void **state) {
    (void)state;
    tf_script f1 = {.name = "f1", .custom = md_writer}, f2 = {.name = "f2", .custom = md_reader};
    tf_script *fs[] = {&f1, &f2};
    st_start(&H, fs, 2, "filter_metadata_entries: 3", "", NULL, 0);
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    assert_int_equal(d->status, 200);
    assert_int_equal(M.set_int, WEFT_OK);
    assert_int_equal(M.set_bytes, WEFT_OK);
    assert_int_equal(M.set_str, WEFT_OK);
    assert_int_equal(M.fourth_key, WEFT_ERR_LIMIT);
    assert_int_equal(M.replace, WEFT_OK);
    assert_int_equal(M.empty_key, WEFT_ERR_INVALID);
    assert_int_equal(M.null_data, WEFT_ERR_INVALID);
    assert_int_equal(M.get_int, WEFT_OK);
    assert_int_equal(M.v, 42);
    assert_int_equal(M.get_bytes, WEFT_OK);
    assert_int_equal(M.blen, 3);
    assert_memory_equal(M.bytes, "\0\1\2", 3);
    assert_int_equal(M.get_str_of_int, WEFT_ERR_INVALID);
    assert_int_equal(M.get_int_of_bytes, WEFT_ERR_INVALID);
    assert_int_equal(M.get_bytes_of_str, WEFT_ERR_INVALID);
    assert_int_equal(M.get_missing, WEFT_ERR_NOT_FOUND);
    assert_int_equal(M.get_int_null, WEFT_ERR_INVALID);
    assert_int_equal(M.log_phase_get, WEFT_OK);
    assert_int_equal(M.log_phase_v, 42);
    sh_ds_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_logf_yaml_name, teardown),
        cmocka_unit_test(test_setup_logf),
        cmocka_unit_test_teardown(test_typed_metadata, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
