/* callout.h (core): asynchronous HTTP/1.1 requests a filter makes to a
 * named cluster (weft_callout_start). One connection per callout (no
 * pooling: callouts are control-plane traffic such as ext-authz checks);
 * the response body is collected up to WEFT_CALLOUT_MAX_BODY. */
#ifndef WEFT_FILTER_CALLOUT_H
#define WEFT_FILTER_CALLOUT_H

#include <weft/filter.h>

#define WEFT_CALLOUT_MAX_BODY (1024 * 1024)

weft_result weft_filter_callout_start(weft_stream *s, weft_str cluster, weft_str method,
                                      weft_str path, const weft_str *hn, const weft_str *hv,
                                      size_t n, weft_str body, uint64_t timeout_ms,
                                      weft_callout_cb cb, void *arg, weft_callout **out);
weft_result weft_filter_callout_cancel(weft_stream *s, weft_callout *c);
/* Callouts of the stream still in flight (for the per-stream cap). */
size_t weft_callouts_live(const weft_stream *s);
/* Stream end: cancels every callout still running (no callbacks). */
void weft_callouts_cancel_all(weft_stream *s);

#endif
