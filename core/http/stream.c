/* stream.c: the codec-independent request pipeline (see stream.h). */
#include "http/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "http/stream_internal.h"
#include "log/access_log.h"
#include "upstream/h2_pool.h"

static const weft_sv H_XFF = WEFT_SV_LIT("x-forwarded-for");
static const weft_sv H_XFP = WEFT_SV_LIT("x-forwarded-proto");
static const weft_sv H_VIA = WEFT_SV_LIT("via");
static const weft_sv H_RID = WEFT_SV_LIT("x-request-id");
static const weft_sv H_HOST = WEFT_SV_LIT("host");
static const weft_sv H_TE = WEFT_SV_LIT("transfer-encoding");
static const weft_sv H_EXPECT = WEFT_SV_LIT("expect");
static const weft_sv H_CT = WEFT_SV_LIT("content-type");
static const weft_sv H_CL = WEFT_SV_LIT("content-length");

static void start_upstream(weft_stream *s, bool allow_idle);

uint32_t stream_high_watermark(const weft_stream *s) {
    uint32_t hw = s->lst ? s->lst->cfg->limits.buffer_high_watermark : 0;
    return hw ? hw : 1024 * 1024;
}

static void on_request_timeout(void *arg);
static void on_idle_timeout(void *arg);
static uint64_t grpc_timeout_ms(const weft_hdrs *h);
static void req_write_end(weft_stream *s);

void weft_stream_init(weft_stream *s, weft_worker *w, const weft_downstream_ops *ops, void *ds) {
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->ds_ops = ops;
    s->ds = ds;
    weft_arena_init(&s->arena);
    weft_ltimer_init(&s->t_request, w->base, on_request_timeout, s);
    weft_ltimer_init(&s->t_idle, w->base, on_idle_timeout, s);
    s->timers_init = true;
    s->up_pending = evbuffer_new();
}

/* The filter pipeline's buffers, made the first time a stream object runs
 * a filter chain and kept with it (an idle connection without filters does
 * not pay for six evbuffers). */
void stream_dir_buffers(weft_stream *s) {
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]->pre)
            dirs[i]->pre = evbuffer_new();
        if (!dirs[i]->held)
            dirs[i]->held = evbuffer_new();
        if (!dirs[i]->chunk)
            dirs[i]->chunk = evbuffer_new();
    }
}

static size_t buf_len(const struct evbuffer *b) {
    return b ? evbuffer_get_length(b) : 0;
}

static void dir_reset(weft_dir *d) {
    d->headers_done = false;
    d->paused_at = -1;
    d->paused_headers = false;
    d->end_in = d->end_out = false;
    d->trailers = NULL;
    if (d->pre)
        evbuffer_drain(d->pre, evbuffer_get_length(d->pre));
    if (d->held)
        evbuffer_drain(d->held, evbuffer_get_length(d->held));
    if (d->chunk)
        evbuffer_drain(d->chunk, evbuffer_get_length(d->chunk));
}

/* Stream idle timeout: every bit of activity moves the deadline (a lazy
 * timer, so this costs no timer-heap operation). */
static void arm_idle(weft_stream *s) {
    uint64_t ms = s->lst->cfg->limits.stream_idle_timeout_ms;
    if (s->route && s->route->cfg->idle_timeout_ms)
        ms = s->route->cfg->idle_timeout_ms;
    weft_ltimer_set(&s->t_idle, ms);
}

void weft_stream_begin(weft_stream *s, weft_listener_snap *lst, weft_wsnap *ws) {
    s->magic = WEFT_STREAM_MAGIC;
    s->lst = lst;
    s->ws = weft_wsnap_ref(ws);
    s->active = true;
    s->chain = &lst->chain;
    s->fctx = NULL;
    s->running = -1;
    s->in_async_cb = false;
    dir_reset(&s->rq);
    dir_reset(&s->rs);
    s->cluster_override = -1;
    s->replay_max = 0;
    s->replay_overflow = s->retry_requested = s->log_phase = false;
    s->attempts = 0;
    s->timers = NULL;
    s->callouts = NULL;
    weft_hdrs_init(&s->metadata, &s->arena);
    s->req = NULL;
    s->route = NULL;
    s->cluster = NULL;
    s->ep_idx = -1;
    s->ep = NULL;
    s->up = NULL;
    s->request_id = (weft_sv){"", 0};
    s->resp_trailers = NULL;
    s->req_done = s->up_req_done = s->up_req_chunked = s->resp_started = s->resp_done = false;
    s->head_request = s->stale_retry_done = s->ds_read_paused = s->up_read_paused = false;
    s->close_after = s->is_grpc = false;
    s->flags = 0;
    s->reason = NULL;
    s->t_start_us = weft_now_us();
    s->t_up_start_us = s->t_up_head_us = s->t_end_us = 0;
    s->bytes_in = s->bytes_out = 0;
    s->status_sent = 0;
    memset(&s->resp, 0, sizeof(s->resp));
    weft_hdrs_init(&s->resp.headers, &s->arena);
    atomic_fetch_add_explicit(&s->w->active_streams, 1, memory_order_relaxed);
    arm_idle(s);
}

void weft_stream_end(weft_stream *s) {
    if (!s->active)
        return;
    if (stream_up_attached(s))
        stream_up_release(s, false);
    sf_end(s);
    if (s->replay) {
        evbuffer_free(s->replay);
        s->replay = NULL;
    }
    s->magic = 0;
    weft_ltimer_clear(&s->t_request);
    weft_ltimer_clear(&s->t_idle);
    evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
    weft_wsnap_unref(s->ws);
    s->ws = NULL;
    weft_arena_reset(&s->arena);
    s->req = NULL;
    s->active = false;
}

void weft_stream_destroy(weft_stream *s) {
    weft_stream_end(s);
    weft_ltimer_stop(&s->t_request);
    weft_ltimer_stop(&s->t_idle);
    if (s->up_pending)
        evbuffer_free(s->up_pending);
    s->up_pending = NULL;
    weft_dir *dirs[2] = {&s->rq, &s->rs};
    for (int i = 0; i < 2; i++) {
        if (dirs[i]->pre)
            evbuffer_free(dirs[i]->pre);
        if (dirs[i]->held)
            evbuffer_free(dirs[i]->held);
        if (dirs[i]->chunk)
            evbuffer_free(dirs[i]->chunk);
        dirs[i]->pre = dirs[i]->held = dirs[i]->chunk = NULL;
    }
}

/* ---------- local replies ---------- */

static void send_head_counted(weft_stream *s, weft_resp_head *h, bool end) {
    s->resp_started = true;
    s->status_sent = h->status;
    s->ds_ops->send_head(s, h, end);
}

