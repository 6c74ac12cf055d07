/* newer_minor: a filter built against a newer minor of this ABI major
 * (it may call host functions this core lacks). The loader must refuse it
 * with one line naming the file and both ABI versions. */
#include <weft/filter.h>

static weft_status newer_minor_headers(void *ctx, weft_stream *s, bool end_stream) {
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = newer_minor_headers,
};

static const weft_filter_descriptor desc = {
    .size = sizeof(weft_filter_descriptor),
    .abi_major = WEFT_ABI_MAJOR,
    .abi_minor = WEFT_ABI_MINOR + 1,
    .name = "newer_minor",
    .kind = WEFT_FILTER_HTTP,
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
