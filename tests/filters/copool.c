/* copool: SDK 1.1 HTTP callouts (group "pool"): weft_callout_start2,
 * worker-scoped and detached callouts, for test_callout_pool.sh.
 *
 * config: { cluster: C, mirror_cluster: M (default C), tag: 0..7,
 *           worker_path: /p (default none), worker_period_ms: 50 }
 *
 * Request header x-co picks what happens (anything else: the request goes
 * on untouched):
 *   (x-co-cluster: another cluster than C for one, seq and wait)
 *   one        one callout to C, path x-co-path (default /), optional
 *              x-co-max-body (max_response_body), x-co-timeout (ms),
 *              x-co-body (sent as the body), x-co-authority; answered
 *              locally: 200, x-co-status, x-co-reason, x-co-nh (headers
 *              delivered), x-co-body-len, x-co-conn (the answer's
 *              x-conn-seq or x-backend-conn), x-co-last (its last x-h-*
 *              header name), and the answer's body as the body
 *   echo-body  the request body is moved into the callout as its
 *              body_buffer (path /echo); x-co-body-len is what came back,
 *              x-co-left what the filter's buffer kept (0)
 *   seq N      N sequential callouts to C's /conn (each from the previous
 *              one's callback); 200 with x-co-ok (status 200 count) and
 *              x-co-conns (distinct x-conn-seq / x-backend-conn values:
 *              the backend's connections that served them)
 *   burst N    N detached callouts to M (path x-co-path, default
 *              /delay/3000); 200 with x-co-ok and x-co-limit (WEFT_OK and
 *              WEFT_ERR_LIMIT results)
 *   mirror     one detached callout to M (path x-co-path); the request
 *              goes on upstream at once (x-co-mirror: <result> added)
 *   wait       a callout to C (x-co-path) and WEFT_STOP; its answer
 *              resumes (the client may abort meanwhile)
 *   multi N    (many workers at once) N stream callouts in parallel to
 *              C's /multi/s, one detached callout to M's /multi/d and one
 *              worker-scoped callout (started from the hook on the
 *              stream's worker handle) to C's /multi/w; when the N
 *              stream callouts are answered: 200 if all got a 200, else
 *              502, with x-co-ok; counts the stream on its worker's slot
 *   wstat      200 with one line per tag: tag=T started=S done=D ok=O
 *              bad=B destroyed=X (worker-scoped callouts of the timer)
 *              mstarted=.. mdone=.. mok=.. (multi's worker callouts)
 *              slots=W (worker contexts made) s0=.. s1=.. (multi streams
 *              per worker slot, in worker_create order)
 * Worker scope: with worker_path set, worker_create arms a worker timer
 * (worker_period_ms) whose callback starts a worker callout to C's
 * worker_path; its callback counts done/ok and arms the next timer.
 * Checks that fail bump "bad" (a wrong handle in the callback, a refused
 * call that should work, a detached callout that returned a handle). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define TAGS 8
#define SLOTS 8

static struct {
    _Atomic uint64_t started, done, ok, bad, destroyed;
    _Atomic uint64_t mstarted, mdone, mok, slots, streams[SLOTS];
} g[TAGS];

typedef struct cfg {
    char cluster[64], mirror[64], wpath[128];
    int64_t tag;
    uint64_t wperiod_ms;
} cfg;

typedef struct wrk {
    cfg *c;
    weft_worker *w;
    uint64_t slot; /* worker_create order, per tag */
} wrk;

typedef struct sctx {
    cfg *c;
    wrk *k; /* the worker object */
    int mode;
    int multi_left, multi_ok; /* multi: stream callouts in flight, answered 200 */
    int seq_left, seq_ok;
    int conns[64];
    int n_conns;
    char cluster[64]; /* x-co-cluster, else the config's */
    char acc[256];    /* echo-body: bytes of earlier chunks */
    size_t n_acc, left;
} sctx;

enum { M_NONE, M_ONE, M_ECHO, M_SEQ, M_BURST, M_MIRROR, M_WAIT, M_WSTAT };

static int copy_str(const weft_config_node *n, char *dst, size_t cap) {
    weft_str v;
    if (!n || weft_config_string(n, &v) != WEFT_OK || !v.len || v.len >= cap)
        return -1;
    memcpy(dst, v.ptr, v.len);
    dst[v.len] = '\0';
    return 0;
}

