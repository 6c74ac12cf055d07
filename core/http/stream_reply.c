/* stream_reply.c: responses weft makes itself: local replies (with the
 * gRPC Trailers-Only shape), redirects and direct responses. */
#include "http/stream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "wsh_rules.h"

void stream_send_head(weft_stream *s, weft_resp_head *h, bool end) {
    s->resp_started = true;
    s->status_sent = h->status;
    s->ds_ops->send_head(s, h, end);
}

/* gRPC status for an HTTP status weft answers with: shared with the test
 * kit (sdk/common/wsh_rules.c), so both map alike by construction. */
static int grpc_status_for(uint16_t http) {
    return wsh_grpc_status_for_http(http);
}

/* grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"): every
 * byte outside 0x20-0x7E, and '%' itself, as %XX; UTF-8 passes as its
 * encoded bytes. */
static weft_sv grpc_message_encode(weft_stream *s, weft_sv msg) {
    static const char hex[] = "0123456789ABCDEF";
    size_t extra = 0;
    for (size_t i = 0; i < msg.len; i++) {
        unsigned char c = (unsigned char)msg.p[i];
        if (c < 0x20 || c > 0x7e || c == '%')
            extra += 2;
    }
    if (!extra)
        return msg;
    char *o = weft_arena_alloc(&s->arena, msg.len + extra);
    if (!o)
        return WEFT_SV_LIT("");
    size_t n = 0;
    for (size_t i = 0; i < msg.len; i++) {
        unsigned char c = (unsigned char)msg.p[i];
        if (c < 0x20 || c > 0x7e || c == '%') {
            o[n++] = '%';
            o[n++] = hex[c >> 4];
            o[n++] = hex[c & 15];
        } else {
            o[n++] = (char)c;
        }
    }
    return (weft_sv){o, n};
}

/* Sends the local reply built in s->resp with `body`: through the
 * response hooks of the filters that saw the request, in reverse order
 * (Envoy's sendLocalReply runs the encoder filters of the filters that
 * decoded), or straight to the codec when no filter saw it.
 * - From inside a response-header hook (an upstream response's or another
 *   local reply's): the reply replaces that response and sf_resp_headers
 *   goes on with the next filter toward the client (no recursion: the
 *   replier and the filters before it do not see the reply).
 * - While the response-header phase is paused at position p (a timer, a
 *   callout, the idle timeout): the same, from p + 1.
 * - Otherwise from the position of the last filter the request reached.
 * A filter may STOP there like on any response; its resume goes on. */
static void local_send(weft_stream *s, weft_sv body) {
    weft_resp_head *h = &s->resp;
    bool bodyless = s->head_request || body.len == 0;
    size_t n = stream_n_filters(s);
    s->local_reply = true;
    if (!bodyless)
        s->bytes_out += body.len;
    if (!s->fctx || s->req_reached < 0 || !n || !s->rs.pre) {
        stream_send_head(s, h, bodyless);
        if (!bodyless)
            s->ds_ops->send_body(s, body.p, body.len);
        s->ds_ops->send_end(s, NULL);
        s->resp_done = true;
        if (s->req_done || s->close_after)
            stream_finish(s);
        return;
    }
    bool in_hook = s->rs_hdr_hook;
    int paused_at = s->rs.paused_at >= 0 && s->rs.paused_headers ? s->rs.paused_at : -1;
    /* What an upstream response (or an earlier local reply) left goes. */
    stream_dir_reset(&s->rs);
    s->resp_trailers = NULL;
    s->rs_gathering = false;
    s->up_read_paused = false;
    s->rs.end_in = true;
    if (!bodyless) {
        s->rs.used = true;
        evbuffer_add(s->rs.pre, body.p, body.len);
    }
    /* The request is answered: a pause there is over. */
    s->rq.paused_at = -1;
    s->rq.paused_headers = false;
    s->rq.pause_token = 0;
    if (in_hook) {
        s->rs_from = s->rs_hdr_pos + 1;
        return; /* sf_resp_headers goes on */
    }
    s->rs_from =
        paused_at >= 0 ? (uint32_t)paused_at + 1 : (uint32_t)(n - 1 - (size_t)s->req_reached);
    /* The hooks run nested in whatever called (a request hook, a timer
     * callback): inside them the stream is in no filter's code, so that
     * attribution and the resume check hold; restored after. */
    stream_cb_frame f = {s->running, s->in_async_cb};
    s->running = -1;
    s->in_async_cb = false;
    sf_resp_headers(s, s->rs_from);
    stream_cb_leave(s, f);
}

void weft_stream_reply_full(weft_stream *s, uint16_t status, const char *reason,
                            const weft_hdrs *extra, weft_sv body) {
    s->n_replies++;
    if (reason)
        s->reason = reason;
    if (stream_up_attached(s))
        stream_up_release(s, false);
    weft_ltimer_clear(&s->t_request);
    weft_ltimer_clear(&s->t_try);
    weft_ltimer_clear(&s->t_backoff); /* a delayed retry no longer waits */
    s->t_backoff_start_us = 0;
    if (s->resp_started || s->resp_done) {
        /* Part of a response already went out: the only honest signal left
         * on HTTP/1.1 is to cut the connection. */
        s->flags |= WEFT_RF_LR;
        s->close_after = true;
        s->ds_ops->reset(s);
        stream_finish(s);
        return;
    }
    if (!s->local_reply) /* a reply that replaces a local reply is not another one */
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
        weft_hdrs_add(&h->headers, WEFT_SV_LIT("grpc-message"), grpc_message_encode(s, msg));
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
    local_send(s, body);
}

void weft_stream_local_reply(weft_stream *s, uint16_t status, const char *reason, uint32_t flag,
                             const char *body) {
    s->flags |= flag;
    weft_stream_reply_full(s, status, reason, NULL, body ? weft_sv_from(body) : (weft_sv){NULL, 0});
}

void stream_redirect_reply(weft_stream *s) {
    const weft_cfg_route *r = s->route->cfg;
    weft_sv loc =
        weft_route_redirect_location(s->route, s->req, s->tls ? "https" : "http", &s->arena);
    s->n_replies++;
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
    local_send(s, (weft_sv){"", 0});
}

void stream_direct_reply(weft_stream *s) {
    const weft_cfg_route *r = s->route->cfg;
    s->flags |= WEFT_RF_DR;
    weft_stream_local_reply(s, r->direct_status, NULL, WEFT_RF_DR,
                            r->direct_body ? r->direct_body : "");
}

/* ---------- request path ---------- */
