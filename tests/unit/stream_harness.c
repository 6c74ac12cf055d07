/* stream_harness.c: see stream_harness.h. */
#include "stream_harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config/config.h"
#include "llhttp.h"
#include "stats/stats.h"
#include "upstream/hostset.h"

/* The SDK's wrappers call through this table (a .so gets it from its
 * entry point; the in-binary test filters get the core's table). */
const weft_host_api *weft__host;

/* ---------- call log ---------- */

static char log_buf[8192];
static size_t log_len;

const char *tf_log(void) {
    return log_buf;
}

void tf_log_clear(void) {
    log_len = 0;
    log_buf[0] = '\0';
}

void tf_log_add(const char *fmt, ...) {
    if (log_len + 2 >= sizeof(log_buf))
        fail_msg("call log full");
    if (log_len)
        log_buf[log_len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(log_buf + log_len, sizeof(log_buf) - log_len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(log_buf) - log_len)
        fail_msg("call log full");
    log_len += (size_t)n;
}

/* ---------- scripted filter ---------- */

/* The timer actions remember what the timer does when it fires. */
typedef struct tf_timer_arg {
    tf_script *sc;
    tf_action act;
} tf_timer_arg;

static tf_timer_arg timer_args[64];
static size_t n_timer_args;

static void tf_timer_cb(weft_stream *s, void *ctx, void *arg) {
    tf_timer_arg *ta = arg;
    tf_script *sc = ta->sc;
    sc->timer_fires++;
    tf_log_add("%s.timer", sc->name);
    switch (ta->act) {
    case TF_STOP_RESUME:
        sc->last_rc = weft_stream_resume(s);
        break;
    case TF_STOP_REPLY:
        sc->last_rc = weft_reply_simple(s, sc->reply_status ? sc->reply_status : 403,
                                        WEFT_STR("test_reply"), (weft_str){NULL, 0});
        break;
    case TF_STOP_RETRY:
        sc->last_rc = weft_upstream_retry(s);
        break;
    default:
        break;
    }
}

static tf_action action_for(tf_script *sc, tf_hook hook) {
    sc->calls[hook]++;
    if (sc->times[hook] && sc->calls[hook] > sc->times[hook])
        return TF_CONTINUE;
    return sc->act[hook];
}

static weft_status run_action(tf_script *sc, weft_stream *s, tf_hook hook, bool end) {
    tf_action a = action_for(sc, hook);
    switch (a) {
    case TF_CONTINUE:
        return WEFT_CONTINUE;
    case TF_STOP:
        return WEFT_STOP;
    case TF_REPLY:
        sc->last_rc = weft_reply_simple(s, sc->reply_status ? sc->reply_status : 403,
                                        WEFT_STR("test_reply"), (weft_str){NULL, 0});
        return WEFT_REPLIED;
    case TF_STOP_RESUME:
    case TF_STOP_REPLY:
    case TF_STOP_RETRY: {
        if (n_timer_args >= sizeof(timer_args) / sizeof(timer_args[0]))
            fail_msg("too many test timers");
        tf_timer_arg *ta = &timer_args[n_timer_args++];
        ta->sc = sc;
        ta->act = a;
        weft_result r = weft_timer_start(s, sc->timer_ms, tf_timer_cb, ta, NULL);
        assert_int_equal(r, WEFT_OK);
        return WEFT_STOP;
    }
    case TF_RETRY:
        sc->last_rc = weft_upstream_retry(s);
        return WEFT_CONTINUE;
    case TF_STOP_TO_END:
        return end ? WEFT_CONTINUE : WEFT_STOP;
    case TF_BAD_STATUS:
        return (weft_status)7;
    }
    return WEFT_CONTINUE;
}

static void *tf_stream_create(void *config, void *worker, weft_stream *s) {
    tf_script *sc = config;
    sc->creates++;
    return sc;
}

static void tf_stream_destroy(void *ctx) {
    tf_script *sc = ctx;
    sc->destroys++;
}

static weft_status tf_req_headers(void *ctx, weft_stream *s, bool end) {
    tf_script *sc = ctx;
    tf_log_add("%s.req_headers%s", sc->name, end ? ":e" : "");
    if (sc->custom)
        sc->custom(sc, s, TF_REQ_HEADERS);
    if (sc->replay_max)
        assert_int_equal(weft_body_buffer_for_replay(s, sc->replay_max), WEFT_OK);
    return run_action(sc, s, TF_REQ_HEADERS, end);
}

static weft_status tf_req_body(void *ctx, weft_stream *s, weft_buffer *b, bool end) {
    tf_script *sc = ctx;
    tf_log_add("%s.req_body:%zu%s", sc->name, weft_buffer_length(b), end ? "e" : "");
    if (sc->custom)
        sc->custom(sc, s, TF_REQ_BODY);
    return run_action(sc, s, TF_REQ_BODY, end);
}

static weft_status tf_req_trailers(void *ctx, weft_stream *s) {
    tf_script *sc = ctx;
    tf_log_add("%s.req_trailers", sc->name);
    if (sc->custom)
        sc->custom(sc, s, TF_REQ_TRAILERS);
    return run_action(sc, s, TF_REQ_TRAILERS, true);
}

static void tf_attempt(void *ctx, weft_stream *s, const weft_attempt_info *ai) {
    tf_script *sc = ctx;
    tf_log_add("%s.attempt:%d/%d", sc->name, (int)ai->result, ai->status);
    if (sc->custom)
        sc->custom(sc, s, TF_ATTEMPT);
    if (sc->n_attempts < 8) {
        sc->attempts[sc->n_attempts] = *ai;
        snprintf(sc->attempt_hosts[sc->n_attempts], sizeof(sc->attempt_hosts[0]), "%.*s",
                 (int)ai->upstream_host.len, ai->upstream_host.ptr);
        sc->n_attempts++;
    }
    tf_action a = action_for(sc, TF_ATTEMPT);
    if (a == TF_RETRY)
        sc->last_rc = weft_upstream_retry(s);
    else if (a == TF_REPLY)
        sc->last_rc = weft_reply_simple(s, sc->reply_status ? sc->reply_status : 403,
                                        WEFT_STR("test_reply"), (weft_str){NULL, 0});
}

static weft_status tf_resp_headers(void *ctx, weft_stream *s, bool end) {
    tf_script *sc = ctx;
    tf_log_add("%s.resp_headers:%d%s", sc->name, weft_response_status(s), end ? "e" : "");
    if (sc->custom)
        sc->custom(sc, s, TF_RESP_HEADERS);
    return run_action(sc, s, TF_RESP_HEADERS, end);
}

static weft_status tf_resp_body(void *ctx, weft_stream *s, weft_buffer *b, bool end) {
    tf_script *sc = ctx;
    tf_log_add("%s.resp_body:%zu%s", sc->name, weft_buffer_length(b), end ? "e" : "");
    if (sc->custom)
        sc->custom(sc, s, TF_RESP_BODY);
    return run_action(sc, s, TF_RESP_BODY, end);
}

static weft_status tf_resp_trailers(void *ctx, weft_stream *s) {
    tf_script *sc = ctx;
    tf_log_add("%s.resp_trailers", sc->name);
    if (sc->custom)
        sc->custom(sc, s, TF_RESP_TRAILERS);
    return run_action(sc, s, TF_RESP_TRAILERS, true);
}

static void tf_complete(void *ctx, weft_stream *s, const weft_stream_info *info) {
    tf_script *sc = ctx;
    sc->calls[TF_COMPLETE]++;
    tf_log_add("%s.complete:%d", sc->name, info->status);
    sc->info = *info;
    snprintf(sc->info_host, sizeof(sc->info_host), "%.*s", (int)info->upstream_host.len,
             info->upstream_host.ptr);
    snprintf(sc->info_flags, sizeof(sc->info_flags), "%.*s", (int)info->response_flags.len,
             info->response_flags.ptr);
    if (sc->custom)
        sc->custom(sc, s, TF_COMPLETE); /* sc->info is this stream's */
    /* The log phase refuses changes to the exchange. */
    assert_int_equal(weft_stream_resume(s), WEFT_ERR_STATE);
    assert_int_equal(weft_upstream_retry(s), WEFT_ERR_STATE);
}

static void tf_up_request(void *ctx, weft_stream *s, uint32_t attempt) {
    tf_script *sc = ctx;
    if (sc->up_request)
        sc->up_request(sc, s, attempt);
}

static const weft_http_filter_ops tf_ops_all = {
    .size = sizeof(weft_http_filter_ops),
    .stream_create = tf_stream_create,
    .stream_destroy = tf_stream_destroy,
    .on_request_headers = tf_req_headers,
    .on_request_body = tf_req_body,
    .on_request_trailers = tf_req_trailers,
    .on_upstream_attempt = tf_attempt,
    .on_response_headers = tf_resp_headers,
    .on_response_body = tf_resp_body,
    .on_response_trailers = tf_resp_trailers,
    .on_stream_complete = tf_complete,
    .on_upstream_request = tf_up_request,
};

/* Installs the scripted filters as listener 0's HTTP chain, as
 * weft_filter_chain_build would from .so files (no library: lib NULL;
 * config_destroy is not set, so the chain's teardown frees only the
 * array). Before the worker exists: its per-snapshot state sizes the
 * filters' worker objects from the chain. */
static void install_chain(weft_snapshot *snap, tf_script **filters, size_t n) {
    weft_filter_chain *ch = &snap->listeners[0].chain;
    assert_int_equal(ch->n_http, 0);
    if (!n)
        return;
    free(ch->http);
    ch->http = calloc(n, sizeof(*ch->http));
    assert_non_null(ch->http);
    for (size_t i = 0; i < n; i++) {
        weft_filter_inst *fi = &ch->http[i];
        fi->http_ops = tf_ops_all;
        fi->http = &fi->http_ops;
        fi->config = filters[i];
        fi->index = (uint32_t)i;
        snprintf(fi->name, sizeof(fi->name), "%s", filters[i]->name);
        ch->any_up_request |= filters[i]->up_request != NULL;
    }
    ch->n_http = n;
    ch->any_req_body = ch->any_resp_body = true;
    ch->any_req_trailers = ch->any_resp_trailers = true;
    assert_int_equal(weft_filter_chain_index(ch), 0);
}

/* ---------- harness ---------- */

static void fakes_reset(void);

int sh_up_new(sh *h, bool listening) {
    assert_true(h->n_up < SH_MAX_UP);
    sh_up *u = &h->up[h->n_up];
    u->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(u->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(u->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(u->lfd, (struct sockaddr *)&sa, &sl), 0);
    u->port = ntohs(sa.sin_port);
    if (listening)
        assert_int_equal(listen(u->lfd, 16), 0);
    u->cfd = -1;
    u->got = evbuffer_new();
    return (int)h->n_up++;
}

void sh_start(sh *h, tf_script **filters, size_t n_filters, const char *yaml_fmt, ...) {
    char yaml[8192];
    va_list ap;
    va_start(ap, yaml_fmt);
    int n = vsnprintf(yaml, sizeof(yaml), yaml_fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(yaml));
    weft__host = weft_filter_host_api();
    weft_log_min_level = getenv("SH_DEBUG") ? WEFT_LOG_DEBUG : WEFT_LOG_ERROR + 1;
    tf_log_clear();
    n_timer_args = 0;
    fakes_reset();
    weft_config_error err;
    weft_config *cfg = weft_config_load_buffer(yaml, (size_t)n, "harness.yaml", &err);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    char e[256];
    h->snap = weft_snapshot_build(cfg, NULL, 1, e, sizeof(e));
    if (!h->snap)
        fail_msg("snapshot: %s", e);
    if (weft_snapshot_commit(h->snap, e, sizeof(e)) != 0) {
        weft_snapshot_discard(h->snap);
        fail_msg("snapshot commit: %s", e);
    }
    install_chain(h->snap, filters, n_filters);
    h->w = weft_worker_new_detached(h->snap);
    assert_non_null(h->w);
    weft_stats_set_thread_block(h->w->stats);
}

void sh_free(sh *h) {
    for (size_t i = 0; i < h->n_up; i++) {
        if (h->up[i].cfd >= 0)
            close(h->up[i].cfd);
        for (int k = 0; k + 1 < h->up[i].accepted; k++)
            if (h->up[i].old[k] >= 0)
                close(h->up[i].old[k]);
        close(h->up[i].lfd);
        evbuffer_free(h->up[i].got);
    }
    h->n_up = 0;
    weft_stats_set_thread_block(NULL);
    weft_worker_stop_and_free(h->w);
    fakes_reset();
    weft_snapshot_unref(h->snap);
    h->w = NULL;
    h->snap = NULL;
}

int sh_teardown(void **state) {
    sh *h = *state;
    sh_free(h);
    memset(h, 0, sizeof(*h));
    return 0;
}

void sh_turn(sh *h) {
    event_base_loop(h->w->base, EVLOOP_NONBLOCK);
}

static void nap(void) {
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
}

void sh_run_until(sh *h, bool (*pred)(void *), void *arg, const char *what) {
    for (int i = 0; i < 5000; i++) {
        if (pred(arg))
            return;
        sh_turn(h);
        if (pred(arg))
            return;
        nap();
    }
    fail_msg("timed out waiting for %s", what);
}

void sh_run_for(sh *h, int ms) {
    for (int i = 0; i < ms; i++) {
        sh_turn(h);
        nap();
    }
    sh_turn(h);
}

void sh_up_accept(sh *h, int i) {
    sh_up *u = &h->up[i];
    if (u->accepted) {
        assert_true(u->accepted <= (int)(sizeof(u->old) / sizeof(u->old[0])));
        u->old[u->accepted - 1] = u->cfd; /* -1 when the test closed it */
    }
    u->cfd = -1;
    evbuffer_drain(u->got, evbuffer_get_length(u->got));
    for (int k = 0; k < 5000; k++) {
        sh_turn(h);
        int fd = accept4(u->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            u->cfd = fd;
            u->accepted++;
            return;
        }
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        nap();
    }
    fail_msg("upstream %d: no connection came", i);
}

static void up_read(sh_up *u) {
    char buf[4096];
    for (;;) {
        ssize_t r = recv(u->cfd, buf, sizeof(buf), 0);
        if (r <= 0)
            return;
        evbuffer_add(u->got, buf, (size_t)r);
    }
}

const char *sh_up_got(sh *h, int i) {
    static char out[16384];
    sh_up *u = &h->up[i];
    if (u->cfd >= 0)
        up_read(u);
    size_t n = evbuffer_get_length(u->got);
    if (n >= sizeof(out))
        n = sizeof(out) - 1;
    evbuffer_copyout(u->got, out, n);
    out[n] = '\0';
    return out;
}

void sh_up_wait_for(sh *h, int i, const char *needle) {
    for (int k = 0; k < 5000; k++) {
        sh_turn(h);
        if (strstr(sh_up_got(h, i), needle))
            return;
        nap();
    }
    fail_msg("upstream %d: never received \"%s\" (got \"%s\")", i, needle, sh_up_got(h, i));
}

void sh_up_send(sh *h, int i, const char *bytes) {
    sh_up *u = &h->up[i];
    assert_true(u->cfd >= 0);
    size_t n = strlen(bytes);
    assert_int_equal(send(u->cfd, bytes, n, MSG_NOSIGNAL), (ssize_t)n);
}

void sh_up_close(sh *h, int i) {
    sh_up *u = &h->up[i];
    if (u->cfd >= 0)
        close(u->cfd);
    u->cfd = -1;
}

weft_lb *sh_lb(sh *h, int cluster) {
    weft_cluster_wrk *c = weft_wsnap_cluster(h->w->cur, cluster);
    assert_non_null(c);
    return c->lb;
}

void sh_publish(sh *h, int cluster, const uint16_t *ports, size_t n) {
    weft_hostset *hs = weft_hostset_new(n);
    assert_non_null(hs);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_endpoint_set_ip(&hs->eps[i], "127.0.0.1", ports[i]), 0);
    weft_cluster_snap_publish(&h->snap->clusters[cluster], hs);
}

uint64_t sh_counter(sh *h, weft_stat_id id) {
    return weft_stats_counter_value(id);
}

/* ---------- fake upstream ---------- */

static sh_fake fakes[SH_MAX_FAKE];
static int n_fakes;
bool sh_fake_refuse_start;

static sh_fake *fake_of(weft_stream *s) {
    return s->up;
}

static bool fk_start(weft_stream *s, const weft_endpoint *ep, bool allow_idle) {
    if (sh_fake_refuse_start)
        return false;
    assert_true(n_fakes < SH_MAX_FAKE);
    sh_fake *f = &fakes[n_fakes++];
    f->s = s;
    snprintf(f->ep, sizeof(f->ep), "%s", ep->name);
    f->req = evbuffer_new();
    s->up = f;
    return true;
}

static bool fk_connected(weft_stream *s) {
    return fake_of(s)->connected;
}

/* As HTTP/1.1: request bytes wait in up_pending until connected. */
static struct evbuffer *fk_out(weft_stream *s) {
    sh_fake *f = fake_of(s);
    return f->connected ? f->req : s->up_pending;
}

static void fk_connected_flush(weft_stream *s) {
    evbuffer_add_buffer(fake_of(s)->req, s->up_pending);
}

static void fk_restart(weft_stream *s, struct evbuffer *unsent) {
    (void)s;
    (void)unsent;
}

static void fk_send_body(weft_stream *s, struct evbuffer *chunk) {
    assert_false(fake_of(s)->req_end);
    evbuffer_add_buffer(fk_out(s), chunk);
}

static void fk_send_data(weft_stream *s, const char *p, size_t n) {
    assert_false(fake_of(s)->req_end);
    evbuffer_add(fk_out(s), p, n);
}

static void fk_send_end(weft_stream *s, const weft_hdrs *trailers) {
    assert_false(fake_of(s)->req_end);
    fake_of(s)->req_end = true;
}

static size_t fk_pending(weft_stream *s) {
    return 0;
}

static void fk_pause(weft_stream *s) {
    fake_of(s)->pauses++;
    fake_of(s)->paused = true;
}

static void fk_resume(weft_stream *s) {
    fake_of(s)->resumes++;
    fake_of(s)->paused = false;
}

static void fk_release(weft_stream *s, bool reusable) {
    sh_fake *f = fake_of(s);
    assert_false(f->released); /* released once */
    f->released = true;
    f->reusable = reusable;
    f->s = NULL;
}

static bool fk_unprocessed(weft_stream *s) {
    return false;
}

static const weft_upstream_ops fake_ops = {
    .name = "fake",
    .start = fk_start,
    .connected = fk_connected,
    .connected_flush = fk_connected_flush,
    .restart = fk_restart,
    .send_body = fk_send_body,
    .send_data = fk_send_data,
    .send_end = fk_send_end,
    .pending = fk_pending,
    .pause = fk_pause,
    .resume = fk_resume,
    .release = fk_release,
    .unprocessed = fk_unprocessed,
    .keeps_unsent = true,
};

void sh_fake_enable(sh *h) {
    (void)h;
    weft_upstream_test_ops = &fake_ops;
}

static void fakes_reset(void) {
    for (int i = 0; i < n_fakes; i++)
        if (fakes[i].req)
            evbuffer_free(fakes[i].req);
    memset(fakes, 0, sizeof(fakes));
    n_fakes = 0;
    sh_fake_refuse_start = false;
    weft_upstream_test_ops = NULL;
}

int sh_fake_count(void) {
    return n_fakes;
}

sh_fake *sh_fake_get(int k) {
    assert_true(k >= 0 && k < n_fakes);
    return &fakes[k];
}

const char *sh_fake_req(int k) {
    static char out[16384];
    struct evbuffer *b = sh_fake_get(k)->req;
    size_t n = evbuffer_get_length(b);
    if (n >= sizeof(out))
        n = sizeof(out) - 1;
    evbuffer_copyout(b, out, n);
    out[n] = '\0';
    return out;
}

/* The attempt's stream, which must still be attached (a real upstream
 * says nothing once released). */
static weft_stream *fake_stream(int k) {
    sh_fake *f = sh_fake_get(k);
    if (!f->s)
        fail_msg("fake upstream %d: already released", k);
    return f->s;
}

void sh_fake_connect(int k) {
    weft_stream *s = fake_stream(k);
    fakes[k].connected = true;
    weft_stream_on_up_connected(s);
}

void sh_fake_head(int k, int status, const char *const *headers) {
    weft_stream *s = fake_stream(k);
    weft_resp_head *h = weft_arena_alloc(&s->arena, sizeof(*h));
    assert_non_null(h);
    memset(h, 0, sizeof(*h));
    h->status = (uint16_t)status;
    h->reason = weft_sv_from(weft_status_reason(h->status));
    h->http_minor = 1;
    h->keep_alive = true;
    h->content_length = -1;
    h->framing =
        weft_resp_is_bodyless(h->status, s->head_request) ? WEFT_BODY_NONE : WEFT_BODY_CHUNKED;
    weft_hdrs_init(&h->headers, &s->arena);
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *c = strchr(headers[i], ':');
        assert_non_null(c);
        weft_sv name = {headers[i], (size_t)(c - headers[i])};
        weft_sv value = weft_sv_trim(weft_sv_from(c + 1));
        assert_int_equal(weft_hdrs_add(&h->headers, name, value), 0);
        if (weft_sv_eq(name, WEFT_SV_LIT("content-length"))) {
            h->framing = WEFT_BODY_LENGTH;
            h->content_length = strtoll(value.p, NULL, 10);
        }
    }
    fakes[k].last_rc = weft_stream_on_up_head(s, h);
}

