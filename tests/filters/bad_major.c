/* bad_major: a filter built for a future ABI major (2.0). The loader must
 * refuse it with one line naming the file and both ABI versions. */
#include <weft/filter.h>

static weft_status bad_major_headers(void *ctx, weft_stream *s, bool end_stream) {
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_request_headers = bad_major_headers,
};

static const weft_filter_descriptor desc = {
    .size = sizeof(weft_filter_descriptor),
    .abi_major = WEFT_ABI_MAJOR + 1,
    .abi_minor = 0,
    .name = "bad_major",
    .kind = WEFT_FILTER_HTTP,
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
