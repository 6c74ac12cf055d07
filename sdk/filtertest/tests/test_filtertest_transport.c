/* test_filtertest_transport: the kit's mirror of the ABI 1.1 transport
 * calls (write to the peer, close, connection timers, handshake_done with
 * facts, the upstream side, connection info), run on the test filter
 * tests/filters/hello_transport.so (the one the integration tests load
 * into weft) and on small inline filters for the misuse cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <weft/filtertest.h>

#ifndef WFT_HELLO_SO
#error "WFT_HELLO_SO: path of tests/filters/hello_transport.so"
#endif

static char err[512];

static wft_env *hello_env(const char *yaml) {
    wft_env *env = wft_env_load(WFT_HELLO_SO, err, sizeof(err));
    assert_non_null(env);
    assert_int_equal(wft_env_configure(env, yaml, err, sizeof(err)), 0);
    return env;
}

/* The server side: it speaks first, holds the codec until the client's
 * HELLO, then reports the facts. */
static void test_server_handshake(void **state) {
    (void)state;
    wft_env *env = hello_env("{name: srv, alpn: h2, timeout: 500ms}");
    wft_conn *c = wft_conn_new(env);
    assert_non_null(c);
    size_t len;
    assert_string_equal(wft_conn_to_network(c, &len), "HELLO srv h2\n");
    assert_false(wft_conn_handshake_complete(c));
    assert_int_equal(wft_conn_timers_pending(c), 1);
    /* Half a line: nothing yet. */
    assert_int_equal(wft_conn_read(c, "HELLO spiffe://td/a", 19), 0);
    assert_false(wft_conn_handshake_complete(c));
    /* The rest and the first request bytes in one segment. */
    assert_int_equal(wft_conn_read(c, " api.test\nGET / HTTP/1.1\r\n", 26), 0);
    assert_true(wft_conn_handshake_complete(c));
    assert_string_equal(wft_conn_to_codec(c, &len), "GET / HTTP/1.1\r\n");
    assert_string_equal(wft_conn_alpn(c), "h2");
    assert_string_equal(wft_conn_peer_identity(c), "spiffe://td/a");
    assert_string_equal(wft_conn_sni(c), "api.test");
    assert_string_equal(wft_conn_tls_version(c), "TOYv1");
    assert_string_equal(wft_conn_cipher(c), "NULL-XOR0");
    assert_true(wft_conn_tls(c));
    assert_int_equal(wft_conn_handshake_flags(c), 0x3u); /* TLS | PEER_VERIFIED */
    /* The handshake timer was cancelled: advancing does nothing. */
    assert_int_equal(wft_conn_timers_pending(c), 0);
    wft_clock_advance(env, 1000);
    assert_false(wft_conn_close_asked(c, NULL));
    assert_int_equal(wft_stat(env, "handshakes"), 1);
    assert_int_equal(wft_stat(env, "timeouts"), 0);
    /* Codec bytes pass down unchanged. */
    assert_int_equal(wft_conn_write(c, "RESP", 4), 0);
    assert_string_equal(wft_conn_to_network(c, NULL), "HELLO srv h2\nRESP");
    wft_conn_free(c);
    wft_env_free(env);
}

/* The handshake timeout is the filter's connection timer. */
static void test_server_timeout(void **state) {
    (void)state;
    wft_env *env = hello_env("{timeout: 500ms}");
    wft_conn *c = wft_conn_new(env);
    wft_clock_advance(env, 499);
    assert_false(wft_conn_close_asked(c, NULL));
    wft_clock_advance(env, 1);
    bool flush = true;
    assert_true(wft_conn_close_asked(c, &flush));
    assert_false(flush);
    assert_int_equal(wft_stat(env, "timeouts"), 1);
    /* No more bytes for a closing connection. */
    assert_int_equal(wft_conn_read(c, "HELLO\n", 6), -1);
    assert_string_equal(wft_conn_to_codec(c, NULL), "");
    wft_conn_free(c);
    wft_env_free(env);
}

