/* whoami: copies what the core knows about the downstream connection into
 * response headers: x-peer-identity (weft_conn_peer_identity, "none" when
 * unset), x-peer-address ("ip:port", weft_conn_peer_address) and
 * x-peer-tls ("true"/"false"); with ABI 1.1 also x-conn-sni (weft_conn_sni,
 * "none") and x-original-dst ("ip:port", weft_conn_original_dst). */
#include <stdio.h>

#include <weft/filter.h>

static weft_status whoami_response_headers(void *ctx, weft_stream *s, bool end_stream) {
    weft_str id;
    if (weft_conn_peer_identity(s, &id) != WEFT_OK)
        id = WEFT_STR("none");
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-peer-identity"), id);
    weft_str ip;
    uint16_t port = 0;
    char addr[128];
    int n = weft_conn_peer_address(s, &ip, &port) == WEFT_OK
                ? snprintf(addr, sizeof(addr), "%.*s:%u", (int)ip.len, ip.ptr, (unsigned)port)
                : snprintf(addr, sizeof(addr), "none");
    if (n > 0 && (size_t)n < sizeof(addr))
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-peer-address"),
                        (weft_str){addr, (size_t)n});
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-peer-tls"),
                    weft_conn_is_tls(s) ? WEFT_STR("true") : WEFT_STR("false"));
    /* ABI 1.1: the server name a transport filter's handshake reported, and
     * where the client connected to. */
    weft_str sni;
    if (weft_conn_sni(s, &sni) != WEFT_OK)
        sni = WEFT_STR("none");
    weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-conn-sni"), sni);
    n = weft_conn_original_dst(s, &ip, &port) == WEFT_OK
            ? snprintf(addr, sizeof(addr), "%.*s:%u", (int)ip.len, ip.ptr, (unsigned)port)
            : snprintf(addr, sizeof(addr), "none");
    if (n > 0 && (size_t)n < sizeof(addr))
        weft_header_set(s, WEFT_RESPONSE_HEADERS, WEFT_STR("x-original-dst"),
                        (weft_str){addr, (size_t)n});
    return WEFT_CONTINUE;
}

static const weft_http_filter_ops ops = {
    .size = sizeof(weft_http_filter_ops),
    .on_response_headers = whoami_response_headers,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("whoami", WEFT_FILTER_HTTP),
    .http = &ops,
};

WEFT_FILTER_DEFINE(desc)
