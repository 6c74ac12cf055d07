/* logphase: counts finished streams by the status class sent downstream,
 * from on_stream_complete (the log phase). Local replies (403 from a
 * filter, 404 no route) and streams reset before any response (status 0)
 * are counted too.
 *
 * Stats: status_1xx .. status_5xx, no_response (counters), completed
 * (counter: every call). */
#include <stdlib.h>

#include <weft/filter.h>

typedef struct logphase_config {
    int32_t st_class[6]; /* [0] = no response, [k] = kxx */
    int32_t st_completed;
} logphase_config;

static int logphase_config_create(const weft_config_node *node, weft_filter_setup *setup,
                                  void **config) {
    logphase_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    static const char *const names[6] = {"no_response", "status_1xx", "status_2xx",
                                         "status_3xx",  "status_4xx", "status_5xx"};
    for (int i = 0; i < 6; i++)
        c->st_class[i] = weft_stat_counter(setup, names[i], "finished streams by status class");
    c->st_completed = weft_stat_counter(setup, "completed", "on_stream_complete calls");
    *config = c;
    return 0;
}

static void logphase_config_destroy(void *config) {
    free(config);
}

static void *logphase_stream_create(void *config, void *worker, weft_stream *s) {
    return config;
}

static void logphase_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    logphase_config *c = ctx;
    int k = info->status >= 100 && info->status < 600 ? info->status / 100 : 0;
    weft_stat_inc(c->st_class[k], 1);
    weft_stat_inc(c->st_completed, 1);
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = logphase_config_create,
    .config_destroy = logphase_config_destroy,
    .stream_create = logphase_stream_create,
    .on_stream_complete = logphase_complete,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("logphase", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