/* BYE: write, then close with flush; RST: close without; a bad line: -1. */
static void test_server_close(void **state) {
    (void)state;
    wft_env *env = hello_env(NULL);
    wft_conn *c = wft_conn_new(env);
    assert_int_equal(wft_conn_read(c, "BYE\n", 4), 0);
    bool flush = false;
    assert_true(wft_conn_close_asked(c, &flush));
    assert_true(flush);
    assert_string_equal(wft_conn_to_network(c, NULL), "HELLO weft http/1.1\nBYE\n");
    assert_int_equal(wft_conn_timers_pending(c), 0); /* cancelled by the close */
    wft_conn_free(c);

    c = wft_conn_new(env);
    assert_int_equal(wft_conn_read(c, "RST\n", 4), 0);
    assert_true(wft_conn_close_asked(c, &flush));
    assert_false(flush);
    wft_conn_free(c);

    c = wft_conn_new(env);
    assert_int_equal(wft_conn_read(c, "NOPE\n", 5), -1);
    assert_int_equal(wft_stat(env, "rejected"), 1);
    assert_false(wft_conn_handshake_complete(c));
    wft_conn_free(c);
    wft_env_free(env);
}

/* The client side: writes first with the cluster's SNI, accepts only an
 * ALPN the cluster offers. */
static void test_upstream_side(void **state) {
    (void)state;
    wft_env *env = hello_env("{identity: spiffe://td/weft}");
    wft_conn *c = wft_conn_new_upstream(env, "be", "10.0.0.7:8443", "h2,http/1.1", "be.internal");
    assert_non_null(c);
    assert_string_equal(wft_conn_to_network(c, NULL), "HELLO spiffe://td/weft be.internal\n");
    assert_false(wft_conn_handshake_complete(c));
    assert_int_equal(wft_conn_read(c, "HELLO srv h2\nHTTP/1.1 200", 25), 0);
    assert_true(wft_conn_handshake_complete(c));
    assert_string_equal(wft_conn_alpn(c), "h2");
    assert_string_equal(wft_conn_peer_identity(c), "srv");
    assert_string_equal(wft_conn_to_codec(c, NULL), "HTTP/1.1 200");
    assert_int_equal(wft_stat(env, "upstream_handshakes"), 1);
    wft_conn_free(c);

    /* An ALPN the cluster does not offer: refused. */
    c = wft_conn_new_upstream(env, "be", "10.0.0.7:8443", "http/1.1", NULL);
    assert_string_equal(wft_conn_to_network(c, NULL), "HELLO spiffe://td/weft -\n");
    assert_int_equal(wft_conn_read(c, "HELLO srv h2\n", 13), -1);
    wft_conn_free(c);
    wft_env_free(env);
}

/* ---- misuse, on an inline filter ---- */

static weft_result r_write, r_timer, r_hs, r_hs2, r_info, r_cancel;
static weft_connection_info seen;

static void inline_tick(weft_connection *c, void *ctx, void *arg) {
    (void)ctx;
    (void)arg;
    weft_connection_write(c, "tick", 4);
}

static void *inline_create(void *config, weft_connection *c) {
    (void)config;
    weft_timer *t = NULL;
    r_write = weft_connection_write(c, NULL, 3);
    r_timer = weft_connection_timer_start(c, 10, NULL, NULL, NULL);
    for (int i = 0; i < 16; i++)
        weft_connection_timer_start(c, 100 + (uint64_t)i, inline_tick, NULL, i == 0 ? &t : NULL);
    r_cancel = weft_connection_timer_start(c, 10, inline_tick, NULL, NULL); /* the 17th */
    weft_connection_timer_cancel(c, t);
    weft_handshake_info small = {.size = 8};
    r_hs = weft_connection_handshake_done(c, &small);
    char longid[2100];
    memset(longid, 'a', sizeof(longid));
    weft_handshake_info big = {.size = sizeof(big), .peer_identity = {longid, sizeof(longid)}};
    r_hs2 = weft_connection_handshake_done(c, &big);
    memset(&seen, 0, sizeof(seen));
    seen.size = sizeof(seen);
    r_info = weft_connection_get_info(c, &seen);
    return NULL;
}

