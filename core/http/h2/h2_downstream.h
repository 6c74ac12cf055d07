/* h2_downstream.h: the server side of HTTP/2 (RFC 9113) on nghttp2. One
 * session per downstream connection that began with the HTTP/2 preface
 * (h2c prior knowledge, or ALPN "h2" from a transport filter). Each HTTP/2
 * stream drives its own weft_stream through the same pipeline as HTTP/1.1
 * (filters, router, upstream); responses go back as HEADERS/DATA frames
 * with trailers kept. The connection (socket, transport filters, timers,
 * drain) stays with the downstream connection object that owns the
 * session; the session talks to it through weft_h2_host. */
#ifndef WEFT_HTTP_H2_DOWNSTREAM_H
#define WEFT_HTTP_H2_DOWNSTREAM_H

#include <event2/buffer.h>

#include "http/stream.h"

typedef struct weft_h2_session weft_h2_session;

typedef struct weft_h2_host {
    void *ctx; /* the downstream connection */
    weft_worker *w;
    struct evbuffer *(*out)(void *ctx); /* bytes toward the client */
    /* The listener for a new stream (with the worker snapshot it belongs
     * to), or NULL when the listener left the config. */
    weft_listener_snap *(*listener)(void *ctx);
    const weft_conn_facts *(*facts)(void *ctx);
    void (*activity)(void *ctx); /* frames moved: not idle */
    void (*finished)(void *ctx); /* session over: close after flushing */
    const char *peer_ip;
} weft_h2_session_host;

weft_h2_session *weft_h2_session_new(const weft_h2_session_host *host, const weft_cfg_listener *lc);
/* Feeds client bytes (drains what it used). Returns -1 when the session
 * must end now (protocol error already answered with GOAWAY). */
int weft_h2_session_recv(weft_h2_session *h, struct evbuffer *in);
/* Writes pending frames to the host's output (bounded by the watermark). */
void weft_h2_session_flush(weft_h2_session *h);
/* Graceful shutdown in two steps: a GOAWAY shutdown notice (last stream
 * id 2^31-1) with a PING; once the PING is answered (or after a second)
 * the final GOAWAY with the last stream id processed. Streams up to it
 * finish; then the host's finished() is called. */
void weft_h2_session_drain(weft_h2_session *h);
/* Number of streams not finished yet. */
size_t weft_h2_session_active(const weft_h2_session *h);
/* Resets every stream (the client is gone) and frees the session. */
void weft_h2_session_free(weft_h2_session *h);

/* Frees the worker's recycled stream objects (worker shutdown). */
void weft_h2_cache_free(weft_worker *w);

/* True if `p` (len bytes) is a prefix of the HTTP/2 client preface. */
bool weft_h2_is_preface_prefix(const char *p, size_t len);
#define WEFT_H2_PREFACE_LEN 24

#endif
