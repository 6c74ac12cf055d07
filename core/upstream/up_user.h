/* up_user.h: the exchange an upstream connection (pool.c) or HTTP/2
 * client stream (h2_pool.c) serves, as the upstream layer sees it: what it
 * needs to know of the request, and the callbacks through which it reports
 * back. The upstream layer never calls into the stream engine directly;
 * the stream registers these (core/http/stream_up_ops.c). */
#ifndef WEFT_UPSTREAM_UP_USER_H
#define WEFT_UPSTREAM_UP_USER_H

#include <event2/buffer.h>

#include "common/common.h"
#include "http/message.h"

typedef enum {
    WEFT_UP_ERR_CONNECT = 1, /* refused, unreachable */
    WEFT_UP_ERR_CONNECT_TIMEOUT,
    WEFT_UP_ERR_RESET,    /* closed/reset before the response completed */
    WEFT_UP_ERR_PROTOCOL, /* unparseable response */
    /* `protocol: auto`: the transport handshake of an HTTP/1.1 connection
     * picked ALPN h2; nothing was sent (the request waits for the
     * handshake): the endpoint speaks HTTP/2. */
    WEFT_UP_ERR_ALPN_H2,
} weft_up_err;

/* Callbacks get the user's `owner`. The int results are the h1 parser's
 * WEFT_H1_CB_* (OK, PAUSE, ABORT). `error` and `complete` may release the
 * upstream from inside the callback (the upstream defers its own free). */
typedef struct weft_up_events {
    void (*connected)(void *owner);
    int (*head)(void *owner, weft_resp_head *h);
    int (*body)(void *owner, const char *p, size_t n);
    int (*trailers)(void *owner, weft_hdrs *t);
    int (*complete)(void *owner);
    void (*error)(void *owner, weft_up_err err);
    void (*writable)(void *owner); /* request output drained below its low watermark */
    void (*feed_end)(void *owner); /* the parser consumed what one read brought */
    void (*tunnel_data)(void *owner, struct evbuffer *in); /* raw bytes (101/CONNECT) */
} weft_up_events;

typedef struct weft_up_user {
    void *owner; /* NULL: detached */
    const weft_up_events *ev;
    weft_arena *arena;        /* response heads and trailers are allocated here */
    const weft_req_head *req; /* the request head */
    weft_sv target;           /* its target (HTTP/2 :path) */
    uint32_t high_watermark;  /* of the request output */
} weft_up_user;

#endif