void sh_fake_body(int k, const char *p) {
    fakes[k].last_rc = weft_stream_on_up_body(fake_stream(k), p, strlen(p));
}

void sh_fake_trailers(int k, const char *name, const char *value) {
    weft_stream *s = fake_stream(k);
    weft_hdrs *t = weft_arena_alloc(&s->arena, sizeof(*t));
    assert_non_null(t);
    weft_hdrs_init(t, &s->arena);
    assert_int_equal(weft_hdrs_add(t, weft_sv_from(name), weft_sv_from(value)), 0);
    fakes[k].last_rc = weft_stream_on_up_trailers(s, t);
}

void sh_fake_complete(int k) {
    fakes[k].last_rc = weft_stream_on_up_complete(fake_stream(k));
}

void sh_fake_error(int k, weft_up_err err) {
    weft_stream_on_up_error(fake_stream(k), err);
}

/* ---------- fake downstream ---------- */

static sh_ds *ds_of(weft_stream *s) {
    return s->ds;
}

static void hdrs_text(struct evbuffer *out, const weft_hdrs *hs) {
    for (uint32_t i = 0; hs && i < hs->n; i++)
        evbuffer_add_printf(out, "%.*s: %.*s\n", (int)hs->v[i].name.len, hs->v[i].name.p,
                            (int)hs->v[i].value.len, hs->v[i].value.p);
}

