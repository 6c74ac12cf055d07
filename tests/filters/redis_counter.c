/* redis_counter: per request, INCRs a Redis key over a raw TCP callout
 * (RESP) and puts the value in a response header. The request waits
 * (owned pause, resumed with its token) until the reply.
 *
 *   config: {cluster: redis, key_header: x-counter-key, header: x-counter,
 *            scope: worker, timeout: 2s, connect_timeout: 0, idle_timeout: 0}
 *
 * key: the request header `key_header`, else the path. scope: worker (one
 * connection per worker, kept open across requests and reopened by the
 * next request after it closed: weft_worker_tcp_callout_open on the
 * filter's worker handle) or stream (a connection per request, closed
 * with the stream). timeout: the longest a
 * request waits for its reply (504 redis_timeout). Replies: ":<n>" ->
 * `header: n`; "-ERR ..." -> 502 redis_error (body: the error line);
 * another reply type -> the connection is dropped, 502
 * redis_protocol_error. The connection closing or failing answers every
 * request waiting on it with 503 redis_unavailable (body: why: peer,
 * reset, connect_failure, connect_timeout, idle_timeout, overflow).
 * Requests on one connection are pipelined: several INCRs in flight, the
 * replies matched in order. A partial reply waits for the rest.
 *
 * Stats: sent, replies, errors, opened (counters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define MAX_LINE 512

typedef struct rc_config {
    weft_str cluster, key_header, header;
    uint64_t timeout_ms, connect_timeout_ms, idle_timeout_ms;
    bool stream_scope;
    int32_t st_sent, st_replies, st_errors, st_opened;
} rc_config;

typedef struct rc_stream rc_stream;

/* One connection and the requests waiting on it, oldest first. */
typedef struct rc_conn {
    rc_config *cfg;
    weft_tcp_callout *tc; /* NULL: none open */
    rc_stream *head, *tail;
    bool stream_scoped; /* inside its rc_stream: gone when the stream ends */
} rc_conn;

struct rc_stream {
    rc_config *cfg;
    weft_stream *s;
    rc_conn *conn;    /* what it waits on, NULL when not waiting */
    bool placeholder; /* a heap copy kept in the queue for an ended stream */
    uint64_t token;
    char value[32]; /* the reply's integer, "" until then */
    rc_stream *next;
    rc_conn own; /* scope: stream */
    struct rc_worker *wk;
};

/* scope: worker: the worker's connection. */
typedef struct rc_worker {
    weft_worker *wh;
    rc_conn conn;
} rc_worker;

static int rc_config_create(const weft_config_node *node, weft_filter_setup *setup, void **config) {
    rc_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->cluster = WEFT_STR("redis");
    c->key_header = WEFT_STR("x-counter-key");
    c->header = WEFT_STR("x-counter");
    c->timeout_ms = 2000;
    const weft_config_node *n;
    const char *bad = NULL;
    if ((n = weft_config_get(node, "cluster")) && weft_config_string(n, &c->cluster) != WEFT_OK)
        bad = "cluster: expected a string";
    else if ((n = weft_config_get(node, "key_header")) &&
             weft_config_string(n, &c->key_header) != WEFT_OK)
        bad = "key_header: expected a string";
    else if ((n = weft_config_get(node, "header")) && weft_config_string(n, &c->header) != WEFT_OK)
        bad = "header: expected a string";
    else if ((n = weft_config_get(node, "timeout")) &&
             weft_config_duration_ms(n, &c->timeout_ms) != WEFT_OK)
        bad = "timeout: expected a duration";
    else if ((n = weft_config_get(node, "connect_timeout")) &&
             weft_config_duration_ms(n, &c->connect_timeout_ms) != WEFT_OK)
        bad = "connect_timeout: expected a duration";
    else if ((n = weft_config_get(node, "idle_timeout")) &&
             weft_config_duration_ms(n, &c->idle_timeout_ms) != WEFT_OK)
        bad = "idle_timeout: expected a duration";
    weft_str scope = WEFT_STR("worker");
    if (!bad && (n = weft_config_get(node, "scope")) &&
        (weft_config_string(n, &scope) != WEFT_OK ||
         !((scope.len == 6 && !memcmp(scope.ptr, "stream", 6)) ||
           (scope.len == 6 && !memcmp(scope.ptr, "worker", 6)))))
        bad = "scope: expected stream or worker";
    c->stream_scope = scope.len == 6 && !memcmp(scope.ptr, "stream", 6);
    if (bad) {
        free(c);
        return weft_config_fail(setup, n, bad);
    }
    c->st_sent = weft_stat_counter(setup, "sent", "INCR commands sent");
    c->st_replies = weft_stat_counter(setup, "replies", "integer replies");
    c->st_errors = weft_stat_counter(setup, "errors", "error replies and failed connections");
    c->st_opened = weft_stat_counter(setup, "opened", "connections opened");
    *config = c;
    return 0;
}

static void rc_config_destroy(void *config) {
    free(config);
}

