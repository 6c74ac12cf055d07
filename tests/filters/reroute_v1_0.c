/* reroute_v1_0: a filter built against the frozen ABI 1.0 header
 * (tests/abi/filter_v1_0.h) that steers routing the 1.0 way, by changing
 * the request head in on_request_headers without any re-match call (1.0
 * has none: it routed after the chain):
 *   - x-reroute-path: <path>  -> weft_request_set_path(<path>)
 *   - x-reroute-lane: <value> -> sets request header x-lane: <value>
 * weft keeps that working with the route now matched before the filters:
 * a 1.0 filter's change makes the stream match again once the request
 * header phase passed. */
#include "filter_v1_0.h"

static weft_status rr_req_headers(void *ctx, weft_stream *s, bool end_stream) {
    (void)ctx;
    (void)end_stream;
    weft_str v;
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-reroute-path"), &v) == WEFT_OK)
        weft_request_set_path(s, v);
    if (weft_header_get(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-reroute-lane"), &v) == WEFT_OK)
        weft_header_set(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-lane"), v);
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = rr_req_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("reroute_v1_0", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
