/* conn_facts.h: what a downstream connection knows about itself, as the
 * SDK reports it (addresses, TLS, peer identity, ALPN, SNI, original
 * destination). Filled by the listener and the transport chain, read by
 * the stream engine and filters. */
#ifndef WEFT_NET_CONN_FACTS_H
#define WEFT_NET_CONN_FACTS_H

#include <stdbool.h>
#include <stdint.h>

/* What the downstream connection knows about itself. */
typedef struct weft_conn_facts {
    const char *peer_ip;
    uint16_t peer_port;
    const char *local_ip;
    uint16_t local_port;
    bool tls;
    const char *peer_identity; /* NULL when none */
    const char *alpn;          /* NULL when none */
    /* Where the client connected to: SO_ORIGINAL_DST (a redirected
     * connection), else the local address. NULL when unknown. */
    const char *orig_dst_ip;
    uint16_t orig_dst_port;
    const char *sni;         /* from a transport filter's handshake; NULL when none */
    const char *tls_version; /* same */
    const char *cipher;      /* same */
    uint32_t hs_flags;       /* WEFT_HANDSHAKE_* reported so far */
} weft_conn_facts;

#endif