/* gRPC status for an HTTP status weft answers with (the mapping gRPC's
 * own HTTP-to-gRPC table uses, plus the proxy's own statuses). */
static int grpc_status_for(uint16_t http) {
    switch (http) {
    case 400:
        return 13; /* INTERNAL: a malformed request */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return 12; /* UNIMPLEMENTED */
    case 408:
    case 504:
        return 4; /* DEADLINE_EXCEEDED */
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 502:
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

void weft_stream_reply_full(weft_stream *s, uint16_t status, const char *reason,
                            const weft_hdrs *extra, weft_sv body) {
    if (reason)
        s->reason = reason;
    if (stream_up_attached(s))
        stream_up_release(s, false);
    weft_ltimer_clear(&s->t_request);
    if (s->resp_started || s->resp_done) {
        /* Part of a response already went out: the only honest signal left
         * on HTTP/1.1 is to cut the connection. */
        s->flags |= WEFT_RF_LR;
        s->close_after = true;
        s->ds_ops->reset(s);
        stream_finish(s);
        return;
    }
    weft_stats_inc(s->w->stats, s->ws->snap->rq_local_reply, 1);
    weft_resp_head *h = &s->resp;
    memset(h, 0, sizeof(*h));
    weft_hdrs_init(&h->headers, &s->arena);
    h->http_minor = 1;
    h->keep_alive = true;
    char tmp[64];
    if (s->is_grpc) {
        /* Trailers-Only gRPC response: HTTP 200, grpc-status in the head. */
        h->status = 200;
        h->reason = WEFT_SV_LIT("OK");
        weft_hdrs_add(&h->headers, H_CT, WEFT_SV_LIT("application/grpc"));
        int n = snprintf(tmp, sizeof(tmp), "%d", grpc_status_for(status));
        weft_hdrs_add(&h->headers, WEFT_SV_LIT("grpc-status"), (weft_sv){tmp, (size_t)n});
        weft_sv msg = body.len ? weft_sv_trim(body)
                               : weft_sv_from(reason ? reason : weft_status_reason(status));
        while (msg.len && (msg.p[msg.len - 1] == '\n' || msg.p[msg.len - 1] == '\r'))
            msg.len--;
        weft_hdrs_add(&h->headers, WEFT_SV_LIT("grpc-message"), msg);
        body = (weft_sv){"", 0};
    } else {
        h->status = status;
        h->reason = weft_sv_from(weft_status_reason(status));
    }
    if (!body.p) {
        int n = snprintf(tmp, sizeof(tmp), "%s\n", reason ? reason : weft_status_reason(status));
        body = (weft_sv){weft_arena_strndup(&s->arena, tmp, (size_t)n), (size_t)n};
    }
    if (reason)
        weft_hdrs_add(&h->headers, WEFT_SV_LIT("x-weft-reason"), weft_sv_from(reason));
    bool has_ct = weft_hdrs_get(&h->headers, H_CT) != NULL;
    for (uint32_t i = 0; extra && i < extra->n; i++) {
        weft_hdrs_add_ref(&h->headers, extra->v[i].name, extra->v[i].value);
        has_ct |= weft_sv_eq(extra->v[i].name, H_CT);
    }
    if (body.len && !has_ct)
        weft_hdrs_add(&h->headers, H_CT, WEFT_SV_LIT("text/plain"));
    int n = snprintf(tmp, sizeof(tmp), "%zu", body.len);
    weft_hdrs_set(&h->headers, H_CL, (weft_sv){tmp, (size_t)n});
    h->framing = body.len ? WEFT_BODY_LENGTH : WEFT_BODY_NONE;
    h->content_length = (int64_t)body.len;
    /* A request body we have not read yet makes the connection unusable. */
    if (!s->req_done && (!s->req || s->req->framing != WEFT_BODY_NONE))
        s->close_after = true;
    bool bodyless = s->head_request || body.len == 0;
    send_head_counted(s, h, bodyless);
    if (!bodyless) {
        s->ds_ops->send_body(s, body.p, body.len);
        s->bytes_out += body.len;
    }
    s->ds_ops->send_end(s, NULL);
    s->resp_done = true;
    if (s->req_done || s->close_after)
        stream_finish(s);
}

void weft_stream_local_reply(weft_stream *s, uint16_t status, const char *reason, uint32_t flag,
                             const char *body) {
    s->flags |= flag;
    weft_stream_reply_full(s, status, reason, NULL, body ? weft_sv_from(body) : (weft_sv){NULL, 0});
}

static void redirect_reply(weft_stream *s) {
    const weft_cfg_route *r = s->route->cfg;
    weft_sv loc =
        weft_route_redirect_location(s->route, s->req, s->tls ? "https" : "http", &s->arena);
    weft_resp_head *h = &s->resp;
    memset(h, 0, sizeof(*h));
    weft_hdrs_init(&h->headers, &s->arena);
    h->status = r->redirect_code ? r->redirect_code : 301;
    h->reason = weft_sv_from(weft_status_reason(h->status));
    h->http_minor = 1;
    weft_hdrs_add(&h->headers, WEFT_SV_LIT("location"), loc);
    weft_hdrs_add(&h->headers, H_CL, WEFT_SV_LIT("0"));
    h->framing = WEFT_BODY_NONE;
    h->content_length = 0;
    s->flags |= WEFT_RF_DR;
    if (!s->req_done && s->req->framing != WEFT_BODY_NONE)
        s->close_after = true;
    send_head_counted(s, h, true);
    s->resp_done = true;
    if (s->req_done || s->close_after)
        stream_finish(s);
}

static void direct_reply(weft_stream *s) {
    const weft_cfg_route *r = s->route->cfg;
    s->flags |= WEFT_RF_DR;
    weft_stream_local_reply(s, r->direct_status, NULL, WEFT_RF_DR,
                            r->direct_body ? r->direct_body : "");
}

/* ---------- request path ---------- */

static void gen_request_id(weft_stream *s) {
    const weft_sv *v = weft_hdrs_get(&s->req->headers, H_RID);
    if (v && v->len) {
        s->request_id = *v;
        return;
    }
    uint64_t a = weft_worker_rand(s->w), b = weft_worker_rand(s->w);
    char *id = weft_arena_alloc(&s->arena, 37);
    if (!id)
        return;
    /* UUID v4 layout: 8-4-4-4-12 hex digits, version nibble 4, variant 10b (hex by
     * hand: this runs for every request without an id). */
    static const char hex[] = "0123456789abcdef";
    a = (a & 0xffffffffffff0fffull) | 0x4000ull;
    b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
    char *o = id;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        uint64_t word = i < 8 ? a : b;
        unsigned byte = (unsigned)(word >> (8 * (7 - (i & 7)))) & 0xff;
        *o++ = hex[byte >> 4];
        *o++ = hex[byte & 15];
    }
    *o = '\0';
    s->request_id = (weft_sv){id, 36};
    weft_hdrs_add_ref(&s->req->headers, H_RID, s->request_id);
}

static void append_list_header(weft_stream *s, weft_sv name, weft_sv value) {
    const weft_sv *old = weft_hdrs_get(&s->req->headers, name);
    if (!old || weft_hdrs_count(&s->req->headers, name) > 1) {
        /* Several lines: fold them into one (they are a list). */
        size_t total = value.len + 1;
        for (uint32_t i = 0; i < s->req->headers.n; i++)
            if (weft_sv_eq(s->req->headers.v[i].name, name))
                total += s->req->headers.v[i].value.len + 2;
        char *buf = weft_arena_alloc(&s->arena, total);
        size_t n = 0;
        for (uint32_t i = 0; buf && i < s->req->headers.n; i++)
            if (weft_sv_eq(s->req->headers.v[i].name, name)) {
                memcpy(buf + n, s->req->headers.v[i].value.p, s->req->headers.v[i].value.len);
                n += s->req->headers.v[i].value.len;
                buf[n++] = ',';
                buf[n++] = ' ';
            }
        if (!buf)
            return;
        memcpy(buf + n, value.p, value.len);
        n += value.len;
        weft_hdrs_remove(&s->req->headers, name);
        weft_hdrs_add_ref(&s->req->headers, name, (weft_sv){buf, n});
        return;
    }
    size_t n = old->len + 2 + value.len;
    char *buf = weft_arena_alloc(&s->arena, n);
    if (!buf)
        return;
    memcpy(buf, old->p, old->len);
    memcpy(buf + old->len, ", ", 2);
    memcpy(buf + old->len + 2, value.p, value.len);
    weft_hdrs_set(&s->req->headers, name, (weft_sv){buf, n});
}

/* Rewrites the request into what the upstream gets (RFC 9110 7.6: strip
 * hop-by-hop; add Via, X-Forwarded-*; route header operations). */
static void prepare_upstream_headers(weft_stream *s) {
    weft_req_head *req = s->req;
    const weft_cfg_route *r = s->route->cfg;
    weft_hdrs_strip_hop_by_hop(&req->headers);
    weft_hdrs_remove(&req->headers, H_EXPECT);
    for (size_t i = 0; i < r->n_req_remove; i++)
        weft_hdrs_remove(&req->headers, weft_sv_from(r->req_remove[i]));
    for (size_t i = 0; i < r->n_req_add; i++) {
        weft_sv n = weft_sv_from(r->req_add[i].name), v = weft_sv_from(r->req_add[i].value);
        if (r->req_add[i].append)
            weft_hdrs_add_ref(&req->headers, n, v);
        else
            weft_hdrs_set(&req->headers, n, v);
    }
    if (r->host_rewrite)
        weft_hdrs_set(&req->headers, H_HOST, weft_sv_from(r->host_rewrite));
    else if (!weft_hdrs_get(&req->headers, H_HOST) && req->authority.len)
        weft_hdrs_add_ref(&req->headers, H_HOST, req->authority);
    if (s->peer_ip)
        append_list_header(s, H_XFF, weft_sv_from(s->peer_ip));
    if (!weft_hdrs_get(&req->headers, H_XFP))
        weft_hdrs_add_ref(&req->headers, H_XFP,
                          s->tls ? WEFT_SV_LIT("https") : WEFT_SV_LIT("http"));
    append_list_header(s, H_VIA,
                       req->http_minor ? WEFT_SV_LIT("1.1 weft") : WEFT_SV_LIT("1.0 weft"));
    if (s->upgrade_req && !s->is_connect) {
        /* Upgrade is hop-by-hop, but asking the upstream to switch is the
         * point of this request: forward it explicitly. */
        weft_hdrs_add_ref(&req->headers, WEFT_SV_LIT("connection"), WEFT_SV_LIT("upgrade"));
        weft_hdrs_add_ref(&req->headers, WEFT_SV_LIT("upgrade"), s->upgrade_value);
    }
    if (req->framing == WEFT_BODY_LENGTH && !weft_hdrs_get(&req->headers, H_CL)) {
        /* A filter removed content-length (it will change the body's
         * length): the body goes chunked. */
        req->framing = WEFT_BODY_CHUNKED;
    }
    if (req->framing == WEFT_BODY_CHUNKED) {
        weft_hdrs_add_ref(&req->headers, H_TE, WEFT_SV_LIT("chunked"));
        s->up_req_chunked = true;
    }
    s->up_target = weft_route_rewrite_target(s->route, req, &s->arena);
    if (s->up_target.len && s->up_target.p[0] != '/' &&
        !weft_sv_eq(s->up_target, WEFT_SV_LIT("*"))) {
        /* absolute-form in: origin-form out (RFC 9112 3.2.1); the parser
         * already made Host the target's authority. */
        size_t n = req->path.len + (req->query.len ? req->query.len + 1 : 0);
        char *t = weft_arena_alloc(&s->arena, n + 1);
        if (t) {
            memcpy(t, req->path.p, req->path.len);
            if (req->query.len) {
                t[req->path.len] = '?';
                memcpy(t + req->path.len + 1, req->query.p, req->query.len);
            }
            s->up_target = (weft_sv){t, n};
        }
    }
}

void stream_up_release(weft_stream *s, bool reusable) {
    if (s->up)
        weft_upconn_release(s->up, reusable);
    if (s->up2)
        weft_h2up_release(s->up2);
    s->up = NULL;
    s->up2 = NULL;
}

void stream_up_pause(weft_stream *s) {
    if (s->up)
        weft_upconn_pause_read(s->up);
    else if (s->up2)
        weft_h2up_pause(s->up2);
}

void stream_up_resume(weft_stream *s) {
    if (s->up)
        weft_upconn_resume_read(s->up);
    else if (s->up2)
        weft_h2up_resume(s->up2);
}

static struct evbuffer *up_out(weft_stream *s) {
    return s->up && s->up->connected ? weft_upconn_output(s->up) : s->up_pending;
}

static void check_up_backpressure(weft_stream *s) {
    size_t pending = s->up2 ? weft_h2up_pending(s->up2) : evbuffer_get_length(up_out(s));
    if (!s->ds_read_paused && pending > stream_high_watermark(s)) {
        s->ds_read_paused = true;
        s->ds_ops->pause_read(s);
    }
}

static uint64_t ring_hash_key(weft_stream *s, bool *has) {
    const weft_cfg_cluster *c = s->cluster->shared->cfg;
    *has = false;
    weft_sv key = {NULL, 0};
    if (c->hash_on == WEFT_HASH_SOURCE_IP) {
        key = weft_sv_from(s->peer_ip ? s->peer_ip : "");
    } else if (c->hash_on == WEFT_HASH_HEADER && c->hash_key) {
        const weft_sv *v = weft_hdrs_get(&s->req->headers, weft_sv_from(c->hash_key));
        if (v)
            key = *v;
    } else if (c->hash_on == WEFT_HASH_COOKIE && c->hash_key) {
        size_t klen = strlen(c->hash_key);
        for (uint32_t i = 0; i < s->req->headers.n && !key.p; i++) {
            if (!weft_sv_eq(s->req->headers.v[i].name, WEFT_SV_LIT("cookie")))
                continue;
            weft_sv v = s->req->headers.v[i].value;
            size_t pos = 0;
            while (pos < v.len) {
                size_t end = pos;
                while (end < v.len && v.p[end] != ';')
                    end++;
                weft_sv item = weft_sv_trim((weft_sv){v.p + pos, end - pos});
                if (item.len > klen && memcmp(item.p, c->hash_key, klen) == 0 &&
                    item.p[klen] == '=') {
                    key = (weft_sv){item.p + klen + 1, item.len - klen - 1};
                    break;
                }
                pos = end + 1;
            }
        }
    }
    if (!key.p || !key.len)
        return 0;
    *has = true;
    return weft_hash64(key.p, key.len, 0);
}

static void write_up_head(weft_stream *s, struct evbuffer *out) {
    weft_h1_write_req_head(out, s->req, &s->up_target);
}

static void start_upstream(weft_stream *s, bool allow_idle) {
    bool has_hash = false;
    uint64_t h = 0;
    if (s->cluster->lb.policy == WEFT_LB_RING_HASH)
        h = ring_hash_key(s, &has_hash);
    int exclude = allow_idle ? -1 : s->ep_idx;
    int idx = weft_lb_pick(&s->cluster->lb, h, has_hash, exclude);
    if (idx < 0) {
        weft_stats_inc(s->w->stats, s->cluster->shared->rq_no_healthy, 1);
        weft_stream_local_reply(s, 503, "no_healthy_upstream", WEFT_RF_UH, NULL);
        return;
    }
    s->ep_idx = idx;
    s->ep = &s->cluster->hs->eps[idx];
    s->attempts++;
    weft_lb_on_start(&s->cluster->lb, idx);
    bool reused = false;
    s->t_up_start_us = weft_now_us();
    if (s->cluster->shared->cfg->protocol == WEFT_PROTO_HTTP2) {
        /* HTTP/2 upstream: the request goes as frames, not the HTTP/1.1
         * bytes prepared for a pooled connection. */
        evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
        s->up2 = weft_h2up_start(s, s->cluster->shared, s->ep, s->req->framing != WEFT_BODY_NONE);
        if (!s->up2) {
            weft_lb_on_end(&s->cluster->lb, idx, 0, false, weft_now_us());
            weft_stream_local_reply(s, 503, "upstream_connect_failure", WEFT_RF_UF, NULL);
        }
        return;
    }
    s->up = weft_pool_acquire(s->w, s->cluster->shared, s->ep, s, allow_idle, &reused);
    if (!s->up) {
        weft_lb_on_end(&s->cluster->lb, idx, 0, false, weft_now_us());
        weft_stream_local_reply(s, 503, "upstream_connect_failure", WEFT_RF_UF, NULL);
        return;
    }
    if (s->up->connected)
        weft_stream_on_up_connected(s);
}

/* The route of a request whose cluster a filter chose when no configured
 * route matches: default timeout, no header operations. */
static const weft_cfg_route default_route_cfg = {
    .name = "", .timeout_ms = 15000, .case_sensitive = true};
static const weft_route_entry default_route = {.cfg = &default_route_cfg, .cluster_idx = -1};

void weft_stream_on_req_head(weft_stream *s, weft_req_head *req) {
    s->req = req;
    s->head_request = weft_sv_eq(req->method, WEFT_SV_LIT("HEAD"));
    const weft_sv *ct = weft_hdrs_get(&req->headers, H_CT);
    s->is_grpc = ct && weft_sv_has_prefix(*ct, WEFT_SV_LIT("application/grpc"));
    s->grpc_status = -1;
    s->grpc_deadline_ms = 0;
    s->is_connect = req->method_id == HTTP_CONNECT;
    const weft_sv *up = weft_hdrs_get(&req->headers, WEFT_SV_LIT("upgrade"));
    s->upgrade_value = up ? *up : (weft_sv){"", 0};
    s->upgrade_req = s->is_connect || (req->upgrade && up && up->len);
    if (s->is_connect && !req->path.len)
        req->path = WEFT_SV_LIT("/"); /* authority-form: routes match CONNECT on "/" */
    s->tunnel = false;
    s->rs_gathering = false;
    if (!req->keep_alive)
        s->close_after = true;
    gen_request_id(s);
    arm_idle(s);
    if (stream_n_filters(s)) {
        sf_begin(s);
        sf_req_headers(s, 0); /* calls stream_route_and_forward when the chain passes */
        return;
    }
    s->rq.headers_done = true;
    stream_route_and_forward(s);
}

void stream_route_and_forward(weft_stream *s) {
    weft_req_head *req = s->req;
    s->rq.headers_done = true;
    if (s->resp_done || s->resp_started)
        return;
    if (s->cluster_override < 0) {
        s->route = weft_router_match(s->lst->router, req);
        if (!s->route) {
            weft_stream_local_reply(s, 404, "route_not_found", WEFT_RF_NR, NULL);
            return;
        }
        switch (s->route->cfg->action) {
        case WEFT_ACTION_DIRECT:
            direct_reply(s);
            return;
        case WEFT_ACTION_REDIRECT:
            redirect_reply(s);
            return;
        case WEFT_ACTION_CLUSTER:
            break;
        }
    } else if (!s->route) {
        /* A filter chose the cluster: the route still supplies timeouts and
         * header operations when one matches; otherwise defaults. */
        s->route = weft_router_match(s->lst->router, req);
        if (!s->route || s->route->cfg->action != WEFT_ACTION_CLUSTER)
            s->route = &default_route;
    }
    arm_idle(s); /* the route may set its own idle timeout */
    if (s->is_grpc) {
        uint64_t gt = grpc_timeout_ms(&req->headers);
        if (gt) {
            s->grpc_deadline_ms = weft_now_ms() + gt;
            weft_ltimer_set(&s->t_request, gt);
        }
    }
    int idx = s->cluster_override >= 0 ? s->cluster_override : s->route->cluster_idx;
    s->cluster = weft_wsnap_cluster(s->ws, idx);
    if (!s->cluster) {
        weft_stream_local_reply(s, 503, "cluster_not_found", WEFT_RF_NR, NULL);
        return;
    }
    prepare_upstream_headers(s);
    if (s->is_connect) {
        /* CONNECT is terminated here: a fresh TCP connection to the
         * cluster's endpoint, then 200 and raw bytes. */
        start_upstream(s, false);
        return;
    }
    write_up_head(s, s->up_pending);
    if (req->expect_continue && req->framing != WEFT_BODY_NONE && s->ds_ops->send_continue)
        s->ds_ops->send_continue(s);
    start_upstream(s, s->upgrade_req ? false : true);
    if (s->resp_done)
        return;
    /* Body that waited for the header phase. */
    if (buf_len(s->rq.pre))
        sf_push(s, WEFT_DIR_REQ, s->rq.pre, 0);
    else if (s->rq.end_in && req->framing != WEFT_BODY_NONE && s->chain && s->chain->any_req_body)
        sf_push(s, WEFT_DIR_REQ, s->rq.pre, 0);
    else if (s->rq.end_in && stream_up_attached(s) && !s->up_req_done)
        req_write_end(s);
}

static void keep_for_replay(weft_stream *s, const char *p, size_t n, struct evbuffer *buf) {
    if (!s->replay || s->replay_overflow)
        return;
    if (evbuffer_get_length(s->replay) + n > s->replay_max) {
        s->replay_overflow = true;
        evbuffer_drain(s->replay, evbuffer_get_length(s->replay));
        return;
    }
    if (buf)
        evbuffer_add_buffer_reference(s->replay, buf);
    else
        evbuffer_add(s->replay, p, n);
}

/* The route timeout runs from the end of the request (Envoy's meaning);
 * a gRPC deadline (grpc-timeout) runs from the request head; the earlier
 * of the two wins. */
static void arm_request_timeout(weft_stream *s) {
    uint64_t ms = s->route ? s->route->cfg->timeout_ms : 0;
    if (s->resp_done)
        return;
    uint64_t now = weft_now_ms();
    uint64_t deadline = ms ? now + ms : 0;
    if (s->grpc_deadline_ms && (!deadline || s->grpc_deadline_ms < deadline))
        deadline = s->grpc_deadline_ms;
    if (deadline)
        weft_ltimer_set(&s->t_request, deadline > now ? deadline - now : 1);
}

/* grpc-timeout: 1-8 digits and a unit (H M S m u n), gRPC over HTTP/2. */
static uint64_t grpc_timeout_ms(const weft_hdrs *h) {
    const weft_sv *v = weft_hdrs_get(h, WEFT_SV_LIT("grpc-timeout"));
    if (!v || v->len < 2 || v->len > 9)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < v->len; i++) {
        if (v->p[i] < '0' || v->p[i] > '9')
            return 0;
        n = n * 10 + (uint64_t)(v->p[i] - '0');
    }
    switch (v->p[v->len - 1]) {
    case 'H':
        return n * 3600000;
    case 'M':
        return n * 60000;
    case 'S':
        return n * 1000;
    case 'm':
        return n ? n : 1;
    case 'u':
        return n / 1000 ? n / 1000 : 1;
    case 'n':
        return n / 1000000 ? n / 1000000 : 1;
    default:
        return 0;
    }
}

