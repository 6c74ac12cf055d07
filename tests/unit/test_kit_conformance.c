/* test_kit_conformance.c: the same cases against weft's core and the
 * filter test kit (sdk/filtertest), which share their rules by
 * construction (sdk/common: wsh_rules.c, wsh_handle.c): a filter config
 * weft refuses (YAML alias, NUL in a string) is refused by the kit with
 * the same message; every HTTP status maps to the same gRPC status in a
 * kit local reply as in weft's (the table filter.h documents); a stale
 * stream handle is WEFT_ERR_HANDLE in both; labelled stat families (SDK
 * 1.1) give the same results for the same declarations and updates
 * (rules, series made, overflow); raw TCP callouts (SDK 1.1) answer the
 * same misuse with the same codes, also inside on_close and after the
 * stream ended (weft: a real stream of the stream harness and real
 * sockets; the kit: its scripted peer); HTTP callouts of SDK 1.1
 * (weft_callout_start2, worker-scoped, detached) too: request checks, the
 * stream's cap (detached ones not counted), the worker's cap, cancels,
 * the log phase; and what the same callouts DELIVER when their upstream
 * answers the same way (weft: a real upstream socket; the kit: its
 * controls): the callback's status, reason, response headers and body
 * (a 200, the body limits per request and configured, a timeout, a
 * refused connect), the worker's cap reached from a callback (the
 * callout whose callback runs no longer counts) and detached callouts'
 * sent / failed counts (a detached body is discarded: never
 * body_too_large); TCP callouts against the worker's cap: one whose
 * on_close runs no longer counts (it reconnects from there), one
 * flush-closed with bytes queued still does (it lingers), one closed
 * without flush does not. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include <cmocka.h>

#include "config/config.h"
#include "filter/filter.h"
#include "filter/filter_setup.h"
#include "filter/handles.h"
#include "http/stream.h"
#include "loop/worker.h"
#include "stats/stats.h"
#include "stream_harness.h"
#include "stream_test_config.h"
#include "wsh_rules.h"
#include <weft/filtertest.h>

/* weft__host: stream_harness.c's (both hosts' entries set it) */

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

/* ---- labelled stat families: one script, run against both hosts ---- */

#define FAM_CASES 12
#define FAM_UPDATES 14
static weft_result g_decl[2][FAM_CASES];
static int32_t g_fam[2][3];

/* Declarations (config time): results into out, the families kept. */
static void fam_declare(const weft_host_api *h, weft_filter_setup *st, weft_result *out,
                        int32_t fam[3]) {
    static const char *const mc[] = {"method", "code"};
    static const char *const bad1[] = {"__x"};
    static const char *const bad2[] = {"9a"};
    static const char *const bad3[] = {"a", "a"};
    static const char *const bad4[] = {"cluster"};
    static const char *const nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    int32_t f;
    int i = 0;
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "rq_total", "h", mc, 2, 3, &fam[0]);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "rq_total", "h", mc, 2, 3, &f);
    out[i++] = f == fam[0] ? WEFT_OK : WEFT_ERR_STATE; /* the same family */
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "rq_total", "h", mc, 1, 3, &f);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_GAUGE, "g", "h", mc, 2, 2, &fam[1]);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_HISTOGRAM, "lat", "h", mc, 1, 2, &fam[2]);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "x", "", bad1, 1, 3, &f);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "x", "", bad2, 1, 3, &f);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "x", "", bad3, 2, 3, &f);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "x", "", bad4, 1, 3, &f);
    out[i++] = h->stat_family(st, WEFT_STAT_KIND_COUNTER, "x", "", nine, 9, 3, &f);
    out[i++] = h->stat_family(st, 3, "x", "", mc, 2, 10001, &f);
}

/* Updates (request path): return codes into out. */
static void fam_update(const weft_host_api *h, const int32_t fam[3], weft_result *out) {
    char longv[WEFT_STAT_LABEL_VALUE_MAX + 1];
    memset(longv, 'l', sizeof(longv));
    const char *methods[] = {"GET", "PUT", "POST", "HEAD", "GET"};
    int i = 0;
    for (size_t k = 0; k < 5; k++) {
        weft_str v[2] = {weft_str_c(methods[k]), WEFT_STR("2xx")};
        out[i++] = h->stat_family_inc(fam[0], v, 2, 1);
    }
    weft_str lv[2] = {{longv, sizeof(longv)}, WEFT_STR("")};
    out[i++] = h->stat_family_inc(fam[0], lv, 2, 1);
    weft_str v[2] = {WEFT_STR("a"), WEFT_STR("b")};
    out[i++] = h->stat_family_inc(fam[0], v, 1, 1);
    out[i++] = h->stat_family_inc(fam[0], NULL, 2, 1);
    out[i++] = h->stat_family_inc(-1, v, 2, 1);
    out[i++] = h->stat_family_inc(fam[1], v, 2, 1);
    out[i++] = h->stat_family_gauge_add(fam[1], v, 2, -1);
    out[i++] = h->stat_family_observe_us(fam[2], v, 1, 10);
    weft_str nullv[2] = {{NULL, 1}, WEFT_STR("")};
    out[i++] = h->stat_family_inc(fam[0], nullv, 2, 1);
    out[i++] = h->stat_family_observe_us(fam[0], v, 2, 10);
}

static int fam_cfg_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    fam_declare(weft__host, setup, g_decl[1], g_fam[1]);
    *config = NULL;
    return 0;
}
static const weft_http_filter_ops fam_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = fam_cfg_create,
};
static const weft_filter_descriptor fam_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("conf", WEFT_FILTER_HTTP),
    .http = &fam_ops,
};
static const weft_filter_descriptor *fam_entry(const weft_host_api *host) {
    weft__host = host;
    return &fam_desc;
}

