/* test_kit_conformance.c: the same cases against weft's core and the
 * filter test kit (sdk/filtertest), which share their rules by
 * construction (sdk/common: wsh_rules.c, wsh_handle.c): a filter config
 * weft refuses (YAML alias, NUL in a string) is refused by the kit with
 * the same message; every HTTP status maps to the same gRPC status in a
 * kit local reply as in weft's (the table filter.h documents); a stale
 * stream handle is WEFT_ERR_HANDLE in both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "filter/filter.h"
#include "filter/handles.h"
#include "http/stream.h"
#include "loop/worker.h"
#include "wsh_rules.h"
#include <weft/filtertest.h>

const weft_host_api *weft__host;

/* ---- a kit filter: replies with the status in x-status ---- */

static weft_status rq(void *ctx, weft_stream *s, bool end) {
    weft_str v;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-status"), &v) != WEFT_OK)
        return WEFT_CONTINUE;
    char num[8];
    snprintf(num, sizeof(num), "%.*s", (int)(v.len < 7 ? v.len : 7), v.ptr);
    weft_reply_simple(s, atoi(num), WEFT_STR("conformance"), WEFT_STR(""));
    return WEFT_REPLIED;
}

static int cfg_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    *config = NULL;
    return 0;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = cfg_create,
    .on_request_headers = rq,
};
static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("conf", WEFT_FILTER_HTTP),
    .http = &ops,
};
static const weft_filter_descriptor *entry(const weft_host_api *host) {
    weft__host = host;
    return &desc;
}

/* The message after "source:line:col: ". */
static const char *after_position(const char *msg) {
    const char *p = msg;
    for (int colons = 0; *p && colons < 3; p++)
        if (*p == ':')
            colons++;
    while (*p == ' ')
        p++;
    return p;
}

/* One filter config node, given to weft inside a whole config and to the
 * kit alone: both must refuse it with the same words. */
static void same_refusal(const char *node_yaml, const char *expect) {
    char core_cfg[1024];
    snprintf(core_cfg, sizeof(core_cfg),
             "listeners:\n"
             "  - name: l\n"
             "    port: 0\n"
             "    filters:\n"
             "      - name: conf\n"
             "        config: %s\n"
             "    virtual_hosts:\n"
             "      - {name: v, domains: [\"*\"], routes: [{match: {prefix: /}, cluster: c}]}\n"
             "clusters:\n"
             "  - {name: c, endpoints: [{address: 127.0.0.1, port: 1}]}\n",
             node_yaml);
    weft_config_error e;
    memset(&e, 0, sizeof(e));
    weft_config *cfg = weft_config_load_buffer(core_cfg, strlen(core_cfg), "weft.yaml", &e);
    assert_null(cfg);
    char err[512];
    wft_env *env = wft_env_new(entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, node_yaml, err, sizeof(err)), -1);
    wft_env_free(env);
    print_message("core: %s\nkit:  %s\n", e.msg, err);
    assert_string_equal(after_position(e.msg), expect);
    assert_string_equal(after_position(err), expect);
}

static void test_yaml_refusals(void **state) {
    (void)state;
    same_refusal("{a: &x 1, b: *x}", "YAML aliases are not supported");
    same_refusal("{a: \"x\\0y\"}", "strings must not contain NUL characters");
}

/* The table of filter.h (weft_reply_send), against the shared function
 * the core's local replies use and what a kit reply sends. */
static void test_grpc_mapping(void **state) {
    (void)state;
    static const struct {
        int http, grpc;
    } table[] = {{400, 13}, {401, 16}, {403, 7}, {404, 12}, {408, 4}, {504, 4}, {429, 8},
                 {502, 14}, {503, 14}, {500, 2}, {418, 2},  {413, 2}, {200, 2}, {599, 2}};
    char err[512];
    wft_env *env = wft_env_new(entry, err, sizeof(err));
    assert_non_null(env);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        assert_int_equal(wsh_grpc_status_for_http(table[i].http), table[i].grpc);
        char hs[32], want[8];
        snprintf(hs, sizeof(hs), "x-status: %d", table[i].http);
        snprintf(want, sizeof(want), "%d", table[i].grpc);
        const char *hdrs[] = {"content-type: application/grpc", hs, NULL};
        wft_stream *st = wft_stream_new(env, "POST", "/pkg.Svc/M", hdrs);
        assert_int_equal(wft_request_headers(st, true), WEFT_REPLIED);
        assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "grpc-status"), want);
        wft_stream_free(st);
    }
    /* every status weft can answer maps as the core's function says */
    for (int h = 200; h <= 599; h++) {
        int g = wsh_grpc_status_for_http(h);
        assert_true(g == 2 || g == 4 || g == 7 || g == 8 || g == 12 || g == 13 || g == 14 ||
                    g == 16);
    }
    wft_env_free(env);
}

/* A stale stream handle: WEFT_ERR_HANDLE from both hosts. */
static void test_stale_handles(void **state) {
    (void)state;
    /* core */
    weft_worker *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    weft_handles_attach(w);
    weft_stream s;
    memset(&s, 0, sizeof(s));
    s.w = w;
    s.magic = WEFT_STREAM_MAGIC;
    s.active = true;
    weft_stream_handle_open(&s);
    weft_stream *core_old = (weft_stream *)(uintptr_t)s.handle;
    weft_stream_handle_close(&s);
    weft_stream_handle_open(&s);
    weft_str v;
    assert_int_equal(
        weft_filter_host_api()->header_get(core_old, WEFT_REQUEST_HEADERS, WEFT_STR("a"), 0, &v),
        WEFT_ERR_HANDLE);
    weft_stream_handle_close(&s);
    weft_handles_detach(w);
    free(w);
    /* kit */
    char err[512];
    wft_env *env = wft_env_new(entry, err, sizeof(err));
    assert_non_null(env);
    const weft_host_api *kit = wft_host_api();
    assert_int_equal(kit->header_get(core_old, WEFT_REQUEST_HEADERS, WEFT_STR("a"), 0, &v),
                     WEFT_ERR_HANDLE);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_refusals),
        cmocka_unit_test(test_grpc_mapping),
        cmocka_unit_test(test_stale_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
