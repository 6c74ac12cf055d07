/* worker.c: worker threads (see worker.h). */
#include "loop/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/thread.h>

#include "common/memtrim.h"

/* ---------- the loop's own part of a worker ---------- */

typedef struct weft_wlistener {
    struct evconnlistener *lev;
    struct wloop *L;
    uint64_t gen; /* the main thread's bind (listen_set.h): kept while it stays */
    char *name;   /* owned */
    struct weft_wlistener *next;
} weft_wlistener;

/* A worker: its context (common/wctx.h, what the layers below see) and
 * what only this file touches. */
typedef struct wloop {
    weft_worker w; /* first: a weft_worker * of a started worker is a wloop * */
    weft_wlistener *listeners;
    /* control from the main thread */
    pthread_mutex_t ctl_mu;
    weft_snapshot *pending;             /* guarded by ctl_mu */
    weft_listen_handoff *pending_socks; /* its sockets (one per listener), ctl_mu */
    weft_stat_id version_stat;          /* weft_worker_config_version{worker="id"} */
    _Atomic unsigned ctl;               /* WEFT_CTL_* bits, set by the main thread */
    int ctl_fd;                         /* eventfd: wakes the worker */
    struct event *ev_ctl;
    struct event *ev_sweep; /* periodic: idle pool expiry */
    /* idle: memory given back once a busy worker has been idle a moment */
    struct event *ev_idle;   /* periodic, WEFT_IDLE_TICK_MS */
    uint64_t accepts;        /* connections accepted (this thread) */
    uint64_t accepts_seen;   /* at the last idle tick */
    uint32_t idle_ticks;     /* ticks without any connection */
    bool busy_since_trim;    /* had connections since it last asked for a trim */
    _Atomic bool drain_seen; /* the worker ran on_drain (read by main) */
    pthread_t join_id;       /* main thread only: the thread to join */
    bool joinable;           /* main thread only */
} wloop;

static wloop *wloop_of(weft_worker *w) {
    return (wloop *)w;
}

/* ---------- modules (core/wiring.c) ---------- */

/* Runs hook `fn` of every module that has it, in table order. */
#define EACH_MODULE(fn, ...)                                                                       \
    do {                                                                                           \
        for (size_t mi_ = 0; mi_ < weft_worker_n_modules; mi_++)                                   \
            if (weft_worker_modules[mi_]->fn)                                                      \
                weft_worker_modules[mi_]->fn(__VA_ARGS__);                                         \
    } while (0)

static void modules_wsnap_end(weft_wsnap *ws) {
    EACH_MODULE(wsnap_end, ws);
}

/* The module of a listener's kind, by the listener's config in the
 * worker's current snapshot (one that left the config counts as HTTP,
 * whose accept closes it). */
static const weft_worker_module *listener_module(weft_worker *w, const char *name) {
    int kind = WEFT_LISTENER_HTTP;
    const weft_config *cfg = w->cur ? w->cur->snap->cfg : NULL;
    for (size_t i = 0; cfg && i < cfg->n_listeners; i++)
        if (strcmp(cfg->listeners[i].name, name) == 0) {
            kind = cfg->listeners[i].is_tcp ? WEFT_LISTENER_TCP : WEFT_LISTENER_HTTP;
            break;
        }
    for (size_t i = 0; i < weft_worker_n_modules; i++)
        if (weft_worker_modules[i]->listener_kind == kind && weft_worker_modules[i]->accept)
            return weft_worker_modules[i];
    return NULL;
}

/* ---------- listeners ---------- */

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg) {
    weft_wlistener *wl = arg;
    weft_worker *w = &wl->L->w;
    wl->L->accepts++;
    atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
    const weft_worker_module *m = listener_module(w, wl->name);
    if (m)
        m->accept(w, wl->name, fd, sa, salen);
    else
        evutil_closesocket(fd);
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
    wloop *L = wloop_of(w);
    while (L->listeners) {
        weft_wlistener *l = L->listeners;
        L->listeners = l->next;
        wlistener_free(l);
    }
}

/* Makes the worker's listeners match the snapshot, from the sockets the
 * main thread bound (h: one entry per snapshot listener, may be NULL):
 * keeps a socket of the same bind (gen), adopts the new ones, closes the
 * rest. Takes ownership of every fd in h. Never fails as a whole: a
 * listener that cannot be set up is logged and skipped. */