static void op_send_head(weft_stream *s, weft_resp_head *h, bool end_stream) {
    sh_ds *d = ds_of(s);
    d->heads++;
    d->status = h->status;
    d->head_end_stream = end_stream;
    hdrs_text(d->resp_headers, &h->headers);
}

static void op_send_continue(weft_stream *s) {
    ds_of(s)->continues++;
}

static void op_send_body(weft_stream *s, const char *p, size_t n) {
    sh_ds *d = ds_of(s);
    assert_int_equal(d->heads, 1); /* body only after exactly one head */
    assert_int_equal(d->ends, 0);
    evbuffer_add(d->body, p, n);
}

static void op_send_body_buf(weft_stream *s, struct evbuffer *buf) {
    sh_ds *d = ds_of(s);
    if (evbuffer_get_length(buf)) {
        assert_int_equal(d->heads, 1);
        assert_int_equal(d->ends, 0);
    }
    evbuffer_add_buffer(d->body, buf);
}

static void op_send_end(weft_stream *s, weft_hdrs *trailers) {
    sh_ds *d = ds_of(s);
    d->ends++;
    if (trailers && trailers->n) {
        d->trailers_sent = true;
        hdrs_text(d->trailers, trailers);
    }
}

static size_t op_pending_out(weft_stream *s) {
    return ds_of(s)->pending_out;
}

