/* transport.c: running a connection's transport filters. */
#include "filter/transport.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event_struct.h>

#include "common/common.h"

/* ---------- connection timers ---------- */

struct weft_conn_timer {
    struct event ev;
    struct weft_connection *c;
    uint32_t filter;
    weft_connection_timer_cb cb;
    void *arg;
    struct weft_conn_timer *next;
};

static void timer_unlink(struct weft_connection *c, struct weft_conn_timer *t) {
    for (struct weft_conn_timer **pp = &c->timers; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            c->n_timers--;
            return;
        }
}

static void timers_free(struct weft_connection *c) {
    while (c->timers) {
        struct weft_conn_timer *t = c->timers;
        c->timers = t->next;
        event_del(&t->ev);
        free(t);
    }
    c->n_timers = 0;
}

static void timer_fire(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    struct weft_conn_timer *t = arg;
    struct weft_connection *c = t->c;
    timer_unlink(c, t);
    weft_connection_timer_cb cb = t->cb;
    void *targ = t->arg;
    uint32_t f = t->filter;
    free(t);
    int32_t saved = c->cur;
    c->cur = (int32_t)f;
    cb(c, c->ctx[f], targ);
    c->cur = saved;
}

/* ---------- host calls on a weft_connection (the host table points here) ---------- */

static weft_result conn_check(weft_connection *c, bool allow_closing) {
    if (!c || c->magic != WEFT_CONNECTION_MAGIC)
        return WEFT_ERR_HANDLE;
    if (!pthread_equal(pthread_self(), c->thread))
        return WEFT_ERR_THREAD;
    if (!allow_closing && (c->closing || c->in_close))
        return WEFT_ERR_STATE;
    return WEFT_OK;
}

static const char *filter_name(const struct weft_connection *c) {
    return c->cur >= 0 && (size_t)c->cur < c->n ? c->filters[c->cur].name : "?";
}

static weft_result misuse(const struct weft_connection *c, weft_result r, const char *what) {
    if (r == WEFT_ERR_HANDLE)
        WEFT_WARN("filter: %s: not a live connection (WEFT_ERR_HANDLE)", what);
    else if (r == WEFT_ERR_THREAD)
        WEFT_WARN("filter %s: %s from a thread that does not own the connection", filter_name(c),
                  what);
    return r;
}

weft_result weft_transport_api_write(weft_connection *c, const void *data, size_t len) {
    weft_result r = conn_check(c, false);
    if (r != WEFT_OK)
        return misuse(c, r, "connection_write");
    if (len && !data)
        return WEFT_ERR_INVALID;
    if (c->cur < 0 || (size_t)c->cur >= c->n)
        return WEFT_ERR_STATE;
    size_t idx = (size_t)c->cur;
    size_t queued = 0;
    for (size_t i = 0; i <= idx; i++)
        queued += evbuffer_get_length(c->out[i]);
    if (queued + len > c->max_pending)
        return WEFT_ERR_LIMIT;
    if (!len)
        return WEFT_OK;
    if (evbuffer_add(c->out[idx], data, len) != 0)
        return WEFT_ERR_NOMEM;
    if (idx > 0 && c->owner_ops && c->owner_ops->kick)
        c->owner_ops->kick(c->owner);
    return WEFT_OK;
}

weft_result weft_transport_api_close(weft_connection *c, bool flush) {
    weft_result r = conn_check(c, true);
    if (r != WEFT_OK)
        return misuse(c, r, "connection_close");
    if (c->in_close || c->closing)
        return WEFT_OK;
    c->closing = true;
    timers_free(c); /* nothing of the filter runs on a closing connection */
    if (c->owner_ops && c->owner_ops->close)
        c->owner_ops->close(c->owner, flush);
    return WEFT_OK;
}

weft_result weft_transport_api_timer_start(weft_connection *c, uint64_t ms,
                                           weft_connection_timer_cb cb, void *arg,
                                           weft_timer **out) {
    weft_result r = conn_check(c, false);
    if (r != WEFT_OK)
        return misuse(c, r, "connection_timer_start");
    if (!cb)
        return WEFT_ERR_INVALID;
    if (c->cur < 0 || (size_t)c->cur >= c->n || !c->base)
        return WEFT_ERR_STATE;
    if (c->n_timers >= WEFT_CONN_TIMERS_MAX)
        return WEFT_ERR_LIMIT;
    struct weft_conn_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return WEFT_ERR_NOMEM;
    t->c = c;
    t->filter = (uint32_t)c->cur;
    t->cb = cb;
    t->arg = arg;
    event_assign(&t->ev, c->base, -1, 0, timer_fire, t);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(&t->ev, &tv);
    t->next = c->timers;
    c->timers = t;
    c->n_timers++;
    if (out)
        *out = (weft_timer *)t;
    return WEFT_OK;
}