static void reconcile_listeners(weft_worker *w, weft_snapshot *snap, weft_listen_handoff *h) {
    wloop *L = wloop_of(w);
    weft_wlistener *keep = NULL;
    for (size_t i = 0; h && i < snap->cfg->n_listeners; i++) {
        const weft_cfg_listener *cl = &snap->cfg->listeners[i];
        weft_wlistener *l = NULL;
        for (weft_wlistener **pp = &L->listeners; *pp; pp = &(*pp)->next)
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
                l->L = L;
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
    L->listeners = keep;
}

/* ---------- control events ---------- */

enum { WEFT_CTL_SWAP = 1, WEFT_CTL_DRAIN = 2, WEFT_CTL_DRAIN_END = 4, WEFT_CTL_STOP = 8 };

static void on_swap(weft_worker *w) {
    wloop *L = wloop_of(w);
    pthread_mutex_lock(&L->ctl_mu);
    weft_snapshot *snap = L->pending;
    weft_listen_handoff *h = L->pending_socks;
    L->pending = NULL;
    L->pending_socks = NULL;
    pthread_mutex_unlock(&L->ctl_mu);
    if (!snap)
        return;
    size_t nl = snap->cfg->n_listeners;
    weft_wsnap *ws = weft_wsnap_new(w, snap);
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
    weft_wsnap_filter_workers_make(ws); /* worker_create now: worker timers run */
    if (w->draining)
        weft_listen_handoff_free(h, nl);
    else
        reconcile_listeners(w, ws->snap, h);
    weft_stats_gauge_set(L->version_stat, (int64_t)ws->snap->version);
}

/* Accepts the connections the kernel already completed on l's socket
 * (its accept queue), as on_accept does: their clients saw their connect
 * succeed, and closing the socket would reset them. Bounded by the
 * backlog; an accept error leaves the rest to the close. */
static void accept_queued(weft_wlistener *l) {
    evutil_socket_t lfd = evconnlistener_get_fd(l->lev);
    for (int i = 0; i < WEFT_LISTEN_BACKLOG; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            on_accept(l->lev, fd, (struct sockaddr *)&ss, (int)sl, l);
        else if (errno != ECONNABORTED && errno != EINTR)
            break; /* EAGAIN: the queue is empty */
    }
}

/* The drain starts: HTTP listeners stay open (a client or load balancer
 * that has not noticed yet still gets answers) and connections are asked
 * to close (the modules' drain: weft_dconn_drain_all). Listeners of a
 * kind that closes on drain (tcp_proxy) close now: a TCP connection
 * cannot be asked to leave, so one accepted now would only be cut at the
 * end of the drain. What their accept queues hold is accepted first (the
 * kernel completed those connects before the drain reached this worker,
 * perhaps long before if its loop was busy): served like the connections
 * accepted before the drain, not reset by the close. The main thread
 * waits for this (weft_worker_drain_seen) before it exits. */
static void on_drain(weft_worker *w) {
    wloop *L = wloop_of(w);
    if (w->draining)
        return;
    for (weft_wlistener **pp = &L->listeners; *pp;) {
        weft_wlistener *l = *pp;
        const weft_worker_module *m = listener_module(w, l->name);
        if (m && m->close_on_drain) {
            accept_queued(l);
            *pp = l->next;
            wlistener_free(l);
        } else {
            pp = &l->next;
        }
    }
    w->draining = true;
    atomic_store_explicit(&L->drain_seen, true, memory_order_release);
    EACH_MODULE(drain, w);
}

/* The drain time is over: listeners close, what is still open is cut. */
static void on_drain_end(weft_worker *w) {
    w->draining = true;
    atomic_store_explicit(&wloop_of(w)->drain_seen, true, memory_order_release);
    wlisteners_free(w);
    EACH_MODULE(cut, w);
}

static void on_ctl(evutil_socket_t fd, short what, void *arg) {
    weft_worker *w = arg;
    wloop *L = wloop_of(w);
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof(v));
    (void)r;
    unsigned cmds = atomic_exchange_explicit(&L->ctl, 0, memory_order_acq_rel);
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
    wloop *L = wloop_of(w);
    atomic_fetch_or_explicit(&L->ctl, cmd, memory_order_acq_rel);
    uint64_t one = 1;
    ssize_t r = write(L->ctl_fd, &one, sizeof(one));
    (void)r;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg) {
    weft_worker *w = arg;
    EACH_MODULE(sweep, w);
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
    wloop *L = wloop_of(w);
    bool busy = atomic_load_explicit(&w->active_conns, memory_order_relaxed) > 0 ||
                L->accepts != L->accepts_seen;
    L->accepts_seen = L->accepts;
    if (busy) {
        L->busy_since_trim = true;
        L->idle_ticks = 0;
    } else if (L->busy_since_trim && ++L->idle_ticks >= WEFT_IDLE_TRIM_TICKS) {
        L->busy_since_trim = false;
        EACH_MODULE(idle, w);
        weft_memtrim_request();
    }
    weft_memtrim_run(weft_now_ms());
}