static int co_config_create(const weft_config_node *node, weft_filter_setup *st, void **out) {
    cfg *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(st, node, "out of memory");
    c->wperiod_ms = 50;
    const weft_config_node *n;
    if (copy_str(weft_config_get(node, "cluster"), c->cluster, sizeof(c->cluster))) {
        free(c);
        return weft_config_fail(st, node, "cluster: a cluster name");
    }
    if ((n = weft_config_get(node, "mirror_cluster")) &&
        copy_str(n, c->mirror, sizeof(c->mirror))) {
        free(c);
        return weft_config_fail(st, n, "mirror_cluster: a cluster name");
    }
    if (!c->mirror[0])
        memcpy(c->mirror, c->cluster, sizeof(c->mirror));
    if ((n = weft_config_get(node, "worker_path")) && copy_str(n, c->wpath, sizeof(c->wpath))) {
        free(c);
        return weft_config_fail(st, n, "worker_path: a path");
    }
    if ((n = weft_config_get(node, "tag")) &&
        (weft_config_int(n, &c->tag) != WEFT_OK || c->tag < 0 || c->tag >= TAGS)) {
        free(c);
        return weft_config_fail(st, n, "tag: 0..7");
    }
    int64_t v;
    if ((n = weft_config_get(node, "worker_period_ms")) && weft_config_int(n, &v) == WEFT_OK &&
        v >= 0)
        c->wperiod_ms = (uint64_t)v;
    *out = c;
    return 0;
}

static void co_config_destroy(void *config) {
    free(config);
}

static weft_callout_request request(weft_str cluster, weft_str path) {
    weft_callout_request r;
    memset(&r, 0, sizeof(r));
    r.size = sizeof(r);
    r.cluster = cluster;
    r.method = WEFT_STR("GET");
    r.path = path;
    return r;
}

/* ---------- worker scope ---------- */

static void worker_tick(weft_worker *w, void *arg);

static void worker_done(weft_worker *w, void *arg, const weft_callout_response *resp) {
    wrk *k = arg;
    if (w != k->w || weft_worker_current(k->c) != w)
        atomic_fetch_add(&g[k->c->tag].bad, 1);
    atomic_fetch_add(&g[k->c->tag].done, 1);
    if (resp->status == 200)
        atomic_fetch_add(&g[k->c->tag].ok, 1);
    if (weft_worker_timer_start(w, k->c->wperiod_ms, worker_tick, k, NULL) != WEFT_OK)
        atomic_fetch_add(&g[k->c->tag].bad, 1);
}

static void worker_tick(weft_worker *w, void *arg) {
    wrk *k = arg;
    weft_callout_request r = request(weft_str_c(k->c->cluster), weft_str_c(k->c->wpath));
    weft_callout *co = NULL;
    if (weft_worker_callout_start(w, &r, worker_done, k, &co) != WEFT_OK || !co)
        atomic_fetch_add(&g[k->c->tag].bad, 1);
    else
        atomic_fetch_add(&g[k->c->tag].started, 1);
}

static void *co_worker_create(void *config) {
    cfg *c = config;
    wrk *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->c = c;
    k->w = weft_worker_current(c);
    k->slot = atomic_fetch_add(&g[c->tag].slots, 1);
    if (c->wpath[0] && (!k->w || weft_worker_timer_start(k->w, 0, worker_tick, k, NULL)))
        atomic_fetch_add(&g[c->tag].bad, 1);
    return k;
}

static void co_worker_destroy(void *config, void *worker) {
    cfg *c = config;
    wrk *k = worker;
    atomic_fetch_add(&g[c->tag].destroyed, 1);
    if (k) {
        weft_callout_request r = request(weft_str_c(c->cluster), WEFT_STR("/"));
        if (weft_worker_callout_start(k->w, &r, worker_done, k, NULL) != WEFT_ERR_STATE)
            atomic_fetch_add(&g[c->tag].bad, 1);
    }
    free(k);
}

/* ---------- stream scope ---------- */

static void *co_stream_create(void *config, void *worker, weft_stream *s) {
    (void)s;
    sctx *x = calloc(1, sizeof(*x));
    if (x) {
        x->c = config;
        x->k = worker;
    }
    return x;
}

static void co_stream_destroy(void *ctx) {
    free(ctx);
}

static weft_str header(weft_stream *s, const char *name, char *buf, size_t cap) {
    weft_str v = {"", 0};
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, weft_str_c(name), &v) != WEFT_OK || v.len >= cap)
        return (weft_str){"", 0};
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return (weft_str){buf, v.len};
}

static uint64_t header_u64(weft_stream *s, const char *name) {
    char b[32];
    weft_str v = header(s, name, b, sizeof(b));
    return v.len ? strtoull(b, NULL, 10) : 0;
}