static void req_write_end(weft_stream *s) {
    if (s->up2)
        weft_h2up_end(s->up2, s->rq.trailers);
    else if (s->up_req_chunked)
        weft_h1_write_last_chunk(up_out(s), s->rq.trailers);
    s->up_req_done = true;
    arm_request_timeout(s);
}

void stream_sink_req(weft_stream *s, struct evbuffer *chunk, bool end) {
    size_t n = evbuffer_get_length(chunk);
    if (s->resp_done || !s->cluster || !stream_up_attached(s)) {
        evbuffer_drain(chunk, n); /* answered locally: the body is discarded */
        return;
    }
    if (s->up2) {
        if (n) {
            keep_for_replay(s, NULL, n, chunk);
            weft_h2up_body(s->up2, chunk);
        }
        if (end && !s->up_req_done)
            req_write_end(s);
        check_up_backpressure(s);
        return;
    }
    struct evbuffer *out = up_out(s);
    if (n) {
        keep_for_replay(s, NULL, n, chunk);
        if (s->up_req_chunked)
            weft_h1_write_chunk_buf(out, chunk, false);
        else
            evbuffer_add_buffer(out, chunk);
    }
    if (end && !s->up_req_done)
        req_write_end(s);
    check_up_backpressure(s);
}

void weft_stream_on_req_body(weft_stream *s, const char *p, size_t n) {
    s->bytes_in += n;
    arm_idle(s);
    if (s->is_connect) {
        /* HTTP/2 CONNECT: DATA frames are the tunnel's bytes. */
        if (s->up) {
            evbuffer_add(up_out(s), p, n);
            check_up_backpressure(s);
        }
        return;
    }
    if (s->resp_done)
        return; /* answered locally: the body is discarded */
    weft_dir *d = &s->rq;
    if (d->headers_done && d->paused_at < 0 && !(s->chain && s->chain->any_req_body)) {
        /* Fast path: no filter looks at request bodies. */
        if (!s->cluster || !stream_up_attached(s))
            return;
        keep_for_replay(s, p, n, NULL);
        if (s->up2) {
            weft_h2up_body_data(s->up2, p, n);
            check_up_backpressure(s);
            return;
        }
        struct evbuffer *out = up_out(s);
        if (s->up_req_chunked)
            weft_h1_write_chunk(out, p, n);
        else
            evbuffer_add(out, p, n);
        check_up_backpressure(s);
        return;
    }
    stream_dir_buffers(s);
    if (d->headers_done && d->paused_at < 0) {
        evbuffer_add(d->chunk, p, n);
        sf_push(s, WEFT_DIR_REQ, d->chunk, 0);
        return;
    }
    evbuffer_add(d->pre, p, n);
    if (d->headers_done)
        sf_push(s, WEFT_DIR_REQ, d->pre, 0);
    else if (!s->ds_read_paused && evbuffer_get_length(d->pre) > stream_high_watermark(s)) {
        s->ds_read_paused = true; /* a filter holds the headers: stop reading */
        s->ds_ops->pause_read(s);
    }
}

