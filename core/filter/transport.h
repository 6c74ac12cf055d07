/* transport.h (core): the connection object transport filters see as
 * weft_connection, and the state a downstream connection keeps to run its
 * transport chain (bytes from the network -> filters -> codec, and back). */
#ifndef WEFT_FILTER_TRANSPORT_H
#define WEFT_FILTER_TRANSPORT_H

#include <event2/buffer.h>

#include "filter/filter.h"
#include "net/conn_facts.h"

#define WEFT_CONNECTION_MAGIC 0x636f6e6eu /* "conn" */

/* Longest peer identity a transport filter may set, NUL excluded. */
#define WEFT_CONN_IDENTITY_MAX 511

struct weft_connection {
    uint32_t magic;
    weft_conn_facts facts; /* what the SDK reports for this connection */
    char peer_ip[64], local_ip[64];
    char *identity; /* set by a transport filter (SPIFFE id); owned, NULL until
                       then (most connections never have one: not inline) */
    char alpn[32];
    const weft_filter_chain *chain; /* transport filters of the listener */
    void **ctx;                     /* per transport filter connection contexts */
    /* Buffers between stages: stage i reads in[i] and writes in[i+1];
     * in[0] is the socket's input, the codec reads in[n]. Same for out,
     * the other way round: the codec writes out[n], the socket sends out[0]. */
    struct evbuffer **in, **out;
    size_t n;
};

/* Sets up the transport chain (n may be 0: then nothing is allocated and
 * the codec uses the socket buffers directly). Returns -1 on failure. */
int weft_transport_init(struct weft_connection *c, const weft_filter_chain *chain,
                        struct evbuffer *sock_in, struct evbuffer *sock_out);
/* Runs bytes read from the socket up through the chain. -1: close. */
int weft_transport_read(struct weft_connection *c);
/* Runs bytes the codec wrote down through the chain. -1: close. */
int weft_transport_write(struct weft_connection *c);
void weft_transport_close(struct weft_connection *c);
static inline struct evbuffer *weft_transport_codec_in(struct weft_connection *c) {
    return c->in[c->n];
}
static inline struct evbuffer *weft_transport_codec_out(struct weft_connection *c) {
    return c->out[c->n];
}

#endif
