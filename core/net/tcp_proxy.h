/* tcp_proxy.h: opaque TCP proxying for `tcp_proxy:` listeners. Each
 * accepted connection gets an upstream connection to an endpoint of the
 * listener's cluster (load balanced, connect timeout, up to
 * max_connect_attempts endpoints tried) and bytes are moved both ways
 * without copies (evbuffer chains change hands). No protocol is parsed or
 * sniffed: a server that speaks first reaches the client at once.
 *
 * Half-close: an EOF from one side shuts down the write side of the other
 * once what is queued for it is flushed; the other direction keeps
 * flowing until it ends too. A reset or error on either side closes both.
 * Backpressure: a side stops being read while the other side's output
 * holds the listener's buffer_high_watermark or more. The connection is
 * closed after idle_timeout without a byte either way.
 *
 * Connections are owned by their worker (w->tcp_conns) and count in
 * w->active_conns, so a drain waits for them up to drain_timeout. All of
 * this runs on the worker thread, but weft_tcp_proxy_free_all, which runs
 * after the worker thread has been joined. */
#ifndef WEFT_NET_TCP_PROXY_H
#define WEFT_NET_TCP_PROXY_H

#include <stdbool.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "common/wctx.h"

/* Takes ownership of fd (closed at once if the listener is gone, the
 * worker is draining, or the listener's max_connections share is used). */
void weft_tcp_proxy_accept(weft_worker *w, const char *listener_name, evutil_socket_t fd,
                           const struct sockaddr *sa, int salen);
/* Shutdown: closes and frees every TCP connection of the worker (each is
 * access-logged). Called once the worker thread has stopped. */
void weft_tcp_proxy_free_all(weft_worker *w);

#endif