static void test_stat_families(void **state) {
    (void)state;
    weft_result upd[2][FAM_UPDATES];
    /* core: a setup as the snapshot build makes it, a stats block for this thread */
    weft_stats_reset_for_tests();
    weft_stats_block *b = weft_stats_block_new();
    weft_stats_set_thread_block(b);
    weft_cfg_filter cf = {.name = "conf"};
    struct weft_filter_setup st = {.filter = &cf, .listener = "l"};
    const weft_host_api *core = weft_filter_host_api();
    fam_declare(core, &st, g_decl[0], g_fam[0]);
    fam_update(core, g_fam[0], upd[0]);
    /* kit */
    char err[512];
    wft_env *env = wft_env_new(fam_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    fam_update(wft_host_api(), g_fam[1], upd[1]);
    for (int i = 0; i < FAM_CASES; i++)
        if (g_decl[0][i] != g_decl[1][i])
            fail_msg("declaration %d: core %d, kit %d", i, g_decl[0][i], g_decl[1][i]);
    for (int i = 0; i < FAM_UPDATES; i++)
        if (upd[0][i] != upd[1][i])
            fail_msg("update %d: core %d, kit %d", i, upd[0][i], upd[1][i]);
    assert_int_equal(g_decl[0][0], WEFT_OK);
    assert_int_equal(g_decl[0][6], WEFT_ERR_INVALID);
    /* the same series and overflow */
    assert_int_equal(weft_stats_family_series((uint32_t)g_fam[0][0]), 3);
    assert_int_equal(wft_stat_family_series(env, "rq_total"), 3);
    assert_int_equal(weft_stats_family_overflow((uint32_t)g_fam[0][0]),
                     2); /* HEAD, the long value */
    assert_int_equal(wft_stat_family_overflow(env, "rq_total"), 2);
    weft_sv get[2] = {WEFT_SV_LIT("GET"), WEFT_SV_LIT("2xx")};
    uint64_t v = 0;
    assert_true(weft_stats_family_value((uint32_t)g_fam[0][0], get, 2, &v));
    assert_int_equal(v, 2);
    assert_int_equal(wft_stat_series_value(env, "rq_total", "GET", "2xx", NULL), 2);
    assert_int_equal(wft_stat_series_gauge(env, "g", "a", "b", NULL), -1);
    wft_env_free(env);
    weft_stats_block_free(b);
    weft_stats_reset_for_tests();
}

/* ---- raw TCP callouts: one script, run against both hosts ---- */

#define TCP_SYNC 40
typedef struct tcp_run {
    const weft_host_api *h;
    weft_stream *s;
    weft_result r[TCP_SYNC]; /* the synchronous calls in the request headers */
    int n, opened;           /* results; callouts opened (the kit's index) */
    int refused_idx;         /* the kit's index of the callout to c1 */
    weft_tcp_callout *refused, *reopened, *last;
    int closes;
    uint32_t reason;
    weft_result close_write, close_reopen, stale_write, ended_write;
} tcp_run;
static tcp_run g_tcp[2]; /* 0: weft, 1: the kit */

static void tc_data(weft_tcp_callout *c, void *arg, weft_buffer *b) {
    (void)c;
    (void)arg;
    (void)b;
}

static const weft_tcp_callout_cbs TC_CBS;

/* The refused callout ends: a write is refused, a reconnect allowed (the
 * one whose on_close runs is not counted against the stream's cap). */
static void tc_close(weft_tcp_callout *c, void *arg, uint32_t reason) {
    tcp_run *o = arg;
    o->closes++;
    o->reason = reason;
    o->close_write = o->h->tcp_callout_write(c, "x", 1);
    o->close_reopen = o->h->tcp_callout_open(o->s, WEFT_STR("c0"), NULL, &TC_CBS, o, &o->reopened);
}

static const weft_tcp_callout_cbs TC_CBS = {sizeof(weft_tcp_callout_cbs), NULL, tc_data, tc_close};

static void tcp_script(const weft_host_api *h, weft_stream *s, weft_worker *w, tcp_run *o) {
    o->h = h;
    o->s = s;
    weft_result *r = o->r;
    int i = 0;
    weft_tcp_callout *c = NULL;
    weft_str c0 = WEFT_STR("c0");
    weft_tcp_callout_cbs cbs = TC_CBS;
    weft_tcp_callout_opts op = {.size = sizeof(op)};
    r[i++] = w ? WEFT_OK : WEFT_ERR_NOT_FOUND; /* a worker handle in a hook */
    r[i++] = h->tcp_callout_open(s, c0, NULL, NULL, o, &c);
    cbs.on_data = NULL;
    r[i++] = h->tcp_callout_open(s, c0, NULL, &cbs, o, &c);
    cbs = TC_CBS;
    cbs.size = sizeof(size_t);
    r[i++] = h->tcp_callout_open(s, c0, NULL, &cbs, o, &c);
    r[i++] = h->tcp_callout_open(s, c0, NULL, &TC_CBS, o, NULL);
    op.size = sizeof(size_t);
    r[i++] = h->tcp_callout_open(s, c0, &op, &TC_CBS, o, &c);
    op.size = sizeof(op);
    op.flags = 2;
    r[i++] = h->tcp_callout_open(s, c0, &op, &TC_CBS, o, &c);
    op.flags = 0;
    r[i++] = h->tcp_callout_open(s, (weft_str){NULL, 2}, NULL, &TC_CBS, o, &c);
    r[i++] = h->tcp_callout_open(s, (weft_str){NULL, 0}, NULL, &TC_CBS, o, &c);
    r[i++] = h->tcp_callout_open(s, WEFT_STR("nope"), NULL, &TC_CBS, o, &c);
    r[i++] = h->tcp_callout_open(NULL, c0, NULL, &TC_CBS, o, &c);
    r[i++] = h->worker_tcp_callout_open(NULL, c0, NULL, &TC_CBS, o, &c);
    r[i++] = h->worker_tcp_callout_open((weft_worker *)s, c0, NULL, &TC_CBS, o, &c);
    r[i++] = h->worker_tcp_callout_open(w, c0, NULL, NULL, o, &c);
    r[i++] = h->worker_tcp_callout_open(w, WEFT_STR("nope"), NULL, &TC_CBS, o, &c);
    r[i++] = h->tcp_callout_write(NULL, "x", 1);
    r[i++] = h->tcp_callout_close(NULL, true);
    r[i++] = h->tcp_callout_write((weft_tcp_callout *)s, "x", 1);
    r[i++] = h->tcp_callout_close((weft_tcp_callout *)w, false);
    r[i++] = c ? WEFT_ERR_STATE : WEFT_OK; /* no failed open wrote *out */
    op.max_write_bytes = 4;
    r[i++] = h->tcp_callout_open(s, c0, &op, &TC_CBS, o, &c);
    o->opened++;
    r[i++] = h->tcp_callout_write(c, NULL, 1);
    r[i++] = h->tcp_callout_write(c, "12345", 5);
    r[i++] = h->tcp_callout_write(c, "1234", 4);
    r[i++] = h->tcp_callout_write(c, "5", 1);
    r[i++] = h->tcp_callout_close(c, false);
    r[i++] = h->tcp_callout_write(c, "x", 1);
    r[i++] = h->tcp_callout_close(c, true);
    r[i++] = h->worker_tcp_callout_open(w, c0, NULL, &TC_CBS, o, &c);
    o->opened++;
    r[i++] = h->tcp_callout_close(c, false);
    /* The stream's cap (8): one to c1 (refused: it ends by itself), then
     * to c0 until refused. */
    o->refused_idx = o->opened++;
    r[i++] = h->tcp_callout_open(s, WEFT_STR("c1"), NULL, &TC_CBS, o, &o->refused);
    int more = 0;
    weft_result rc;
    while ((rc = h->tcp_callout_open(s, c0, NULL, &TC_CBS, o, &o->last)) == WEFT_OK && more < 20)
        more++;
    o->opened += more;
    r[i++] = rc;
    r[i++] = more == 7 ? WEFT_OK : WEFT_ERR_STATE;
    assert_true(i <= TCP_SYNC);
    o->n = i;
}

static void tcp_core_hook(tf_script *sc, weft_stream *s, tf_hook hook) {
    if (hook == TF_REQ_HEADERS)
        tcp_script(weft_filter_host_api(), s, weft_worker_current(sc), &g_tcp[0]);
}

static bool tcp_closed(void *arg) {
    return ((tcp_run *)arg)->closes > 0;
}

static int tcp_kit_cfg;
static int tcp_cfg_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    *config = &tcp_kit_cfg; /* weft_worker_current(config) needs one */
    return 0;
}
static weft_status tcp_kit_rq(void *ctx, weft_stream *s, bool end) {
    tcp_script(weft__host, s, weft__host->worker_current(&tcp_kit_cfg), &g_tcp[1]);
    return WEFT_STOP;
}
static const weft_http_filter_ops tcp_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = tcp_cfg_create,
    .on_request_headers = tcp_kit_rq,
};
static const weft_filter_descriptor tcp_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("conf", WEFT_FILTER_HTTP),
    .http = &tcp_ops,
};
static const weft_filter_descriptor *tcp_entry(const weft_host_api *host) {
    weft__host = host;
    return &tcp_desc;
}