static void op_pause_read(weft_stream *s) {
    ds_of(s)->pauses++;
}

static void op_resume_read(weft_stream *s) {
    ds_of(s)->resumes++;
}

/* Like the HTTP/1.1 codec: the exchange ends from a deferred event,
 * outside every hook and callback. */
static void op_done(weft_stream *s) {
    sh_ds *d = ds_of(s);
    d->dones++;
    d->att_live_at_done = s->att.live;
    d->lb_active_at_done = s->att.lb ? weft_lb_active(s->att.lb, -1) : 0;
    event_active(&d->ev_done, EV_TIMEOUT, 0);
}

static void op_reset(weft_stream *s) {
    sh_ds *d = ds_of(s);
    d->resets++;
    event_active(&d->ev_done, EV_TIMEOUT, 0);
}

static const weft_conn_facts facts = {
    .peer_ip = "127.0.0.1", .peer_port = 40000, .local_ip = "127.0.0.1", .local_port = 8080};

static const weft_conn_facts *op_facts(weft_stream *s) {
    return &facts;
}

static const weft_downstream_ops sh_ops = {
    .send_head = op_send_head,
    .send_continue = op_send_continue,
    .send_body = op_send_body,
    .send_body_buf = op_send_body_buf,
    .send_end = op_send_end,
    .pending_out = op_pending_out,
    .pause_read = op_pause_read,
    .resume_read = op_resume_read,
    .done = op_done,
    .reset = op_reset,
    .facts = op_facts,
};

