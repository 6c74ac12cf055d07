/* ft_conn.c: synthetic connections for transport filters (downstream, and
 * with ABI 1.1 upstream): bytes in from the "network" and from the
 * "codec", the filter's output on each side, and what it told the host
 * (ALPN, peer identity, TLS, handshake facts, close, timers). */
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

static wft_conn *conn_alloc(wft_env *env) {
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
    c->peer_ip = ft_strdup("127.0.0.1");
    c->local_ip = ft_strdup("127.0.0.1");
    c->peer_port = 40000;
    c->local_port = 15006;
    c->env_next = env->conns;
    env->conns = c;
    c->live_next = g_live_conns;
    g_live_conns = c;
    if (!c->rd_in || !c->rd_out || !c->wr_in || !c->wr_out || !c->peer_ip || !c->local_ip) {
        wft_conn_free(c);
        return NULL;
    }
    return c;
}

wft_conn *wft_conn_new(wft_env *env) {
    wft_conn *c = conn_alloc(env);
    if (c && FT_TRANSPORT(env, connection_create)) {
        wft_env *old = ft_swap_current(env);
        c->in_create = true;
        c->ctx = env->desc->transport->connection_create(env->config, &c->handle);
        c->in_create = false;
        ft_swap_current(old);
        ft_conn_settle(c);
    }
    return c;
}

wft_conn *wft_conn_new_upstream(wft_env *env, const char *cluster, const char *endpoint,
                                const char *alpn_offer, const char *sni) {
    if (env && env->desc->kind == WEFT_FILTER_TRANSPORT &&
        !FT_TRANSPORT(env, upstream_connection_create)) {
        ft_set_error(env, "filter \"%s\" has no upstream side (upstream_connection_create)",
                     env->desc->name);
        return NULL;
    }
    wft_conn *c = conn_alloc(env);
    if (!c)
        return NULL;
    c->upstream = true;
    free(c->peer_ip);
    c->peer_ip = NULL;
    const char *ep = endpoint ? endpoint : "10.0.0.1:8080";
    const char *colon = strrchr(ep, ':');
    c->peer_ip = colon ? ft_strndup(ep, (size_t)(colon - ep)) : ft_strdup(ep);
    c->peer_port = colon ? (uint16_t)atoi(colon + 1) : 0;
    c->local_port = 41000;
    c->cluster = ft_strdup(cluster ? cluster : "default");
    c->endpoint = ft_strdup(ep);
    c->alpn_offer = ft_strdup(alpn_offer ? alpn_offer : "http/1.1");
    c->cfg_sni = ft_strdup(sni ? sni : "");
    if (!c->peer_ip || !c->cluster || !c->endpoint || !c->alpn_offer || !c->cfg_sni) {
        wft_conn_free(c);
        return NULL;
    }
    weft_connection_info info = {.size = sizeof(info)};
    ft_conn_info(c, &info);
    wft_env *old = ft_swap_current(env);
    c->in_create = true;
    c->ctx = env->desc->transport->upstream_connection_create(env->config, &c->handle, &info);
    c->in_create = false;
    ft_swap_current(old);
    ft_conn_settle(c);
    return c;
}

static weft_str sv(const char *s) {
    return s ? (weft_str){s, strlen(s)} : (weft_str){"", 0};
}

#define INFO_HAS(info, field)                                                                      \
    ((info)->size >= offsetof(weft_connection_info, field) + sizeof((info)->field))