/* Replies 200 with up to 8 "name: value" pairs (NULL-terminated) and body. */
static void reply_body(weft_stream *s, const char *const *kv, weft_str body) {
    weft_str n[8], v[8];
    size_t k = 0;
    for (; kv[2 * k] && k < 8; k++) {
        n[k] = weft_str_c(kv[2 * k]);
        v[k] = weft_str_c(kv[2 * k + 1]);
    }
    weft_reply_send(s, 200, WEFT_STR("copool"), n, v, k, body);
}

static void reply(weft_stream *s, const char *const *kv) {
    reply_body(s, kv, WEFT_STR("copool\n"));
}

/* Whether name is one of the headers that name the backend's connection
 * (backend.py /conn: x-conn-seq; h2_backend.py: x-backend-conn). */
static bool conn_header(weft_str name) {
    return (name.len == 10 && !memcmp(name.ptr, "x-conn-seq", 10)) ||
           (name.len == 14 && !memcmp(name.ptr, "x-backend-conn", 14));
}

static void one_done(weft_stream *s, void *ctx, void *arg, const weft_callout_response *resp) {
    (void)arg;
    sctx *x = ctx;
    char st[16], reason[64], nh[16], bl[16], conn[16] = "", last[64] = "", left[16];
    snprintf(st, sizeof(st), "%d", resp->status);
    snprintf(reason, sizeof(reason), "%.*s", (int)resp->reason.len, resp->reason.ptr);
    snprintf(nh, sizeof(nh), "%zu", resp->n_headers);
    snprintf(bl, sizeof(bl), "%zu", resp->body.len);
    snprintf(left, sizeof(left), "%zu", x->left);
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (conn_header(resp->header_names[i]))
            snprintf(conn, sizeof(conn), "%.*s", (int)resp->header_values[i].len,
                     resp->header_values[i].ptr);
        if (resp->header_names[i].len > 4 && !memcmp(resp->header_names[i].ptr, "x-h-", 4))
            snprintf(last, sizeof(last), "%.*s", (int)resp->header_names[i].len,
                     resp->header_names[i].ptr);
    }
    const char *kv[] = {"x-co-status",   st,   "x-co-reason", reason, "x-co-nh",   nh,
                        "x-co-body-len", bl,   "x-co-conn",   conn,   "x-co-last", last,
                        "x-co-left",     left, NULL};
    reply_body(s, kv, resp->body);
}

static void seq_next(weft_stream *s, sctx *x);

static void seq_done(weft_stream *s, void *ctx, void *arg, const weft_callout_response *resp) {
    (void)arg;
    sctx *x = ctx;
    if (resp->status == 200)
        x->seq_ok++;
    for (size_t i = 0; i < resp->n_headers; i++)
        if (conn_header(resp->header_names[i])) {
            char b[16];
            snprintf(b, sizeof(b), "%.*s", (int)resp->header_values[i].len,
                     resp->header_values[i].ptr);
            int id = atoi(b);
            bool seen = false;
            for (int k = 0; k < x->n_conns; k++)
                seen |= x->conns[k] == id;
            if (!seen && x->n_conns < 64)
                x->conns[x->n_conns++] = id;
        }
    seq_next(s, x);
}

static void seq_next(weft_stream *s, sctx *x) {
    if (x->seq_left-- > 0) {
        weft_callout_request r = request(weft_str_c(x->cluster), WEFT_STR("/conn"));
        if (weft_callout_start2(s, &r, seq_done, NULL, NULL) == WEFT_OK)
            return;
    }
    char ok[16], conns[16];
    snprintf(ok, sizeof(ok), "%d", x->seq_ok);
    snprintf(conns, sizeof(conns), "%d", x->n_conns);
    const char *kv[] = {"x-co-ok", ok, "x-co-conns", conns, NULL};
    reply(s, kv);
}

static void wait_done(weft_stream *s, void *ctx, void *arg, const weft_callout_response *resp) {
    (void)ctx;
    (void)arg;
    (void)resp;
    weft_stream_resume(s);
}

/* multi: a worker-scoped callout started from a stream's hook. */
static void multi_wdone(weft_worker *w, void *arg, const weft_callout_response *resp) {
    wrk *k = arg;
    if (w != k->w || weft_worker_current(k->c) != w)
        atomic_fetch_add(&g[k->c->tag].bad, 1);
    atomic_fetch_add(&g[k->c->tag].mdone, 1);
    if (resp->status == 200)
        atomic_fetch_add(&g[k->c->tag].mok, 1);
}

