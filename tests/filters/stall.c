/* stall: blocks ONE worker's event loop for a set time, when the test says
 * so, for test_drain_accept_queue.sh (a connection the kernel completed
 * waits in the blocked worker's accept queue across SIGTERM).
 *
 * config: { dir: /path, block_ms: 3000 }
 *
 * Each worker context gets a number (0, 1, ... in worker_create order) and
 * a worker timer that polls every 10 ms for the file <dir>/block. The
 * first worker to see it (one claim per config) writes <dir>/blocked
 * ("worker=N\n", complete when it appears: written aside and renamed),
 * then sleeps block_ms inside the timer callback (its event loop accepts
 * and reads nothing meanwhile), then logs "worker loop unblocked" and
 * writes <dir>/woke. Every request is
 * answered locally: 200, header x-worker: N, body "worker=N\n", N the
 * number of the worker that served it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/filter.h>

#define POLL_MS 10

typedef struct cfg {
    char dir[512];
    uint64_t block_ms;
    atomic_int next_worker; /* numbers the worker contexts */
    atomic_bool claimed;    /* a worker took the block */
} cfg;

typedef struct wrk {
    cfg *c;
    weft_worker *w;
    int id;
} wrk;

static int st_config_create(const weft_config_node *node, weft_filter_setup *st, void **out) {
    const weft_config_node *n = weft_config_get(node, "dir");
    weft_str dir;
    if (!n || weft_config_string(n, &dir) != WEFT_OK || !dir.len || dir.len >= 400)
        return weft_config_fail(st, n ? n : node, "dir: a directory path is required");
    cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(st, node, "out of memory");
    memcpy(c->dir, dir.ptr, dir.len);
    c->block_ms = 3000;
    if ((n = weft_config_get(node, "block_ms")) &&
        (weft_config_duration_ms(n, &c->block_ms) != WEFT_OK || c->block_ms > 60000)) {
        free(c);
        return weft_config_fail(st, n, "block_ms: a duration up to 60s");
    }
    *out = c;
    return 0;
}

static void st_config_destroy(void *config) {
    free(config);
}

/* Writes <dir>/name with `text`, complete when it appears. */
static void put_file(const cfg *c, const char *name, const char *text) {
    char path[600], tmp[620];
    snprintf(path, sizeof(path), "%s/%s", c->dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(text, f);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static void poll_tick(weft_worker *w, void *arg) {
    wrk *k = arg;
    char path[600];
    snprintf(path, sizeof(path), "%s/block", k->c->dir);
    if (access(path, F_OK) == 0 && !atomic_exchange(&k->c->claimed, true)) {
        char text[32];
        snprintf(text, sizeof(text), "worker=%d\n", k->id);
        put_file(k->c, "blocked", text);
        weft_log_msg(WEFT_LOG_LEVEL_INFO, "stall", "blocking this worker's loop");
        struct timespec ts = {(time_t)(k->c->block_ms / 1000),
                              (long)(k->c->block_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        weft_log_msg(WEFT_LOG_LEVEL_INFO, "stall", "worker loop unblocked");
        put_file(k->c, "woke", text);
    }
    weft_worker_timer_start(w, POLL_MS, poll_tick, k, NULL);
}

static void *st_worker_create(void *config) {
    cfg *c = config;
    wrk *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->c = c;
    k->id = atomic_fetch_add(&c->next_worker, 1);
    k->w = weft_worker_current(c);
    if (k->w)
        weft_worker_timer_start(k->w, POLL_MS, poll_tick, k, NULL);
    return k;
}

static void st_worker_destroy(void *config, void *worker) {
    free(worker); /* its timer was cancelled before this call */
}

static void *st_stream_create(void *config, void *worker, weft_stream *s) {
    return worker;
}
static void st_stream_destroy(void *ctx) {}

static weft_status st_headers(void *ctx, weft_stream *s, bool end_stream) {
    const wrk *k = ctx;
    char id[16], body[32];
    int id_len = snprintf(id, sizeof(id), "%d", k ? k->id : -1);
    int body_len = snprintf(body, sizeof(body), "worker=%s\n", id);
    weft_str hn = WEFT_STR("x-worker"), hv = {id, (size_t)id_len};
    weft_reply_send(s, 200, WEFT_STR(""), &hn, &hv, 1, (weft_str){body, (size_t)body_len});
    return WEFT_REPLIED;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = st_config_create,
    .config_destroy = st_config_destroy,
    .worker_create = st_worker_create,
    .worker_destroy = st_worker_destroy,
    .stream_create = st_stream_create,
    .stream_destroy = st_stream_destroy,
    .on_request_headers = st_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("stall", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