static void *worker_main(void *arg) {
    weft_worker *w = arg;
    w->thread = pthread_self();
    atomic_store_explicit(&w->thread_started, true, memory_order_release);
    weft_stats_set_thread_block(w->stats);
    EACH_MODULE(thread_start, w);
    weft_wsnap_filter_workers_make(w->cur);
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
    wloop *L = calloc(1, sizeof(*L));
    if (!L) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    weft_worker *w = &L->w;
    w->id = id;
    weft_wsnap_set_end_hook(modules_wsnap_end);
    L->ctl_fd = -1;
    EACH_MODULE(init, w);
    L->version_stat = WEFT_STAT_INVALID;
    pthread_mutex_init(&L->ctl_mu, NULL);
    if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || w->rng == 0)
        w->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(id + 1) * 0xBF58476D1CE4E5B9ull;
    L->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
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
    w->cur = w->base ? weft_wsnap_new(w, snap) : NULL;
    if (!w->base || !w->stats || !w->cur || L->ctl_fd < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    L->ev_ctl = event_new(w->base, L->ctl_fd, EV_READ | EV_PERSIST, on_ctl, w);
    event_add(L->ev_ctl, NULL);
    L->ev_sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    struct timeval sweep = {5, 0};
    event_add(L->ev_sweep, &sweep);
    L->ev_idle = event_new(w->base, -1, EV_PERSIST, on_idle_tick, w);
    struct timeval idle = {WEFT_IDLE_TICK_MS / 1000, (WEFT_IDLE_TICK_MS % 1000) * 1000};
    event_add(L->ev_idle, &idle);
    if (ls) {
        char labels[32];
        snprintf(labels, sizeof(labels), "worker=\"%d\"", id);
        L->version_stat = weft_stats_gauge("weft_worker_config_version", labels,
                                           "Version of the config each worker runs");
        weft_stats_gauge_set(L->version_stat, (int64_t)snap->version);
        reconcile_listeners(w, snap, weft_listen_set_dup(ls, id));
    }
    if (!start) {
        weft_stats_set_thread_block(w->stats);
        EACH_MODULE(thread_start, w); /* the caller's thread runs this worker */
        return w;
    }
    if (pthread_create(&L->join_id, NULL, worker_main, w) != 0) {
        snprintf(err, errlen, "pthread_create: %s", strerror(errno));
        goto fail;
    }
    L->joinable = true;
    return w;
fail:
    weft_worker_stop_and_free(w);
    return NULL;
}

void weft_worker_swap(weft_worker *w, weft_snapshot *snap, const weft_listen_set *ls) {
    wloop *L = wloop_of(w);
    weft_snapshot_ref(snap);
    weft_listen_handoff *h = weft_listen_set_dup(ls, w->id);
    pthread_mutex_lock(&L->ctl_mu);
    weft_snapshot *old = L->pending;
    weft_listen_handoff *old_h = L->pending_socks;
    L->pending = snap;
    L->pending_socks = h;
    pthread_mutex_unlock(&L->ctl_mu);
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

bool weft_worker_drain_seen(weft_worker *w) {
    return atomic_load_explicit(&wloop_of(w)->drain_seen, memory_order_acquire);
}

void weft_worker_stop_and_free(weft_worker *w) {
    wloop *L = wloop_of(w);
    if (!w)
        return;
    if (L->joinable) {
        send_ctl(w, WEFT_CTL_STOP);
        pthread_join(L->join_id, NULL);
    }
    /* The thread is gone: everything below is single-threaded. */
    wlisteners_free(w);
    EACH_MODULE(fini, w);
    if (L->pending) {
        weft_listen_handoff_free(L->pending_socks, L->pending->cfg->n_listeners);
        weft_snapshot_unref(L->pending);
    }
    if (w->cur)
        weft_wsnap_unref(w->cur);
    EACH_MODULE(fini_late, w);
    if (L->ev_ctl)
        event_free(L->ev_ctl);
    if (L->ctl_fd >= 0)
        close(L->ctl_fd);
    if (L->ev_sweep)
        event_free(L->ev_sweep);
    if (L->ev_idle)
        event_free(L->ev_idle);
    if (w->base)
        event_base_free(w->base);
    if (w->stats)
        weft_stats_block_free(w->stats);
    pthread_mutex_destroy(&L->ctl_mu);
    free(L);
}
