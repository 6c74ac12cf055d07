/* h1_codec.h: HTTP/1.1 framing (RFC 9112) around llhttp (strict, no
 * lenient flags) plus the checks a proxy must make beyond it, and the
 * writer for heads and chunked bodies.
 *
 * The parser is incremental: feed it whatever bytes arrived; it calls
 * on_head once the head is complete and validated, on_body with de-framed
 * body bytes (de-chunked), and on_complete at the end of the message,
 * after which it stops consuming (returns WEFT_H1_DONE with `consumed`
 * pointing just past the message) so that pipelined requests are handled
 * one at a time. Call weft_h1_parser_next() to parse the next message. */
#ifndef WEFT_HTTP_H1_CODEC_H
#define WEFT_HTTP_H1_CODEC_H

#include "http/message.h"
#include <llhttp.h>

struct evbuffer;

typedef struct weft_h1_limits {
    uint32_t max_header_bytes;    /* request-line/status-line + headers; 431 (resp: 502) */
    uint32_t max_headers;         /* header count; 431 */
    uint32_t max_uri_len;         /* request-target length; 414 */
    uint64_t max_body_bytes;      /* 0 = unlimited; 413 */
    uint32_t max_chunk_ext_bytes; /* chunk extensions per chunk; 400 */
} weft_h1_limits;

void weft_h1_limits_default(weft_h1_limits *l); /* 60KiB, 100, 8KiB, 0, 4KiB */

typedef enum {
    WEFT_H1_OK = 0, /* all bytes consumed, message not complete yet */
    WEFT_H1_DONE,   /* message complete; *consumed = bytes used */
    WEFT_H1_PAUSED, /* a callback asked to pause; *consumed valid */
    WEFT_H1_ERROR,  /* see weft_h1_parser_error() */
} weft_h1_result;

/* Callback return values. */
enum {
    WEFT_H1_CB_OK = 0,
    WEFT_H1_CB_SKIP_BODY = 1 /* on_head only: response to HEAD etc. */,
    WEFT_H1_CB_PAUSE = 2,
    WEFT_H1_CB_ABORT = -1
};

typedef struct weft_h1_callbacks {
    /* head is owned by the parser's message (strings in the arena given to
     * weft_h1_parser_next); for a request parser `req` is set, for a
     * response parser `resp`. */
    int (*on_req_head)(void *ud, weft_req_head *req);
    int (*on_resp_head)(void *ud, weft_resp_head *resp);
    /* De-framed body bytes; the view is valid only during the call. */
    int (*on_body)(void *ud, const char *p, size_t n);
    /* Trailers (chunked only), after the last body byte. May be NULL. */
    int (*on_trailers)(void *ud, weft_hdrs *trailers);
    int (*on_complete)(void *ud);
} weft_h1_callbacks;

typedef enum { WEFT_H1_REQUEST = 1, WEFT_H1_RESPONSE = 2 } weft_h1_kind;

typedef struct weft_h1_parser weft_h1_parser; /* opaque; see h1_parser.c */

weft_h1_parser *weft_h1_parser_new(weft_h1_kind kind, const weft_h1_limits *lim,
                                   const weft_h1_callbacks *cbs, void *ud);
void weft_h1_parser_free(weft_h1_parser *p);
/* Makes p what weft_h1_parser_new(its kind, lim, its callbacks, ud) would
 * make, reusing its memory (parsers recycled between connections). */
void weft_h1_parser_reset(weft_h1_parser *p, const weft_h1_limits *lim, void *ud);
/* Starts a new message whose strings go into `arena` (owned by caller,
 * must outlive the message). Must be called before the first feed and
 * after each WEFT_H1_DONE. For a response parser, `req_method_id` is the
 * method of the request it answers (HEAD/CONNECT change framing). */
