/* fuzz_h1_onepass.c: differential libFuzzer target for the HTTP/1.1
 * parser's one-pass head reading (fast_head in core/http/h1/h1_parser.c)
 * against llhttp reading every head, as before it (one pass turned off).
 *
 * Input layout (as fuzz_h1's, so its corpus seeds this one):
 *   byte 0: bit 0     parser kind (0 request, 1 response)
 *           bits 1-2  method of the request a response answers
 *                     (GET, HEAD, CONNECT, POST)
 *           bit 3     small limits (exercise every limit path)
 *           bit 4     on_body pauses every other call (pause/resume path)
 *           bit 5     on_*_head pauses
 *           bit 6     on_resp_head asks for no body (SKIP_BODY) / on_body
 *                     aborts on its third call (request)
 *           bit 7     on_complete aborts on the second message
 *   byte 1: seed for the split points (0: whole)
 *   rest:   the bytes on the wire, fed in pieces
 *
 * Both parsers get the same pieces and the same callback answers; every
 * event (each head with all it carries, body bytes, trailers, ends), every
 * feed's result and consumed count, the error status and reason and the
 * end-of-input result must be the same. Any difference aborts. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_h1_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t sel;
    unsigned body_calls, messages;
    weft_h1_parser *p;
    buf log;
} fz;

static int on_req_head(void *ud, weft_req_head *r) {
    fz *f = ud;
    buf_addf(&f->log, "REQ %d ", r->method_id);
    buf_add_sv(&f->log, r->method);
    buf_add_sv(&f->log, r->target);
    buf_add_sv(&f->log, r->path);
    buf_add_sv(&f->log, r->query);
    buf_add_sv(&f->log, r->authority);
    buf_addf(&f->log, " v%d ka%d E%d U%d F%d L%lld ib%d ", r->http_minor, r->keep_alive,
             r->expect_continue, r->upgrade, (int)r->framing, (long long)r->content_length,
             weft_h1_parser_in_body(f->p));
    buf_addf(&f->log, "c%u", r->headers.checked);
    buf_add_hdrs(&f->log, &r->headers);
    buf_add(&f->log, "\n", 1);
    return (f->sel & 32) ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

static int on_resp_head(void *ud, weft_resp_head *r) {
    fz *f = ud;
    buf_addf(&f->log, "RESP %u ", r->status);
    buf_add_sv(&f->log, r->reason);
    buf_addf(&f->log, " v%d ka%d F%d L%lld ib%d ", r->http_minor, r->keep_alive, (int)r->framing,
             (long long)r->content_length, weft_h1_parser_in_body(f->p));
    buf_addf(&f->log, "c%u", r->headers.checked);
    buf_add_hdrs(&f->log, &r->headers);
    buf_add(&f->log, "\n", 1);
    if ((f->sel & 64) && r->status >= 200)
        return WEFT_H1_CB_SKIP_BODY;
    return (f->sel & 32) ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

static int on_body(void *ud, const char *p, size_t n) {
    fz *f = ud;
    if (n == 0)
        abort(); /* the parser promises non-empty body calls */
    buf_addf(&f->log, "BODY %zu:", n);
    buf_add(&f->log, p, n);
    buf_add(&f->log, "\n", 1);
    unsigned k = f->body_calls++;
    if ((f->sel & 64) && !(f->sel & 1) && k == 2)
        return WEFT_H1_CB_ABORT;
    return ((f->sel & 16) && (k & 1) == 0) ? WEFT_H1_CB_PAUSE : WEFT_H1_CB_OK;
}

static int on_trailers(void *ud, weft_hdrs *t) {
    fz *f = ud;
    buf_add(&f->log, "TRAILERS ", 9);
    buf_add_hdrs(&f->log, t);
    buf_add(&f->log, "\n", 1);
    return WEFT_H1_CB_OK;
}

static int on_complete(void *ud) {
    fz *f = ud;
    buf_addf(&f->log, "COMPLETE ib%d\n", weft_h1_parser_in_body(f->p));
    if ((f->sel & 128) && f->messages++ == 1)
        return WEFT_H1_CB_ABORT;
    return WEFT_H1_CB_OK;
}

static const weft_h1_callbacks cbs = {on_req_head, on_resp_head, on_body, on_trailers, on_complete};

static void note_feed(void *ud, size_t off, size_t n, weft_h1_result r, size_t used) {
    fz *f = ud;
    buf_addf(&f->log, "feed %zu+%zu -> %d used %zu im%d ib%d nf%d\n", off, n, (int)r, used,
             weft_h1_parser_in_message(f->p), weft_h1_parser_in_body(f->p),
             weft_h1_parser_needs_feed(f->p));
}

static void parse(fz *f, bool one_pass, int method, const weft_h1_limits *lim, const char *in,
                  size_t len, unsigned seed) {
    weft_arena arena;
    weft_arena_init(&arena);
    f->p = weft_h1_parser_new(f->sel & 1 ? WEFT_H1_RESPONSE : WEFT_H1_REQUEST, lim, &cbs, f);
    if (!f->p)
        abort();
    weft_h1_parser_set_one_pass(f->p, one_pass);
    weft_h1_parser_next(f->p, &arena, method);
    size_t used;
    weft_h1_result r = fuzz_h1_feed(f->p, &arena, method, in, len, seed, note_feed, f, &used);
    buf_addf(&f->log, "end %d used %zu %u %s\n", (int)r, used, weft_h1_parser_error_status(f->p),
             weft_h1_parser_error_reason(f->p));
    weft_h1_parser_free(f->p);
    weft_arena_free(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    uint8_t sel = data[0];
    unsigned seed = data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2;
    int method = fuzz_h1_method(sel);

    weft_h1_limits lim;
    fuzz_h1_limits(&lim, sel);
    fz a = {.sel = sel}, b = {.sel = sel};
    parse(&a, true, method, &lim, in, len, seed);
    parse(&b, false, method, &lim, in, len, seed);
    if (a.log.len != b.log.len || memcmp(a.log.p, b.log.p, a.log.len) != 0) {
        fprintf(stderr, "one-pass mismatch\n--- one pass\n%.*s\n--- llhttp\n%.*s\n", (int)a.log.len,
                a.log.p, (int)b.log.len, b.log.p);
        abort();
    }
    free(a.log.p);
    free(b.log.p);
    return 0;
}