static sh H;

static void test_tcp_callouts(void **state) {
    (void)state;
    memset(g_tcp, 0, sizeof(g_tcp));
    /* weft: c0 on a listening upstream, c1 on one that refuses */
    tf_script f = {.name = "conf", .custom = tcp_core_hook, .act[TF_REQ_HEADERS] = TF_STOP};
    tf_script *fs[] = {&f};
    st_start_with_c1(&H, fs, 1, "", "");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_run_until(&H, tcp_closed, &g_tcp[0], "on_close of the refused callout");
    g_tcp[0].stale_write = weft_tcp_callout_write(g_tcp[0].refused, "x", 1);
    sh_ds_free(d);
    g_tcp[0].ended_write = weft_tcp_callout_write(g_tcp[0].reopened, "x", 1);
    /* the kit: the same, its peer refuses the connect */
    char err[512];
    wft_env *env = wft_env_new(tcp_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_add_cluster(env, "c0"), 0);
    assert_int_equal(wft_env_add_cluster(env, "c1"), 0);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    wft_stream *st = wft_stream_new(env, "GET", "/up", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_string_equal(wft_tcp_cluster(env, (size_t)g_tcp[1].refused_idx), "c1");
    assert_int_equal(wft_tcp_end(env, (size_t)g_tcp[1].refused_idx, WEFT_TCP_CLOSE_CONNECT_FAILURE),
                     0);
    g_tcp[1].stale_write = weft__host->tcp_callout_write(g_tcp[1].refused, "x", 1);
    assert_int_equal(wft_complete(st, NULL), 0);
    g_tcp[1].ended_write = weft__host->tcp_callout_write(g_tcp[1].reopened, "x", 1);
    wft_stream_free(st);
    wft_env_free(env);
    /* the same answers */
    assert_int_equal(g_tcp[0].n, g_tcp[1].n);
    for (int i = 0; i < g_tcp[0].n; i++)
        if (g_tcp[0].r[i] != g_tcp[1].r[i])
            fail_msg("call %d: weft %d, kit %d", i, g_tcp[0].r[i], g_tcp[1].r[i]);
    for (int k = 0; k < 2; k++) {
        tcp_run *o = &g_tcp[k];
        print_message("%s: on_close %d reason %u write %d reopen %d stale %d ended %d\n",
                      k ? "kit" : "weft", o->closes, o->reason, o->close_write, o->close_reopen,
                      o->stale_write, o->ended_write);
        assert_int_equal(o->closes, 1);
        assert_int_equal(o->reason, WEFT_TCP_CLOSE_CONNECT_FAILURE);
        assert_int_equal(o->close_write, WEFT_ERR_STATE);
        assert_int_equal(o->close_reopen, WEFT_OK);
        assert_int_equal(o->stale_write, WEFT_ERR_HANDLE);
        assert_int_equal(o->ended_write, WEFT_ERR_HANDLE);
    }
    /* and what they are */
    const weft_result want[] = {WEFT_OK,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_NOT_FOUND,
                                WEFT_ERR_NOT_FOUND,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_NOT_FOUND,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_HANDLE,
                                WEFT_OK,
                                WEFT_OK,
                                WEFT_ERR_INVALID,
                                WEFT_ERR_LIMIT,
                                WEFT_OK,
                                WEFT_ERR_LIMIT,
                                WEFT_OK,
                                WEFT_ERR_HANDLE,
                                WEFT_ERR_HANDLE,
                                WEFT_OK,
                                WEFT_OK,
                                WEFT_OK,
                                WEFT_ERR_LIMIT,
                                WEFT_OK};
    assert_int_equal(g_tcp[0].n, (int)(sizeof(want) / sizeof(want[0])));
    for (int i = 0; i < g_tcp[0].n; i++)
        if (g_tcp[0].r[i] != want[i])
            fail_msg("call %d: %d, expected %d", i, g_tcp[0].r[i], want[i]);
}

/* ---- HTTP callouts (SDK 1.1): one script, run against both hosts ---- */

#define HTTP_CALLS 48
static weft_result g_http[2][HTTP_CALLS];
static int g_http_n[2];
static weft_result g_http_log[2];

static void hc_cb(weft_stream *s, void *ctx, void *arg, const weft_callout_response *r) {
    (void)s;
    (void)ctx;
    (void)arg;
    (void)r;
}
static void hc_wcb(weft_worker *w, void *arg, const weft_callout_response *r) {
    (void)w;
    (void)arg;
    (void)r;
}

/* From the request headers; the worker's cap is 12. */
static void http_script(const weft_host_api *h, weft_stream *s, weft_worker *w, weft_result *r,
                        int *n) {
    int i = 0;
    weft_callout *c = NULL, *first = NULL;
    const weft_callout_request ok = {.size = sizeof(weft_callout_request),
                                     .cluster = WEFT_STR("c0"),
                                     .method = WEFT_STR("GET"),
                                     .path = WEFT_STR("/x")};
    weft_callout_request q = ok;
    weft_str bad_name = WEFT_STR("a b"), val = WEFT_STR("v");
    r[i++] = h->callout_start2(s, NULL, hc_cb, NULL, &c);
    q.size = sizeof(size_t);
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    q.flags = 4;
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    r[i++] = h->callout_start2(s, &q, NULL, NULL, &c); /* no callback, not detached */
    q.flags = WEFT_CALLOUT_DETACHED;
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c); /* a callback with detached */
    q = ok;
    q.method = WEFT_STR("");
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    q.path = WEFT_STR("x");
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q.path = WEFT_STR("/a b");
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    q.authority = WEFT_STR("a b");
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    q.n_headers = 1;
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q.header_names = &bad_name;
    q.header_values = &val;
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    q.body = (weft_str){NULL, 3};
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q = ok;
    q.cluster = WEFT_STR("nope");
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    q.cluster = WEFT_STR("");
    r[i++] = h->callout_start2(s, &q, hc_cb, NULL, &c);
    r[i++] = h->callout_start2(NULL, &ok, hc_cb, NULL, &c);
    r[i++] = c ? WEFT_ERR_STATE : WEFT_OK; /* no failed start wrote *out */
    /* One in flight, cancelled (a second cancel: not in flight). */
    r[i++] = h->callout_start2(s, &ok, hc_cb, NULL, &first);
    r[i++] = first ? WEFT_OK : WEFT_ERR_STATE;
    r[i++] = h->callout_cancel(s, first);
    r[i++] = h->callout_cancel(s, first);
    /* Detached: no handle. */
    q = ok;
    q.flags = WEFT_CALLOUT_DETACHED;
    c = (weft_callout *)&q;
    r[i++] = h->callout_start2(s, &q, NULL, NULL, &c);
    r[i++] = c ? WEFT_ERR_STATE : WEFT_OK;
    /* The stream's cap (8), detached ones apart; then the worker's (12). */
    int k = 0;
    weft_result rc;
    while ((rc = h->callout_start2(s, &ok, hc_cb, NULL, &c)) == WEFT_OK && k < 20)
        k++;
    r[i++] = rc;
    r[i++] = k == 8 ? WEFT_OK : WEFT_ERR_STATE;
    for (k = 0; (rc = h->callout_start2(s, &q, NULL, NULL, NULL)) == WEFT_OK && k < 20;)
        k++;
    r[i++] = rc;
    r[i++] = k == 3 ? WEFT_OK : WEFT_ERR_STATE; /* 8 + 1 + 3 = 12 */
    r[i++] = h->worker_callout_start(w, &ok, hc_wcb, NULL, &c);
    /* Worker scope: handles, request checks, cancels. */
    r[i++] = h->worker_callout_start(NULL, &ok, hc_wcb, NULL, &c);
    r[i++] = h->worker_callout_start((weft_worker *)s, &ok, hc_wcb, NULL, &c);
    r[i++] = h->worker_callout_start(w, &ok, NULL, NULL, &c);
    r[i++] = h->worker_callout_start(w, NULL, hc_wcb, NULL, &c);
    r[i++] = h->worker_callout_cancel(w, NULL);
    r[i++] = h->worker_callout_cancel(w, first);
    r[i++] = h->worker_callout_cancel(NULL, first);
    assert_true(i <= HTTP_CALLS);
    *n = i;
}