static void on_done(evutil_socket_t fd, short what, void *arg) {
    sh_ds *d = arg;
    weft_stream *s = &d->s;
    if (!s->active)
        return;
    if (!s->t_end_us) /* a reset: the codec aborts the exchange */
        weft_stream_on_downstream_reset(s, WEFT_RF_DC);
    weft_stream_end(s);
    d->ended++;
}

sh_ds *sh_ds_new(sh *h) {
    sh_ds *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->h = h;
    weft_stream_init(&d->s, h->w, &sh_ops, d);
    d->s.peer_ip = "127.0.0.1";
    event_assign(&d->ev_done, h->w->base, -1, 0, on_done, d);
    d->resp_headers = evbuffer_new();
    d->body = evbuffer_new();
    d->trailers = evbuffer_new();
    return d;
}

void sh_ds_free(sh_ds *d) {
    event_del(&d->ev_done);
    if (d->s.active && !d->s.t_end_us)
        weft_stream_on_downstream_reset(&d->s, WEFT_RF_DC);
    event_del(&d->ev_done);
    weft_stream_destroy(&d->s);
    evbuffer_free(d->resp_headers);
    evbuffer_free(d->body);
    evbuffer_free(d->trailers);
    free(d);
}

static weft_sv arena_sv(weft_stream *s, const char *p, size_t n) {
    char *c = weft_arena_strndup(&s->arena, p, n);
    assert_non_null(c);
    return (weft_sv){c, n};
}

