/* fuzz_h1.c: libFuzzer target for the HTTP/1.1 parser and writer.
 *
 * Input layout:
 *   byte 0: bit 0     parser kind (0 request, 1 response)
 *           bits 1-2  method of the request a response answers
 *                     (GET, HEAD, CONNECT, POST)
 *           bit 3     small limits (exercise every limit path)
 *           bit 4     on_body pauses every other call (pause/resume path)
 *   byte 1: seed for the split points
 *   rest:   the bytes on the wire, fed in pieces
 *
 * Every complete message is written back with the writer, as a proxy
 * would forward it, and the written stream is parsed again: it must parse
 * without error, consume every byte, and give the same heads, bodies and
 * trailers. Any difference aborts. */
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_h1_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    bool write; /* first pass: write messages back */
    bool pause;
    unsigned body_calls;
    buf log, msg_log;      /* committed log, log of the current message */
    buf body;              /* current message body */
    struct evbuffer *wire; /* committed written bytes */
    struct evbuffer *msg;  /* written bytes of the current message */
    bool chunked;
    weft_hdrs *trailers;
} fz;

static void note_head(fz *f, weft_body_framing framing, int64_t cl, const weft_hdrs *h) {
    f->chunked = framing == WEFT_BODY_CHUNKED;
    buf_addf(&f->msg_log, " F%d L%lld ", (int)framing, (long long)cl);
    buf_add_hdrs(&f->msg_log, h);
}

static int on_req_head(void *ud, weft_req_head *r) {
    fz *f = ud;
    /* The writer always speaks HTTP/1.1, which requires Host. */
    if (!weft_hdrs_get(&r->headers, WEFT_SV_LIT("host")))
        if (weft_hdrs_add(&r->headers, WEFT_SV_LIT("host"), WEFT_SV_LIT("fuzz")) != 0)
            abort();
    buf_addf(&f->msg_log, "REQ %d ", r->method_id);
    buf_add_sv(&f->msg_log, r->target);
    buf_add_sv(&f->msg_log, r->path);
    buf_add_sv(&f->msg_log, r->query);
    buf_addf(&f->msg_log, " E%d U%d", r->expect_continue, r->upgrade);
    note_head(f, r->framing, r->content_length, &r->headers);
    if (f->write && weft_h1_write_req_head(f->msg, r, NULL) != 0)
        abort(); /* whatever the parser accepted must be writable */
    return WEFT_H1_CB_OK;
}

static int on_resp_head(void *ud, weft_resp_head *r) {
    fz *f = ud;
    /* An empty reason is written as the standard one. */
    if (r->reason.len == 0)
        r->reason = weft_sv_from(weft_status_reason(r->status));
    buf_addf(&f->msg_log, "RESP %u ", r->status);
    buf_add_sv(&f->msg_log, r->reason);
    note_head(f, r->framing, r->content_length, &r->headers);
    if (f->write && weft_h1_write_resp_head(f->msg, r) != 0)
        abort();
    return WEFT_H1_CB_OK;
}