static weft_result http_log_phase(const weft_host_api *h, weft_stream *s) {
    const weft_callout_request ok = {.size = sizeof(weft_callout_request),
                                     .cluster = WEFT_STR("c0"),
                                     .method = WEFT_STR("GET"),
                                     .path = WEFT_STR("/x")};
    return h->callout_start2(s, &ok, hc_cb, NULL, NULL);
}

static void http_core_hook(tf_script *sc, weft_stream *s, tf_hook hook) {
    if (hook == TF_REQ_HEADERS)
        http_script(weft_filter_host_api(), s, weft_worker_current(sc), g_http[0], &g_http_n[0]);
    else if (hook == TF_COMPLETE)
        g_http_log[0] = http_log_phase(weft_filter_host_api(), s);
}

static weft_status http_kit_rq(void *ctx, weft_stream *s, bool end) {
    http_script(weft__host, s, weft__host->worker_current(&tcp_kit_cfg), g_http[1], &g_http_n[1]);
    return WEFT_CONTINUE;
}
static void http_kit_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    g_http_log[1] = http_log_phase(weft__host, s);
}
static const weft_http_filter_ops http_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = tcp_cfg_create,
    .on_request_headers = http_kit_rq,
    .on_stream_complete = http_kit_complete,
};
static const weft_filter_descriptor http_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("conf", WEFT_FILTER_HTTP),
    .http = &http_ops,
};
static const weft_filter_descriptor *http_entry(const weft_host_api *host) {
    weft__host = host;
    return &http_desc;
}