void weft_h1_parser_next(weft_h1_parser *p, weft_arena *arena, int req_method_id);
/* Callback semantics (see h1_parser.c for the why):
 * - on_req_head / on_resp_head run once the head is complete and passed
 *   every check. A response parser calls on_resp_head once per interim 1xx
 *   (100, 102, 103; not 101) and once more for the final response, all
 *   with the same struct, overwritten each time (copy what you keep);
 *   on_complete runs only after the final one. 101 and CONNECT 2xx are
 *   final and bodyless: the bytes after them are the tunnel.
 * - on_body gets only non-empty, de-chunked spans; on_trailers runs only
 *   when a chunked message had at least one trailer field.
 * - Returning WEFT_H1_CB_PAUSE from on_*_head, on_body or on_trailers makes
 *   feed return WEFT_H1_PAUSED with *consumed just past the bytes already
 *   delivered; WEFT_H1_CB_ABORT (or any negative value) makes it return
 *   WEFT_H1_ERROR ("h1_aborted"/"upstream_aborted"). PAUSE from on_complete
 *   is the same as OK: feed stops there anyway.
 * - After PAUSED, feed again from data + consumed (weft_h1_parser_resume
 *   first, or feed resumes implicitly). llhttp may owe the end of the
 *   message without needing another byte (pause at a bodyless head, after
 *   the trailers, or on the last body byte): call feed even with len 0
 *   while weft_h1_parser_needs_feed() is true, or on_complete never comes.
 * - After WEFT_H1_DONE, bytes from data + consumed belong to the next
 *   message: call weft_h1_parser_next, then feed them. Errors are sticky. */
weft_h1_result weft_h1_parser_feed(weft_h1_parser *p, const char *data, size_t len,
                                   size_t *consumed);
/* Whether a head that arrived whole in one feed is read in one pass by
 * the parser itself (the default) or by llhttp as well; both give the
 * same results (tests/fuzz/fuzz_h1_onepass.c). For tests and fuzzing. */
void weft_h1_parser_set_one_pass(weft_h1_parser *p, bool on);
/* How many heads this parser read in one pass since it was made. */
uint32_t weft_h1_parser_one_pass_heads(const weft_h1_parser *p);
/* Resumes after WEFT_H1_PAUSED. */
void weft_h1_parser_resume(weft_h1_parser *p);
/* True from a WEFT_H1_PAUSED result until the next feed: a feed with no
 * new bytes (len 0) may still make progress, up to on_complete. */
bool weft_h1_parser_needs_feed(const weft_h1_parser *p);
/* The peer closed: for a response framed until close this completes the
 * message (calls on_complete) and returns WEFT_H1_DONE; if a message was
 * mid-way it returns WEFT_H1_ERROR; if idle, WEFT_H1_OK. */
weft_h1_result weft_h1_parser_eof(weft_h1_parser *p);
/* True once any byte of the current message has been consumed. */
bool weft_h1_parser_in_message(const weft_h1_parser *p);
/* True between on_*_head and on_complete. */
bool weft_h1_parser_in_body(const weft_h1_parser *p);

/* After WEFT_H1_ERROR: HTTP status to answer (400, 413, 414, 431; for a
 * response parser 502) and a short token for x-weft-reason / the access
 * log, e.g. "h1_cl_and_te", "h1_header_too_large". */
uint16_t weft_h1_parser_error_status(const weft_h1_parser *p);
const char *weft_h1_parser_error_reason(const weft_h1_parser *p);

/* ---- writer ---- */
/* Writes "METHOD target HTTP/1.1\r\n" + headers + "\r\n". `target`
 * overrides req->target when non-NULL (prefix rewrite). Headers are
 * written as given (the caller strips hop-by-hop and adds its own). */
int weft_h1_write_req_head(struct evbuffer *out, const weft_req_head *req, const weft_sv *target);
/* Writes "HTTP/1.1 status reason\r\n" + headers + "\r\n". */
int weft_h1_write_resp_head(struct evbuffer *out, const weft_resp_head *resp);
/* One chunk "<hex>\r\n<data>\r\n"; n must be > 0. */
int weft_h1_write_chunk(struct evbuffer *out, const char *p, size_t n);
/* One chunk carrying all of `data` without copying it: its chains move to
 * `out` (by_reference: `data` keeps its bytes and `out` references them,
 * evbuffer_add_buffer_reference). Nothing is written when data is empty. */
int weft_h1_write_chunk_buf(struct evbuffer *out, struct evbuffer *data, bool by_reference);
/* "0\r\n" + trailers + "\r\n". trailers may be NULL. */
int weft_h1_write_last_chunk(struct evbuffer *out, const weft_hdrs *trailers);

#endif
