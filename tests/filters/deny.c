/* deny: answers 403 itself (reason denied_by_filter, header x-denied-by:
 * deny) to a request carrying an x-deny header; everything else passes.
 * No pause, no resume: the reply is sent from the header hook. */
#include <weft/filter.h>

static weft_status deny_request_headers(void *ctx, weft_stream *s, bool end_stream) {
    if (weft_header_count(s, WEFT_REQUEST_HEADERS, WEFT_STR("x-deny")) == 0)
        return WEFT_CONTINUE;
    static const weft_str names[] = {WEFT_STR("x-denied-by")};
    static const weft_str values[] = {WEFT_STR("deny")};
    if (weft_reply_send(s, 403, WEFT_STR("denied_by_filter"), names, values, 1,
                        WEFT_STR("denied\n")) != WEFT_OK)
        return WEFT_CONTINUE;
    return WEFT_REPLIED;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = deny_request_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("deny", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