static void test_http_callouts(void **state) {
    (void)state;
    /* weft: the worker's cap set to 12 (top-level callouts) */
    tf_script f = {.name = "conf", .custom = http_core_hook};
    tf_script *fs[] = {&f};
    st_start_with_c1(&H, fs, 1, "", "callouts: {max_per_worker: 12}\n");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/direct", NULL);
    sh_run_until(&H, sh_ds_ended, d, "the end of the exchange");
    sh_ds_free(d);
    /* the kit */
    char err[512];
    wft_env *env = wft_env_new(http_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_add_cluster(env, "c0"), 0);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    assert_int_equal(wft_env_set_callout_limits(env, 12, 0), 0);
    wft_stream *st = wft_stream_new(env, "GET", "/direct", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_CONTINUE);
    assert_int_equal(wft_response_headers(st, 200, NULL, true), WEFT_CONTINUE);
    assert_int_equal(wft_complete(st, NULL), 0);
    wft_stream_free(st);
    wft_env_free(env);
    /* the same answers, and they are the documented ones */
    assert_int_equal(g_http_n[0], g_http_n[1]);
    for (int i = 0; i < g_http_n[0]; i++)
        if (g_http[0][i] != g_http[1][i])
            fail_msg("call %d: weft %d, kit %d", i, g_http[0][i], g_http[1][i]);
    const weft_result I = WEFT_ERR_INVALID, want[] = {I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      I,
                                                      WEFT_ERR_NOT_FOUND,
                                                      WEFT_ERR_NOT_FOUND,
                                                      WEFT_ERR_HANDLE,
                                                      WEFT_OK,
                                                      WEFT_OK,
                                                      WEFT_OK,
                                                      WEFT_OK,
                                                      WEFT_ERR_INVALID,
                                                      WEFT_OK,
                                                      WEFT_OK,
                                                      WEFT_ERR_LIMIT,
                                                      WEFT_OK,
                                                      WEFT_ERR_LIMIT,
                                                      WEFT_OK,
                                                      WEFT_ERR_LIMIT,
                                                      WEFT_ERR_HANDLE,
                                                      WEFT_ERR_HANDLE,
                                                      I,
                                                      I,
                                                      WEFT_ERR_NOT_FOUND,
                                                      WEFT_ERR_NOT_FOUND,
                                                      WEFT_ERR_HANDLE};
    assert_int_equal(g_http_n[0], (int)(sizeof(want) / sizeof(want[0])));
    for (int i = 0; i < g_http_n[0]; i++)
        if (g_http[0][i] != want[i])
            fail_msg("call %d: %d, expected %d", i, g_http[0][i], want[i]);
    assert_int_equal(g_http_log[0], WEFT_ERR_STATE);
    assert_int_equal(g_http_log[1], WEFT_ERR_STATE);
}

/* ---- TCP callouts and the worker's cap (2), both hosts ----
 * The hook opens A to c1 (refused) and B to c0; A's on_close opens C
 * (A no longer counts), writes to B and flush-closes it (B lingers),
 * opens E (LIMIT: B and C), closes C without flush and opens F (OK). */
typedef struct tcap_run {
    const weft_host_api *h;
    weft_stream *s;
    weft_tcp_callout *a, *b, *c, *e, *f;
    weft_result r[8];
    int n;
    bool closed;
} tcap_run;
static tcap_run g_tcap[2];
static const weft_tcp_callout_cbs TC_CBS_CAP;

static void tcap_close(weft_tcp_callout *c, void *arg, uint32_t reason) {
    (void)reason;
    tcap_run *o = arg;
    if (c != o->a || o->closed)
        return;
    o->closed = true;
    const weft_host_api *h = o->h;
    o->r[o->n++] = h->tcp_callout_open(o->s, WEFT_STR("c0"), NULL, &TC_CBS_CAP, o, &o->c);
    o->r[o->n++] = h->tcp_callout_write(o->b, "x", 1);
    o->r[o->n++] = h->tcp_callout_close(o->b, true);
    o->r[o->n++] = h->tcp_callout_open(o->s, WEFT_STR("c0"), NULL, &TC_CBS_CAP, o, &o->e);
    o->r[o->n++] = h->tcp_callout_close(o->c, false);
    o->r[o->n++] = h->tcp_callout_open(o->s, WEFT_STR("c0"), NULL, &TC_CBS_CAP, o, &o->f);
}

static const weft_tcp_callout_cbs TC_CBS_CAP = {sizeof(weft_tcp_callout_cbs), NULL, tc_data,
                                                tcap_close};

static void tcap_begin(const weft_host_api *h, weft_stream *s, tcap_run *o) {
    o->h = h;
    o->s = s;
    o->r[o->n++] = h->tcp_callout_open(s, WEFT_STR("c1"), NULL, &TC_CBS_CAP, o, &o->a);
    o->r[o->n++] = h->tcp_callout_open(s, WEFT_STR("c0"), NULL, &TC_CBS_CAP, o, &o->b);
}

static void tcap_core_hook(tf_script *sc, weft_stream *s, tf_hook hook) {
    (void)sc;
    if (hook == TF_REQ_HEADERS)
        tcap_begin(weft_filter_host_api(), s, &g_tcap[0]);
}
static weft_status tcap_kit_rq(void *ctx, weft_stream *s, bool end) {
    tcap_begin(weft__host, s, &g_tcap[1]);
    return WEFT_STOP;
}
static const weft_http_filter_ops tcap_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = tcp_cfg_create,
    .on_request_headers = tcap_kit_rq,
};
static const weft_filter_descriptor tcap_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("conf", WEFT_FILTER_HTTP),
    .http = &tcap_ops,
};
static const weft_filter_descriptor *tcap_entry(const weft_host_api *host) {
    weft__host = host;
    return &tcap_desc;
}
static bool tcap_closed(void *arg) {
    return ((tcap_run *)arg)->closed;
}

