/* worker.c: worker threads (see worker.h). */
#include "loop/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/thread.h>

#include "common/memtrim.h"
#include "filter/handles.h"
#include "filter/tcp_callout.h"
#include "http/h1/h1_downstream.h"
#include "http/h2/h2_downstream.h"
#include "net/tcp_proxy.h"
#include "upstream/h2_pool.h"
#include "upstream/pool.h"

/* ---------- per-snapshot worker state ---------- */

static weft_wsnap *wsnap_new(weft_worker *w, weft_snapshot *snap) {
    weft_wsnap *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return NULL;
    ws->clusters = calloc(snap->cfg->n_clusters ? snap->cfg->n_clusters : 1, sizeof(*ws->clusters));
    if (!ws->clusters) {
        free(ws);
        return NULL;
    }
    weft_snapshot_ref(snap);
    ws->snap = snap;
    ws->w = w;
    ws->refs = 1;
    for (size_t i = 0; i < snap->cfg->n_clusters; i++)
        ws->clusters[i].shared = &snap->clusters[i];
    size_t nl = snap->cfg->n_listeners;
    ws->fworkers = calloc(nl ? nl : 1, sizeof(*ws->fworkers));
    ws->fworkers_made = calloc(nl ? nl : 1, sizeof(*ws->fworkers_made));
    for (size_t i = 0; ws->fworkers && ws->fworkers_made && i < nl; i++) {
        size_t nf = snap->listeners[i].chain.n_http;
        ws->fworkers[i] = calloc(nf ? nf : 1, sizeof(void *));
        ws->fworkers_made[i] = calloc(nf ? nf : 1, sizeof(bool));
    }
    return ws;
}

weft_wsnap *weft_wsnap_ref(weft_wsnap *ws) {
    ws->refs++;
    return ws;
}

void weft_wsnap_unref(weft_wsnap *ws) {
    if (!ws || --ws->refs > 0)
        return;
    for (size_t i = 0; i < ws->snap->cfg->n_clusters; i++) {
        weft_cluster_wrk *c = &ws->clusters[i];
        weft_lb_unref(c->lb);
    }
    free(ws->clusters);
    weft_tcp_callouts_wsnap_end(ws); /* before the filters' worker_destroy */
    for (size_t i = 0; ws->fworkers && i < ws->snap->cfg->n_listeners; i++) {
        const weft_filter_chain *ch = &ws->snap->listeners[i].chain;
        for (size_t f = 0; ws->fworkers_made && ws->fworkers_made[i] && f < ch->n_http; f++)
            if (ws->fworkers_made[i][f] && ch->http[f].http->worker_destroy)
                ch->http[f].http->worker_destroy(ch->http[f].config, ws->fworkers[i][f]);
        free(ws->fworkers[i]);
        if (ws->fworkers_made)
            free(ws->fworkers_made[i]);
    }
    free(ws->fworkers);
    free(ws->fworkers_made);
    weft_snapshot_unref(ws->snap);
    free(ws);
}

weft_cluster_wrk *weft_wsnap_cluster(weft_wsnap *ws, int idx) {
    if (idx < 0 || (size_t)idx >= ws->snap->cfg->n_clusters)
        return NULL;
    weft_cluster_wrk *c = &ws->clusters[idx];
    uint64_t gen = atomic_load_explicit(&c->shared->hs_gen, memory_order_acquire);
    if (c->lb && gen == c->hs_gen)
        return c;
    /* The hostset moved (DNS, endpoint push) or this is the first use:
     * a new lb on the new hostset. */
    uint64_t got_gen = 0;
    weft_hostset *hs = weft_cluster_snap_hostset(c->shared, &got_gen);
    if (!hs)
        return c->lb ? c : NULL;
    weft_lb *lb = weft_lb_new(c->shared->cfg->lb, hs, weft_worker_rand(ws->w), c->lb);
    weft_hostset_unref(hs); /* the lb holds its own reference */
    if (!lb)
        return c->lb ? c : NULL;
    weft_lb_unref(c->lb);
    c->lb = lb;
    c->hs_gen = got_gen;
    return c;
}

void *weft_wsnap_filter_worker_make(weft_wsnap *ws, size_t li, size_t fi) {
    if (!ws->fworkers || !ws->fworkers[li] || !ws->fworkers_made[li])
        return NULL;
    if (!ws->fworkers_made[li][fi]) {
        const weft_filter_inst *in = &ws->snap->listeners[li].chain.http[fi];
        ws->fworkers[li][fi] = in->http->worker_create ? in->http->worker_create(in->config) : NULL;
        ws->fworkers_made[li][fi] = true;
    }
    return ws->fworkers[li][fi];
}

