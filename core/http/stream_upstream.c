/* stream_upstream.c: upstream attempts (load balancer pick, pooled
 * connection or HTTP/2 stream), retries, and the response direction. */
#include "http/stream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "upstream/h2_pool.h"

/* Detaches the upstream (h1 connection or h2 stream). The attempt ends
 * here if nothing ended it before (a local reply, a reset, a tunnel
 * end): successful if a response head came back. */
void stream_up_release(weft_stream *s, bool reusable) {
    if (s->up)
        s->up_ops->release(s, reusable);
    s->up = NULL;
    if (s->att.live) {
        uint64_t now = weft_now_us();
        bool ok = s->t_up_head_us != 0;
        weft_attempt_end(&s->att, ok, ok ? s->t_up_head_us - s->t_up_start_us : 0, now);
    }
}

void stream_up_pause(weft_stream *s) {
    if (s->up)
        s->up_ops->pause(s);
}

void stream_up_resume(weft_stream *s) {
    if (s->up)
        s->up_ops->resume(s);
}

/* Where raw tunnel bytes from the client go: the upstream once the tunnel
 * runs, up_pending while it connects; NULL when nothing can carry them. */
struct evbuffer *stream_tunnel_dst(weft_stream *s) {
    if (!s->up || !s->up_ops->tunnel_out)
        return NULL;
    return s->tunnel ? s->up_ops->tunnel_out(s) : s->up_pending;
}

