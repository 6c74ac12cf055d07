/* pool.h: upstream HTTP/1.1 connections and the per-worker idle pools they
 * return to. Pools are keyed by endpoint name ("10.0.0.1:8080") and live in
 * the worker, not in a snapshot, so reloads and DNS refreshes keep warm
 * connections to endpoints that stay. While a connection is attached to a
 * user (an exchange), it reports parser events through the user's
 * callbacks (up_user.h). */
#ifndef WEFT_UPSTREAM_POOL_H
#define WEFT_UPSTREAM_POOL_H

#include <event2/buffer.h>
#include <event2/event_struct.h>

#include "http/h1/h1_codec.h"
#include "common/ltimer.h"
#include "common/wctx.h"
#include "runtime/snapshot.h"
#include "net/conn.h"
#include "upstream/up_user.h"

struct weft_connection;
struct weft_snapshot;

typedef struct weft_upconn {
    weft_pool *pool;
    weft_worker *w;
    weft_conn *conn;
    struct event ev_resume; /* deferred re-read after a pause */
    weft_h1_parser *parser;
    weft_up_user user;          /* the exchange served; user.owner NULL when idle */
    weft_cluster_snap *cluster; /* the attached stream's cluster; NULL while idle */
    uint32_t max_idle, max_req; /* copied from the cluster at acquire */
    uint64_t idle_timeout_ms;
    weft_stat_id idle_stat;   /* pool_idle gauge it counts in while idle */
    weft_stat_id cx_stat;     /* cx_active gauge it counts in while open */
    weft_ltimer timer;        /* connect timeout, then pool idle timeout */
    struct weft_upconn *next; /* idle list */
    uint64_t idle_since_ms;
    uint32_t requests;
    bool connected;
    bool got_bytes; /* any response byte for the current request */
    bool read_paused;
    bool in_cb;   /* inside one of its own callbacks: defer frees */
    bool tunnel;  /* raw bytes to the attached stream (101/CONNECT) */
    bool is_idle; /* on its pool's idle list */
    bool doomed;  /* free when the current callback returns */
    /* A cluster's transport_filters (NULL without): the chain runs between
     * the socket and the HTTP/1.1 client codec. `connected` then means TCP
     * up AND every handshake filter done (the request waits until then);
     * tcp_up is TCP alone. The connection holds its snapshot (the filters'
     * configs live there). */
    struct weft_connection *tc;
    struct weft_snapshot *tsnap;
    struct event ev_tx; /* runs the chain's write side; a filter's close */
    uint32_t hw;        /* buffer_high_watermark of the first user (the chain's write limit) */
    bool tcp_up;
    bool tclose; /* a transport filter asked to close */
} weft_upconn;

struct weft_pool {
    char key[160];     /* endpoint name, plus the transport chain and SNI when there is one */
    char ep_name[96];  /* the endpoint's name alone */
    weft_upconn *idle; /* LIFO: the warmest connection first */
    uint32_t n_idle;
    uint32_t n_total;
    struct weft_pool *next; /* hash chain */
};

/* An idle connection to ep, or a new one (connecting). *reused tells which.
 * NULL on immediate failure (socket error). The connection is attached to
 * the user `u` (copied): its events go to u->ev until weft_upconn_release(). */
weft_upconn *weft_pool_acquire(weft_worker *w, weft_cluster_snap *c, const weft_endpoint *ep,
                               const weft_up_user *u, bool allow_idle, bool *reused);
/* Detaches from its user. reusable: back to the idle pool (if the pool
 * has room), otherwise closed. */
void weft_upconn_release(weft_upconn *uc, bool reusable);
void weft_upconn_pause_read(weft_upconn *uc);
void weft_upconn_resume_read(weft_upconn *uc);
struct evbuffer *weft_upconn_output(weft_upconn *uc);
/* Frees pools that hold no connection. */
void weft_pools_sweep(weft_worker *w);
void weft_pools_free_all(weft_worker *w);

#endif