/* ---------- the waiting queue ---------- */

static rc_stream *pop(rc_conn *k) {
    rc_stream *st = k->head;
    if (st) {
        k->head = st->next;
        if (!k->head)
            k->tail = NULL;
        st->next = NULL;
        st->conn = NULL;
    }
    return st;
}

/* The request leaves the queue without a reply (it timed out or ended):
 * its slot must stay, replies come in order: it becomes a placeholder
 * (s NULL) that the next reply consumes. */
static void abandon(rc_stream *st) {
    st->s = NULL;
}

/* ---------- replies ---------- */

static void answer(rc_stream *st, int status, const char *reason, const char *body) {
    if (!st || !st->s)
        return;
    weft_reply_simple(st->s, status, (weft_str){reason, strlen(reason)},
                      (weft_str){body, strlen(body)});
}

static const char *close_reason(uint32_t r) {
    switch (r) {
    case WEFT_TCP_CLOSE_PEER:
        return "peer";
    case WEFT_TCP_CLOSE_RESET:
        return "reset";
    case WEFT_TCP_CLOSE_CONNECT_FAILURE:
        return "connect_failure";
    case WEFT_TCP_CLOSE_CONNECT_TIMEOUT:
        return "connect_timeout";
    case WEFT_TCP_CLOSE_IDLE_TIMEOUT:
        return "idle_timeout";
    case WEFT_TCP_CLOSE_OVERFLOW:
        return "overflow";
    }
    return "closed";
}

/* Every waiting request gets 503 (the connection is gone). */
static void fail_all(rc_conn *k, const char *why) {
    char body[64];
    snprintf(body, sizeof(body), "redis: %s\n", why);
    rc_stream *st;
    while ((st = pop(k))) {
        weft_stat_inc(k->cfg->st_errors, 1);
        if (st->placeholder)
            free(st);
        else
            answer(st, 503, "redis_unavailable", body);
        if (k->stream_scoped)
            return; /* the stream (and k in it) may have ended with the reply */
    }
}

static void on_close(weft_tcp_callout *tc, void *arg, uint32_t reason) {
    rc_conn *k = arg;
    (void)tc;
    k->tc = NULL;
    fail_all(k, close_reason(reason));
}

/* Handles one reply line for the oldest waiting request. Returns false
 * on a protocol error (the connection must go). */
static bool reply(rc_conn *k, rc_stream *st, char *line) {
    if (line[0] == ':') {
        char *end = NULL;
        long long v = strtoll(line + 1, &end, 10);
        if (end == line + 1 || *end) {
            answer(st, 502, "redis_protocol_error", "redis: bad integer\n");
            return false;
        }
        weft_stat_inc(k->cfg->st_replies, 1);
        if (st->s) {
            snprintf(st->value, sizeof(st->value), "%lld", v);
            weft_stream_resume_token(st->s, st->token);
        }
        return true;
    }
    if (line[0] == '-') {
        weft_stat_inc(k->cfg->st_errors, 1);
        char body[MAX_LINE + 8];
        snprintf(body, sizeof(body), "redis: %s\n", line + 1);
        answer(st, 502, "redis_error", body);
        return true;
    }
    answer(st, 502, "redis_protocol_error", "redis: unexpected reply\n");
    return false;
}

/* Parses every complete reply in `data` (one RESP line each: INCR
 * answers ":<n>" or "-ERR ..."), leaves a partial one for later. */
static void on_data(weft_tcp_callout *tc, void *arg, weft_buffer *data) {
    rc_conn *k = arg;
    char line[MAX_LINE + 1];
    for (;;) {
        size_t have = weft_buffer_copy_out(data, 0, line, MAX_LINE);
        char *eol = NULL;
        for (size_t i = 0; i + 1 < have; i++)
            if (line[i] == '\r' && line[i + 1] == '\n') {
                eol = &line[i];
                break;
            }
        if (!eol && have < MAX_LINE)
            return; /* partial: wait for the rest */
        rc_stream *st = eol ? pop(k) : NULL;
        if (!st)
            break; /* a line too long, or a reply nobody asked for */
        *eol = '\0';
        weft_buffer_drain(data, (size_t)(eol - line) + 2);
        bool placeholder = st->placeholder;
        bool ok = reply(k, st, line);
        if (placeholder)
            free(st);
        if (k->stream_scoped && !placeholder)
            return; /* answered its stream: k may be gone with it */
        if (!ok)
            break;
    }
    weft_stat_inc(k->cfg->st_errors, 1);
    weft_tcp_callout_close(tc, false);
    k->tc = NULL;
    fail_all(k, "protocol_error");
}

/* ---------- requests ---------- */

static void *rc_worker_create(void *config) {
    rc_worker *wk = calloc(1, sizeof(*wk));
    if (!wk)
        return NULL;
    wk->wh = weft_worker_current(config);
    wk->conn.cfg = config;
    return wk;
}

/* weft closed the worker's connection already (no callback): what is
 * left in its queue are placeholders of ended streams. */