static const weft_transport_filter_ops inline_ops = {
    .size = sizeof(weft_transport_filter_ops),
    .connection_create = inline_create,
};
static const weft_filter_descriptor inline_desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("inline", WEFT_FILTER_TRANSPORT),
    .transport = &inline_ops,
};
const weft_host_api *weft__host;
static const weft_filter_descriptor *inline_entry(const weft_host_api *host) {
    weft__host = host;
    return &inline_desc;
}

static void test_misuse(void **state) {
    (void)state;
    wft_env *env = wft_env_new(inline_entry, err, sizeof(err));
    assert_non_null(env);
    wft_conn *c = wft_conn_new(env);
    assert_int_equal(r_write, WEFT_ERR_INVALID);
    assert_int_equal(r_timer, WEFT_ERR_INVALID);
    assert_int_equal(r_cancel, WEFT_ERR_LIMIT);
    assert_int_equal(r_hs, WEFT_ERR_INVALID);
    assert_int_equal(r_hs2, WEFT_ERR_INVALID);
    assert_int_equal(r_info, WEFT_OK);
    assert_int_equal(seen.side, WEFT_CONNECTION_DOWNSTREAM);
    assert_int_equal(seen.peer_port, 40000);
    assert_int_equal(seen.original_dst_port, 15006); /* the local address by default */
    assert_int_equal(seen.sni.len, 0);
    /* Without WEFT_TRANSPORT_HANDSHAKE the codec is never held. */
    assert_true(wft_conn_handshake_complete(c));
    assert_int_equal(wft_conn_read(c, "x", 1), 0);
    assert_string_equal(wft_conn_to_codec(c, NULL), "x");
    /* 15 timers left (one cancelled): each writes "tick". */
    assert_int_equal(wft_conn_timers_pending(c), 15);
    wft_clock_advance(env, 200);
    size_t len;
    wft_conn_to_network(c, &len);
    assert_int_equal(len, 15 * 4);
    /* No upstream side: refused by the kit as by weft. */
    assert_null(wft_conn_new_upstream(env, "be", NULL, NULL, NULL));
    assert_non_null(strstr(wft_env_error(env), "no upstream side"));
    wft_conn_free(c);
    wft_env_free(env);
}

/* HTTP filters read SNI and the original destination from the stream. */
static void test_stream_facts(void **state) {
    (void)state;
    wft_env *env = wft_env_load(WFT_WHOAMI_SO, err, sizeof(err));
    assert_non_null(env);
    wft_stream *st = wft_stream_new(env, "GET", "/", NULL);
    wft_stream_set_sni(st, "api.test");
    wft_stream_set_original_dst(st, "10.1.2.3", 8080);
    assert_int_equal(wft_request_headers(st, true), 0);
    wft_response_headers(st, 200, NULL, true);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-conn-sni"), "api.test");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-original-dst"), "10.1.2.3:8080");
    wft_stream_free(st);
    st = wft_stream_new(env, "GET", "/", NULL);
    assert_int_equal(wft_request_headers(st, true), 0);
    wft_response_headers(st, 200, NULL, true);
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-conn-sni"), "none");
    assert_string_equal(wft_header(st, WEFT_RESPONSE_HEADERS, "x-original-dst"), "127.0.0.1:15006");
    wft_stream_free(st);
    wft_env_free(env);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_handshake), cmocka_unit_test(test_server_timeout),
        cmocka_unit_test(test_server_close),     cmocka_unit_test(test_upstream_side),
        cmocka_unit_test(test_misuse),           cmocka_unit_test(test_stream_facts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