void weft_stream_on_req_end(weft_stream *s, weft_hdrs *trailers) {
    s->req_done = true;
    s->rq.end_in = true;
    s->rq.trailers = trailers;
    if (s->is_connect && !s->resp_done) {
        /* HTTP/2 CONNECT with END_STREAM: the client half-closed the tunnel
         * (HTTP/1.1 CONNECT ends its "request" right after the head). */
        if (s->h2 && s->tunnel && s->up)
            weft_conn_shutdown_write(s->up->conn);
        return;
    }
    if (s->resp_done) {
        stream_finish(s);
        return;
    }
    if (!s->rq.headers_done)
        return; /* sf_req_headers/route will push the end when it gets there */
    /* A request without a body ended with its headers (end_stream was
     * true there): body hooks are not called for it, as in Envoy. */
    bool bodyless = s->req->framing == WEFT_BODY_NONE;
    if (s->rq.paused_at >= 0 || buf_len(s->rq.pre) ||
        (!bodyless && (s->chain->any_req_body || s->chain->any_req_trailers))) {
        sf_push(s, WEFT_DIR_REQ, s->rq.pre, 0);
        return;
    }
    if (stream_up_attached(s))
        req_write_end(s);
}

void weft_stream_on_downstream_writable(weft_stream *s) {
    if (s->up_read_paused && stream_up_attached(s) && s->rs.paused_at < 0) {
        s->up_read_paused = false;
        stream_up_resume(s);
    }
}

