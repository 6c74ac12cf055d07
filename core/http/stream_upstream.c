/* stream_upstream.c: upstream attempts (load balancer pick, pooled
 * connection or HTTP/2 stream), retries, and the response direction. */
#include "http/stream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "upstream/h2_pool.h"

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

struct evbuffer *stream_up_out(weft_stream *s) {
    return s->up && s->up->connected ? weft_upconn_output(s->up) : s->up_pending;
}

void stream_check_up_backpressure(weft_stream *s) {
    size_t pending = s->up2 ? weft_h2up_pending(s->up2) : evbuffer_get_length(stream_up_out(s));
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
    weft_h1_write_req_head(out, s->req, &s->up_target);
}

void stream_start_upstream(weft_stream *s, bool allow_idle) {
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

static void tunnel_start(weft_stream *s) {
    s->tunnel = true;
    s->up->tunnel = true;
    weft_ltimer_clear(&s->t_request); /* a tunnel lives until idle or closed */
    stream_arm_idle(s);
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
        stream_send_head(s, h, !s->h2);
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
    stream_arm_idle(s);
    struct evbuffer *out = weft_upconn_output(s->up);
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

void stream_attempt_info(weft_stream *s, weft_attempt_info *ai, weft_attempt_result r, int status) {
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
bool stream_do_retry(weft_stream *s) {
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
    stream_write_up_head(s, s->up_pending);
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
    stream_start_upstream(s, true);
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
        stream_arm_request_timeout(s);
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
        stream_send_head(s, &s->resp, true);
        tunnel_start(s);
        return WEFT_H1_CB_PAUSE;
    }
    if (h->status >= 100 && h->status < 200)
        return WEFT_H1_CB_OK; /* interim (we answered Expect ourselves) */
    s->t_up_head_us = weft_now_us();
    stream_arm_idle(s);
    weft_stats_inc(s->w->stats, s->cluster->shared->rq_total[weft_code_class(h->status)], 1);
    if (stream_n_filters(s)) {
        weft_attempt_info ai;
        stream_attempt_info(s, &ai, WEFT_ATTEMPT_RESPONSE, h->status);
        sf_attempt(s, &ai);
        if (s->retry_requested) {
            weft_lb_on_end(&s->cluster->lb, s->ep_idx, s->t_up_head_us - s->t_up_start_us, true,
                           weft_now_us());
            if (stream_do_retry(s))
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
    if (s->up)
        s->up->got_bytes = true;
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
        (s->rs.paused_at >= 0 || stream_buf_len(s->rs.pre) ||
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
        stream_write_up_head(s, s->up_pending);
        stream_start_upstream(s, false);
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
        stream_attempt_info(s, &ai, map[err], 0);
        sf_attempt(s, &ai);
        if (s->resp_done)
            return;
        if (s->retry_requested && stream_do_retry(s))
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