static void test_tcp_callout_caps(void **state) {
    (void)state;
    memset(g_tcap, 0, sizeof(g_tcap));
    tf_script f = {.name = "conf", .custom = tcap_core_hook, .act[TF_REQ_HEADERS] = TF_STOP};
    tf_script *fs[] = {&f};
    st_start_with_c1(&H, fs, 1, "", "callouts: {max_per_worker: 2}\n");
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    sh_run_until(&H, tcap_closed, &g_tcap[0], "A's on_close");
    sh_ds_free(d);
    char err[512];
    wft_env *env = wft_env_new(tcap_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_add_cluster(env, "c0"), 0);
    assert_int_equal(wft_env_add_cluster(env, "c1"), 0);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    assert_int_equal(wft_env_set_callout_limits(env, 2, 0), 0);
    wft_stream *st = wft_stream_new(env, "GET", "/up", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    assert_int_equal(wft_tcp_end(env, 0, WEFT_TCP_CLOSE_CONNECT_FAILURE), 0);
    assert_true(g_tcap[1].closed);
    /* B lingers (closed with flush, its byte unread) until the peer closes */
    assert_int_equal(wft_tcp_state(env, 1), WFT_TCP_CLOSED);
    assert_true(wft_tcp_flushed(env, 1));
    assert_int_equal(wft_tcp_end(env, 1, WEFT_TCP_CLOSE_PEER), 0);
    assert_int_equal(wft_tcp_end(env, 1, WEFT_TCP_CLOSE_PEER), WFT_REJECTED);
    wft_stream_free(st);
    wft_env_free(env);
    const weft_result want[] = {WEFT_OK, WEFT_OK,        WEFT_OK, WEFT_OK,
                                WEFT_OK, WEFT_ERR_LIMIT, WEFT_OK, WEFT_OK};
    assert_int_equal(g_tcap[0].n, 8);
    assert_int_equal(g_tcap[1].n, 8);
    for (int i = 0; i < 8; i++) {
        if (g_tcap[0].r[i] != g_tcap[1].r[i])
            fail_msg("call %d: weft %d, kit %d", i, g_tcap[0].r[i], g_tcap[1].r[i]);
        if (g_tcap[0].r[i] != want[i])
            fail_msg("call %d: %d, expected %d", i, g_tcap[0].r[i], want[i]);
    }
}

/* ---- HTTP callouts' outcomes: one chain of callouts, both hosts ----
 *
 * Each step starts from the previous one's callback (the first from the
 * request headers hook), so both hosts see them in the same order:
 *   s0  GET /s0 -> 200, three headers, "hello"
 *   h100, h101  100 response headers: all delivered; 101: too_many_headers
 *   s1  /s1 with max_response_body 4 -> 5 bytes: body_too_large
 *   s2  /s2 -> 100 bytes past the configured 64: body_too_large
 *   s3  /s3 with timeout_ms 100, never answered: timeout
 *   s4  to c1 (refused): connect_failure
 *   from s4's callback, the worker's cap (3): detached /d1, detached /d2,
 *   stream /s5 (OK: s4 no longer counts), detached /d3 (LIMIT);
 *   /d1 -> 503 (failed), /d2 -> 200 with 100 bytes (discarded, not
 *   failed), s5 -> 200 "ok"
 *   w6  from s5's callback: worker-scoped /w6 -> 200 "w"
 *   w7  from w6's callback: worker-scoped to c1: connect_failure. */
enum { OC_S0, OC_H100, OC_H101, OC_S1, OC_S2, OC_S3, OC_S4, OC_CAP, OC_S5, OC_W6, OC_W7, OC_N };

typedef struct oc_run {
    const weft_host_api *h;
    weft_stream *s;
    weft_worker *w;
    char out[OC_N][320];
    bool done;
} oc_run;
static oc_run g_oc[2]; /* 0: weft, 1: the kit */
static oc_run *g_ocr;  /* the run in progress */

static weft_callout_request oc_req(const char *cluster, const char *path) {
    return (weft_callout_request){.size = sizeof(weft_callout_request),
                                  .cluster = weft_str_c(cluster),
                                  .method = WEFT_STR("GET"),
                                  .path = weft_str_c(path)};
}

/* What a callback got, as one line. */
static void oc_record(int step, const weft_callout_response *r) {
    char *o = g_ocr->out[step];
    size_t cap = sizeof(g_ocr->out[step]);
    int n = snprintf(o, cap, "n=%zu status=%d reason=%.*s hdrs=", r->n_headers, r->status,
                     (int)r->reason.len, r->reason.ptr);
    for (size_t i = 0; i < r->n_headers && n > 0 && (size_t)n < cap; i++)
        n +=
            snprintf(o + n, cap - (size_t)n, "%.*s:%.*s,", (int)r->header_names[i].len,
                     r->header_names[i].ptr, (int)r->header_values[i].len, r->header_values[i].ptr);
    if (n > 0 && (size_t)n < cap)
        snprintf(o + n, cap - (size_t)n, " body(%zu)=%.*s", r->body.len,
                 (int)(r->body.len > 16 ? 16 : r->body.len), r->body.ptr);
}

static void oc_stream_cb(weft_stream *s, void *ctx, void *arg, const weft_callout_response *r);
static void oc_worker_cb(weft_worker *w, void *arg, const weft_callout_response *r);

/* Starts step `step` (a stream callout); a refused start is recorded. */
static void oc_start(int step, weft_callout_request q) {
    weft_result rc =
        g_ocr->h->callout_start2(g_ocr->s, &q, oc_stream_cb, (void *)(intptr_t)step, NULL);
    if (rc != WEFT_OK)
        snprintf(g_ocr->out[step], sizeof(g_ocr->out[step]), "start=%d", (int)rc);
}

static void oc_wstart(int step, weft_callout_request q) {
    weft_result rc =
        g_ocr->h->worker_callout_start(g_ocr->w, &q, oc_worker_cb, (void *)(intptr_t)step, NULL);
    if (rc != WEFT_OK) {
        snprintf(g_ocr->out[step], sizeof(g_ocr->out[step]), "start=%d", (int)rc);
        g_ocr->done = true;
    }
}

static void oc_stream_cb(weft_stream *s, void *ctx, void *arg, const weft_callout_response *r) {
    (void)s;
    (void)ctx;
    int step = (int)(intptr_t)arg;
    oc_record(step, r);
    weft_callout_request q;
    switch (step) {
    case OC_S0:
        oc_start(OC_H100, oc_req("c0", "/h100"));
        break;
    case OC_H100:
        oc_start(OC_H101, oc_req("c0", "/h101"));
        break;
    case OC_H101:
        q = oc_req("c0", "/s1");
        q.max_response_body = 4;
        oc_start(OC_S1, q);
        break;
    case OC_S1:
        oc_start(OC_S2, oc_req("c0", "/s2"));
        break;
    case OC_S2:
        q = oc_req("c0", "/s3");
        q.timeout_ms = 100;
        oc_start(OC_S3, q);
        break;
    case OC_S3:
        oc_start(OC_S4, oc_req("c1", "/s4"));
        break;
    case OC_S4: {
        /* the worker's cap is 3: s4 itself no longer counts */
        weft_result rc[4];
        weft_callout_request d = oc_req("c0", "/d1");
        d.flags = WEFT_CALLOUT_DETACHED;
        rc[0] = g_ocr->h->callout_start2(g_ocr->s, &d, NULL, NULL, NULL);
        d.path = WEFT_STR("/d2");
        rc[1] = g_ocr->h->callout_start2(g_ocr->s, &d, NULL, NULL, NULL);
        q = oc_req("c0", "/s5");
        rc[2] = g_ocr->h->callout_start2(g_ocr->s, &q, oc_stream_cb, (void *)(intptr_t)OC_S5, NULL);
        d.path = WEFT_STR("/d3");
        rc[3] = g_ocr->h->callout_start2(g_ocr->s, &d, NULL, NULL, NULL);
        snprintf(g_ocr->out[OC_CAP], sizeof(g_ocr->out[OC_CAP]), "starts=%d,%d,%d,%d", (int)rc[0],
                 (int)rc[1], (int)rc[2], (int)rc[3]);
        if (rc[2] != WEFT_OK)
            g_ocr->done = true;
        break;
    }
    case OC_S5:
        oc_wstart(OC_W6, oc_req("c0", "/w6"));
        break;
    default:
        break;
    }
}

static void oc_worker_cb(weft_worker *w, void *arg, const weft_callout_response *r) {
    int step = (int)(intptr_t)arg;
    oc_record(step, r);
    if (w != g_ocr->w)
        snprintf(g_ocr->out[step], sizeof(g_ocr->out[step]), "wrong worker handle");
    if (step == OC_W6)
        oc_wstart(OC_W7, oc_req("c1", "/w7"));
    else
        g_ocr->done = true;
}

static void oc_begin(const weft_host_api *h, weft_stream *s, weft_worker *w) {
    g_ocr->h = h;
    g_ocr->s = s;
    g_ocr->w = w;
    oc_start(OC_S0, oc_req("c0", "/s0"));
}

/* The upstream's answer to a path, as status, header lines and body;
 * false: it never answers (s3: the timeout). */
static bool oc_answer(const char *path, int *status, const char *const **hdrs, const char **body) {
    static const char *const h_s0[] = {"x-one: 1", "X-Two: two", "content-length: 5", NULL};
    static const char *const h_5[] = {"content-length: 5", NULL};
    static const char *const h_100[] = {"content-length: 100", NULL};
    static const char *const h_0[] = {"content-length: 0", NULL};
    static const char *const h_2[] = {"content-length: 2", NULL};
    static const char *const h_1[] = {"content-length: 1", NULL};
    static char b100[101];
    memset(b100, 'b', 100);
    /* 100 x-h-N lines, then content-length: 101 header lines; from the
     * second one: 100 */
    static char many_v[100][16];
    static const char *h_many[102];
    for (int i = 0; i < 100; i++) {
        snprintf(many_v[i], sizeof(many_v[i]), "x-h-%d: v", i);
        h_many[i] = many_v[i];
    }
    h_many[100] = "content-length: 0";
    static const struct {
        const char *path;
        int status;
        const char *const *hdrs;
        const char *body;
    } t[] = {
        {"/s0", 200, h_s0, "hello"}, {"/s1", 200, h_5, "hello"},     {"/s2", 200, h_100, b100},
        {"/d1", 503, h_0, ""},       {"/d2", 200, h_100, b100},      {"/s5", 200, h_2, "ok"},
        {"/w6", 200, h_1, "w"},      {"/h100", 200, h_many + 1, ""}, {"/h101", 200, h_many, ""}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(path, t[i].path)) {
            *status = t[i].status;
            *hdrs = t[i].hdrs;
            *body = t[i].body;
            return true;
        }
    return false;
}

static void oc_core_hook(tf_script *sc, weft_stream *s, tf_hook hook) {
    if (hook == TF_REQ_HEADERS)
        oc_begin(weft_filter_host_api(), s, weft_worker_current(sc));
}

static weft_status oc_kit_rq(void *ctx, weft_stream *s, bool end) {
    oc_begin(weft__host, s, weft__host->worker_current(&tcp_kit_cfg));
    return WEFT_STOP;
}
static const weft_http_filter_ops oc_ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = tcp_cfg_create,
    .on_request_headers = oc_kit_rq,
};
static const weft_filter_descriptor oc_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("conf", WEFT_FILTER_HTTP),
    .http = &oc_ops,
};
static const weft_filter_descriptor *oc_entry(const weft_host_api *host) {
    weft__host = host;
    return &oc_desc;
}

