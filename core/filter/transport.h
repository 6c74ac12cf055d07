/* transport.h (core): the connection object transport filters see as
 * weft_connection, and the state a connection keeps to run its transport
 * chain (bytes from the network -> filters -> codec, and back). The same
 * object serves downstream connections (HTTP listeners, tcp_proxy) and
 * upstream ones (a cluster's transport_filters); its owner gives it three
 * callbacks for what a filter can ask on its own: more bytes to send
 * (kick), a close, and the end of the handshakes (ready). */
#ifndef WEFT_FILTER_TRANSPORT_H
#define WEFT_FILTER_TRANSPORT_H

#include <pthread.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "filter/filter.h"
#include "net/conn_facts.h"

#define WEFT_CONNECTION_MAGIC 0x636f6e6eu /* "conn" */

/* Longest peer identity a transport filter may set, NUL excluded. */
#define WEFT_CONN_IDENTITY_MAX 2048
/* Connection timers armed at once (per connection, all filters). */
#define WEFT_CONN_TIMERS_MAX 16

/* What the owner of a connection (h1 downstream, tcp_proxy, upstream
 * pool) does for the chain. Every callback may be called from inside a
 * filter hook: the owner only records and defers (never frees there). */
typedef struct weft_transport_owner_ops {
    void (*kick)(void *owner);              /* a filter queued bytes: run the write chain soon */
    void (*close)(void *owner, bool flush); /* a filter asked to close */
    void (*ready)(void *owner);             /* every handshake filter is done */
} weft_transport_owner_ops;

/* Facts only some connections have: allocated when first needed. */
typedef struct weft_conn_ext {
    char sni[256];
    char tls_version[32];
    char cipher[64];
    char orig_dst_ip[64];
    char *cluster, *endpoint, *alpn_offer, *cfg_sni; /* upstream side (owned) */
} weft_conn_ext;

struct weft_conn_timer;

struct weft_connection {
    uint32_t magic;
    weft_conn_facts facts;          /* what the SDK reports for this connection */
    char peer_ip[48], local_ip[48]; /* inet_ntop, no scope: INET6_ADDRSTRLEN (46) */
    char *identity;                 /* set by a transport filter (SPIFFE id); owned, NULL until
                                       then (most connections never have one: not inline) */
    char alpn[32];
    const weft_filter_inst *filters; /* transport filters (listener's or cluster's) */
    void **ctx;                      /* per transport filter connection contexts */
    /* Buffers between stages: stage i reads in[i] and writes in[i+1];
     * in[0] is the socket's input, the codec reads in[n]. Same for out,
     * the other way round: the codec writes out[n], the socket sends out[0]. */
    struct evbuffer **in, **out;
    size_t n;
    /* ABI 1.1: filters that write, close, time and handshake on their own */
    struct event_base *base;
    const weft_transport_owner_ops *owner_ops;
    void *owner;
    pthread_t thread;
    int32_t cur;         /* the filter whose code runs now, -1: none */
    uint32_t hs_waiting; /* WEFT_TRANSPORT_HANDSHAKE filters not done yet */
    uint8_t *hs_done;    /* per filter: handshake_done called */
    uint32_t n_timers;   /* armed */
    uint32_t side;       /* WEFT_CONNECTION_DOWNSTREAM / _UPSTREAM */
    bool closing;        /* a filter asked to close */
    bool in_close;       /* on_close / connection_destroy are running */
    size_t max_pending;  /* bytes queued toward the peer before LIMIT */
    struct weft_conn_timer *timers;
    weft_conn_ext *ext;
};

/* Sets up the transport chain (n may be 0: then nothing is allocated and
 * the codec uses the socket buffers directly). owner_ops may be NULL (a
 * filter's write, close and handshake then only take effect when the
 * owner looks). side: WEFT_CONNECTION_DOWNSTREAM runs connection_create,
 * _UPSTREAM runs upstream_connection_create with `info`. Returns -1 on
 * failure (weft_transport_close still frees what was made). */
int weft_transport_init(struct weft_connection *c, const weft_filter_inst *filters, size_t n,
                        struct event_base *base, struct evbuffer *sock_in,
                        struct evbuffer *sock_out, const weft_transport_owner_ops *owner_ops,
                        void *owner, size_t max_pending);
/* Upstream: records the facts upstream_connection_create gets, then runs it. */
int weft_transport_start_upstream(struct weft_connection *c, const char *cluster,
                                  const char *endpoint, const char *alpn_offer, const char *sni);
/* Downstream: runs connection_create. */
void weft_transport_start_downstream(struct weft_connection *c);
/* Runs bytes read from the socket up through the chain. -1: close. */
int weft_transport_read(struct weft_connection *c);
/* Runs bytes the codec (or a filter) wrote down through the chain. -1: close. */
int weft_transport_write(struct weft_connection *c);
void weft_transport_close(struct weft_connection *c);
/* Every WEFT_TRANSPORT_HANDSHAKE filter called handshake_done (true when
 * there is none). */
static inline bool weft_transport_ready(const struct weft_connection *c) {
    return c->hs_waiting == 0;
}
/* Bytes waiting in the chain toward the network (not the socket's own
 * output). */
size_t weft_transport_pending_out(const struct weft_connection *c);
/* Sets the original destination (when it differs from the local address). */
void weft_transport_set_orig_dst(struct weft_connection *c, const char *ip, uint16_t port);
/* The 1.1 host calls on a weft_connection (filter_host.c's table). */
weft_result weft_transport_api_write(weft_connection *c, const void *data, size_t len);
weft_result weft_transport_api_close(weft_connection *c, bool flush);
weft_result weft_transport_api_timer_start(weft_connection *c, uint64_t ms,
                                           weft_connection_timer_cb cb, void *arg,
                                           weft_timer **out);
weft_result weft_transport_api_timer_cancel(weft_connection *c, weft_timer *t);
weft_result weft_transport_api_handshake_done(weft_connection *c, const weft_handshake_info *hi);
weft_result weft_transport_api_get_info(weft_connection *c, weft_connection_info *info);
/* Sets the peer identity (checked: length, control characters). */
weft_result weft_transport_api_set_identity(weft_connection *c, weft_str id);

/* The codec side of a chain with at least one filter (n > 0). */
static inline struct evbuffer *weft_transport_codec_in(struct weft_connection *c) {
    return c->in[c->n];
}
static inline struct evbuffer *weft_transport_codec_out(struct weft_connection *c) {
    return c->out[c->n];
}

#endif