void stream_check_up_backpressure(weft_stream *s) {
    size_t pending = s->up ? s->up_ops->pending(s) : evbuffer_get_length(s->up_pending);
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

void stream_write_up_head(weft_stream *s, struct evbuffer *out) {
    size_t before = evbuffer_get_length(out);
    weft_h1_write_req_head(out, stream_up_req(s), &s->up_target);
    s->up_head_len = (uint32_t)(evbuffer_get_length(out) - before);
}

/* The head of the attempt about to start: a copy of the request head for
 * on_upstream_request to change (only when a filter has that hook), the
 * request itself otherwise. */
void stream_prepare_attempt_head(weft_stream *s) {
    s->up_req = NULL;
    if (!s->chain || !s->chain->any_up_request || !s->req)
        return;
    weft_req_head *h = weft_arena_alloc(&s->arena, sizeof(*h));
    if (!h)
        return;
    *h = *s->req;
    weft_hdrs_init(&h->headers, &s->arena);
    for (uint32_t i = 0; i < s->req->headers.n; i++)
        if (weft_hdrs_add_ref(&h->headers, s->req->headers.v[i].name, s->req->headers.v[i].value) !=
            0)
            return; /* out of memory: the attempt goes with the request as it is */
    h->headers.checked = s->req->headers.checked; /* the same fields, in the same order */
    s->up_req = h;
    s->in_up_request = true;
    sf_up_request(s, s->attempts + 1);
    s->in_up_request = false;
}

/* Remembers that this stream's attempt went to endpoint idx of hs; true
 * when an earlier attempt went there too. Bits over the hostset's list
 * (inline up to 64 endpoints, arena words above); a new hostset starts a
 * new set. */
static bool tried_mark(weft_stream *s, const weft_hostset *hs, int idx) {
    if (s->tried_hs != hs || !s->tried) {
        s->tried_hs = hs;
        s->tried_inline = 0;
        s->tried = &s->tried_inline;
        if (hs->n > 64) {
            size_t words = (hs->n + 63) / 64;
            uint64_t *w = weft_arena_alloc(&s->arena, words * sizeof(*w));
            if (w)
                memset(w, 0, words * sizeof(*w));
            s->tried = w;
        }
    }
    if (!s->tried || (size_t)idx >= hs->n)
        return false;
    uint64_t bit = 1ull << ((size_t)idx % 64);
    bool was = (s->tried[(size_t)idx / 64] & bit) != 0;
    s->tried[(size_t)idx / 64] |= bit;
    return was;
}

/* Connect attempts per request for this cluster: the configured number,
 * at most the number of endpoints. */
static uint32_t connect_attempts_max(const weft_stream *s) {
    uint32_t n = s->cluster->shared->cfg->connect_attempts;
    size_t eps = s->cluster->lb->hs->n;
    if (!n)
        n = 1;
    return eps && n > eps ? (uint32_t)eps : n;
}

/* Picks an endpoint and attaches an upstream. `exclude_last`: avoid the
 * endpoint of the previous attempt when another is eligible. `other`: a
 * filter retry asked for an endpoint this stream has not tried. */
static void start_attempt(weft_stream *s, bool allow_idle, bool exclude_last, bool other) {
    bool has_hash = false;
    uint64_t h = 0;
    weft_lb *lb = s->cluster->lb;
    if (lb->policy == WEFT_LB_RING_HASH)
        h = ring_hash_key(s, &has_hash);
    /* The previous attempt's index means something only on the same lb. */
    int exclude = exclude_last && s->att.lb == lb ? s->att.idx : -1;
    /* The tried set means something only on the same hostset (the
     * previous attempt's lb keeps the one it was made over alive). */
    const uint64_t *skip =
        other && s->tried && s->att.lb && s->att.lb->hs == lb->hs ? s->tried : NULL;
    int idx = weft_lb_pick_skip(lb, h, has_hash, exclude, skip, weft_now_us());
    if (idx < 0) {
        weft_attempt_clear(&s->att);
        weft_stats_inc(s->w->stats, s->cluster->shared->rq_no_healthy, 1);
        weft_stream_local_reply(s, 503, "no_healthy_upstream", WEFT_RF_UH, NULL);
        return;
    }
    if (stream_n_filters(s)) {
        if (s->tried_hs == lb->hs && !(s->att.lb && s->att.lb->hs == lb->hs))
            s->tried_hs = NULL; /* a hostset at a reused address: a new set */
        s->att_flags = (tried_mark(s, lb->hs, idx) ? WEFT_ATTEMPT_F_ENDPOINT_TRIED : 0) |
                       (other ? WEFT_ATTEMPT_F_OTHER_ENDPOINT : 0);
    }
    s->att_try_ms = s->try_timeout_ms;
    s->t_up_start_us = weft_now_us();
    s->t_up_head_us = 0;
    weft_attempt_start(&s->att, lb, idx, s->t_up_start_us);
    s->attempts++;
    s->up_ops = stream_upstream_ops(s);
    if (!s->up_ops->start(s, s->att.ep, allow_idle)) {
        s->up = NULL;
        weft_attempt_end(&s->att, false, 0, weft_now_us());
        weft_stream_local_reply(s, 503, "upstream_connect_failure", WEFT_RF_UF, NULL);
        return;
    }
    if (s->up_ops->connected(s))
        weft_stream_on_up_connected(s);
}

void stream_start_upstream(weft_stream *s, bool allow_idle) {
    start_attempt(s, allow_idle, !allow_idle, false);
}

/* Per-try timeout of the current attempt, from the end of its request. */
void stream_arm_try_timeout(weft_stream *s) {
    if (s->att_try_ms && !s->resp_done && !s->t_up_head_us) {
        s->t_try_start_us = weft_now_us();
        weft_ltimer_set(&s->t_try, s->att_try_ms);
    }
}

/* A connect that failed (refused, or timed out before connecting) sent
 * nothing, so trying another endpoint is safe for every method (nginx's
 * proxy_next_upstream error timeout, HAProxy's redispatch). The endpoint
 * is avoided by every worker's load balancer for connect_failure_avoid.
 * HTTP/1.1: the request bytes are still in up_pending (they move to the
 * connection only once it is connected). HTTP/2: `unsent` is the body the
 * failed stream took back (it frames nothing before its connection is
 * up); without it the request can be sent again only when it has no body
 * or its body is kept for replay. Returns true when a new attempt was
 * started. */
static bool retry_connect(weft_stream *s, weft_up_err err, struct evbuffer *unsent) {
    const weft_cfg_cluster *cc = s->cluster->shared->cfg;
    if (s->att.ep && cc->connect_failure_avoid_ms)
        weft_endpoint_avoid((weft_endpoint *)s->att.ep,
                            weft_now_us() + cc->connect_failure_avoid_ms * 1000);
    if (s->connect_attempts + 1 >= connect_attempts_max(s) || s->resp_started || stream_answered(s))
        return false;
    if (!stream_upstream_ops(s)->keeps_unsent && !unsent && s->req->framing != WEFT_BODY_NONE &&
        (!s->req_done || !s->replay || s->replay_overflow))
        return false; /* the body went into the failed attempt and was not kept */
    s->connect_attempts++;
    weft_stats_inc(s->w->stats, s->cluster->shared->rq_retry_connect, 1);
    WEFT_DEBUG("connect to %s failed (%s): trying another endpoint", s->att.ep->name,
               err == WEFT_UP_ERR_CONNECT_TIMEOUT ? "timeout" : "error");
    start_attempt(s, true, true, false);
    if (s->up && !s->resp_done)
        s->up_ops->restart(s, unsent);
    return true;
}

/* `protocol: auto`: the endpoint's handshake picked ALPN h2 on the
 * HTTP/1.1 connection prepared for this request, which sent nothing (its
 * bytes wait in up_pending until the handshake ends): the endpoint is
 * marked as speaking HTTP/2 (every later request to it goes as HTTP/2)
 * and this request starts again as HTTP/2, with the body it had so far
 * (up_pending minus the head; a chunked body that began cannot be taken
 * back unless it was kept for replay). Once per request. */
static bool switch_to_h2(weft_stream *s) {
    if (s->att.ep)
        weft_endpoint_set_h2((weft_endpoint *)s->att.ep);
    if (s->alpn_switched || s->resp_started || stream_answered(s) || s->is_connect ||
        s->upgrade_req)
        return false;
    size_t pending = evbuffer_get_length(s->up_pending);
    bool replay =
        s->req->framing != WEFT_BODY_NONE && s->req_done && s->replay && !s->replay_overflow;
    if (!replay && s->req->framing != WEFT_BODY_NONE && s->up_req_chunked &&
        pending > s->up_head_len)
        return false;
    struct evbuffer *unsent = NULL;
    if (!replay && s->req->framing != WEFT_BODY_NONE) {
        if (!(unsent = evbuffer_new()))
            return false;
        evbuffer_drain(s->up_pending, s->up_head_len);
        evbuffer_add_buffer(unsent, s->up_pending);
    }
    s->alpn_switched = true;
    start_attempt(s, true, false, false);
    if (s->up && !s->resp_done)
        s->up_ops->restart(s, unsent);
    if (unsent)
        evbuffer_free(unsent);
    return true;
}

static void tunnel_start(weft_stream *s) {
    s->tunnel = true;
    s->up_ops->tunnel_begin(s);
    weft_ltimer_clear(&s->t_request); /* a tunnel lives until idle or closed */
    stream_arm_idle(s);
}

void weft_stream_on_up_connected(weft_stream *s) {
    if (s->is_connect && s->up && s->up_ops->tunnel_begin && !s->tunnel) {
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
        stream_send_head(s, h, !s->h2);
        s->t_up_head_us = weft_now_us();
        tunnel_start(s);
        s->up_ops->connected_flush(s); /* bytes sent before the 200 */
        return;
    }
    if (s->up_ops->connected_flush)
        s->up_ops->connected_flush(s);
}

void weft_stream_tunnel_down(weft_stream *s, struct evbuffer *in) {
    size_t n = evbuffer_get_length(in);
    if (!s->up || !n)
        return;
    s->bytes_in += n;
    stream_arm_idle(s);
    struct evbuffer *out = stream_tunnel_dst(s);
    if (out)
        evbuffer_add_buffer(out, in);
    stream_check_up_backpressure(s);
}

void weft_stream_tunnel_up(weft_stream *s, struct evbuffer *in) {
    size_t n = evbuffer_get_length(in);
    if (!n)
        return;
    s->bytes_out += n;
    stream_arm_idle(s);
    s->ds_ops->send_body_buf(s, in);
    if (s->up && !s->up_read_paused && s->ds_ops->pending_out(s) > stream_high_watermark(s)) {
        s->up_read_paused = true;
        stream_up_pause(s);
    }
}

static weft_str str_of(const char *c) {
    return (weft_str){c ? c : "", c ? strlen(c) : 0};
}

void stream_attempt_info(weft_stream *s, weft_attempt_info *ai, weft_attempt_result r, int status) {
    memset(ai, 0, sizeof(*ai));
    ai->size = sizeof(*ai);
    ai->result = r;
    ai->status = status;
    ai->attempt = s->attempts;
    ai->endpoint_index = -1;
    if (s->att.ep) {
        const weft_endpoint *ep = s->att.ep;
        ai->upstream_host = (weft_str){ep->name, strlen(ep->name)};
        ai->region = str_of(ep->region);
        ai->zone = str_of(ep->zone);
        ai->subzone = str_of(ep->subzone);
        ai->endpoint_index = s->att.idx;
        ai->n_labels = ep->n_labels;
    }
    ai->flags = s->att_flags;
    ai->backoff_us = s->backoff_us;
    if (s->cluster)
        ai->cluster =
            (weft_str){s->cluster->shared->cfg->name, strlen(s->cluster->shared->cfg->name)};
    uint64_t now = weft_now_us();
    ai->duration_us = s->t_up_start_us && now > s->t_up_start_us ? now - s->t_up_start_us : 0;
}

static void retry_start(weft_stream *s);

/* Replays the request on a new upstream attempt (SDK weft_upstream_retry):
 * at once, or after the delay a filter asked for (the attempt is dropped
 * now, the next one starts from t_backoff). The route timeout keeps
 * running across attempts; it is armed afresh only when it is what ended
 * the previous attempt (1.0 filters retry on WEFT_ATTEMPT_TIMEOUT). */
bool stream_do_retry(weft_stream *s) {
    s->retry_requested = false;
    uint64_t delay = s->retry_delay_ms;
    s->retry_delay_ms = 0;
    if (s->resp_started || s->resp_done || s->local_reply || s->t_backoff_start_us)
        return false;
    bool has_body = s->req->framing != WEFT_BODY_NONE;
    if (has_body && (!s->req_done || !s->replay || s->replay_overflow))
        return false; /* cannot replay what we did not keep */
    if (stream_up_attached(s))
        stream_up_release(s, false);
    weft_ltimer_clear(&s->t_try);
    stream_reset_response(s);
    evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
    if (s->cluster) {
        weft_stats_inc(s->w->stats, s->cluster->shared->rq_retry_filter, 1);
        if (delay)
            weft_stats_inc(s->w->stats, s->cluster->shared->rq_retry_backoff, 1);
    }
    if (delay) {
        s->t_backoff_start_us = weft_now_us();
        s->backoff_want_us = delay * 1000;
        weft_ltimer_set(&s->t_backoff, delay);
        return true;
    }
    s->backoff_us = 0;
    retry_start(s);
    return true;
}

/* The delayed retry's wait is over (or cut short: never before delay ms,
 * by the precise clock; the timer runs on the coarse one). */
void stream_on_backoff(weft_stream *s) {
    if (!s->active || s->t_end_us || !s->t_backoff_start_us)
        return;
    uint64_t waited = weft_now_us() - s->t_backoff_start_us;
    if (waited < s->backoff_want_us) {
        weft_ltimer_set(&s->t_backoff, (s->backoff_want_us - waited + 999) / 1000);
        return;
    }
    s->backoff_us = waited;
    s->t_backoff_start_us = 0;
    if (s->resp_started || s->resp_done)
        return;
    retry_start(s);
}

static void retry_start(weft_stream *s) {
    bool has_body = s->req->framing != WEFT_BODY_NONE;
    bool other = (s->retry_flags & WEFT_RETRY_OTHER_ENDPOINT) != 0;
    s->retry_flags = 0;
    stream_prepare_attempt_head(s);
    stream_write_up_head(s, s->up_pending);
    if (has_body) {
        if (s->up_req_chunked)
            weft_h1_write_chunk_buf(s->up_pending, s->replay, true);
        else if (evbuffer_get_length(s->replay))
            evbuffer_add_buffer_reference(s->up_pending, s->replay);
        if (s->up_req_chunked)
            weft_h1_write_last_chunk(s->up_pending, s->rq.trailers);
    }
    s->connect_attempts = 0;
    start_attempt(s, true, false, other);
    if (stream_up_attached(s)) {
        s->up_ops->restart(s, NULL);
        if (s->req_done) {
            s->up_req_done = true;
            if (!weft_ltimer_pending(&s->t_request))
                stream_arm_request_timeout(s);
            stream_arm_try_timeout(s);
        }
    }
}

int weft_stream_retry(weft_stream *s) {
    return weft_stream_retry_ex(s, 0, 0);
}

int weft_stream_retry_ex(weft_stream *s, uint64_t delay_ms, uint32_t flags) {
    if (s->resp_started || s->resp_done || s->local_reply || s->in_up_request ||
        s->t_backoff_start_us)
        return -1; /* (a retry already waits for its delay) */
    bool has_body = s->req && s->req->framing != WEFT_BODY_NONE;
    if (has_body && (!s->replay || s->replay_overflow))
        return -1;
    s->retry_delay_ms = delay_ms;
    s->retry_flags = flags;
    s->retry_requested = true;
    /* Inside an attempt or response-header hook the stream acts on it when
     * the hook returns; from anywhere else (a timer or callout after STOP
     * on the response headers) the deferred event does. */
    stream_defer(s, STREAM_DEFER_RETRY);
    return 0;
}

/* The deferred retry: the request was not retried by a hook's caller. */
void stream_deferred_retry(weft_stream *s) {
    if (!s->retry_requested || !s->active || s->t_end_us)
        return;
    if (!stream_do_retry(s))
        WEFT_DEBUG("retry requested by a filter could not be made (response started or body not "
                   "kept)");
}

int weft_stream_on_up_head(weft_stream *s, weft_resp_head *h) {
    if (h->status == 101 && s->upgrade_req && !s->is_connect && s->up && s->up_ops->tunnel_begin) {
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
        stream_send_head(s, &s->resp, true);
        tunnel_start(s);
        return WEFT_H1_CB_PAUSE;
    }
    if (h->status >= 100 && h->status < 200)
        return WEFT_H1_CB_OK; /* interim (we answered Expect ourselves) */
    s->t_up_head_us = weft_now_us();
    weft_ltimer_clear(&s->t_try); /* the per-try timeout ends at the head */
    stream_arm_idle(s);
    weft_stats_inc(s->w->stats, s->cluster->shared->rq_total[weft_code_class(h->status)], 1);
    if (stream_n_filters(s)) {
        if (sf_has(s, WEFT_PH_ATTEMPT)) {
            weft_attempt_info ai;
            stream_attempt_info(s, &ai, WEFT_ATTEMPT_RESPONSE, h->status);
            sf_attempt(s, &ai);
        }
        if (s->retry_requested && !stream_answered(s)) {
            weft_attempt_end(&s->att, true, s->t_up_head_us - s->t_up_start_us, weft_now_us());
            if (stream_do_retry(s))
                return WEFT_H1_CB_PAUSE;
        }
        if (stream_answered(s))
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
        if (s->retry_requested && stream_do_retry(s))
            return WEFT_H1_CB_PAUSE;
        if (!s->rs.headers_done) {
            /* A filter paused the response: stop reading the upstream. */
            if (stream_up_attached(s) && !s->up_read_paused) {
                s->up_read_paused = true;
                stream_up_pause(s);
            }
            return WEFT_H1_CB_PAUSE;
        }
        /* A filter's reply replaced the response: the upstream is gone. */
        return s->resp_done || s->local_reply ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
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
    stream_send_head(s, h, bodyless);
}

void stream_sink_resp(weft_stream *s, struct evbuffer *chunk, bool end) {
    if (stream_buf_len(chunk))
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
    stream_arm_idle(s);
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
    d->used = true;
    if (d->headers_done && d->paused_at < 0 && s->up && s->up_ops->gathers_reads) {
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
    if (stream_buf_len(d->pre) && d->headers_done && d->paused_at < 0 && !s->resp_done)
        sf_push(s, WEFT_DIR_RESP, d->pre, 0);
}

int weft_stream_on_up_trailers(weft_stream *s, weft_hdrs *t) {
    s->resp_trailers = t;
    s->rs.trailers = t;
    return WEFT_H1_CB_OK;
}

int weft_stream_on_up_complete(weft_stream *s) {
    uint64_t now = weft_now_us();
    weft_attempt_end(&s->att, true, s->t_up_head_us - s->t_up_start_us, now);
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
        (s->rs.paused_at >= 0 || stream_pre_len(&s->rs) ||
         (!bodyless && (s->chain->any_resp_body || s->chain->any_resp_trailers)))) {
        sf_push(s, WEFT_DIR_RESP, s->rs.pre, 0);
        return WEFT_H1_CB_PAUSE;
    }
    stream_sink_resp(s, s->rs.used ? s->rs.pre : NULL, true); /* unused: empty */
    return WEFT_H1_CB_PAUSE;
}

/* RFC 9110 9.2.2 idempotent methods. */
static bool method_idempotent(const weft_stream *s) {
    switch (s->req->method_id) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PUT:
    case HTTP_DELETE:
        return true;
    default:
        return false;
    }
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
    bool unprocessed = s->up && s->up_ops->unprocessed(s);
    bool connect_err = err == WEFT_UP_ERR_CONNECT || err == WEFT_UP_ERR_CONNECT_TIMEOUT;
    /* The body the failed connect never sent stays with the stream. */
    struct evbuffer *unsent =
        connect_err && s->up && s->up_ops->take_unsent ? s->up_ops->take_unsent(s) : NULL;
    weft_cluster_snap *c = s->cluster->shared;
    stream_up_release(s, false); /* ends the attempt */
    if (err == WEFT_UP_ERR_ALPN_H2) {
        if (switch_to_h2(s))
            return;
        err = WEFT_UP_ERR_PROTOCOL;
    }
    if (connect_err) {
        /* Every failed connect is counted, timeouts also on their own (as
         * Envoy's upstream_cx_connect_fail / _timeout). */
        weft_stats_inc(s->w->stats, c->cx_connect_fail, 1);
        if (err == WEFT_UP_ERR_CONNECT_TIMEOUT)
            weft_stats_inc(s->w->stats, c->cx_connect_timeout, 1);
        bool retried = retry_connect(s, err, unsent);
        if (unsent)
            evbuffer_free(unsent);
        if (retried)
            return;
    }
    /* A pooled connection the server had already closed: the request never
     * reached it, so sending it again on a fresh connection is safe when
     * we can replay it whole (no body streamed yet). */
    /* An idempotent request without a body whose upstream reset before
     * any response head (the endpoint died under it) is sent once more
     * to another endpoint, as nginx's default proxy_next_upstream does
     * for idempotent methods; the cluster's `reset_retry: unprocessed`
     * keeps only the retry of requests the server never processed. */
    bool reset_retry = err == WEFT_UP_ERR_RESET && s->t_up_head_us == 0 &&
                       !c->cfg->reset_retry_unprocessed_only && method_idempotent(s);
    if (err == WEFT_UP_ERR_RESET && (unprocessed || reset_retry) && !s->stale_retry_done &&
        !s->resp_started && s->req->framing == WEFT_BODY_NONE) {
        s->stale_retry_done = true;
        weft_stats_inc(s->w->stats, unprocessed ? c->rq_retry_stale : c->rq_retry_reset, 1);
        stream_reset_response(s);
        evbuffer_drain(s->up_pending, evbuffer_get_length(s->up_pending));
        stream_write_up_head(s, s->up_pending);
        stream_start_upstream(s, false);
        if (stream_up_attached(s)) {
            s->up_ops->restart(s, NULL);
            if (s->req_done)
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
        stream_attempt_info(s, &ai, map[err], 0);
        sf_attempt(s, &ai);
        if (stream_answered(s))
            return;
        if (s->retry_requested && stream_do_retry(s))
            return;
    }
    switch (err) {
    case WEFT_UP_ERR_CONNECT:
        weft_stream_local_reply(s, 503, "upstream_connect_failure", WEFT_RF_UF, NULL);
        break;
    case WEFT_UP_ERR_CONNECT_TIMEOUT:
        weft_stream_local_reply(s, 503, "upstream_connect_timeout", WEFT_RF_UF, NULL);
        break;
    case WEFT_UP_ERR_RESET:
        weft_stats_inc(s->w->stats, c->rq_reset, 1);
        weft_stream_local_reply(s, 503, "upstream_reset_before_response", WEFT_RF_UC, NULL);
        break;
    case WEFT_UP_ERR_PROTOCOL:
    case WEFT_UP_ERR_ALPN_H2: /* (turned into PROTOCOL above) */
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