void weft_stream_on_downstream_reset(weft_stream *s, uint32_t flag) {
    if (!s->active)
        return;
    s->flags |= flag;
    s->close_after = true;
    if (stream_up_attached(s)) {
        if (s->cluster && s->ep_idx >= 0)
            weft_lb_on_end(&s->cluster->lb, s->ep_idx, 0, false, weft_now_us());
        stream_up_release(s, false);
    }
    stream_finish(s);
}

/* ---------- response path ---------- */

static void tunnel_start(weft_stream *s) {
    s->tunnel = true;
    s->up->tunnel = true;
    weft_ltimer_clear(&s->t_request); /* a tunnel lives until idle or closed */
    arm_idle(s);
}

void weft_stream_on_up_connected(weft_stream *s) {
    if (s->is_connect && s->up && !s->tunnel) {
        weft_resp_head *h = &s->resp;
        memset(h, 0, sizeof(*h));
        weft_hdrs_init(&h->headers, &s->arena);
        h->status = 200;
        h->reason = WEFT_SV_LIT("Connection Established");
        h->http_minor = 1;
        h->framing = WEFT_BODY_NONE;
        h->content_length = -1;
        /* HTTP/1.1: the 200 head alone; HTTP/2: the stream stays open and
         * carries the tunnel's bytes as DATA. */
        send_head_counted(s, h, !s->h2);
        s->t_up_head_us = weft_now_us();
        tunnel_start(s);
        if (evbuffer_get_length(s->up_pending)) /* bytes sent before the 200 */
            evbuffer_add_buffer(weft_upconn_output(s->up), s->up_pending);
        return;
    }
    if (evbuffer_get_length(s->up_pending))
        evbuffer_add_buffer(weft_upconn_output(s->up), s->up_pending);
}