uint64_t weft_worker_rand(weft_worker *w) {
    /* xorshift64* */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---------- listeners ---------- */

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg) {
    weft_wlistener *wl = arg;
    wl->w->accepts++;
    atomic_fetch_add_explicit(&wl->w->accepted, 1, memory_order_relaxed);
    if (weft_tcp_proxy_is_tcp(wl->w, wl->name))
        weft_tcp_proxy_accept(wl->w, wl->name, fd, sa, salen);
    else
        weft_dconn_accept(wl->w, wl->name, fd, sa, salen);
}

static void on_accept_error(struct evconnlistener *lev, void *arg) {
    weft_wlistener *wl = arg;
    WEFT_WARN("listener %s: accept failed: %s", wl->name, strerror(errno));
}

static void wlistener_free(weft_wlistener *l) {
    if (l->lev)
        evconnlistener_free(l->lev);
    free(l->name);
    free(l);
}

static void wlisteners_free(weft_worker *w) {
    while (w->listeners) {
        weft_wlistener *l = w->listeners;
        w->listeners = l->next;
        wlistener_free(l);
    }
}

/* Makes the worker's listeners match the snapshot, from the sockets the
 * main thread bound (h: one entry per snapshot listener, may be NULL):
 * keeps a socket of the same bind (gen), adopts the new ones, closes the
 * rest. Takes ownership of every fd in h. Never fails as a whole: a
 * listener that cannot be set up is logged and skipped. */
static void reconcile_listeners(weft_worker *w, weft_snapshot *snap, weft_listen_handoff *h) {
    weft_wlistener *keep = NULL;
    for (size_t i = 0; h && i < snap->cfg->n_listeners; i++) {
        const weft_cfg_listener *cl = &snap->cfg->listeners[i];
        weft_wlistener *l = NULL;
        for (weft_wlistener **pp = &w->listeners; *pp; pp = &(*pp)->next)
            if ((*pp)->gen == h[i].gen) {
                l = *pp;
                *pp = l->next; /* unlink from the old list */
                break;
            }
        if (l) {
            char *name = strdup(cl->name);
            if (name) {
                free(l->name);
                l->name = name;
            }
        } else if (h[i].fd >= 0) {
            l = calloc(1, sizeof(*l));
            if (l) {
                l->w = w;
                l->gen = h[i].gen;
                l->name = strdup(cl->name);
                l->lev =
                    evconnlistener_new(w->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE, 0, h[i].fd);
            }
            if (!l || !l->name || !l->lev) {
                WEFT_ERROR("worker %d: listener %s: out of memory", w->id, cl->name);
                if (l && l->lev)
                    h[i].fd = -1; /* closed with the listener */
                if (l)
                    wlistener_free(l);
                continue;
            }
            h[i].fd = -1; /* the listener owns it */
            evconnlistener_set_error_cb(l->lev, on_accept_error);
        } else {
            WEFT_ERROR("worker %d: listener %s: no socket", w->id, cl->name);
            continue;
        }
        l->next = keep;
        keep = l;
    }
    if (h)
        weft_listen_handoff_free(h, snap->cfg->n_listeners);
    wlisteners_free(w);
    w->listeners = keep;
}

/* ---------- control events ---------- */

enum { WEFT_CTL_SWAP = 1, WEFT_CTL_DRAIN = 2, WEFT_CTL_DRAIN_END = 4, WEFT_CTL_STOP = 8 };

static void on_swap(weft_worker *w) {
    pthread_mutex_lock(&w->ctl_mu);
    weft_snapshot *snap = w->pending;
    weft_listen_handoff *h = w->pending_socks;
    w->pending = NULL;
    w->pending_socks = NULL;
    pthread_mutex_unlock(&w->ctl_mu);
    if (!snap)
        return;
    size_t nl = snap->cfg->n_listeners;
    weft_wsnap *ws = wsnap_new(w, snap);
    if (!ws) {
        WEFT_ERROR("worker %d: out of memory adopting config v%llu", w->id,
                   (unsigned long long)snap->version);
        weft_listen_handoff_free(h, nl);
        weft_snapshot_unref(snap);
        return;
    }
    weft_snapshot_unref(snap); /* the pending reference; ws holds its own */
    weft_wsnap *old = w->cur;
    w->cur = ws;
    weft_wsnap_unref(old);
    if (w->draining)
        weft_listen_handoff_free(h, nl);
    else
        reconcile_listeners(w, ws->snap, h);
    weft_stats_gauge_set(w->version_stat, (int64_t)ws->snap->version);
}

