/* transport.c: running a connection's transport filters. */
#include "filter/transport.h"

#include <stdlib.h>

int weft_transport_init(struct weft_connection *c, const weft_filter_chain *chain,
                        struct evbuffer *sock_in, struct evbuffer *sock_out) {
    c->magic = WEFT_CONNECTION_MAGIC;
    c->chain = chain;
    c->n = chain ? chain->n_transport : 0;
    c->in = calloc(c->n + 1, sizeof(*c->in));
    c->out = calloc(c->n + 1, sizeof(*c->out));
    c->ctx = calloc(c->n ? c->n : 1, sizeof(*c->ctx));
    if (!c->in || !c->out || !c->ctx)
        return -1;
    c->in[0] = sock_in;
    c->out[0] = sock_out;
    for (size_t i = 1; i <= c->n; i++) {
        c->in[i] = evbuffer_new();
        c->out[i] = evbuffer_new();
        if (!c->in[i] || !c->out[i])
            return -1;
    }
    for (size_t i = 0; i < c->n; i++) {
        const weft_filter_inst *fi = &chain->transport[i];
        if (fi->transport->connection_create)
            c->ctx[i] = fi->transport->connection_create(fi->config, c);
    }
    return 0;
}

int weft_transport_read(struct weft_connection *c) {
    for (size_t i = 0; i < c->n; i++) {
        const weft_transport_filter_ops *o = c->chain->transport[i].transport;
        if (!o->on_read) {
            evbuffer_add_buffer(c->in[i + 1], c->in[i]);
            continue;
        }
        if (o->on_read(c->ctx[i], c, (weft_buffer *)c->in[i], (weft_buffer *)c->in[i + 1]) != 0)
            return -1;
    }
    return 0;
}

int weft_transport_write(struct weft_connection *c) {
    for (size_t k = c->n; k > 0; k--) {
        const weft_transport_filter_ops *o = c->chain->transport[k - 1].transport;
        if (!o->on_write) {
            evbuffer_add_buffer(c->out[k - 1], c->out[k]);
            continue;
        }
        if (o->on_write(c->ctx[k - 1], c, (weft_buffer *)c->out[k], (weft_buffer *)c->out[k - 1]) !=
            0)
            return -1;
    }
    return 0;
}

void weft_transport_close(struct weft_connection *c) {
    for (size_t i = 0; c->ctx && i < c->n; i++) {
        const weft_transport_filter_ops *o = c->chain->transport[i].transport;
        if (o->on_close)
            o->on_close(c->ctx[i], c);
        if (o->connection_destroy)
            o->connection_destroy(c->ctx[i]);
    }
    for (size_t i = 1; c->in && c->out && i <= c->n; i++) {
        if (c->in[i])
            evbuffer_free(c->in[i]);
        if (c->out[i])
            evbuffer_free(c->out[i]);
    }
    free(c->in);
    free(c->out);
    free(c->ctx);
    free(c->identity);
    c->in = c->out = NULL;
    c->ctx = NULL;
    c->identity = NULL;
    c->facts.peer_identity = NULL;
    c->magic = 0;
}