static int on_body(void *ud, const char *p, size_t n) {
    fz *f = ud;
    if (n == 0)
        abort(); /* the parser promises non-empty body calls */
    buf_add(&f->body, p, n);
    if (f->write) {
        if (f->chunked ? weft_h1_write_chunk(f->msg, p, n) != 0 : evbuffer_add(f->msg, p, n) != 0)
            abort();
    }
    return (f->pause && (f->body_calls++ & 1) == 0) ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

static int on_trailers(void *ud, weft_hdrs *t) {
    fz *f = ud;
    if (t->n == 0)
        abort(); /* only called when there is something to deliver */
    f->trailers = t;
    buf_add(&f->msg_log, " T", 2);
    buf_add_hdrs(&f->msg_log, t);
    return WEFT_H1_CB_OK;
}

static int on_complete(void *ud) {
    fz *f = ud;
    buf_addf(&f->msg_log, " B%zu:", f->body.len);
    buf_add(&f->msg_log, f->body.p, f->body.len);
    buf_add(&f->msg_log, ";\n", 2);
    if (f->write && f->chunked && weft_h1_write_last_chunk(f->msg, f->trailers) != 0)
        abort();
    /* commit: only whole messages take part in the comparison */
    buf_add(&f->log, f->msg_log.p, f->msg_log.len);
    if (f->write)
        evbuffer_add_buffer(f->wire, f->msg);
    f->msg_log.len = 0;
    f->body.len = 0;
    f->trailers = NULL;
    return WEFT_H1_CB_OK;
}

static const weft_h1_callbacks cbs = {on_req_head, on_resp_head, on_body, on_trailers, on_complete};

/* Parses `in`, split per `seed` (0 = in one piece). Returns the last result. */
static weft_h1_result parse(fz *f, weft_h1_kind kind, int method, const weft_h1_limits *lim,
                            const char *in, size_t len, unsigned seed, size_t *consumed) {
    weft_arena arena;
    weft_arena_init(&arena);
    weft_h1_parser *p = weft_h1_parser_new(kind, lim, &cbs, f);
    if (!p)
        abort();
    weft_h1_parser_next(p, &arena, method);
    f->msg_log.len = 0;
    f->body.len = 0;
    f->trailers = NULL;
    if (f->msg)
        evbuffer_drain(f->msg, evbuffer_get_length(f->msg));

    weft_h1_result r = fuzz_h1_feed(p, &arena, method, in, len, seed, NULL, NULL, consumed);
    weft_h1_parser_free(p);
    weft_arena_free(&arena);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint8_t sel = data[0];
    unsigned seed = data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    weft_h1_kind kind = (sel & 1) ? WEFT_H1_RESPONSE : WEFT_H1_REQUEST;
    int method = fuzz_h1_method(sel);

    weft_h1_limits lim;
    fuzz_h1_limits(&lim, sel);

    fz a;
    memset(&a, 0, sizeof(a));
    a.write = true;
    a.pause = (sel & 16) != 0;
    a.wire = evbuffer_new();
    a.msg = evbuffer_new();
    size_t used_split, used_whole;
    weft_h1_result r_split = parse(&a, kind, method, &lim, in, len, seed ? seed : 1, &used_split);

    /* The same bytes in one piece give the same messages and outcome. */
    fz w;
    memset(&w, 0, sizeof(w));
    weft_h1_result r_whole = parse(&w, kind, method, &lim, in, len, 0, &used_whole);
    if ((r_split == WEFT_H1_ERROR) != (r_whole == WEFT_H1_ERROR) || a.log.len != w.log.len ||
        (a.log.len && memcmp(a.log.p, w.log.p, a.log.len) != 0)) {
        fprintf(stderr, "split mismatch (results %d/%d)\n--- split\n%.*s\n--- whole\n%.*s\n",
                r_split, r_whole, (int)a.log.len, a.log.p, (int)w.log.len, w.log.p);
        abort();
    }

    /* Re-parse what was written, with limits the rewrite cannot exceed. */
    size_t wlen = evbuffer_get_length(a.wire);
    char *wire = (char *)evbuffer_pullup(a.wire, -1);
    weft_h1_limits big;
    weft_h1_limits_default(&big);
    big.max_header_bytes = 1u << 24;
    big.max_headers = 1u << 20;
    big.max_uri_len = 1u << 24;
    fz b;
    memset(&b, 0, sizeof(b));
    size_t used_re;
    weft_h1_result r_re = parse(&b, kind, method, &big, wire ? wire : "", wlen, 0, &used_re);
    if (r_re == WEFT_H1_ERROR || used_re != wlen || b.log.len != a.log.len ||
        (a.log.len && memcmp(a.log.p, b.log.p, a.log.len) != 0)) {
        fprintf(
            stderr,
            "round trip mismatch (result %d, used %zu of %zu)\n--- first\n%.*s\n--- again\n%.*s\n",
            r_re, used_re, wlen, (int)a.log.len, a.log.p, (int)b.log.len, b.log.p);
        abort();
    }

    evbuffer_free(a.wire);
    evbuffer_free(a.msg);
    free(a.log.p);
    free(a.msg_log.p);
    free(a.body.p);
    free(w.log.p);
    free(w.msg_log.p);
    free(w.body.p);
    free(b.log.p);
    free(b.msg_log.p);
    free(b.body.p);
    return 0;
}
