/* threadcheck: records on which thread its config is destroyed. filter.h
 * promises config-time calls on the main thread; config_destroy included,
 * even when the last stream of the snapshot ended on a worker.
 *
 * Config: { report: PATH, fail: bool }. config_destroy appends one line to
 * PATH: "destroy main" when it runs on the process's main thread
 * (gettid() == getpid()), else "destroy worker <tid>". With fail: true,
 * config_create refuses the config (for refused-reload tests). It also
 * registers one counter, `created`, bumped once per config. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <weft/filter.h>

typedef struct threadcheck_config {
    char path[512];
} threadcheck_config;

static int threadcheck_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                     void **config) {
    threadcheck_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    weft_str v;
    const weft_config_node *report = weft_config_get(node, "report");
    if (!report || weft_config_string(report, &v) != WEFT_OK || v.len == 0 ||
        v.len >= sizeof(c->path)) {
        free(c);
        return weft_config_fail(setup, node, "report: a file path is required");
    }
    memcpy(c->path, v.ptr, v.len);
    int32_t created = weft_stat_counter(setup, "created", "configs created");
    const weft_config_node *fail = weft_config_get(node, "fail");
    if (fail && weft_config_string(fail, &v) == WEFT_OK && v.len == 4 &&
        memcmp(v.ptr, "true", 4) == 0) {
        free(c);
        return weft_config_fail(setup, fail, "refused on purpose (fail: true)");
    }
    weft_stat_inc(created, 1);
    *config = c;
    return 0;
}

static void threadcheck_config_destroy(void *config) {
    threadcheck_config *c = config;
    long tid = syscall(SYS_gettid);
    char line[64];
    int n = tid == (long)getpid() ? snprintf(line, sizeof(line), "destroy main\n")
                                  : snprintf(line, sizeof(line), "destroy worker %ld\n", tid);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)n);
        (void)w;
        close(fd);
    }
    free(c);
}

static weft_status threadcheck_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = threadcheck_config_create,
    .config_destroy = threadcheck_config_destroy,
    .on_request_headers = threadcheck_request_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("threadcheck", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