weft_req_head *sh_req(sh_ds *d, const char *method, const char *target) {
    weft_stream *s = &d->s;
    assert_false(s->active);
    d->heads = d->continues = d->ends = d->resets = d->dones = d->pauses = d->resumes = 0;
    d->status = 0;
    d->trailers_sent = false;
    evbuffer_drain(d->resp_headers, evbuffer_get_length(d->resp_headers));
    evbuffer_drain(d->body, evbuffer_get_length(d->body));
    evbuffer_drain(d->trailers, evbuffer_get_length(d->trailers));
    weft_stream_begin(s, &d->h->w->cur->snap->listeners[0], d->h->w->cur);
    weft_req_head *r = weft_arena_alloc(&s->arena, sizeof(*r));
    assert_non_null(r);
    memset(r, 0, sizeof(*r));
    r->method = arena_sv(s, method, strlen(method));
    static const struct {
        const char *name;
        int id;
    } methods[] = {{"GET", HTTP_GET}, {"POST", HTTP_POST}, {"HEAD", HTTP_HEAD}, {"PUT", HTTP_PUT}};
    r->method_id = -1;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(method, methods[i].name))
            r->method_id = methods[i].id;
    assert_true(r->method_id >= 0);
    r->target = arena_sv(s, target, strlen(target));
    const char *q = strchr(target, '?');
    r->path = q ? (weft_sv){r->target.p, (size_t)(q - target)} : r->target;
    r->query = q ? (weft_sv){r->target.p + (q - target) + 1, strlen(q + 1)} : (weft_sv){"", 0};
    r->authority = WEFT_SV_LIT("test.local");
    r->http_minor = 1;
    r->keep_alive = true;
    r->framing = WEFT_BODY_NONE;
    r->content_length = -1;
    weft_hdrs_init(&r->headers, &s->arena);
    weft_hdrs_add(&r->headers, WEFT_SV_LIT("host"), r->authority);
    d->s.req = r; /* until sh_req_head hands it over (sh_req_header adds to it) */
    return r;
}