/* The same rules as the core's weft_transport_api_get_info. */
weft_result ft_conn_info(wft_conn *c, weft_connection_info *info) {
    if (!info || !INFO_HAS(info, flags))
        return WEFT_ERR_INVALID;
    bool up = c->upstream;
    info->side = up ? WEFT_CONNECTION_UPSTREAM : WEFT_CONNECTION_DOWNSTREAM;
    info->flags = c->hs_flags | (c->tls ? WEFT_HANDSHAKE_TLS : 0);
    if (INFO_HAS(info, local_port)) {
        info->peer_ip = sv(c->peer_ip);
        info->local_ip = sv(c->local_ip);
        info->peer_port = c->peer_port;
        info->local_port = c->local_port;
    }
    if (INFO_HAS(info, original_dst_port)) {
        if (up || !c->orig_dst_ip) {
            info->original_dst_ip = sv(up ? c->peer_ip : c->local_ip);
            info->original_dst_port = up ? c->peer_port : c->local_port;
        } else {
            info->original_dst_ip = sv(c->orig_dst_ip);
            info->original_dst_port = c->orig_dst_port;
        }
    }
    if (INFO_HAS(info, sni))
        info->sni = sv(c->sni ? c->sni : (up ? c->cfg_sni : NULL));
    if (INFO_HAS(info, cluster))
        info->cluster = sv(up ? c->cluster : NULL);
    if (INFO_HAS(info, endpoint))
        info->endpoint = sv(up ? c->endpoint : NULL);
    if (INFO_HAS(info, alpn_offer))
        info->alpn_offer = sv(up ? c->alpn_offer : NULL);
    if (INFO_HAS(info, alpn))
        info->alpn = sv(c->alpn);
    if (INFO_HAS(info, peer_identity))
        info->peer_identity = sv(c->identity);
    return WEFT_OK;
}

bool ft_conn_gated(const wft_conn *c) {
    const weft_transport_filter_ops *o = c->env->desc->transport;
    return o && o->size >= offsetof(weft_transport_filter_ops, flags) + sizeof(o->flags) &&
           (o->flags & WEFT_TRANSPORT_HANDSHAKE);
}

void ft_conn_settle(wft_conn *c) {
    if (!c)
        return;
    if (c->wr_out->len) {
        ft_buffer_to_bytes(c->wr_out, &c->to_network);
        ft_buffer_drain_bytes(c->wr_out, c->wr_out->len);
    }
    if (c->rd_out->len && (!ft_conn_gated(c) || c->hs_done)) {
        ft_buffer_to_bytes(c->rd_out, &c->to_codec);
        ft_buffer_drain_bytes(c->rd_out, c->rd_out->len);
    }
}

static void timers_free(wft_conn *c) {
    while (c->timers) {
        struct weft_timer *t = c->timers;
        c->timers = t->next;
        free(t);
    }
}

void ft_fire_conn_timer(struct weft_timer *t) {
    wft_conn *c = t->conn;
    t->done = true;
    if (c->closed || c->close_asked)
        return;
    wft_env *old = ft_swap_current(c->env);
    t->ccb(&c->handle, c->ctx, t->arg);
    ft_swap_current(old);
    ft_conn_settle(c);
}

size_t wft_conn_timers_pending(wft_conn *c) {
    size_t n = 0;
    for (struct weft_timer *t = c ? c->timers : NULL; t; t = t->next)
        n += !t->done;
    return n;
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
    timers_free(c); /* every timer of a connection ends with it */
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
    timers_free(c);
    free(c->alpn);
    free(c->identity);
    free(c->sni);
    free(c->tls_version);
    free(c->cipher);
    free(c->peer_ip);
    free(c->local_ip);
    free(c->orig_dst_ip);
    free(c->cluster);
    free(c->endpoint);
    free(c->alpn_offer);
    free(c->cfg_sni);
    c->handle.magic = 0;
    free(c);
}

static int run(wft_conn *c, bool write_side, const void *data, size_t len) {
    if (!c || c->closed || c->close_asked || (len && !data))
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
    ft_conn_settle(c);
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

bool wft_conn_handshake_complete(wft_conn *c) {
    return c && (!ft_conn_gated(c) || c->hs_done);
}

const char *wft_conn_sni(wft_conn *c) {
    return c ? c->sni : NULL;
}

const char *wft_conn_tls_version(wft_conn *c) {
    return c ? c->tls_version : NULL;
}

const char *wft_conn_cipher(wft_conn *c) {
    return c ? c->cipher : NULL;
}

uint32_t wft_conn_handshake_flags(wft_conn *c) {
    return c ? c->hs_flags : 0;
}

bool wft_conn_close_asked(wft_conn *c, bool *flush) {
    if (flush)
        *flush = c && c->close_flush;
    return c && c->close_asked;
}

void wft_conn_set_original_dst(wft_conn *c, const char *ip, uint16_t port) {
    if (!c || !ip)
        return;
    free(c->orig_dst_ip);
    c->orig_dst_ip = ft_strdup(ip);
    c->orig_dst_port = port;
}