static void multi_reply(weft_stream *s, sctx *x, int started) {
    char ok[16];
    snprintf(ok, sizeof(ok), "%d", x->multi_ok);
    weft_str n = WEFT_STR("x-co-ok"), v = weft_str_c(ok);
    weft_reply_send(s, started && x->multi_ok == started ? 200 : 502, WEFT_STR("copool"), &n, &v, 1,
                    WEFT_STR("copool\n"));
}

static void multi_done(weft_stream *s, void *ctx, void *arg, const weft_callout_response *resp) {
    sctx *x = ctx;
    x->multi_ok += resp->status == 200;
    if (--x->multi_left == 0)
        multi_reply(s, x, (int)(intptr_t)arg);
}

/* multi N: N stream callouts, a detached one and a worker-scoped one. */
static weft_status multi_start(weft_stream *s, sctx *x, int n) {
    cfg *c = x->c;
    wrk *k = x->k;
    if (k && k->slot < SLOTS)
        atomic_fetch_add(&g[c->tag].streams[k->slot], 1);
    weft_callout_request d = request(weft_str_c(c->mirror), WEFT_STR("/multi/d"));
    d.flags = WEFT_CALLOUT_DETACHED;
    if (weft_callout_start2(s, &d, NULL, NULL, NULL) != WEFT_OK)
        atomic_fetch_add(&g[c->tag].bad, 1);
    weft_callout_request wr = request(weft_str_c(c->cluster), WEFT_STR("/multi/w"));
    if (!k || weft_worker_callout_start(k->w, &wr, multi_wdone, k, NULL) != WEFT_OK)
        atomic_fetch_add(&g[c->tag].bad, 1);
    else
        atomic_fetch_add(&g[c->tag].mstarted, 1);
    weft_callout_request r = request(weft_str_c(x->cluster), WEFT_STR("/multi/s"));
    int started = 0;
    for (int i = 0; i < n; i++)
        started += weft_callout_start2(s, &r, multi_done, (void *)(intptr_t)n, NULL) == WEFT_OK;
    x->multi_left = started;
    if (started < n)
        atomic_fetch_add(&g[c->tag].bad, 1);
    if (!started) {
        multi_reply(s, x, 0);
        return WEFT_REPLIED;
    }
    return WEFT_STOP;
}