void sh_req_header(sh_ds *d, const char *name, const char *value) {
    assert_int_equal(weft_hdrs_add(&d->s.req->headers, weft_sv_from(name), weft_sv_from(value)), 0);
}

void sh_req_head(sh_ds *d, int64_t content_length) {
    weft_stream *s = &d->s;
    weft_req_head *r = s->req;
    if (content_length >= 0) {
        char cl[32];
        snprintf(cl, sizeof(cl), "%lld", (long long)content_length);
        weft_hdrs_add(&r->headers, WEFT_SV_LIT("content-length"), weft_sv_from(cl));
        r->framing = WEFT_BODY_LENGTH;
        r->content_length = content_length;
    }
    weft_stream_on_req_head(s, r);
    if (content_length < 0 && s->active && !s->t_end_us)
        weft_stream_on_req_end(s, NULL);
    else if (content_length < 0 && s->active)
        s->req_done = true; /* as the h1 codec: the (empty) request did end */
}

void sh_req_body(sh_ds *d, const char *p) {
    weft_stream_on_req_body(&d->s, p, strlen(p));
}

void sh_req_end(sh_ds *d) {
    weft_stream_on_req_end(&d->s, NULL);
}

void sh_request(sh_ds *d, const char *method, const char *target, const char *body) {
    sh_req(d, method, target);
    sh_req_head(d, body ? (int64_t)strlen(body) : -1);
    if (body && d->s.active && !d->s.t_end_us) {
        if (*body)
            sh_req_body(d, body);
        sh_req_end(d);
    }
}

void sh_ds_client_reset(sh_ds *d) {
    weft_stream_on_downstream_reset(&d->s, WEFT_RF_DC);
}

static const char *evtext(struct evbuffer *b) {
    static char out[4][16384];
    static int k;
    char *o = out[k++ & 3];
    size_t n = evbuffer_get_length(b);
    if (n >= sizeof(out[0]))
        n = sizeof(out[0]) - 1;
    evbuffer_copyout(b, o, n);
    o[n] = '\0';
    return o;
}

const char *sh_ds_body(sh_ds *d) {
    return evtext(d->body);
}

const char *sh_ds_headers(sh_ds *d) {
    return evtext(d->resp_headers);
}

const char *sh_ds_trailers(sh_ds *d) {
    return evtext(d->trailers);
}

bool sh_ds_ended(void *arg) {
    sh_ds *d = arg;
    return !d->s.active;
}

void sh_run_to_end(sh *h, sh_ds *d) {
    sh_run_until(h, sh_ds_ended, d, "the end of the exchange");
}

void sh_assert_filters_released(tf_script **f, size_t n) {
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f[i]->creates, f[i]->destroys);
        assert_int_equal(f[i]->calls[TF_COMPLETE], f[i]->creates);
    }
}
