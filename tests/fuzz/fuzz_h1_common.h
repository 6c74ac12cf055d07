/* fuzz_h1_common.h: what the HTTP/1.1 fuzz targets (fuzz_h1.c,
 * fuzz_h1_onepass.c) share: the growable byte log they record events in
 * and its formatters, the input's selector bits for the answered method
 * and the limits, and the read sizes of a split. */
#ifndef WEFT_FUZZ_H1_COMMON_H
#define WEFT_FUZZ_H1_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1/h1_codec.h"

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static inline void buf_add(buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np)
            abort();
        b->p = np;
        b->cap = ncap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static inline void buf_addf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void buf_addf(buf *b, const char *fmt, ...) {
    char tmp[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    buf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static inline void buf_add_sv(buf *b, weft_sv s) {
    buf_addf(b, "%zu:", s.len);
    buf_add(b, s.p, s.len);
}

static inline void buf_add_hdrs(buf *b, const weft_hdrs *h) {
    buf_addf(b, "[%u]", h->n);
    for (uint32_t i = 0; i < h->n; i++) {
        buf_add_sv(b, h->v[i].name);
        buf_add_sv(b, h->v[i].value);
    }
}

/* Feeds in[0, len) to p, split per `seed` (0 = in one piece), as the
 * proxy does: bytes left after DONE or PAUSED are fed again (the parser
 * after weft_h1_parser_next, or resumed: it may owe a completion even
 * with no new bytes, so it is fed, possibly nothing, once more). Calls
 * on_feed (if any) after each feed. Returns the last result, the
 * end-of-input one when there was no error; *consumed = bytes used. */
static inline weft_h1_result fuzz_h1_feed(weft_h1_parser *p, weft_arena *arena, int method,
                                          const char *in, size_t len, unsigned seed,
                                          void (*on_feed)(void *, size_t off, size_t n,
                                                          weft_h1_result r, size_t used),
                                          void *ud, size_t *consumed) {
    static const size_t piece[8] = {1, 2, 3, 5, 8, 13, 64, 4096};
    weft_h1_result r = WEFT_H1_OK;
    size_t off = 0, arrived = 0;
    unsigned i = 0;
    bool resumed = false;
    for (;;) {
        if (off == arrived && !resumed) {
            if (arrived == len)
                break;
            size_t step = seed ? piece[(seed + i++ * 5) % 8] : len;
            arrived = arrived + step < len ? arrived + step : len;
        }
        size_t used = 0;
        resumed = false;
        r = weft_h1_parser_feed(p, in + off, arrived - off, &used);
        if (on_feed)
            on_feed(ud, off, arrived - off, r, used);
        if (used > arrived - off)
            abort();
        off += used;
        if (r == WEFT_H1_DONE) {
            weft_arena_reset(arena);
            weft_h1_parser_next(p, arena, method);
        } else if (r == WEFT_H1_PAUSED) {
            weft_h1_parser_resume(p);
            resumed = true;
        } else if (r == WEFT_H1_ERROR) {
            if (weft_h1_parser_error_status(p) == 0 || !weft_h1_parser_error_reason(p)[0])
                abort();
            break;
        } else if (off != arrived) {
            abort(); /* OK means every byte was taken */
        }
    }
    if (r != WEFT_H1_ERROR) {
        weft_h1_result e = weft_h1_parser_eof(p);
        if (e == WEFT_H1_ERROR && weft_h1_parser_error_status(p) == 0)
            abort();
        if (e == WEFT_H1_DONE || e == WEFT_H1_ERROR)
            r = e;
    }
    *consumed = off;
    return r;
}

/* Selector bits 1-2: the method of the request a response answers. */
static inline int fuzz_h1_method(uint8_t sel) {
    static const int methods[4] = {HTTP_GET, HTTP_HEAD, HTTP_CONNECT, HTTP_POST};
    return methods[(sel >> 1) & 3];
}

/* Selector bit 3: small limits (exercise every limit path). */
static inline void fuzz_h1_limits(weft_h1_limits *lim, uint8_t sel) {
    weft_h1_limits_default(lim);
    if (sel & 8) {
        lim->max_header_bytes = 200;
        lim->max_headers = 6;
        lim->max_uri_len = 40;
        lim->max_body_bytes = 64;
        lim->max_chunk_ext_bytes = 8;
    }
}

#endif