static weft_status co_headers(void *ctx, weft_stream *s, bool end_stream) {
    sctx *x = ctx;
    char mode[32], path[128], body[256], auth[128];
    weft_str m = header(s, "x-co", mode, sizeof(mode));
    weft_str p = header(s, "x-co-path", path, sizeof(path));
    if (!x || !m.len)
        return WEFT_CONTINUE;
    cfg *c = x->c;
    if (!header(s, "x-co-cluster", x->cluster, sizeof(x->cluster)).len)
        snprintf(x->cluster, sizeof(x->cluster), "%s", c->cluster);
    weft_callout_request r = request(weft_str_c(x->cluster), p.len ? p : WEFT_STR("/"));
    if (!strcmp(mode, "one")) {
        r.max_response_body = header_u64(s, "x-co-max-body");
        r.timeout_ms = header_u64(s, "x-co-timeout");
        r.body = header(s, "x-co-body", body, sizeof(body));
        r.authority = header(s, "x-co-authority", auth, sizeof(auth));
        weft_callout *co = NULL;
        if (r.body.len)
            r.method = WEFT_STR("POST");
        weft_result rc = weft_callout_start2(s, &r, one_done, NULL, &co);
        if (rc != WEFT_OK || !co) {
            char e[16];
            snprintf(e, sizeof(e), "%d", (int)rc);
            const char *kv[] = {"x-co-start", e, NULL};
            reply(s, kv);
            return WEFT_REPLIED;
        }
        return WEFT_STOP;
    }
    if (!strcmp(mode, "echo-body")) {
        x->mode = M_ECHO;
        return WEFT_CONTINUE;
    }
    if (!strncmp(mode, "seq ", 4)) {
        x->seq_left = atoi(mode + 4);
        seq_next(s, x);
        return WEFT_STOP; /* seq_next replied when it could not start */
    }
    if (!strncmp(mode, "burst ", 6)) {
        int n = atoi(mode + 6), ok = 0, lim = 0;
        r.cluster = weft_str_c(c->mirror);
        r.path = p.len ? p : WEFT_STR("/delay/3000");
        r.flags = WEFT_CALLOUT_DETACHED;
        for (int i = 0; i < n; i++) {
            weft_callout *co = (weft_callout *)&r; /* must come back NULL */
            weft_result rc = weft_callout_start2(s, &r, NULL, NULL, &co);
            ok += rc == WEFT_OK;
            lim += rc == WEFT_ERR_LIMIT;
            if (co)
                atomic_fetch_add(&g[c->tag].bad, 1);
        }
        char a[16], b[16];
        snprintf(a, sizeof(a), "%d", ok);
        snprintf(b, sizeof(b), "%d", lim);
        const char *kv[] = {"x-co-ok", a, "x-co-limit", b, NULL};
        reply(s, kv);
        return WEFT_REPLIED;
    }
    if (!strcmp(mode, "mirror")) {
        r.cluster = weft_str_c(c->mirror);
        r.flags = WEFT_CALLOUT_DETACHED;
        char e[16];
        snprintf(e, sizeof(e), "%d", (int)weft_callout_start2(s, &r, NULL, NULL, NULL));
        weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-co-mirror"), weft_str_c(e));
        return WEFT_CONTINUE;
    }
    if (!strncmp(mode, "multi ", 6)) {
        int n = atoi(mode + 6);
        return multi_start(s, x, n < 1 ? 1 : n > 8 ? 8 : n);
    }
    if (!strcmp(mode, "wait")) {
        if (weft_callout_start2(s, &r, wait_done, NULL, NULL) != WEFT_OK)
            return WEFT_CONTINUE;
        return WEFT_STOP;
    }
    if (!strcmp(mode, "wstat")) {
        char out[4096];
        size_t n = 0;
        for (int t = 0; t < TAGS; t++) {
            int k = snprintf(out + n, sizeof(out) - n,
                             "tag=%d started=%llu done=%llu ok=%llu bad=%llu destroyed=%llu "
                             "mstarted=%llu mdone=%llu mok=%llu slots=%llu",
                             t, (unsigned long long)atomic_load(&g[t].started),
                             (unsigned long long)atomic_load(&g[t].done),
                             (unsigned long long)atomic_load(&g[t].ok),
                             (unsigned long long)atomic_load(&g[t].bad),
                             (unsigned long long)atomic_load(&g[t].destroyed),
                             (unsigned long long)atomic_load(&g[t].mstarted),
                             (unsigned long long)atomic_load(&g[t].mdone),
                             (unsigned long long)atomic_load(&g[t].mok),
                             (unsigned long long)atomic_load(&g[t].slots));
            for (int w = 0; k >= 0 && (size_t)k < sizeof(out) - n && w < SLOTS; w++)
                k += snprintf(out + n + (size_t)k, sizeof(out) - n - (size_t)k, " s%d=%llu", w,
                              (unsigned long long)atomic_load(&g[t].streams[w]));
            if (k < 0 || (size_t)k + 1 >= sizeof(out) - n)
                break;
            out[n + (size_t)k] = '\n';
            n += (size_t)k + 1;
        }
        weft_reply_send(s, 200, WEFT_STR("copool"), NULL, NULL, 0, (weft_str){out, n});
        return WEFT_REPLIED;
    }
    return WEFT_CONTINUE;
}

static weft_status co_body(void *ctx, weft_stream *s, weft_buffer *chunk, bool end_stream) {
    sctx *x = ctx;
    if (!x || x->mode != M_ECHO)
        return WEFT_CONTINUE;
    if (!end_stream) { /* keep what came so far; the last chunk carries it all */
        size_t n = weft_buffer_length(chunk);
        if (n > sizeof(x->acc) - x->n_acc)
            n = sizeof(x->acc) - x->n_acc;
        x->n_acc += weft_buffer_copy_out(chunk, 0, x->acc + x->n_acc, n);
        weft_buffer_drain(chunk, weft_buffer_length(chunk));
        return WEFT_CONTINUE;
    }
    if (x->n_acc)
        weft_buffer_prepend(chunk, x->acc, x->n_acc);
    weft_callout_request r = request(weft_str_c(x->c->cluster), WEFT_STR("/echo"));
    r.method = WEFT_STR("POST");
    r.body_buffer = chunk;
    weft_result rc = weft_callout_start2(s, &r, one_done, NULL, NULL);
    x->left = weft_buffer_length(chunk);
    if (rc != WEFT_OK) {
        const char *kv[] = {"x-co-start", "failed", NULL};
        reply(s, kv);
        return WEFT_REPLIED;
    }
    return WEFT_STOP;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .config_create = co_config_create,
    .config_destroy = co_config_destroy,
    .worker_create = co_worker_create,
    .worker_destroy = co_worker_destroy,
    .stream_create = co_stream_create,
    .stream_destroy = co_stream_destroy,
    .on_request_headers = co_headers,
    .on_request_body = co_body,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("copool", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
