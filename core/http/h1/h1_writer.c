/* h1_writer.c: serialises heads and chunked framing into an evbuffer.
 *
 * Headers reach the writer from filters and from the other protocol side
 * and h2, not only from our own parser, so every name, value, target and
 * reason is checked before a byte is written: a CR or LF smuggled into a
 * value would otherwise split the message on the wire (response
 * splitting). The one exception: fields our HTTP/1.1 parser read and
 * nothing changed since (the list's `checked` prefix) passed the same
 * checks when they were parsed. On refusal nothing is appended (-1). */
#include "http/h1/h1_codec.h"

#include <event2/buffer.h>

static inline bool is_tchar(unsigned char c) {
    return weft_is_tchar(c);
}

static bool token_ok(weft_sv s) {
    if (!s.len)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.p[i]))
            return false;
    return true;
}

/* field-value / reason-phrase: HTAB, SP, VCHAR, obs-text. */
static bool text_ok(weft_sv s) {
    return weft_text_span(s.p, 0, s.len) == s.len;
}

/* Lower-case hex of n and CRLF, as "%zx\r\n" would (no snprintf on the
 * body path). out has room for 16 digits + 2. Returns the length. */
static size_t chunk_size_line(char out[24], size_t n) {
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = hex[n & 0xf];
        n >>= 4;
    } while (n && k < sizeof(tmp));
    size_t len = 0;
    while (k)
        out[len++] = tmp[--k];
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}

static bool target_ok(weft_sv s) {
    if (!s.len)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c <= 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* The fields from `checked` on: the ones before it came from our own
 * parser, which refused every byte these checks would refuse (see
 * weft_hdrs). Whatever a filter, the route config or the other protocol
 * side added or set is after it and checked here. */
static bool hdrs_ok(const weft_hdrs *h) {
    for (uint32_t i = h ? h->checked : 0; h && i < h->n; i++)
        if (!token_ok(h->v[i].name) || !text_ok(h->v[i].value))
            return false;
    return true;
}

static size_t hdrs_size(const weft_hdrs *h) {
    size_t n = 0;
    for (uint32_t i = 0; h && i < h->n; i++)
        n += h->v[i].name.len + h->v[i].value.len + 4;
    return n;
}

/* Each write reserves one contiguous region, fills it and commits it:
 * no half-written head is ever left in `out` (on OOM nothing is added),
 * and no temporary buffer is allocated. */
typedef struct {
    char *p;
} wcur;

static void w(wcur *c, const void *p, size_t n) {
    if (n)
        memcpy(c->p, p, n);
    c->p += n;
}

static void w_hdrs(wcur *c, const weft_hdrs *h) {
    for (uint32_t i = 0; h && i < h->n; i++) {
        w(c, h->v[i].name.p, h->v[i].name.len);
        w(c, ": ", 2);
        w(c, h->v[i].value.p, h->v[i].value.len);
        w(c, "\r\n", 2);
    }
}

static int reserve(struct evbuffer *out, size_t n, struct evbuffer_iovec *v, wcur *c) {
    if (evbuffer_reserve_space(out, (ev_ssize_t)n, v, 1) != 1 || v->iov_len < n)
        return -1;
    c->p = v->iov_base;
    return 0;
}

static int finish(struct evbuffer *out, struct evbuffer_iovec *v, const wcur *c) {
    v->iov_len = (size_t)(c->p - (char *)v->iov_base);
    return evbuffer_commit_space(out, v, 1) == 0 ? 0 : -1;
}

int weft_h1_write_req_head(struct evbuffer *out, const weft_req_head *req, const weft_sv *target) {
    weft_sv t = target ? *target : req->target;
    if (!token_ok(req->method) || !target_ok(t) || !hdrs_ok(&req->headers))
        return -1;
    size_t total = req->method.len + 1 + t.len + 11 + hdrs_size(&req->headers) + 2;
    struct evbuffer_iovec v;
    wcur c;
    if (reserve(out, total, &v, &c) != 0)
        return -1;
    w(&c, req->method.p, req->method.len);
    w(&c, " ", 1);
    w(&c, t.p, t.len);
    w(&c, " HTTP/1.1\r\n", 11);
    w_hdrs(&c, &req->headers);
    w(&c, "\r\n", 2);
    return finish(out, &v, &c);
}

int weft_h1_write_resp_head(struct evbuffer *out, const weft_resp_head *resp) {
    if (resp->status < 100 || resp->status > 999)
        return -1;
    weft_sv reason =
        resp->reason.len ? resp->reason : weft_sv_from(weft_status_reason(resp->status));
    if (!text_ok(reason) || !hdrs_ok(&resp->headers))
        return -1;
    /* "HTTP/1.1 NNN ": the status is 100..999 (checked above), three
     * digits, formatted without snprintf. */
    char line[16];
    unsigned st = resp->status;
    memcpy(line, "HTTP/1.1 ", 9);
    line[9] = (char)('0' + st / 100);
    line[10] = (char)('0' + st / 10 % 10);
    line[11] = (char)('0' + st % 10);
    line[12] = ' ';
    size_t ln = 13;
    size_t total = ln + reason.len + 2 + hdrs_size(&resp->headers) + 2;
    struct evbuffer_iovec v;
    wcur c;
    if (reserve(out, total, &v, &c) != 0)
        return -1;
    w(&c, line, ln);
    w(&c, reason.p, reason.len);
    w(&c, "\r\n", 2);
    w_hdrs(&c, &resp->headers);
    w(&c, "\r\n", 2);
    return finish(out, &v, &c);
}

int weft_h1_write_chunk(struct evbuffer *out, const char *p, size_t n) {
    if (n == 0)
        return -1; /* a zero-size chunk is the last-chunk and would end the body */
    char line[24];
    size_t ln = chunk_size_line(line, n);
    struct evbuffer_iovec v;
    wcur c;
    if (reserve(out, ln + n + 2, &v, &c) != 0)
        return -1;
    w(&c, line, ln);
    w(&c, p, n);
    w(&c, "\r\n", 2);
    return finish(out, &v, &c);
}

int weft_h1_write_chunk_buf(struct evbuffer *out, struct evbuffer *data, bool by_reference) {
    size_t n = evbuffer_get_length(data);
    if (n == 0)
        return 0;
    char line[24];
    size_t ln = chunk_size_line(line, n);
    if (evbuffer_add(out, line, ln) != 0)
        return -1;
    int rc =
        by_reference ? evbuffer_add_buffer_reference(out, data) : evbuffer_add_buffer(out, data);
    if (rc != 0)
        return -1;
    return evbuffer_add(out, "\r\n", 2);
}

int weft_h1_write_last_chunk(struct evbuffer *out, const weft_hdrs *trailers) {
    if (!hdrs_ok(trailers))
        return -1;
    struct evbuffer_iovec v;
    wcur c;
    if (reserve(out, 3 + hdrs_size(trailers) + 2, &v, &c) != 0)
        return -1;
    w(&c, "0\r\n", 3);
    w_hdrs(&c, trailers);
    w(&c, "\r\n", 2);
    return finish(out, &v, &c);
}