static void rc_worker_destroy(void *config, void *worker) {
    (void)config;
    rc_worker *wk = worker;
    if (!wk)
        return;
    rc_stream *st;
    while ((st = pop(&wk->conn)))
        if (st->placeholder)
            free(st);
    free(wk);
}

static void *rc_stream_create(void *config, void *worker, weft_stream *s) {
    rc_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->wk = worker;
    st->cfg = config;
    st->s = s;
    st->own.cfg = config;
    st->own.stream_scoped = true;
    return st;
}

static void rc_stream_destroy(void *ctx) {
    rc_stream *st = ctx;
    if (!st)
        return;
    if (st->conn && st->conn != &st->own) {
        /* Still waiting on a shared connection: the queue keeps a
         * placeholder, handed over to a heap copy. */
        rc_stream *ph = calloc(1, sizeof(*ph));
        if (ph) {
            rc_conn *k = st->conn;
            for (rc_stream **pp = &k->head; *pp; pp = &(*pp)->next)
                if (*pp == st) {
                    *ph = *st;
                    abandon(ph);
                    ph->placeholder = true;
                    ph->next = st->next;
                    *pp = ph;
                    if (k->tail == st)
                        k->tail = ph;
                    break;
                }
        }
    }
    free(st);
}

static void rc_timeout(weft_stream *s, void *ctx, void *arg) {
    rc_stream *st = ctx;
    (void)arg;
    if (st && st->conn) {
        abandon(st); /* before the reply: the stream may end inside it */
        weft_reply_simple(s, 504, WEFT_STR("redis_timeout"), WEFT_STR("redis: no reply\n"));
    }
}

static weft_status rc_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    rc_stream *st = ctx;
    (void)end_stream;
    if (!st)
        return WEFT_CONTINUE;
    rc_config *c = st->cfg;
    weft_str key;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, c->key_header, &key) != WEFT_OK &&
        weft_request_get(s, NULL, &key, NULL, NULL) != WEFT_OK)
        key = WEFT_STR("/");
    rc_conn *k = &st->own;
    if (!c->stream_scope) {
        if (!st->wk || !st->wk->wh) {
            weft_reply_simple(s, 503, WEFT_STR("redis_unavailable"),
                              WEFT_STR("redis: no worker\n"));
            return WEFT_REPLIED;
        }
        k = &st->wk->conn;
    }
    if (!k->tc) {
        weft_tcp_callout_opts o = {.size = sizeof(o),
                                   .connect_timeout_ms = (uint32_t)c->connect_timeout_ms,
                                   .idle_timeout_ms = (uint32_t)c->idle_timeout_ms};
        weft_tcp_callout_cbs cbs = {.size = sizeof(cbs), .on_data = on_data, .on_close = on_close};
        weft_result r = c->stream_scope ? weft_tcp_callout_open(s, c->cluster, &o, &cbs, k, &k->tc)
                                        : weft_worker_tcp_callout_open(st->wk->wh, c->cluster, &o,
                                                                       &cbs, k, &k->tc);
        if (r != WEFT_OK) {
            weft_stat_inc(c->st_errors, 1);
            char body[64];
            snprintf(body, sizeof(body), "redis: open failed (%d)\n", (int)r);
            weft_reply_simple(s, 503, WEFT_STR("redis_unavailable"),
                              (weft_str){body, strlen(body)});
            return WEFT_REPLIED;
        }
        weft_stat_inc(c->st_opened, 1);
    }
    char cmd[MAX_LINE];
    if (key.len > 256)
        key.len = 256;
    int n = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nINCR\r\n$%zu\r\n%.*s\r\n", key.len,
                     (int)key.len, key.ptr);
    if (weft_tcp_callout_write(k->tc, cmd, (size_t)n) != WEFT_OK ||
        weft_stream_pause_token(s, &st->token) != WEFT_OK) {
        weft_stat_inc(c->st_errors, 1);
        weft_reply_simple(s, 503, WEFT_STR("redis_unavailable"), WEFT_STR("redis: write\n"));
        return WEFT_REPLIED;
    }
    weft_stat_inc(c->st_sent, 1);
    st->conn = k;
    if (k->tail)
        k->tail->next = st;
    else
        k->head = st;
    k->tail = st;
    weft_timer_start(s, c->timeout_ms, rc_timeout, NULL, NULL);
    return WEFT_STOP;
}

static weft_status rc_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    rc_stream *st = ctx;
    (void)end_stream;
    if (st && st->value[0])
        weft_header_set(s, WEFT_RESPONSE_HEADERS, st->cfg->header,
                        (weft_str){st->value, strlen(st->value)});
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = rc_config_create,
    .config_destroy = rc_config_destroy,
    .worker_create = rc_worker_create,
    .worker_destroy = rc_worker_destroy,
    .stream_create = rc_stream_create,
    .stream_destroy = rc_stream_destroy,
    .on_request_headers = rc_request_headers,
    .on_response_headers = rc_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("redis_counter", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
