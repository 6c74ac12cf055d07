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

void weft_stream_reply_full(weft_stream *s, uint16_t status, const char *reason,
                            const weft_hdrs *extra, weft_sv body) {
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
    bool bodyless = s->head_request || body.len == 0;
    stream_send_head(s, h, bodyless);
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

void stream_redirect_reply(weft_stream *s) {
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
    stream_send_head(s, h, true);
    s->resp_done = true;
    if (s->req_done || s->close_after)
        stream_finish(s);
}

void stream_direct_reply(weft_stream *s) {
    const weft_cfg_route *r = s->route->cfg;
    s->flags |= WEFT_RF_DR;
    weft_stream_local_reply(s, r->direct_status, NULL, WEFT_RF_DR,
                            r->direct_body ? r->direct_body : "");
}

/* ---------- request path ---------- */
