/* stream_test_config.h: the YAML the test_stream_*.c tests share, and a
 * start helper. One listener "t" (never bound: the worker is detached),
 * routes /direct (direct response), /redir (redirect), /slow (cluster c0,
 * 150ms route timeout), /up (cluster c0); anything else has no route.
 * Cluster c0's endpoints are fake upstreams on 127.0.0.1. */
#ifndef WEFT_TESTS_STREAM_TEST_CONFIG_H
#define WEFT_TESTS_STREAM_TEST_CONFIG_H

#include <stdio.h>
#include <string.h>

#include "stream_harness.h"

static const char st_yaml[] = "workers: 1\n"
                              "admin: {port: 0}\n"
                              "listeners:\n"
                              "  - name: t\n"
                              "    address: 127.0.0.1\n"
                              "    port: 1\n"
                              "    limits: {%s}\n"
                              "    virtual_hosts:\n"
                              "      - domains: [\"*\"]\n"
                              "        routes:\n"
                              "          - match: {prefix: /direct}\n"
                              "            direct_response: {status: 200, body: \"hello\"}\n"
                              "          - match: {prefix: /redir}\n"
                              "            redirect: {path: /x}\n"
                              "          - match: {prefix: /slow}\n"
                              "            cluster: c0\n"
                              "            timeout: 150ms\n"
                              "          - match: {prefix: /up}\n"
                              "            cluster: c0\n"
                              "clusters:\n"
                              "  - name: c0\n"
                              "    connect_timeout: 2s\n"
                              "    %s\n"
                              "    endpoints:\n"
                              "%s";

/* Starts h with these filters, listener limits (YAML flow-map body, may be
 * ""), extra cluster keys (one YAML line, may be "") and c0's endpoints:
 * the fake upstreams given by index. */
static inline void st_start(sh *h, tf_script **filters, size_t nf, const char *limits,
                            const char *cluster_extra, const int *ups, size_t n_ups) {
    char eps[1024] = "";
    size_t off = 0;
    for (size_t i = 0; i < n_ups; i++)
        off += (size_t)snprintf(eps + off, sizeof(eps) - off,
                                "      - {address: 127.0.0.1, port: %u}\n", h->up[ups[i]].port);
    if (!n_ups)
        snprintf(eps, sizeof(eps), "      - {address: 127.0.0.1, port: 9}\n");
    sh_start(h, filters, nf, st_yaml, limits, cluster_extra && *cluster_extra ? cluster_extra : "",
             eps);
}

/* The same with c0 on a new listening upstream and, after c0's endpoints,
 * a cluster c1 on a new upstream that is bound but does not listen (every
 * connect to it is refused), then `more` (YAML lines, may be "": c1's
 * keys at 4 spaces, top-level keys at column 0): callout tests. */
static inline void st_start_with_c1(sh *h, tf_script **filters, size_t nf, const char *limits,
                                    const char *more) {
    int u0 = sh_up_new(h, true), u1 = sh_up_new(h, false);
    char eps[1024];
    snprintf(eps, sizeof(eps),
             "      - {address: 127.0.0.1, port: %u}\n"
             "  - name: c1\n"
             "    connect_timeout: 2s\n"
             "    endpoints:\n"
             "      - {address: 127.0.0.1, port: %u}\n"
             "%s",
             h->up[u0].port, h->up[u1].port, more);
    sh_start(h, filters, nf, st_yaml, limits, "", eps);
}

#endif