void weft_stream_tunnel_down(weft_stream *s, struct evbuffer *in) {
    size_t n = evbuffer_get_length(in);
    if (!s->up || !n)
        return;
    s->bytes_in += n;
    arm_idle(s);
    struct evbuffer *out = weft_upconn_output(s->up);
    evbuffer_add_buffer(out, in);
    check_up_backpressure(s);
}

void weft_stream_tunnel_up(weft_stream *s, struct evbuffer *in) {
    size_t n = evbuffer_get_length(in);
    if (!n)
        return;
    s->bytes_out += n;
    arm_idle(s);
    s->ds_ops->send_body_buf(s, in);
    if (s->up && !s->up_read_paused && s->ds_ops->pending_out(s) > stream_high_watermark(s)) {
        s->up_read_paused = true;
        stream_up_pause(s);
    }
}

static void attempt_info(weft_stream *s, weft_attempt_info *ai, weft_attempt_result r, int status) {
    memset(ai, 0, sizeof(*ai));
    ai->size = sizeof(*ai);
    ai->result = r;
    ai->status = status;
    ai->attempt = s->attempts;
    if (s->ep)
        ai->upstream_host = (weft_str){s->ep->name, strlen(s->ep->name)};
    if (s->cluster)
        ai->cluster =
            (weft_str){s->cluster->shared->cfg->name, strlen(s->cluster->shared->cfg->name)};
    uint64_t now = weft_now_us();
    ai->duration_us = s->t_up_start_us && now > s->t_up_start_us ? now - s->t_up_start_us : 0;
}

/* Replays the request on a new upstream attempt (SDK weft_upstream_retry). */
static bool do_retry(weft_stream *s) {
    s->retry_requested = false;
    if (s->resp_started || s->resp_done)
        return false;
    bool has_body = s->req->framing != WEFT_BODY_NONE;
    if (has_body && (!s->req_done || !s->replay || s->replay_overflow))
        return false; /* cannot replay what we did not keep */
    if (stream_up_attached(s))
        stream_up_release(s, false);
    weft_ltimer_clear(&s->t_request);
    evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
    write_up_head(s, s->up_pending);
    if (has_body) {
        if (s->up_req_chunked)
            weft_h1_write_chunk_buf(s->up_pending, s->replay, true);
        else if (evbuffer_get_length(s->replay))
            evbuffer_add_buffer_reference(s->up_pending, s->replay);
        if (s->up_req_chunked)
            weft_h1_write_last_chunk(s->up_pending, s->rq.trailers);
    }
    s->rs.headers_done = false;
    s->rs.paused_at = -1;
    s->t_up_head_us = 0;
    start_upstream(s, true);
    if (s->up2 && has_body && s->replay) {
        struct evbuffer *copy = evbuffer_new();
        if (copy) {
            evbuffer_add_buffer_reference(copy, s->replay);
            weft_h2up_body(s->up2, copy);
            evbuffer_free(copy);
        }
    }
    if (stream_up_attached(s) && s->req_done) {
        if (s->up2)
            weft_h2up_end(s->up2, s->rq.trailers);
        s->up_req_done = true;
        arm_request_timeout(s);
    }
    return true;
}

int weft_stream_retry(weft_stream *s) {
    if (s->resp_started || s->resp_done)
        return -1;
    bool has_body = s->req && s->req->framing != WEFT_BODY_NONE;
    if (has_body && (!s->replay || s->replay_overflow))
        return -1;
    s->retry_requested = true;
    return 0;
}

