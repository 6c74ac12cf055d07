/* version: reports the version it was compiled as (-DFILTER_VERSION=N)
 * in the response header x-filter-version. Built twice from this source
 * (version_v1.so, version_v2.so) for the live library swap test. */
#include <weft/filter.h>

#ifndef FILTER_VERSION
#error "build with -DFILTER_VERSION=<n>"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

static weft_status version_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-filter-version"),
                    WEFT_STR(STR(FILTER_VERSION)));
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_response_headers = version_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("version", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
