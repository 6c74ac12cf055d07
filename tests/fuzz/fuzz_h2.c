/* fuzz_h2.c: bytes from a client into a downstream connection, through the
 * real connection code (sniffing, HTTP/2 session, streams, routing, local
 * replies), over a socketpair on a detached worker. The first input byte
 * chooses whether the HTTP/2 client preface is sent first (so most inputs
 * exercise nghttp2 frames) and how many loop turns run. Routes answer
 * directly: no upstream traffic. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "http/h1/h1_downstream.h"
#include "loop/worker.h"
#include "runtime/snapshot.h"
#include "stats/stats.h"

static const char cfg_yaml[] =
    "workers: 1\n"
    "admin: {port: 0}\n"
    "listeners:\n"
    "  - name: fz\n"
    "    address: 127.0.0.1\n"
    "    port: 1\n"
    "    limits: {max_header_bytes: 4KiB, max_headers: 32, max_body_bytes: 64KiB}\n"
    "    http2: {max_concurrent_streams: 8, initial_window_size: 65535, max_header_list_size: "
    "4096}\n"
    "    virtual_hosts:\n"
    "      - domains: [\"*\"]\n"
    "        routes:\n"
    "          - match: {prefix: /r}\n"
    "            redirect: {path: /x}\n"
    "          - match: {prefix: /}\n"
    "            direct_response: {status: 200, body: \"fuzz\"}\n"
    "clusters: []\n";

static weft_worker *w;

static void setup(void) {
    weft_config_error err;
    weft_config *cfg = weft_config_load_buffer(cfg_yaml, sizeof(cfg_yaml) - 1, "fuzz.yaml", &err);
    if (!cfg)
        abort();
    char e[256];
    weft_snapshot *snap = weft_snapshot_build(cfg, NULL, 1, e, sizeof(e));
    if (snap && weft_snapshot_commit(snap, e, sizeof(e))) {
        weft_snapshot_discard(snap);
        snap = NULL;
    }
    if (!snap)
        abort();
    w = weft_worker_new_detached(snap);
    weft_snapshot_unref(snap); /* the worker holds its own reference */
    if (!w)
        abort();
    weft_log_min_level = WEFT_LOG_ERROR + 1;
}

static void drain(int fd) {
    char buf[65536];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (!w)
        setup();
    if (size < 1)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = htonl(0x7f000001)};
    weft_dconn_accept(w, "fz", sv[0], (struct sockaddr *)&sa, sizeof(sa));
    if (data[0] & 1) {
        ssize_t r = write(sv[1], preface, sizeof(preface) - 1);
        (void)r;
    }
    size_t off = 1;
    int turns = 2 + (data[0] >> 4);
    while (off < size) {
        ssize_t r = write(sv[1], data + off, size - off);
        if (r <= 0)
            break;
        off += (size_t)r;
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        drain(sv[1]);
    }
    for (int i = 0; i < turns; i++) {
        event_base_loop(w->base, EVLOOP_NONBLOCK);
        drain(sv[1]);
    }
    close(sv[1]);
    for (int i = 0; i < 3; i++)
        event_base_loop(w->base, EVLOOP_NONBLOCK);
    weft_dconn_free_all(w);
    event_base_loop(w->base, EVLOOP_NONBLOCK);
    return 0;
}
