/* h2_nv.c: header lists for nghttp2 (see h2_nv.h). */
#include "http/h2/h2_nv.h"

#include <stdlib.h>
#include <string.h>

bool weft_h2_connection_specific(weft_sv n, bool host_too) {
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < WEFT_ARRAY_LEN(names); i++)
        if (weft_sv_eq(n, weft_sv_from(names[i])))
            return true;
    return host_too && weft_sv_eq(n, WEFT_SV_LIT("host"));
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
