/* test_access_log.c: the access log writes lines from a weft_log_record
 * alone (no stream, no connection): HTTP and TCP field sets, optional
 * fields, escaping, and nothing at all when the log is off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/common.h"
#include "common/response_flags.h"
#include "log/access_log.h"

/* Writes r through a pipe and returns the line without its "time" field
 * (the rest of the line is exact). */
static char *line_of(const weft_log_record *r) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    weft_access_log_write(p[1], r);
    close(p[1]);
    static char buf[8192];
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    const char *t = "{\"time\":\"";
    assert_memory_equal(buf, t, strlen(t));
    char *after = strchr(buf + strlen(t), '"'); /* end of the timestamp */
    assert_non_null(after);
    return after + 1;
}

static weft_log_record http_record(void) {
    return (weft_log_record){
        .protocol = WEFT_LOG_HTTP1,
        .http_minor = 1,
        .method = WEFT_SV_LIT("GET"),
        .authority = WEFT_SV_LIT("example.com"),
        .path = WEFT_SV_LIT("/a?b=\"c\""),
        .status = 503,
        .flags = WEFT_RF_UF | WEFT_RF_UH,
        .reason = "upstream_connect_failure",
        .bytes_received = 10,
        .bytes_sent = 20,
        .duration_us = 1500,
        .upstream_service_us = -1,
        .grpc_status = -1,
        .upstream_host = "127.0.0.1:8080",
        .upstream_cluster = "svc",
        .route = "r1",
        .request_id = WEFT_SV_LIT("id-1"),
        .downstream_remote = "127.0.0.2",
        .user_agent = WEFT_SV_LIT("curl\x01"),
        .listener = "http",
    };
}

static void test_http_line(void **state) {
    (void)state;
    weft_log_record r = http_record();
    assert_string_equal(
        line_of(&r),
        ",\"method\":\"GET\",\"authority\":\"example.com\",\"path\":\"/a?b=\\\"c\\\"\","
        "\"protocol\":\"HTTP/1.1\",\"status\":503,\"response_flags\":\"UH,UF\","
        "\"reason\":\"upstream_connect_failure\",\"bytes_received\":10,\"bytes_sent\":20,"
        "\"duration_ms\":1.500,\"upstream_host\":\"127.0.0.1:8080\",\"upstream_cluster\":\"svc\","
        "\"route\":\"r1\",\"request_id\":\"id-1\",\"downstream_remote\":\"127.0.0.2\","
        "\"user_agent\":\"curl\\u0001\",\"listener\":\"http\"}\n");
}

static void test_http_optional_fields(void **state) {
    (void)state;
    weft_log_record r = http_record();
    r.protocol = WEFT_LOG_HTTP2;
    r.flags = 0;
    r.reason = NULL;
    r.upstream_service_us = 2250;
    r.grpc_status = 14;
    r.upstream_host = NULL;
    r.route = NULL;
    r.listener = NULL;
    const char *l = line_of(&r);
    assert_non_null(strstr(l, ",\"protocol\":\"HTTP/2\",\"status\":503,\"response_flags\":\"-\","
                              "\"reason\":\"\","));
    assert_non_null(strstr(l, "\"duration_ms\":1.500,\"upstream_service_time_ms\":2.250,"
                              "\"grpc_status\":14,\"upstream_host\":\"\","));
    assert_non_null(strstr(l, "\"route\":\"\","));
    assert_non_null(strstr(l, "\"listener\":\"\"}\n"));
}

static void test_tcp_line(void **state) {
    (void)state;
    weft_log_record r = {
        .protocol = WEFT_LOG_TCP,
        .listener = "tcp",
        .downstream_remote = "127.0.0.3",
        .upstream_cluster = "db",
        .bytes_received = 5,
        .bytes_sent = 7,
        .duration_us = 42,
        .flags = WEFT_RF_UF,
        .upstream_service_us = 100, /* HTTP-only fields are never written */
        .grpc_status = 3,
        .method = WEFT_SV_LIT("GET"),
    };
    assert_string_equal(line_of(&r),
                        ",\"protocol\":\"TCP\",\"response_flags\":\"UF\",\"bytes_received\":5,"
                        "\"bytes_sent\":7,\"duration_ms\":0.042,\"upstream_host\":\"\","
                        "\"upstream_cluster\":\"db\",\"downstream_remote\":\"127.0.0.3\","
                        "\"listener\":\"tcp\"}\n");
}

static void test_off_writes_nothing(void **state) {
    (void)state;
    weft_log_record r = http_record();
    weft_access_log_write(-1, &r); /* no crash, no output */
    int fd = -1;
    char err[128];
    assert_int_equal(weft_access_log_open(NULL, &fd, err, sizeof(err)), 0);
    assert_int_equal(fd, -1);
    assert_int_equal(weft_access_log_open("/nonexistent-dir/x.log", &fd, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_long_field_stays_json(void **state) {
    (void)state;
    weft_log_record r = http_record();
    static char big[5000];
    memset(big, '\x7f', sizeof(big));
    r.path = (weft_sv){big, sizeof(big)};
    const char *l = line_of(&r);
    /* cut at 1024 input bytes, each escaped to 6 */
    const char *p = strstr(l, "\"path\":\"");
    assert_non_null(p);
    const char *end = strchr(p + 8, '"');
    assert_int_equal(end - (p + 8), 1024 * 6);
    assert_non_null(strstr(l, "\"listener\":\"http\"}\n"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_line),
        cmocka_unit_test(test_http_optional_fields),
        cmocka_unit_test(test_tcp_line),
        cmocka_unit_test(test_off_writes_nothing),
        cmocka_unit_test(test_long_field_stays_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
