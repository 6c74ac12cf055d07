/* stream_rewrite.c: what weft changes in a request before it goes
 * upstream: request id, hop-by-hop headers, Via, X-Forwarded-*, route
 * header operations, the target; and the gRPC deadline it reads. */
#include "http/stream_internal.h"

#include "http/path_norm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

/* The two hex digits of every byte value, in order. */
static const char hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* Bytes from..to-1 of w (byte 0 the most significant) as hex digits at o;
 * returns the end. */
static inline char *hex_bytes(char *o, uint64_t w, int from, int to) {
    for (int i = from; i < to; i++) {
        memcpy(o, hex_pairs + 2 * ((w >> (56 - 8 * i)) & 0xff), 2);
        o += 2;
    }
    return o;
}

/* x-request-id: the client's is kept only where the listener trusts it
 * (preserve_external_request_id); otherwise a fresh UUID replaces it. */
void stream_gen_request_id(weft_stream *s) {
    const weft_sv *v = weft_hdrs_get(&s->req->headers, H_RID);
    if (v && v->len && s->lst->cfg->preserve_external_request_id) {
        s->request_id = *v;
        return;
    }
    if (v)
        weft_hdrs_remove(&s->req->headers, H_RID);
    uint64_t a = weft_worker_rand(s->w), b = weft_worker_rand(s->w);
    char *id = weft_arena_alloc(&s->arena, 37);
    if (!id)
        return;
    /* UUID v4 layout: 8-4-4-4-12 hex digits, version nibble 4, variant 10b
     * (by hand, a byte's two digits at a time: this runs for every request
     * without an id). */
    a = (a & 0xffffffffffff0fffull) | 0x4000ull;
    b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
    char *o = id;
    o = hex_bytes(o, a, 0, 4);
    *o++ = '-';
    o = hex_bytes(o, a, 4, 6);
    *o++ = '-';
    o = hex_bytes(o, a, 6, 8);
    *o++ = '-';
    o = hex_bytes(o, b, 0, 2);
    *o++ = '-';
    o = hex_bytes(o, b, 2, 8);
    *o = '\0';
    s->request_id = (weft_sv){id, 36};
    weft_hdrs_add_ref_checked(&s->req->headers, H_RID, s->request_id);
}

bool stream_normalize_path(weft_stream *s) {
    weft_req_head *req = s->req;
    const weft_cfg_listener *lc = s->lst->cfg;
    const weft_path_norm_opts o = {lc->normalize_path, lc->merge_slashes,
                                   (weft_escaped_slashes)lc->escaped_slashes};
    if (weft_path_is_normal(req->path.p, req->path.len, &o))
        return true;
    /* path, then "?query" after it: the new request-target in one piece */
    size_t qn = req->query.len ? req->query.len + 1 : 0;
    char *t = weft_arena_alloc(&s->arena, req->path.len + qn + 1);
    size_t n = 0;
    weft_path_result r =
        t ? weft_path_normalize(req->path.p, req->path.len, &o, t, &n) : WEFT_PATH_BAD_ENCODING;
    if (r != WEFT_PATH_OK && r != WEFT_PATH_REDIRECT) {
        weft_stream_local_reply(s, 400, weft_path_result_reason(r), WEFT_RF_DPE, NULL);
        return false;
    }
    if (qn) {
        t[n] = '?';
        memcpy(t + n + 1, req->query.p, req->query.len);
    }
    req->path = (weft_sv){t, n};
    req->target = (weft_sv){t, n + qn};
    if (r == WEFT_PATH_REDIRECT) {
        weft_hdrs loc;
        weft_hdrs_init(&loc, &s->arena);
        weft_hdrs_add_ref(&loc, WEFT_SV_LIT("location"), req->target);
        weft_stream_reply_full(s, 307, weft_path_result_reason(r), &loc, (weft_sv){"", 0});
        return false;
    }
    return true;
}

/* value: weft's own (an address, a literal), well-formed. */
static void append_list_header(weft_stream *s, weft_sv name, weft_sv value) {
    const weft_sv *old = weft_hdrs_get(&s->req->headers, name);
    if (!old) {
        /* The usual case: the first such line, with a copy of value. */
        char *buf = weft_arena_alloc(&s->arena, value.len + 1);
        if (!buf)
            return;
        memcpy(buf, value.p, value.len);
        weft_hdrs_add_ref_checked(&s->req->headers, name, (weft_sv){buf, value.len});
        return;
    }
    if (weft_hdrs_count(&s->req->headers, name) > 1) {
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
void stream_prepare_upstream_headers(weft_stream *s) {
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
    /* X-Forwarded-Proto says how the client reached weft: never the
     * client's own claim. */
    weft_hdrs_remove(&req->headers, H_XFP);
    weft_hdrs_add_ref_checked(&req->headers, H_XFP,
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
        weft_hdrs_add_ref_checked(&req->headers, H_TE, WEFT_SV_LIT("chunked"));
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

/* grpc-timeout: 1-8 digits and a unit (H M S m u n), gRPC over HTTP/2. */
uint64_t stream_grpc_timeout_ms(const weft_hdrs *h) {
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
