/* h2_nv.h: header lists for nghttp2, shared by the HTTP/2 server
 * (downstream) and client (upstream) sides. */
#ifndef WEFT_HTTP_H2_NV_H
#define WEFT_HTTP_H2_NV_H

#include <nghttp2/nghttp2.h>

#include "http/message.h"

/* Headers HTTP/2 forbids (RFC 9113 8.2.2); with host_too, also Host (sent
 * as :authority instead). */
bool weft_h2_connection_specific(weft_sv name, bool host_too);

/* Copies `h` (minus connection-specific fields) into ONE malloc'd block:
 * the nghttp2_nv array followed by the name and value bytes, so that it
 * outlives the arena the headers live in (trailers are sent after the
 * body, maybe after the stream's arena is gone). free() it. Returns NULL
 * with *n = 0 when nothing is left or on OOM. */
nghttp2_nv *weft_h2_nv_block(const weft_hdrs *h, size_t *n);

#endif
