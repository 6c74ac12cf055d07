/* h2_nv.c: header lists for nghttp2 (see h2_nv.h). */
#include "http/h2/h2_nv.h"

#include <stdlib.h>
#include <string.h>

/* Called for every header crossing to or from HTTP/2: a switch on the
 * length, then at most two compares of known length (no strlen). Exact,
 * case-sensitive: names are lower-case here. */
bool weft_h2_connection_specific(weft_sv n, bool host_too) {
    switch (n.len) {
    case 4:
        return host_too && memcmp(n.p, "host", 4) == 0;
    case 7:
        return memcmp(n.p, "upgrade", 7) == 0;
    case 10:
        return memcmp(n.p, "connection", 10) == 0 || memcmp(n.p, "keep-alive", 10) == 0;
    case 16:
        return memcmp(n.p, "proxy-connection", 16) == 0;
    case 17:
        return memcmp(n.p, "transfer-encoding", 17) == 0;
    default:
        return false;
    }
}

nghttp2_nv *weft_h2_nv_block(const weft_hdrs *h, size_t *n) {
    *n = 0;
    if (!h || !h->n)
        return NULL;
    size_t bytes = 0;
    for (uint32_t i = 0; i < h->n; i++)
        bytes += h->v[i].name.len + h->v[i].value.len;
    char *mem = malloc(h->n * sizeof(nghttp2_nv) + bytes);
    if (!mem)
        return NULL;
    nghttp2_nv *nva = (nghttp2_nv *)mem;
    char *q = mem + h->n * sizeof(nghttp2_nv);
    size_t k = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        const weft_hdr *x = &h->v[i];
        if (weft_h2_connection_specific(x->name, false))
            continue;
        memcpy(q, x->name.p, x->name.len);
        nva[k].name = (uint8_t *)q;
        nva[k].namelen = x->name.len;
        q += x->name.len;
        memcpy(q, x->value.p, x->value.len);
        nva[k].value = (uint8_t *)q;
        nva[k].valuelen = x->value.len;
        nva[k].flags = NGHTTP2_NV_FLAG_NONE;
        q += x->value.len;
        k++;
    }
    if (!k) {
        free(mem);
        return NULL;
    }
    *n = k;
    return nva;
}