/* The drain starts: HTTP listeners stay open (a client or load balancer
 * that has not noticed yet still gets answers) and connections are asked
 * to close (see weft_dconn_drain_all). tcp_proxy listeners close now: a
 * TCP connection cannot be asked to leave, so one accepted now would only
 * be cut at the end of the drain. */
static void on_drain(weft_worker *w) {
    if (w->draining)
        return;
    w->draining = true;
    for (weft_wlistener **pp = &w->listeners; *pp;) {
        weft_wlistener *l = *pp;
        if (weft_tcp_proxy_is_tcp(w, l->name)) {
            *pp = l->next;
            wlistener_free(l);
        } else {
            pp = &l->next;
        }
    }
    weft_dconn_drain_all(w);
}

/* The drain time is over: listeners close, what is still open is cut. */
static void on_drain_end(weft_worker *w) {
    w->draining = true;
    wlisteners_free(w);
    weft_dconn_free_all(w);
    weft_tcp_proxy_free_all(w);
}

static void on_ctl(evutil_socket_t fd, short what, void *arg) {
    weft_worker *w = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    unsigned cmds = atomic_exchange_explicit(&w->ctl, 0, memory_order_acq_rel);
    if (cmds & WEFT_CTL_SWAP)
        on_swap(w);
    if (cmds & WEFT_CTL_DRAIN)
        on_drain(w);
    if (cmds & WEFT_CTL_DRAIN_END)
        on_drain_end(w);
    if (cmds & WEFT_CTL_STOP)
        event_base_loopbreak(w->base);
}

static void send_ctl(weft_worker *w, unsigned cmd) {
    atomic_fetch_or_explicit(&w->ctl, cmd, memory_order_acq_rel);
    uint64_t one = 1;
    ssize_t r = write(w->ctl_fd, &one, sizeof(one));
    (void)r;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg) {
    weft_worker *w = arg;
    weft_pools_sweep(w);
}

/* ---------- idle: giving memory back ---------- */

#define WEFT_IDLE_TICK_MS 1000
#define WEFT_IDLE_TRIM_TICKS 2 /* idle ticks before a busy worker gives back */

/* A worker that had connections and has had none for WEFT_IDLE_TRIM_TICKS
 * ticks (no open connection, none accepted) frees its recycled HTTP/2
 * stream objects and asks for a trim: the memory of a burst goes back to
 * the kernel instead of staying in RSS. Any pending trim (a freed config
 * after a reload) runs from here too, busy or not; weft_memtrim_run
 * rate-limits across workers. */
static void on_idle_tick(evutil_socket_t fd, short what, void *arg) {
    weft_worker *w = arg;
    bool busy = w->conns || w->tcp_conns || w->accepts != w->accepts_seen;
    w->accepts_seen = w->accepts;
    if (busy) {
        w->busy_since_trim = true;
        w->idle_ticks = 0;
    } else if (w->busy_since_trim && ++w->idle_ticks >= WEFT_IDLE_TRIM_TICKS) {
        w->busy_since_trim = false;
        weft_h2_cache_free(w);
        weft_h1_cache_free(w);
        weft_memtrim_request();
    }
    weft_memtrim_run(weft_now_ms());
}

