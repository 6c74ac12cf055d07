/* h2_pool.h: HTTP/2 to upstreams (cluster `protocol: http2`), nghttp2
 * client sessions multiplexing many streams per connection. Connections
 * live per worker and endpoint; a new stream goes to a connection with
 * room under the peer's SETTINGS_MAX_CONCURRENT_STREAMS, else a new
 * connection opens. After a GOAWAY a connection takes no new streams;
 * streams it refused (REFUSED_STREAM, ids above last_stream_id) are
 * reported as retryable resets. Response events reach the user (the
 * exchange) through its callbacks (up_user.h), as for HTTP/1.1. */
#ifndef WEFT_UPSTREAM_H2_POOL_H
#define WEFT_UPSTREAM_H2_POOL_H

#include <event2/buffer.h>

#include "common/wctx.h"
#include "runtime/snapshot.h"
#include "upstream/up_user.h"

typedef struct weft_h2up_stream weft_h2up_stream;
typedef struct weft_h2up_conn weft_h2up_conn;

/* Starts the request of user u (copied; its head and target prepared) on
 * endpoint ep. has_body: DATA frames will follow. NULL on immediate
 * failure. */
weft_h2up_stream *weft_h2up_start(weft_worker *w, const weft_up_user *u, weft_cluster_snap *c,
                                  const weft_endpoint *ep, bool has_body);
/* Request body (moved out of chunk) and its end (with trailers or NULL). */
void weft_h2up_body(weft_h2up_stream *us, struct evbuffer *chunk);
void weft_h2up_body_data(weft_h2up_stream *us, const char *p, size_t n);
void weft_h2up_end(weft_h2up_stream *us, const weft_hdrs *trailers);
size_t weft_h2up_pending(const weft_h2up_stream *us);
/* Moves the request body us holds into dst when its connection never
 * connected (nothing was framed, so nothing was sent); false, and dst
 * untouched, when some may have been sent. */
bool weft_h2up_take_unsent(weft_h2up_stream *us, struct evbuffer *dst);
/* Flow control of the response: pause stops acknowledging DATA. */
void weft_h2up_pause(weft_h2up_stream *us);
void weft_h2up_resume(weft_h2up_stream *us);
/* The stream lets go (complete, or abandoning: then RST_STREAM CANCEL). */
void weft_h2up_release(weft_h2up_stream *us);
/* True when the peer refused the stream before processing it. */
bool weft_h2up_refused(const weft_h2up_stream *us);

void weft_h2up_free_all(weft_worker *w);

#endif
