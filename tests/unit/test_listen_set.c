/* Unit tests for core/loop/listen_set.c as the drain uses it: the main
 * thread sees connections waiting in the accept queues of its listening
 * sockets (weft_listen_set_queued: the kernel completed them, no worker
 * has accepted them yet; exiting then would reset them), and closes only
 * the tcp_proxy listeners when the drain starts (weft_listen_set_close_tcp). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "loop/listen_set.h"

/* A port that was free a moment ago. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static weft_config *load_two(int http_port, int tcp_port) {
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]\n"
             "listeners:\n"
             "  - {name: http, address: 127.0.0.1, port: %d}\n"
             "  - {name: tcp, address: 127.0.0.1, port: %d, tcp_proxy: {cluster: c}}\n",
             http_port, tcp_port);
    weft_config_error err;
    weft_config *cfg = weft_config_load_buffer(yaml, strlen(yaml), "weft.yaml", &err);
    if (!cfg)
        fail_msg("%s", err.msg);
    return cfg;
}

static void test_queued(void **state) {
    (void)state;
    int port = free_port(), tport = free_port();
    weft_config *cfg = load_two(port, tport);
    weft_listen_set set = {0};
    char err[256];
    assert_int_equal(weft_listen_set_prepare(&set, NULL, cfg, 2, err, sizeof(err)), 0);
    assert_int_equal(weft_listen_set_queued(&set), 0);

    /* Three connects the kernel completes (loopback, room in the queue):
     * queued on the two SO_REUSEPORT sockets, accepted by nobody. */
    int c[4];
    for (int i = 0; i < 3; i++)
        c[i] = connect_to(port);
    c[3] = connect_to(tport);
    assert_int_equal(weft_listen_set_queued(&set), 4);

    /* A worker accepts one: one fewer waits. */
    struct pollfd p[2] = {{set.socks[0].fds[0], POLLIN, 0}, {set.socks[0].fds[1], POLLIN, 0}};
    assert_true(poll(p, 2, 1000) > 0);
    int lfd = (p[0].revents & POLLIN) ? p[0].fd : p[1].fd;
    int a = accept(lfd, NULL, NULL);
    assert_true(a >= 0);
    assert_int_equal(weft_listen_set_queued(&set), 3);

    /* The drain closes the tcp_proxy listener's sockets only: its queued
     * connection no longer counts (nobody will ever accept it), the HTTP
     * listener's stay visible. */
    weft_listen_set_close_tcp(&set, cfg);
    assert_null(set.socks[1].fds);
    assert_non_null(set.socks[0].fds);
    assert_int_equal(weft_listen_set_queued(&set), 2);

    weft_listen_set_close(&set);
    assert_int_equal(weft_listen_set_queued(&set), 0);
    close(a);
    for (int i = 0; i < 4; i++)
        close(c[i]);
    weft_config_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
