/* bad_hook: on_request_headers returns 7, which is not a weft_status. The
 * core must not trust it: the request is answered 500 (x-weft-reason:
 * filter_error) and the proxy keeps serving. */
#include <weft/filter.h>

static weft_status bad_hook_headers(void *ctx, weft_stream *s, bool end_stream) {
    return (weft_status)7;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = bad_hook_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("bad_hook", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
