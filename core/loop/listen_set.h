/* listen_set.h: the listening sockets of a committed config, bound by the
 * main thread before the config is handed to the workers, so a port in use
 * refuses the whole config (one log line) and the old one keeps serving.
 *
 * Each listener address gets one SO_REUSEPORT socket per worker (the
 * kernel spreads connections over them). The set keeps the main thread's
 * copy of every socket; a worker gets its own dup (weft_listen_set_dup)
 * with each config handed to it, and keeps the socket it already has for
 * the same bind (same `gen`). Sockets of addresses a reload keeps are
 * reused, never rebound. */
#ifndef WEFT_LOOP_LISTEN_SET_H
#define WEFT_LOOP_LISTEN_SET_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* listen() backlog of every listening socket: the most connections the
 * kernel completes for one socket before a worker accepts them. */
#define WEFT_LISTEN_BACKLOG 4096

typedef struct weft_listen_sock {
    char *address; /* owned */
    uint16_t port;
    uint64_t gen; /* unique per bind: a rebind of the same address is a new gen */
    int *fds;     /* [n_workers], the main thread's copies */
} weft_listen_sock;

typedef struct weft_listen_set {
    weft_listen_sock *socks; /* [n]: socks[i] is cfg->listeners[i] */
    size_t n;
    int n_workers;
} weft_listen_set;

/* What a worker receives for listener i of a config: the bind's gen and
 * a dup of the worker's socket (the worker owns it), or fd -1. */
typedef struct weft_listen_handoff {
    uint64_t gen;
    int fd;
} weft_listen_handoff;

/* Fills `next` for cfg's listeners: sockets of `cur` (may be NULL) with
 * the same address and port are shared, the others are bound now,
 * n_workers each. On failure: -1 and one line in err ("cannot listen on
 * 127.0.0.1:80: Address already in use"), nothing new stays bound and
 * `next` is empty. */
int weft_listen_set_prepare(weft_listen_set *next, const weft_listen_set *cur,
                            const weft_config *cfg, int n_workers, char *err, size_t errlen);
/* After a prepare that will not be used: closes what it bound anew. */
void weft_listen_set_abort(weft_listen_set *next, const weft_listen_set *cur);
/* cur := next: closes the main thread's copies of sockets next does not
 * share (workers close theirs when they adopt the config without them). */
void weft_listen_set_adopt(weft_listen_set *cur, weft_listen_set *next);
/* Closes every main thread copy (the sockets close as soon as the workers
 * close theirs). */
void weft_listen_set_close(weft_listen_set *s);
/* Closes the main thread's copies of cfg's tcp_proxy listeners only (the
 * drain: workers close those at once; HTTP listeners keep accepting, and
 * the main thread keeps its copies to see their accept queues). */
void weft_listen_set_close_tcp(weft_listen_set *s, const weft_config *cfg);
/* Connections the kernel completed but no worker has accepted yet, over
 * every socket of the set (TCP_INFO of a listening socket: its accept
 * queue). Main thread. */
unsigned weft_listen_set_queued(const weft_listen_set *s);

/* Worker `wid`'s handoff for each listener (n entries, malloc'd; the fds
 * are fresh dups the receiver owns). NULL when the set is empty. */
weft_listen_handoff *weft_listen_set_dup(const weft_listen_set *s, int wid);
void weft_listen_handoff_free(weft_listen_handoff *h, size_t n);

#endif