/* weft's upstream c0: every connection accepted, its request read and
 * answered by path (one request per connection: no pooling on c0). */
typedef struct oc_conn {
    int fd;
    bool answered;
    char got[2048];
    size_t n;
} oc_conn;

static void oc_serve(sh *h, oc_conn *cs, int *nc) {
    int fd = accept4(h->up[0].lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
        assert_true(*nc < 16);
        cs[(*nc)++] = (oc_conn){.fd = fd};
    }
    for (int i = 0; i < *nc; i++) {
        oc_conn *c = &cs[i];
        ssize_t r;
        while (!c->answered && c->n < sizeof(c->got) - 1 &&
               (r = recv(c->fd, c->got + c->n, sizeof(c->got) - 1 - c->n, 0)) > 0)
            c->n += (size_t)r;
        c->got[c->n] = '\0';
        char path[64];
        if (c->answered || !strstr(c->got, "\r\n\r\n") || sscanf(c->got, "GET %63s ", path) != 1)
            continue;
        c->answered = true;
        int status;
        const char *const *hdrs;
        const char *body;
        if (!oc_answer(path, &status, &hdrs, &body))
            continue; /* held */
        char resp[4096];
        int k = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\n", status);
        for (size_t j = 0; hdrs[j]; j++)
            k += snprintf(resp + k, sizeof(resp) - (size_t)k, "%s\r\n", hdrs[j]);
        k += snprintf(resp + k, sizeof(resp) - (size_t)k, "\r\n%s", body);
        assert_int_equal(send(c->fd, resp, (size_t)k, MSG_NOSIGNAL), k);
    }
}

/* The kit: answers the first pending callout it can (stream ones, then
 * the env's) as weft's upstream does; false when none can be. */
static bool oc_kit_step(wft_env *env, wft_stream *st) {
    for (int scope = 0; scope < 2; scope++) {
        size_t n = scope ? wft_env_callout_pending(env) : wft_callout_pending(st);
        for (size_t i = 0; i < n; i++) {
            const char *cluster = NULL, *path = NULL;
            bool ok = scope ? wft_env_callout_request(env, i, &cluster, NULL, &path, NULL, NULL)
                            : wft_callout_request(st, i, &cluster, NULL, &path, NULL, NULL);
            assert_true(ok);
            int status;
            const char *const *hdrs;
            const char *body;
            if (!strcmp(cluster, "c1")) { /* refused: the default reason */
                assert_int_equal(
                    scope ? wft_env_callout_fail(env, i, NULL) : wft_callout_fail(st, i, NULL), 0);
                return true;
            }
            if (!oc_answer(path, &status, &hdrs, &body))
                continue;
            assert_int_equal(scope ? wft_env_callout_respond(env, i, status, hdrs, body)
                                   : wft_callout_respond(st, i, status, hdrs, body),
                             0);
            return true;
        }
    }
    return false;
}