int weft_stream_on_up_head(weft_stream *s, weft_resp_head *h) {
    if (h->status == 101 && s->upgrade_req && !s->is_connect && s->up) {
        /* Switching Protocols: pass the 101 with its upgrade headers, then
         * the connection is a tunnel (bytes after this head are its own). */
        const weft_sv *uv = weft_hdrs_get(&h->headers, WEFT_SV_LIT("upgrade"));
        weft_sv upv = uv ? *uv : s->upgrade_value;
        weft_hdrs_strip_hop_by_hop(&h->headers);
        weft_hdrs_add_ref(&h->headers, WEFT_SV_LIT("connection"), WEFT_SV_LIT("upgrade"));
        weft_hdrs_add_ref(&h->headers, WEFT_SV_LIT("upgrade"), upv);
        s->t_up_head_us = weft_now_us();
        s->resp = *h;
        s->resp.framing = WEFT_BODY_NONE;
        send_head_counted(s, &s->resp, true);
        tunnel_start(s);
        return WEFT_H1_CB_PAUSE;
    }
    if (h->status >= 100 && h->status < 200)
        return WEFT_H1_CB_OK; /* interim (we answered Expect ourselves) */
    s->t_up_head_us = weft_now_us();
    arm_idle(s);
    weft_stats_inc(s->w->stats, s->cluster->shared->rq_total[weft_code_class(h->status)], 1);
    if (stream_n_filters(s)) {
        weft_attempt_info ai;
        attempt_info(s, &ai, WEFT_ATTEMPT_RESPONSE, h->status);
        sf_attempt(s, &ai);
        if (s->retry_requested) {
            weft_lb_on_end(&s->cluster->lb, s->ep_idx, s->t_up_head_us - s->t_up_start_us, true,
                           weft_now_us());
            if (do_retry(s))
                return WEFT_H1_CB_PAUSE;
        }
        if (s->resp_done)
            return WEFT_H1_CB_PAUSE;
    }
    const weft_cfg_route *r = s->route->cfg;
    weft_hdrs_strip_hop_by_hop(&h->headers);
    for (size_t i = 0; i < r->n_resp_remove; i++)
        weft_hdrs_remove(&h->headers, weft_sv_from(r->resp_remove[i]));
    for (size_t i = 0; i < r->n_resp_add; i++) {
        weft_sv n = weft_sv_from(r->resp_add[i].name), v = weft_sv_from(r->resp_add[i].value);
        if (r->resp_add[i].append)
            weft_hdrs_add_ref(&h->headers, n, v);
        else
            weft_hdrs_set(&h->headers, n, v);
    }
    s->resp = *h;
    if (stream_n_filters(s)) {
        sf_resp_headers(s, 0);
        if (s->retry_requested && do_retry(s))
            return WEFT_H1_CB_PAUSE;
        if (!s->rs.headers_done) {
            /* A filter paused the response: stop reading the upstream. */
            if (stream_up_attached(s) && !s->up_read_paused) {
                s->up_read_paused = true;
                stream_up_pause(s);
            }
            return WEFT_H1_CB_PAUSE;
        }
        return s->resp_done ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
    }
    stream_send_resp_head(s);
    return WEFT_H1_CB_OK;
}

void stream_send_resp_head(weft_stream *s) {
    s->rs.headers_done = true;
    if (s->resp_started || s->resp_done)
        return;
    weft_resp_head *h = &s->resp;
    bool bodyless =
        weft_resp_is_bodyless(h->status, s->head_request) || h->framing == WEFT_BODY_NONE;
    if (!bodyless && h->framing == WEFT_BODY_LENGTH && !weft_hdrs_get(&h->headers, H_CL))
        h->framing = WEFT_BODY_CHUNKED; /* a filter removed content-length: re-frame */
    send_head_counted(s, h, bodyless);
}

void stream_sink_resp(weft_stream *s, struct evbuffer *chunk, bool end) {
    if (buf_len(chunk))
        s->ds_ops->send_body_buf(s, chunk);
    if (end && !s->resp_done) {
        s->ds_ops->send_end(s, s->resp_trailers);
        s->resp_done = true;
        if (s->req_done || s->close_after)
            stream_finish(s);
        return;
    }
    if (stream_up_attached(s) && !s->up_read_paused &&
        s->ds_ops->pending_out(s) > stream_high_watermark(s)) {
        s->up_read_paused = true;
        stream_up_pause(s);
    }
}

