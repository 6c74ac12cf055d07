/* tcp_callout.h (core): raw TCP byte-stream callouts of filters
 * (weft_tcp_callout_open, SDK 1.1). A callout is one weft_conn to an
 * endpoint a cluster's load balancer picked (attempt start/end balanced,
 * a failed connect retried on another endpoint), with bounded write and
 * read buffers, connect and idle timeouts. Its handle lives in the
 * worker's handle table (filter/handles.h). Every transition runs from a
 * deferred event, so filter callbacks never run inside a conn callback or
 * a host call. Scopes: a stream (closed when the stream ends) or a filter
 * worker object of a worker snapshot (closed before its worker_destroy).
 * Worker thread only. */
#ifndef WEFT_FILTER_TCP_CALLOUT_H
#define WEFT_FILTER_TCP_CALLOUT_H

#include <weft/filter.h>

typedef struct weft_worker weft_worker;
typedef struct weft_wsnap weft_wsnap;

/* Stream-scoped open (checks done by the host call: live stream, from a
 * hook or callback, not the log phase). */
weft_result weft_tcp_callout_open_stream(weft_stream *s, weft_str cluster,
                                         const weft_tcp_callout_opts *opts,
                                         const weft_tcp_callout_cbs *cbs, void *arg,
                                         weft_tcp_callout **out);
/* Worker-scoped open (weft_worker_tcp_callout_open): lives until closed,
 * ended, or its worker handle's context goes (before worker_destroy). */
weft_result weft_tcp_callout_open_worker(weft_worker *wh, weft_str cluster,
                                         const weft_tcp_callout_opts *opts,
                                         const weft_tcp_callout_cbs *cbs, void *arg,
                                         weft_tcp_callout **out);
weft_result weft_tcp_callout_write_h(weft_tcp_callout *h, const void *data, size_t len);
weft_result weft_tcp_callout_close_h(weft_tcp_callout *h, bool flush);
/* Open stream-scoped TCP callouts of s (the per-stream cap); one whose
 * on_close runs is over and not counted. */
size_t weft_tcp_callouts_of_stream(const weft_stream *s);
/* Stream end: closes s's callouts, no callbacks. */
void weft_tcp_callouts_stream_end(weft_stream *s);
/* A worker snapshot goes: closes the callouts scoped to its filter
 * worker objects (before their worker_destroy), no callbacks. */
void weft_tcp_callouts_wsnap_end(weft_wsnap *ws);
/* Worker free: frees what is left (lingering flush-closes). */
void weft_tcp_callouts_free_all(weft_worker *w);

#endif