static void nap_ms(void) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void test_http_callout_outcomes(void **state) {
    (void)state;
    memset(g_oc, 0, sizeof(g_oc));
    /* weft: c0 without pooling (a connection per callout), c1 refuses */
    tf_script f = {.name = "conf", .custom = oc_core_hook, .act[TF_REQ_HEADERS] = TF_STOP};
    tf_script *fs[] = {&f};
    int u0 = sh_up_new(&H, true), u1 = sh_up_new(&H, false);
    char eps[512];
    snprintf(eps, sizeof(eps),
             "      - {address: 127.0.0.1, port: %u}\n"
             "  - name: c1\n"
             "    connect_attempts: 1\n"
             "    endpoints:\n"
             "      - {address: 127.0.0.1, port: %u}\n"
             "callouts: {max_per_worker: 3, max_response_body: 64}\n",
             H.up[u0].port, H.up[u1].port);
    sh_start(&H, fs, 1, st_yaml, "", "max_idle_per_endpoint: 0", eps);
    weft_stat_id sent = H.snap->clusters[0].callout_detached_sent;
    weft_stat_id failed = H.snap->clusters[0].callout_detached_failed;
    uint64_t sent0 = sh_counter(&H, sent), failed0 = sh_counter(&H, failed);
    g_ocr = &g_oc[0];
    sh_ds *d = sh_ds_new(&H);
    sh_request(d, "GET", "/up", NULL);
    oc_conn cs[16];
    int nc = 0;
    for (int k = 0; k < 5000 && (!g_oc[0].done || H.w->n_callouts); k++) {
        sh_turn(&H);
        oc_serve(&H, cs, &nc);
        nap_ms();
    }
    assert_true(g_oc[0].done);
    assert_int_equal(H.w->n_callouts, 0);
    uint64_t wsent = sh_counter(&H, sent) - sent0, wfailed = sh_counter(&H, failed) - failed0;
    sh_ds_free(d);
    for (int i = 0; i < nc; i++)
        close(cs[i].fd);
    /* the kit */
    char err[512];
    g_ocr = &g_oc[1];
    wft_env *env = wft_env_new(oc_entry, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_add_cluster(env, "c0"), 0);
    assert_int_equal(wft_env_add_cluster(env, "c1"), 0);
    assert_int_equal(wft_env_configure(env, "", err, sizeof(err)), 0);
    assert_int_equal(wft_env_set_callout_limits(env, 3, 64), 0);
    wft_stream *st = wft_stream_new(env, "GET", "/up", NULL);
    assert_int_equal(wft_request_headers(st, true), WEFT_STOP);
    for (int k = 0; k < 100 && !g_oc[1].done; k++)
        if (!oc_kit_step(env, st))
            wft_clock_advance(env, 50); /* s3's timeout */
    assert_true(g_oc[1].done);
    while (oc_kit_step(env, st)) /* detached ones left */
        ;
    uint64_t ksent = wft_callout_detached_sent(env, "c0");
    uint64_t kfailed = wft_callout_detached_failed(env, "c0");
    wft_stream_free(st);
    wft_env_free(env);
    /* the same outcomes */
    for (int i = 0; i < OC_N; i++) {
        print_message("step %d: weft %s\n         kit  %s\n", i, g_oc[0].out[i], g_oc[1].out[i]);
        if (strcmp(g_oc[0].out[i], g_oc[1].out[i]) != 0)
            fail_msg("step %d: weft \"%s\", kit \"%s\"", i, g_oc[0].out[i], g_oc[1].out[i]);
    }
    print_message("detached: weft sent %llu failed %llu, kit sent %llu failed %llu\n",
                  (unsigned long long)wsent, (unsigned long long)wfailed, (unsigned long long)ksent,
                  (unsigned long long)kfailed);
    assert_int_equal(wsent, ksent);
    assert_int_equal(wfailed, kfailed);
    /* and they are what filter.h says */
    assert_string_equal(
        g_oc[0].out[OC_S0],
        "n=3 status=200 reason= hdrs=x-one:1,x-two:two,content-length:5, body(5)=hello");
    assert_true(!strncmp(g_oc[0].out[OC_H100], "n=100 status=200 reason= hdrs=x-h-1:v,", 38));
    assert_string_equal(g_oc[0].out[OC_H101],
                        "n=0 status=0 reason=too_many_headers hdrs= body(0)=");
    assert_string_equal(g_oc[0].out[OC_S1], "n=0 status=0 reason=body_too_large hdrs= body(0)=");
    assert_string_equal(g_oc[0].out[OC_S2], "n=0 status=0 reason=body_too_large hdrs= body(0)=");
    assert_string_equal(g_oc[0].out[OC_S3], "n=0 status=0 reason=timeout hdrs= body(0)=");
    assert_string_equal(g_oc[0].out[OC_S4], "n=0 status=0 reason=connect_failure hdrs= body(0)=");
    assert_string_equal(g_oc[0].out[OC_CAP], "starts=0,0,0,-5");
    assert_string_equal(g_oc[0].out[OC_S5],
                        "n=1 status=200 reason= hdrs=content-length:2, body(2)=ok");
    assert_string_equal(g_oc[0].out[OC_W6],
                        "n=1 status=200 reason= hdrs=content-length:1, body(1)=w");
    assert_string_equal(g_oc[0].out[OC_W7], "n=0 status=0 reason=connect_failure hdrs= body(0)=");
    assert_int_equal(wsent, 2);
    assert_int_equal(wfailed, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_refusals),
        cmocka_unit_test(test_grpc_mapping),
        cmocka_unit_test(test_stale_handles),
        cmocka_unit_test(test_stat_families),
        cmocka_unit_test_prestate_setup_teardown(test_tcp_callouts, NULL, sh_teardown, &H),
        cmocka_unit_test_prestate_setup_teardown(test_http_callouts, NULL, sh_teardown, &H),
        cmocka_unit_test_prestate_setup_teardown(test_http_callout_outcomes, NULL, sh_teardown, &H),
        cmocka_unit_test_prestate_setup_teardown(test_tcp_callout_caps, NULL, sh_teardown, &H),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
