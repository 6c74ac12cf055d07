/* listen_set.c: listening sockets bound by the main thread (see listen_set.h). */
#include "loop/listen_set.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

static uint64_t g_next_gen = 1; /* main thread only */

/* One SO_REUSEPORT socket bound to address:port and listening. */
static int bind_one(const char *address, uint16_t port, char *err, size_t errlen) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    int family;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, address, &s4->sin_addr) == 1) {
        family = AF_INET;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, address, &s6->sin6_addr) == 1) {
        family = AF_INET6;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof(*s6);
    } else {
        snprintf(err, errlen, "listener address \"%s\" is not an IP address", address);
        return -1;
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, WEFT_LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", address, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void sock_close(weft_listen_sock *k, int n_workers) {
    for (int w = 0; k->fds && w < n_workers; w++)
        if (k->fds[w] >= 0)
            close(k->fds[w]);
    free(k->fds);
    free(k->address);
    k->fds = NULL;
    k->address = NULL;
}

static const weft_listen_sock *find_gen(const weft_listen_set *s, uint64_t gen) {
    for (size_t i = 0; s && i < s->n; i++)
        if (s->socks[i].gen == gen)
            return &s->socks[i];
    return NULL;
}

/* Frees next's arrays; closes the sockets whose gen `keep` does not hold. */
static void release(weft_listen_set *next, const weft_listen_set *keep) {
    for (size_t i = 0; i < next->n; i++) {
        weft_listen_sock *k = &next->socks[i];
        if (k->gen && find_gen(keep, k->gen)) {
            free(k->address); /* shared: the fds stay with `keep` */
            free(k->fds);
        } else {
            sock_close(k, next->n_workers);
        }
    }
    free(next->socks);
    next->socks = NULL;
    next->n = 0;
}

int weft_listen_set_prepare(weft_listen_set *next, const weft_listen_set *cur,
                            const weft_config *cfg, int n_workers, char *err, size_t errlen) {
    memset(next, 0, sizeof(*next));
    next->n_workers = n_workers;
    if (!cfg->n_listeners)
        return 0;
    next->socks = calloc(cfg->n_listeners, sizeof(*next->socks));
    if (!next->socks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    next->n = cfg->n_listeners;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const weft_cfg_listener *cl = &cfg->listeners[i];
        weft_listen_sock *k = &next->socks[i];
        k->address = strdup(cl->address);
        k->port = cl->port;
        k->fds = malloc((size_t)n_workers * sizeof(int));
        for (int w = 0; k->fds && w < n_workers; w++)
            k->fds[w] = -1;
        if (!k->address || !k->fds) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        const weft_listen_sock *old = NULL;
        for (size_t j = 0; cur && j < cur->n; j++)
            if (cur->socks[j].port == cl->port && strcmp(cur->socks[j].address, cl->address) == 0)
                old = &cur->socks[j];
        if (old && old->fds) {
            k->gen = old->gen;
            memcpy(k->fds, old->fds, (size_t)n_workers * sizeof(int));
            continue;
        }
        k->gen = g_next_gen++;
        for (int w = 0; w < n_workers; w++) {
            k->fds[w] = bind_one(cl->address, cl->port, err, errlen);
            if (k->fds[w] < 0) {
                size_t n = strlen(err);
                snprintf(err + n, errlen - n, " (listener %s)", cl->name);
                goto fail;
            }
        }
    }
    return 0;
fail:
    release(next, cur);
    return -1;
}

void weft_listen_set_abort(weft_listen_set *next, const weft_listen_set *cur) {
    release(next, cur);
}

void weft_listen_set_adopt(weft_listen_set *cur, weft_listen_set *next) {
    /* cur's sockets that next does not share: close. */
    release(cur, next);
    *cur = *next;
    memset(next, 0, sizeof(*next));
}

void weft_listen_set_close(weft_listen_set *s) {
    release(s, NULL);
}

void weft_listen_set_close_tcp(weft_listen_set *s, const weft_config *cfg) {
    for (size_t i = 0; i < s->n && i < cfg->n_listeners; i++)
        if (cfg->listeners[i].is_tcp)
            sock_close(&s->socks[i], s->n_workers);
}

unsigned weft_listen_set_queued(const weft_listen_set *s) {
    unsigned n = 0;
    for (size_t i = 0; i < s->n; i++)
        for (int w = 0; s->socks[i].fds && w < s->n_workers; w++) {
            struct tcp_info ti;
            socklen_t len = sizeof(ti);
            memset(&ti, 0, sizeof(ti));
            if (s->socks[i].fds[w] >= 0 &&
                getsockopt(s->socks[i].fds[w], IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
                n += ti.tcpi_unacked; /* of a listening socket: its accept queue */
        }
    return n;
}

weft_listen_handoff *weft_listen_set_dup(const weft_listen_set *s, int wid) {
    if (!s || !s->n || wid < 0 || wid >= s->n_workers)
        return NULL;
    weft_listen_handoff *h = calloc(s->n, sizeof(*h));
    if (!h)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        h[i].gen = s->socks[i].gen;
        h[i].fd = s->socks[i].fds ? fcntl(s->socks[i].fds[wid], F_DUPFD_CLOEXEC, 0) : -1;
    }
    return h;
}

void weft_listen_handoff_free(weft_listen_handoff *h, size_t n) {
    for (size_t i = 0; h && i < n; i++)
        if (h[i].fd >= 0)
            close(h[i].fd);
    free(h);
}