static void *worker_main(void *arg) {
    weft_worker *w = arg;
    weft_stats_set_thread_block(w->stats);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static weft_worker *worker_create(int id, weft_snapshot *snap, const weft_listen_set *ls,
                                  bool start, char *err, size_t errlen);

weft_worker *weft_worker_start(int id, weft_snapshot *snap, const weft_listen_set *ls, char *err,
                               size_t errlen) {
    return worker_create(id, snap, ls, true, err, errlen);
}

weft_worker *weft_worker_new_detached(weft_snapshot *snap) {
    char err[256];
    return worker_create(0, snap, NULL, false, err, sizeof(err));
}

static weft_worker *worker_create(int id, weft_snapshot *snap, const weft_listen_set *ls,
                                  bool start, char *err, size_t errlen) {
    weft_worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->id = id;
    w->ctl_fd = -1;
    weft_handles_attach(w);
    w->version_stat = WEFT_STAT_INVALID;
    pthread_mutex_init(&w->ctl_mu, NULL);
    if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || w->rng == 0)
        w->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(id + 1) * 0xBF58476D1CE4E5B9ull;
    w->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* Only this worker's thread touches its base: no locks needed. No
     * epoll changelist: it defers epoll_ctl to the next loop turn, after
     * we may have closed the fd and another worker accepted a connection
     * with the same number (harmless for epoll, but a race on the fd as
     * far as ThreadSanitizer can tell, and weft_conn rarely changes read
     * interest anyway). */
    struct event_config *ec = event_config_new();
    if (ec) {
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    w->stats = weft_stats_block_new();
    w->cur = w->base ? wsnap_new(w, snap) : NULL;
    if (!w->base || !w->stats || !w->cur || w->ctl_fd < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->ev_ctl = event_new(w->base, w->ctl_fd, EV_READ | EV_PERSIST, on_ctl, w);
    event_add(w->ev_ctl, NULL);
    w->ev_sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    struct timeval sweep = {5, 0};
    event_add(w->ev_sweep, &sweep);
    w->ev_idle = event_new(w->base, -1, EV_PERSIST, on_idle_tick, w);
    struct timeval idle = {WEFT_IDLE_TICK_MS / 1000, (WEFT_IDLE_TICK_MS % 1000) * 1000};
    event_add(w->ev_idle, &idle);
    if (ls) {
        char labels[32];
        snprintf(labels, sizeof(labels), "worker=\"%d\"", id);
        w->version_stat = weft_stats_gauge("weft_worker_config_version", labels,
                                           "Version of the config each worker runs");
        weft_stats_gauge_set(w->version_stat, (int64_t)snap->version);
        reconcile_listeners(w, snap, weft_listen_set_dup(ls, id));
    }
    if (!start) {
        weft_stats_set_thread_block(w->stats);
        return w;
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        snprintf(err, errlen, "pthread_create: %s", strerror(errno));
        goto fail;
    }
    w->thread_started = true;
    return w;
fail:
    weft_worker_stop_and_free(w);
    return NULL;
}

void weft_worker_swap(weft_worker *w, weft_snapshot *snap, const weft_listen_set *ls) {
    weft_snapshot_ref(snap);
    weft_listen_handoff *h = weft_listen_set_dup(ls, w->id);
    pthread_mutex_lock(&w->ctl_mu);
    weft_snapshot *old = w->pending;
    weft_listen_handoff *old_h = w->pending_socks;
    w->pending = snap;
    w->pending_socks = h;
    pthread_mutex_unlock(&w->ctl_mu);
    if (old) {
        /* Never adopted: its sockets (dups) close, the snapshot goes. */
        weft_listen_handoff_free(old_h, old->cfg->n_listeners);
        weft_snapshot_unref(old);
    }
    send_ctl(w, WEFT_CTL_SWAP);
}

void weft_worker_drain(weft_worker *w) {
    send_ctl(w, WEFT_CTL_DRAIN);
}

void weft_worker_drain_end(weft_worker *w) {
    send_ctl(w, WEFT_CTL_DRAIN_END);
}

void weft_worker_stop_and_free(weft_worker *w) {
    if (!w)
        return;
    if (w->thread_started) {
        send_ctl(w, WEFT_CTL_STOP);
        pthread_join(w->thread, NULL);
    }
    /* The thread is gone: everything below is single-threaded. */
    weft_dconn_free_all(w);
    weft_tcp_proxy_free_all(w);
    wlisteners_free(w);
    weft_pools_free_all(w);
    weft_h2up_free_all(w);
    weft_h2_cache_free(w);
    weft_h1_cache_free(w);
    if (w->pending) {
        weft_listen_handoff_free(w->pending_socks, w->pending->cfg->n_listeners);
        weft_snapshot_unref(w->pending);
    }
    if (w->cur)
        weft_wsnap_unref(w->cur);
    weft_tcp_callouts_free_all(w);
    if (w->ev_ctl)
        event_free(w->ev_ctl);
    if (w->ctl_fd >= 0)
        close(w->ctl_fd);
    if (w->ev_sweep)
        event_free(w->ev_sweep);
    if (w->ev_idle)
        event_free(w->ev_idle);
    if (w->base)
        event_base_free(w->base);
    if (w->stats)
        weft_stats_block_free(w->stats);
    weft_handles_detach(w);
    pthread_mutex_destroy(&w->ctl_mu);
    free(w);
}
