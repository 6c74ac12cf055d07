/* message.h: the HTTP message model shared by codecs, router and the
 * stream pipeline. Version-neutral (h1 today, h2 later): header names are
 * stored lower-cased, values as received. All strings live in the arena
 * of the stream that owns the message. */
#ifndef WEFT_HTTP_MESSAGE_H
#define WEFT_HTTP_MESSAGE_H

#include "common/common.h"

typedef struct weft_hdr {
    weft_sv name; /* lower-case */
    weft_sv value;
} weft_hdr;

/* Ordered header list. Owner of `v` and of the strings: `arena`.
 *
 * `checked`: the first `checked` entries are known to be well-formed field
 * lines (a non-empty token name, a value of field-value bytes), so the
 * HTTP/1.1 writer does not check them again. Only the HTTP/1.1 parser sets
 * it (for the fields it read, after its scanner refused every other byte);
 * weft_hdrs_init makes it 0 (check everything). The functions below keep
 * it true: additions go after it, removals keep the order and count the
 * checked entries that survive. Code that writes v[] directly must only
 * store what is already well-formed there, or lower `checked`. */
typedef struct weft_hdrs {
    weft_hdr *v;
    uint32_t n;
    uint32_t cap;
    weft_arena *arena;
    uint32_t checked;
} weft_hdrs;

void weft_hdrs_init(weft_hdrs *h, weft_arena *a);
/* Copies name (lower-cased) and value into the arena. 0 ok, -1 OOM. */
int weft_hdrs_add(weft_hdrs *h, weft_sv name, weft_sv value);
/* Makes room for one more field (the array doubles in the arena). 0 ok,
 * -1 OOM. */
int weft_hdrs_grow(weft_hdrs *h);
/* Adds without copying: caller guarantees both views outlive the list
 * and that name is already lower-case. Inline: a head adds a dozen. */
static inline int weft_hdrs_add_ref(weft_hdrs *h, weft_sv name, weft_sv value) {
    if (h->n >= h->cap && weft_hdrs_grow(h) != 0)
        return -1;
    h->v[h->n].name = name;
    h->v[h->n].value = value;
    h->n++;
    return 0;
}
/* weft_hdrs_add_ref for a field weft made itself, known well-formed (a
 * lower-case token name, field-value bytes: a literal, an address or an id
 * weft formatted): it joins the checked prefix when every field before it
 * is checked. Never for bytes from a peer, a filter or the config. */
int weft_hdrs_add_ref_checked(weft_hdrs *h, weft_sv name, weft_sv value);
/* Removes every header with that name, then adds one. */
int weft_hdrs_set(weft_hdrs *h, weft_sv name, weft_sv value);
/* Removes every header with that name (case-insensitive); returns count. */
int weft_hdrs_remove(weft_hdrs *h, weft_sv name);
/* First value with that name, or NULL. */
const weft_sv *weft_hdrs_get(const weft_hdrs *h, weft_sv name);
/* Number of headers with that name. */
int weft_hdrs_count(const weft_hdrs *h, weft_sv name);
/* True if a comma-separated header `name` has token `tok` (case-insens). */
bool weft_hdrs_has_token(const weft_hdrs *h, weft_sv name, weft_sv tok);
/* Removes hop-by-hop headers (RFC 9110 7.6.1): connection, keep-alive,
 * proxy-connection, te (except "trailers" kept when keep_te_trailers),
 * trailer, transfer-encoding, upgrade, proxy-authenticate? no (end to end),
 * and every header named in Connection. */
void weft_hdrs_strip_hop_by_hop(weft_hdrs *h);

typedef enum {
    WEFT_BODY_NONE = 0,    /* no body at all */
    WEFT_BODY_LENGTH,      /* content-length framed */
    WEFT_BODY_CHUNKED,     /* chunked */
    WEFT_BODY_UNTIL_CLOSE, /* response read until EOF (HTTP/1.0 style) */
} weft_body_framing;

typedef struct weft_req_head {
    weft_sv method;     /* e.g. "GET" */
    int method_id;      /* llhttp_method_t value */
    weft_sv target;     /* request-target as received: path[?query] or absolute-form */
    weft_sv path;       /* path part (no query) */
    weft_sv query;      /* after '?', without it; len 0 if none */
    weft_sv authority;  /* Host header value (or absolute-form authority) */
    uint8_t http_minor; /* 0 or 1 */
    bool keep_alive;    /* per HTTP version + Connection header */
    bool expect_continue;
    bool upgrade; /* Upgrade/CONNECT requested (tunnels: later issue) */
    weft_body_framing framing;
    int64_t content_length; /* -1 if none */
    weft_hdrs headers;      /* hop-by-hop still present as received */
} weft_req_head;

typedef struct weft_resp_head {
    uint16_t status;
    weft_sv reason;
    uint8_t http_minor;
    bool keep_alive;
    weft_body_framing framing;
    int64_t content_length; /* -1 if none */
    weft_hdrs headers;
} weft_resp_head;

/* Bodyless by status (1xx, 204, 304) or because the request was HEAD. */
bool weft_resp_is_bodyless(uint16_t status, bool request_was_head);
const char *weft_status_reason(uint16_t status); /* "OK", "Not Found", ... */

#endif
