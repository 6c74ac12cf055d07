/* ft_conn.c: synthetic downstream connections for transport filters:
 * bytes in from the "network" and from the "codec", the filter's output
 * on each side, and what it told the host (ALPN, peer identity, TLS). */
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

static wft_conn *g_live_conns;

wft_conn *ft_conn_from(weft_connection *c) {
    for (wft_conn *x = g_live_conns; x; x = x->live_next)
        if (&x->handle == c)
            return x;
    return NULL;
}

wft_conn *wft_conn_new(wft_env *env) {
    if (!env)
        return NULL;
    if (env->desc->kind != WEFT_FILTER_TRANSPORT) {
        ft_set_error(env, "filter \"%s\" is an HTTP filter: use wft_stream_new", env->desc->name);
        return NULL;
    }
    if (ft_ensure_configured(env))
        return NULL;
    wft_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->handle.magic = FT_MAGIC_CONN;
    c->handle.owner = c;
    c->env = env;
    c->rd_in = ft_buffer_new();
    c->rd_out = ft_buffer_new();
    c->wr_in = ft_buffer_new();
    c->wr_out = ft_buffer_new();
    c->env_next = env->conns;
    env->conns = c;
    c->live_next = g_live_conns;
    g_live_conns = c;
    if (!c->rd_in || !c->rd_out || !c->wr_in || !c->wr_out) {
        wft_conn_free(c);
        return NULL;
    }
    if (FT_TRANSPORT(env, connection_create)) {
        wft_env *old = ft_swap_current(env);
        c->ctx = env->desc->transport->connection_create(env->config, &c->handle);
        ft_swap_current(old);
    }
    return c;
}

void wft_conn_close(wft_conn *c) {
    if (!c || c->closed)
        return;
    if (FT_TRANSPORT(c->env, on_close)) {
        wft_env *old = ft_swap_current(c->env);
        c->env->desc->transport->on_close(c->ctx, &c->handle);
        ft_swap_current(old);
    }
    c->closed = true;
}

void wft_conn_free(wft_conn *c) {
    if (!c)
        return;
    wft_conn_close(c);
    if (FT_TRANSPORT(c->env, connection_destroy)) {
        wft_env *old = ft_swap_current(c->env);
        c->env->desc->transport->connection_destroy(c->ctx);
        ft_swap_current(old);
    }
    for (wft_conn **pp = &c->env->conns; *pp; pp = &(*pp)->env_next)
        if (*pp == c) {
            *pp = c->env_next;
            break;
        }
    for (wft_conn **pp = &g_live_conns; *pp; pp = &(*pp)->live_next)
        if (*pp == c) {
            *pp = c->live_next;
            break;
        }
    ft_buffer_free(c->rd_in);
    ft_buffer_free(c->rd_out);
    ft_buffer_free(c->wr_in);
    ft_buffer_free(c->wr_out);
    ft_bytes_free(&c->to_codec);
    ft_bytes_free(&c->to_network);
    free(c->alpn);
    free(c->identity);
    c->handle.magic = 0;
    free(c);
}

static int run(wft_conn *c, bool write_side, const void *data, size_t len) {
    if (!c || c->closed || (len && !data))
        return -1;
    weft_buffer *in = write_side ? c->wr_in : c->rd_in;
    weft_buffer *out = write_side ? c->wr_out : c->rd_out;
    if (ft_buffer_add(in, data, len, false))
        return -1;
    int (*hook)(void *, weft_connection *, weft_buffer *, weft_buffer *) = NULL;
    if (write_side && FT_TRANSPORT(c->env, on_write))
        hook = c->env->desc->transport->on_write;
    else if (!write_side && FT_TRANSPORT(c->env, on_read))
        hook = c->env->desc->transport->on_read;
    int rc = 0;
    if (hook) {
        wft_env *old = ft_swap_current(c->env);
        rc = hook(c->ctx, &c->handle, in, out);
        ft_swap_current(old);
    } else {
        /* No hook: the bytes pass through unchanged. */
        ft_buffer_take_all(out, in);
    }
    ft_buffer_to_bytes(out, write_side ? &c->to_network : &c->to_codec);
    ft_buffer_drain_bytes(out, out->len);
    if (rc != 0)
        wft_conn_close(c);
    return rc;
}

int wft_conn_read(wft_conn *c, const void *data, size_t len) {
    return run(c, false, data, len);
}

int wft_conn_write(wft_conn *c, const void *data, size_t len) {
    return run(c, true, data, len);
}

const char *wft_conn_to_codec(wft_conn *c, size_t *len) {
    if (len)
        *len = c ? c->to_codec.len : 0;
    return c ? ft_bytes_cstr(&c->to_codec) : "";
}

const char *wft_conn_to_network(wft_conn *c, size_t *len) {
    if (len)
        *len = c ? c->to_network.len : 0;
    return c ? ft_bytes_cstr(&c->to_network) : "";
}

size_t wft_conn_pending_in(wft_conn *c, bool write_side) {
    if (!c)
        return 0;
    return write_side ? c->wr_in->len : c->rd_in->len;
}

const char *wft_conn_alpn(wft_conn *c) {
    return c ? c->alpn : NULL;
}

const char *wft_conn_peer_identity(wft_conn *c) {
    return c ? c->identity : NULL;
}

bool wft_conn_tls(wft_conn *c) {
    return c && c->tls;
}