weft_result weft_transport_api_timer_cancel(weft_connection *c, weft_timer *handle) {
    weft_result r = conn_check(c, true);
    if (r != WEFT_OK)
        return misuse(c, r, "connection_timer_cancel");
    for (struct weft_conn_timer *t = c->timers; t; t = t->next)
        if ((weft_timer *)t == handle) {
            event_del(&t->ev);
            timer_unlink(c, t);
            free(t);
            return WEFT_OK;
        }
    return WEFT_ERR_NOT_FOUND;
}

/* A fact from a filter: no NUL, no control characters, shorter than max. */
static bool fact_ok(weft_str v, size_t max) {
    if (v.len && !v.ptr)
        return false;
    if (v.len > max)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char ch = (unsigned char)v.ptr[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static void fact_copy(char *dst, size_t cap, weft_str v) {
    memcpy(dst, v.ptr, v.len);
    dst[v.len] = '\0';
    (void)cap;
}

weft_result weft_transport_api_set_identity(weft_connection *c, weft_str id) {
    if (!fact_ok(id, WEFT_CONN_IDENTITY_MAX))
        return WEFT_ERR_INVALID;
    char *copy = malloc(id.len + 1);
    if (!copy)
        return WEFT_ERR_NOMEM;
    memcpy(copy, id.ptr, id.len);
    copy[id.len] = '\0';
    free(c->identity);
    c->identity = copy;
    c->facts.peer_identity = c->identity;
    return WEFT_OK;
}

weft_result weft_transport_api_handshake_done(weft_connection *c, const weft_handshake_info *hi) {
    weft_result r = conn_check(c, false);
    if (r != WEFT_OK)
        return misuse(c, r, "connection_handshake_done");
    if (!hi || hi->size < offsetof(weft_handshake_info, flags) + sizeof(hi->flags))
        return WEFT_ERR_INVALID;
    if (c->cur < 0 || (size_t)c->cur >= c->n)
        return WEFT_ERR_STATE;
    size_t f = (size_t)c->cur;
    if (c->hs_done[f])
        return WEFT_ERR_STATE;
    if (!fact_ok(hi->alpn, sizeof(c->alpn) - 1) ||
        !fact_ok(hi->peer_identity, WEFT_CONN_IDENTITY_MAX) || !fact_ok(hi->tls_version, 31) ||
        !fact_ok(hi->cipher, 63) || !fact_ok(hi->sni, 255))
        return WEFT_ERR_INVALID;
    if ((hi->tls_version.len || hi->cipher.len || hi->sni.len) && !c->ext &&
        !(c->ext = calloc(1, sizeof(*c->ext))))
        return WEFT_ERR_NOMEM;
    if (hi->peer_identity.len) {
        r = weft_transport_api_set_identity(c, hi->peer_identity);
        if (r != WEFT_OK)
            return r;
    }
    if (hi->alpn.len) {
        fact_copy(c->alpn, sizeof(c->alpn), hi->alpn);
        c->facts.alpn = c->alpn;
    }
    if (hi->tls_version.len) {
        fact_copy(c->ext->tls_version, sizeof(c->ext->tls_version), hi->tls_version);
        c->facts.tls_version = c->ext->tls_version;
    }
    if (hi->cipher.len) {
        fact_copy(c->ext->cipher, sizeof(c->ext->cipher), hi->cipher);
        c->facts.cipher = c->ext->cipher;
    }
    if (hi->sni.len) {
        fact_copy(c->ext->sni, sizeof(c->ext->sni), hi->sni);
        c->facts.sni = c->ext->sni;
    }
    c->facts.hs_flags |= hi->flags;
    if (hi->flags & WEFT_HANDSHAKE_TLS)
        c->facts.tls = true;
    c->hs_done[f] = 1;
    if ((c->filters[f].transport->flags & WEFT_TRANSPORT_HANDSHAKE) && c->hs_waiting) {
        c->hs_waiting--;
        if (!c->hs_waiting && c->owner_ops && c->owner_ops->ready)
            c->owner_ops->ready(c->owner);
    }
    return WEFT_OK;
}

static weft_str sv(const char *s) {
    return s ? (weft_str){s, strlen(s)} : (weft_str){"", 0};
}

#define INFO_HAS(info, field)                                                                      \
    ((info)->size >= offsetof(weft_connection_info, field) + sizeof((info)->field))

weft_result weft_transport_api_get_info(weft_connection *c, weft_connection_info *info) {
    weft_result r = conn_check(c, true);
    if (r != WEFT_OK)
        return misuse(c, r, "connection_get_info");
    if (!info || !INFO_HAS(info, flags))
        return WEFT_ERR_INVALID;
    const weft_conn_facts *fa = &c->facts;
    const weft_conn_ext *x = c->ext;
    bool up = c->side == WEFT_CONNECTION_UPSTREAM;
    info->side = c->side;
    info->flags = fa->hs_flags | (fa->tls ? WEFT_HANDSHAKE_TLS : 0);
    if (INFO_HAS(info, local_port)) {
        info->peer_ip = sv(fa->peer_ip);
        info->local_ip = sv(fa->local_ip);
        info->peer_port = fa->peer_port;
        info->local_port = fa->local_port;
    }
    if (INFO_HAS(info, original_dst_port)) {
        if (up || !fa->orig_dst_ip) {
            info->original_dst_ip = sv(up ? fa->peer_ip : fa->local_ip);
            info->original_dst_port = up ? fa->peer_port : fa->local_port;
        } else {
            info->original_dst_ip = sv(fa->orig_dst_ip);
            info->original_dst_port = fa->orig_dst_port;
        }
    }
    if (INFO_HAS(info, sni))
        info->sni = sv(fa->sni ? fa->sni : (up && x ? x->cfg_sni : NULL));
    if (INFO_HAS(info, cluster))
        info->cluster = sv(up && x ? x->cluster : NULL);
    if (INFO_HAS(info, endpoint))
        info->endpoint = sv(up && x ? x->endpoint : NULL);
    if (INFO_HAS(info, alpn_offer))
        info->alpn_offer = sv(up && x ? x->alpn_offer : NULL);
    if (INFO_HAS(info, alpn))
        info->alpn = sv(fa->alpn);
    if (INFO_HAS(info, peer_identity))
        info->peer_identity = sv(fa->peer_identity);
    return WEFT_OK;
}

int weft_transport_init(struct weft_connection *c, const weft_filter_inst *filters, size_t n,
                        struct event_base *base, struct evbuffer *sock_in,
                        struct evbuffer *sock_out, const weft_transport_owner_ops *owner_ops,
                        void *owner, size_t max_pending) {
    c->magic = WEFT_CONNECTION_MAGIC;
    c->filters = filters;
    c->n = filters ? n : 0;
    c->base = base;
    c->owner_ops = owner_ops;
    c->owner = owner;
    c->thread = pthread_self();
    c->cur = -1;
    c->max_pending = max_pending ? max_pending : 1024 * 1024;
    if (!c->n)
        return 0; /* no filter: nothing to hold (most connections; the owner
                     reads and writes its socket buffers directly) */
    c->in = calloc(c->n + 1, sizeof(*c->in));
    c->out = calloc(c->n + 1, sizeof(*c->out));
    c->ctx = calloc(c->n, sizeof(*c->ctx));
    c->hs_done = calloc(c->n, 1);
    if (!c->in || !c->out || !c->ctx || !c->hs_done)
        return -1;
    c->in[0] = sock_in;
    c->out[0] = sock_out;
    for (size_t i = 1; i <= c->n; i++) {
        c->in[i] = evbuffer_new();
        c->out[i] = evbuffer_new();
        if (!c->in[i] || !c->out[i])
            return -1;
    }
    for (size_t i = 0; i < c->n; i++)
        if (filters[i].transport->flags & WEFT_TRANSPORT_HANDSHAKE)
            c->hs_waiting++;
    return 0;
}

void weft_transport_start_downstream(struct weft_connection *c) {
    c->side = WEFT_CONNECTION_DOWNSTREAM;
    for (size_t i = 0; i < c->n && !c->in_close; i++) {
        const weft_filter_inst *fi = &c->filters[i];
        if (fi->transport->connection_create) {
            c->cur = (int32_t)i;
            c->ctx[i] = fi->transport->connection_create(fi->config, c);
            c->cur = -1;
        }
    }
}

static char *dup_or_empty(const char *s) {
    return strdup(s ? s : "");
}

int weft_transport_start_upstream(struct weft_connection *c, const char *cluster,
                                  const char *endpoint, const char *alpn_offer, const char *sni) {
    c->side = WEFT_CONNECTION_UPSTREAM;
    if (!c->ext && !(c->ext = calloc(1, sizeof(*c->ext))))
        return -1;
    weft_conn_ext *x = c->ext;
    x->cluster = dup_or_empty(cluster);
    x->endpoint = dup_or_empty(endpoint);
    x->alpn_offer = dup_or_empty(alpn_offer);
    x->cfg_sni = dup_or_empty(sni);
    if (!x->cluster || !x->endpoint || !x->alpn_offer || !x->cfg_sni)
        return -1;
    weft_connection_info info = {.size = sizeof(info)};
    weft_transport_api_get_info(c, &info);
    for (size_t i = 0; i < c->n && !c->in_close; i++) {
        const weft_filter_inst *fi = &c->filters[i];
        if (fi->transport->upstream_connection_create) {
            c->cur = (int32_t)i;
            c->ctx[i] = fi->transport->upstream_connection_create(fi->config, c, &info);
            c->cur = -1;
        }
    }
    return 0;
}

int weft_transport_read(struct weft_connection *c) {
    for (size_t i = 0; i < c->n; i++) {
        if (c->closing)
            return 0; /* the owner closes: nothing more goes up */
        const weft_transport_filter_ops *o = c->filters[i].transport;
        if (!o->on_read) {
            evbuffer_add_buffer(c->in[i + 1], c->in[i]);
            continue;
        }
        c->cur = (int32_t)i;
        int rc = o->on_read(c->ctx[i], c, (weft_buffer *)c->in[i], (weft_buffer *)c->in[i + 1]);
        c->cur = -1;
        if (rc != 0)
            return -1;
    }
    return 0;
}

int weft_transport_write(struct weft_connection *c) {
    for (size_t k = c->n; k > 0; k--) {
        const weft_transport_filter_ops *o = c->filters[k - 1].transport;
        if (!o->on_write) {
            evbuffer_add_buffer(c->out[k - 1], c->out[k]);
            continue;
        }
        c->cur = (int32_t)(k - 1);
        int rc =
            o->on_write(c->ctx[k - 1], c, (weft_buffer *)c->out[k], (weft_buffer *)c->out[k - 1]);
        c->cur = -1;
        if (rc != 0)
            return -1;
    }
    return 0;
}

size_t weft_transport_pending_out(const struct weft_connection *c) {
    size_t n = 0;
    for (size_t i = 1; c->out && i <= c->n; i++)
        n += evbuffer_get_length(c->out[i]);
    return n;
}

void weft_transport_set_orig_dst(struct weft_connection *c, const char *ip, uint16_t port) {
    if (!c->ext && !(c->ext = calloc(1, sizeof(*c->ext))))
        return;
    snprintf(c->ext->orig_dst_ip, sizeof(c->ext->orig_dst_ip), "%s", ip);
    c->facts.orig_dst_ip = c->ext->orig_dst_ip;
    c->facts.orig_dst_port = port;
}

void weft_transport_close(struct weft_connection *c) {
    timers_free(c);
    c->in_close = true;
    c->closing = true;
    for (size_t i = 0; c->ctx && i < c->n; i++) {
        const weft_transport_filter_ops *o = c->filters[i].transport;
        c->cur = (int32_t)i;
        if (o->on_close)
            o->on_close(c->ctx[i], c);
        if (o->connection_destroy)
            o->connection_destroy(c->ctx[i]);
        c->cur = -1;
    }
    timers_free(c); /* none can be armed in on_close, but be sure */
    for (size_t i = 1; c->in && c->out && i <= c->n; i++) {
        if (c->in[i])
            evbuffer_free(c->in[i]);
        if (c->out[i])
            evbuffer_free(c->out[i]);
    }
    free(c->in);
    free(c->out);
    free(c->ctx);
    free(c->hs_done);
    free(c->identity);
    if (c->ext) {
        free(c->ext->cluster);
        free(c->ext->endpoint);
        free(c->ext->alpn_offer);
        free(c->ext->cfg_sni);
        free(c->ext);
    }
    c->in = c->out = NULL;
    c->ctx = NULL;
    c->hs_done = NULL;
    c->identity = NULL;
    c->ext = NULL;
    c->facts.peer_identity = NULL;
    c->facts.sni = c->facts.tls_version = c->facts.cipher = c->facts.orig_dst_ip = NULL;
    c->magic = 0;
}