int weft_stream_on_up_body(weft_stream *s, const char *p, size_t n) {
    s->bytes_out += n;
    if (s->up)
        s->up->got_bytes = true;
    arm_idle(s);
    weft_dir *d = &s->rs;
    if (d->headers_done && d->paused_at < 0 && !(s->chain && s->chain->any_resp_body)) {
        s->ds_ops->send_body(s, p, n);
        if (!s->up_read_paused && s->ds_ops->pending_out(s) > stream_high_watermark(s)) {
            s->up_read_paused = true;
            stream_up_pause(s);
        }
        return WEFT_H1_CB_OK;
    }
    stream_dir_buffers(s);
    if (d->headers_done && d->paused_at < 0 && s->up) {
        /* HTTP/1.1 upstream: gather what this read brings and pass it once
         * (weft_stream_on_up_feed_end, or with the end of the response):
         * filters then see a small body and its end in one call. */
        evbuffer_add(d->pre, p, n);
        s->rs_gathering = true;
    } else if (d->headers_done && d->paused_at < 0) {
        evbuffer_add(d->chunk, p, n); /* straight into the chain's pass */
        sf_push(s, WEFT_DIR_RESP, d->chunk, 0);
    } else {
        evbuffer_add(d->pre, p, n);
        if (d->headers_done)
            sf_push(s, WEFT_DIR_RESP, d->pre, 0);
    }
    return s->up_read_paused ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

void weft_stream_on_up_feed_end(weft_stream *s) {
    if (!s->rs_gathering)
        return;
    s->rs_gathering = false;
    weft_dir *d = &s->rs;
    if (buf_len(d->pre) && d->headers_done && d->paused_at < 0 && !s->resp_done)
        sf_push(s, WEFT_DIR_RESP, d->pre, 0);
}

int weft_stream_on_up_trailers(weft_stream *s, weft_hdrs *t) {
    s->resp_trailers = t;
    s->rs.trailers = t;
    return WEFT_H1_CB_OK;
}

int weft_stream_on_up_complete(weft_stream *s) {
    uint64_t now = weft_now_us();
    weft_lb_on_end(&s->cluster->lb, s->ep_idx, s->t_up_head_us - s->t_up_start_us, true, now);
    weft_stats_observe_us(s->w->stats, s->cluster->shared->rq_time, now - s->t_up_start_us);
    weft_ltimer_clear(&s->t_request);
    bool reusable = s->up_req_done && s->resp.keep_alive;
    if (!s->req_done)
        s->close_after = true; /* upstream answered before the body ended */
    stream_up_release(s, reusable);
    s->up_read_paused = false;
    s->rs.end_in = true;
    if (!s->rs.headers_done)
        return WEFT_H1_CB_PAUSE; /* a filter holds the head; resume finishes */
    s->rs_gathering = false;
    bool bodyless =
        weft_resp_is_bodyless(s->resp.status, s->head_request) || s->resp.framing == WEFT_BODY_NONE;
    if (stream_n_filters(s) &&
        (s->rs.paused_at >= 0 || buf_len(s->rs.pre) ||
         (!bodyless && (s->chain->any_resp_body || s->chain->any_resp_trailers)))) {
        sf_push(s, WEFT_DIR_RESP, s->rs.pre, 0);
        return WEFT_H1_CB_PAUSE;
    }
    stream_sink_resp(s, s->rs.pre, true);
    return WEFT_H1_CB_PAUSE;
}

void weft_stream_on_up_error(weft_stream *s, weft_up_err err) {
    if (s->tunnel) {
        /* The upstream side of a tunnel ended: close the client side once
         * what we have for it is written. */
        stream_up_release(s, false);
        s->ds_ops->send_end(s, NULL); /* HTTP/2: END_STREAM after the data */
        s->resp_done = true;
        s->close_after = true;
        stream_finish(s);
        return;
    }
    bool reused = s->up && s->up->requests > 0;
    bool got = s->up && s->up->got_bytes;
    bool refused = s->up2 && weft_h2up_refused(s->up2); /* GOAWAY'd before processing */
    weft_cluster_snap *c = s->cluster->shared;
    stream_up_release(s, false);
    weft_lb_on_end(&s->cluster->lb, s->ep_idx, 0, false, weft_now_us());
    /* A pooled connection the server had already closed: the request never
     * reached it, so sending it again on a fresh connection is safe when
     * we can replay it whole (no body streamed yet). */
    if (err == WEFT_UP_ERR_RESET && ((reused && !got) || refused) && !s->stale_retry_done &&
        !s->resp_started && s->req->framing == WEFT_BODY_NONE) {
        s->stale_retry_done = true;
        weft_stats_inc(s->w->stats, c->rq_retry_stale, 1);
        evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
        write_up_head(s, s->up_pending);
        start_upstream(s, false);
        if (stream_up_attached(s) && s->req_done) {
            if (s->up2)
                weft_h2up_end(s->up2, NULL);
            s->up_req_done = true;
        }
        return;
    }
    if (stream_n_filters(s) && !s->resp_started) {
        static const weft_attempt_result map[] = {
            [WEFT_UP_ERR_CONNECT] = WEFT_ATTEMPT_CONNECT_FAILURE,
            [WEFT_UP_ERR_CONNECT_TIMEOUT] = WEFT_ATTEMPT_CONNECT_TIMEOUT,
            [WEFT_UP_ERR_RESET] = WEFT_ATTEMPT_RESET,
            [WEFT_UP_ERR_PROTOCOL] = WEFT_ATTEMPT_PROTOCOL_ERROR,
        };
        weft_attempt_info ai;
        attempt_info(s, &ai, map[err], 0);
        sf_attempt(s, &ai);
        if (s->resp_done)
            return;
        if (s->retry_requested && do_retry(s))
            return;
    }
    switch (err) {
    case WEFT_UP_ERR_CONNECT:
        weft_stats_inc(s->w->stats, c->cx_connect_fail, 1);
        weft_stream_local_reply(s, 503, "upstream_connect_failure", WEFT_RF_UF, NULL);
        break;
    case WEFT_UP_ERR_CONNECT_TIMEOUT:
        weft_stats_inc(s->w->stats, c->cx_connect_timeout, 1);
        weft_stream_local_reply(s, 503, "upstream_connect_timeout", WEFT_RF_UF, NULL);
        break;
    case WEFT_UP_ERR_RESET:
        weft_stats_inc(s->w->stats, c->rq_reset, 1);
        weft_stream_local_reply(s, 503, "upstream_reset_before_response", WEFT_RF_UC, NULL);
        break;
    case WEFT_UP_ERR_PROTOCOL:
        weft_stream_local_reply(s, 502, "upstream_protocol_error", WEFT_RF_UPE, NULL);
        break;
    }
}

void weft_stream_on_up_writable(weft_stream *s) {
    if (s->ds_read_paused) {
        s->ds_read_paused = false;
        s->ds_ops->resume_read(s);
    }
}

/* ---------- timers and the log phase ---------- */

static void on_request_timeout(void *arg) {
    weft_stream *s = arg;
    if (s->cluster)
        weft_stats_inc(s->w->stats, s->cluster->shared->rq_timeout, 1);
    if (stream_n_filters(s) && !s->resp_started && s->cluster) {
        weft_attempt_info ai;
        attempt_info(s, &ai, WEFT_ATTEMPT_TIMEOUT, 0);
        weft_lb_on_end(&s->cluster->lb, s->ep_idx, 0, false, weft_now_us());
        sf_attempt(s, &ai);
        if (s->resp_done)
            return;
        if (s->retry_requested && do_retry(s))
            return;
    }
    weft_stream_local_reply(s, 504, "upstream_response_timeout", WEFT_RF_UT, NULL);
}

static void on_idle_timeout(void *arg) {
    weft_stream *s = arg;
    if (!s->req_done)
        weft_stream_local_reply(s, 408, "stream_idle_timeout", WEFT_RF_SI, NULL);
    else
        weft_stream_local_reply(s, 504, "stream_idle_timeout", WEFT_RF_SI, NULL);
}

void stream_finish(weft_stream *s) {
    if (!s->active || s->t_end_us)
        return;
    s->t_end_us = weft_now_us();
    weft_ltimer_clear(&s->t_request);
    weft_ltimer_clear(&s->t_idle);
    if (s->status_sent)
        weft_stats_inc(s->w->stats, s->lst->rq_total[weft_code_class(s->status_sent)], 1);
    if (s->is_grpc) {
        const weft_sv *gs =
            s->resp_trailers ? weft_hdrs_get(s->resp_trailers, WEFT_SV_LIT("grpc-status")) : NULL;
        if (!gs && s->resp.status)
            gs = weft_hdrs_get(&s->resp.headers, WEFT_SV_LIT("grpc-status"));
        if (gs && gs->len && gs->len <= 2) {
            int code = 0;
            for (size_t i = 0; i < gs->len; i++)
                code = code * 10 + (gs->p[i] - '0');
            if (code >= 0 && code <= 16) {
                s->grpc_status = code;
                weft_stats_inc(s->w->stats, s->lst->grpc_total[code], 1);
            }
        }
    }
    weft_stats_observe_us(s->w->stats, s->lst->rq_time, s->t_end_us - s->t_start_us);
    weft_access_log_write(s->ws->snap->access_log_fd, s);
    if (s->fctx)
        sf_log(s);
    atomic_fetch_sub_explicit(&s->w->active_streams, 1, memory_order_relaxed);
    s->ds_ops->done(s);
}
