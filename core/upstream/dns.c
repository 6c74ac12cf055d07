/* dns.c: DNS-resolved clusters (see dns.h). */
#include "upstream/dns.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>

#include "common/common.h"

typedef struct dns_cluster dns_cluster;

typedef struct dns_query {
    dns_cluster *dc;
    size_t ep_idx;
    struct evdns_getaddrinfo_request *req;
} dns_query;

#define DNS_MAX_ADDRS 256

struct dns_cluster {
    weft_dns *d;
    weft_cluster_snap *c;
    struct event *tick;
    dns_query *queries; /* one per configured endpoint */
    size_t pending;
    /* addresses gathered during a round */
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
    socklen_t lens[DNS_MAX_ADDRS];
    uint32_t weights[DNS_MAX_ADDRS];
    uint32_t cfg_idx[DNS_MAX_ADDRS]; /* the endpoint it came from (locality, labels) */
    size_t n_addrs;
};

struct weft_dns {
    struct event_base *base;
    struct evdns_base *evdns;
    weft_snapshot *snap;
    dns_cluster *clusters;
    size_t n;
    /* After weft_dns_stop: no new rounds; the queries in flight were
     * cancelled and libevent still owes `owed` callbacks (deferred to the
     * loop's next turn), which find this object alive. weft_dns_free with
     * callbacks owed sets `closing`: the last one frees it. */
    bool stopped;
    bool closing;
    size_t owed;
};

static void dns_destroy(weft_dns *d);

static bool same_as_current(dns_cluster *dc, weft_hostset *hs) {
    weft_hostset *cur = weft_cluster_snap_hostset(dc->c, NULL);
    bool same = cur && cur->n == hs->n;
    for (size_t i = 0; same && i < hs->n; i++) {
        bool found = false;
        for (size_t j = 0; j < cur->n && !found; j++)
            found = strcmp(cur->eps[j].name, hs->eps[i].name) == 0 &&
                    cur->eps[j].weight == hs->eps[i].weight &&
                    weft_endpoint_meta_equal(&cur->eps[j], &hs->eps[i]);
        same = found;
    }
    if (same) {
        weft_hostset_unref(cur);
        return true;
    }
    /* Carry health over for addresses that stay. */
    for (size_t i = 0; cur && i < hs->n; i++)
        for (size_t j = 0; j < cur->n; j++)
            if (strcmp(cur->eps[j].name, hs->eps[i].name) == 0)
                atomic_store(&hs->eps[i].healthy, atomic_load(&cur->eps[j].healthy));
    if (cur)
        weft_hostset_unref(cur);
    return false;
}

static void round_done(dns_cluster *dc) {
    weft_hostset *hs = weft_hostset_new(dc->n_addrs);
    if (!hs)
        return;
    size_t n = 0;
    for (size_t i = 0; i < dc->n_addrs; i++) {
        weft_endpoint *ep = &hs->eps[n];
        char ip[INET6_ADDRSTRLEN];
        uint16_t port;
        if (dc->addrs[i].ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&dc->addrs[i];
            evutil_inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
            port = ntohs(a->sin_port);
        } else {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&dc->addrs[i];
            evutil_inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
        }
        if (weft_endpoint_set_ip(ep, ip, port) != 0)
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(hs->eps[j].name, ep->name) == 0;
        if (dup)
            continue;
        ep->weight = dc->weights[i];
        if (weft_endpoint_set_meta(ep, &dc->c->cfg->endpoints[dc->cfg_idx[i]]))
            continue;
        n++;
    }
    hs->n = n;
    if (same_as_current(dc, hs)) {
        weft_hostset_unref(hs);
        return;
    }
    if (dc->c->cfg->lb == WEFT_LB_RING_HASH && n)
        weft_hostset_build_ring(hs, dc->c->cfg->ring_size);
    WEFT_INFO("cluster %s: DNS resolved %zu endpoint(s)", dc->c->cfg->name, n);
    weft_cluster_snap_publish(dc->c, hs);
    weft_cluster_snap_update_health_gauge(dc->c);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg) {
    dns_query *q = arg;
    dns_cluster *dc = q->dc;
    q->req = NULL;
    if (dc->d->stopped) {
        /* A cancelled query (or an answer that raced the cancel). */
        if (res)
            evutil_freeaddrinfo(res);
        weft_dns *d = dc->d;
        if (d->owed && --d->owed == 0 && d->closing)
            dns_destroy(d);
        return;
    }
    const weft_cfg_endpoint *e = &dc->c->cfg->endpoints[q->ep_idx];
    if (result == 0) {
        for (struct evutil_addrinfo *ai = res; ai && dc->n_addrs < DNS_MAX_ADDRS;
             ai = ai->ai_next) {
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                continue;
            memcpy(&dc->addrs[dc->n_addrs], ai->ai_addr, ai->ai_addrlen);
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)&dc->addrs[dc->n_addrs])->sin_port = htons(e->port);
            else
                ((struct sockaddr_in6 *)&dc->addrs[dc->n_addrs])->sin6_port = htons(e->port);
            dc->lens[dc->n_addrs] = (socklen_t)ai->ai_addrlen;
            dc->weights[dc->n_addrs] = e->weight ? e->weight : 1;
            dc->cfg_idx[dc->n_addrs] = (uint32_t)q->ep_idx;
            dc->n_addrs++;
        }
    } else if (result != EVUTIL_EAI_CANCEL) {
        WEFT_WARN("cluster %s: cannot resolve \"%s\": %s", dc->c->cfg->name, e->address,
                  evutil_gai_strerror(result));
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (result == EVUTIL_EAI_CANCEL)
        return;
    if (--dc->pending == 0)
        round_done(dc);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    dns_cluster *dc = arg;
    if (dc->pending)
        return; /* previous round still running */
    dc->n_addrs = 0;
    dc->pending = dc->c->cfg->n_endpoints;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    for (size_t i = 0; i < dc->c->cfg->n_endpoints; i++) {
        dns_query *q = &dc->queries[i];
        q->req = evdns_getaddrinfo(dc->d->evdns, dc->c->cfg->endpoints[i].address, NULL, &hints,
                                   on_resolved, q);
        /* evdns may answer synchronously (literals, hosts file): then req is
         * NULL and the callback already ran. */
    }
}

/* The configured resolvers (dns.resolvers) as sockaddrs; -1 if one is not
 * an IP literal (the loader checked them, so only on a bad hand-made cfg). */
static int add_resolvers(struct evdns_base *evdns, const weft_cfg_dns *cfg) {
    for (size_t i = 0; i < cfg->n_resolvers; i++) {
        const weft_cfg_dns_resolver *r = &cfg->resolvers[i];
        struct sockaddr_storage ss;
        socklen_t len;
        memset(&ss, 0, sizeof(ss));
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        if (evutil_inet_pton(AF_INET, r->address, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons(r->port);
            len = sizeof(*a4);
        } else if (evutil_inet_pton(AF_INET6, r->address, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons(r->port);
            len = sizeof(*a6);
        } else {
            WEFT_ERROR("dns: resolver \"%s\" is not an IP address", r->address);
            return -1;
        }
        if (evdns_base_nameserver_sockaddr_add(evdns, (struct sockaddr *)&ss, len, 0) != 0) {
            WEFT_ERROR("dns: cannot use resolver %s port %u", r->address, (unsigned)r->port);
            return -1;
        }
    }
    return 0;
}

/* The resolver: the configured name servers (dns.resolvers), else the
 * system's (resolv.conf); /etc/hosts in both cases. libevent 2.1's evdns
 * keeps no answer cache (only the hosts file is consulted before a
 * query), so every refresh asks the name server again whatever the TTL:
 * a short TTL is never outlived. */
static struct evdns_base *new_evdns(struct event_base *base, const weft_cfg_dns *cfg) {
    struct evdns_base *evdns;
    if (cfg->n_resolvers) {
        evdns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!evdns)
            return NULL;
        evdns_base_load_hosts(evdns, NULL);
        if (add_resolvers(evdns, cfg)) {
            evdns_base_free(evdns, 0);
            return NULL;
        }
    } else {
        evdns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                         EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!evdns) {
            /* No resolv.conf: still resolve names from /etc/hosts. */
            evdns = evdns_base_new(base, 0);
            if (evdns)
                evdns_base_load_hosts(evdns, NULL);
        }
        if (!evdns)
            return NULL;
    }
    /* 0 = resolv.conf's (or evdns's defaults: 5 s, 3 tries). */
    if (cfg->query_timeout_ms) {
        char v[32];
        snprintf(v, sizeof(v), "%llu.%03u", (unsigned long long)(cfg->query_timeout_ms / 1000),
                 (unsigned)(cfg->query_timeout_ms % 1000));
        evdns_base_set_option(evdns, "timeout:", v);
    }
    if (cfg->query_attempts) {
        char v[16];
        snprintf(v, sizeof(v), "%u", (unsigned)cfg->query_attempts);
        evdns_base_set_option(evdns, "attempts:", v);
    }
    return evdns;
}

weft_dns *weft_dns_start(struct event_base *base, weft_snapshot *snap) {
    weft_dns *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->base = base;
    d->snap = snap;
    weft_snapshot_ref(snap);
    size_t need = 0;
    for (size_t i = 0; i < snap->cfg->n_clusters; i++)
        need += snap->clusters[i].cfg->uses_dns;
    if (!need)
        return d;
    d->evdns = new_evdns(base, &snap->cfg->dns);
    d->clusters = calloc(need, sizeof(*d->clusters));
    if (!d->evdns || !d->clusters)
        return d;
    for (size_t i = 0; i < snap->cfg->n_clusters; i++) {
        weft_cluster_snap *c = &snap->clusters[i];
        if (!c->cfg->uses_dns)
            continue;
        dns_cluster *dc = &d->clusters[d->n++];
        dc->d = d;
        dc->c = c;
        dc->queries = calloc(c->cfg->n_endpoints, sizeof(*dc->queries));
        for (size_t j = 0; dc->queries && j < c->cfg->n_endpoints; j++) {
            dc->queries[j].dc = dc;
            dc->queries[j].ep_idx = j;
        }
        dc->tick = event_new(base, -1, EV_PERSIST, on_tick, dc);
        uint64_t ms = c->cfg->dns_refresh_ms ? c->cfg->dns_refresh_ms : 5000;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        event_add(dc->tick, &tv);
        if (dc->queries)
            on_tick(-1, 0, dc);
    }
    return d;
}

void weft_dns_stop(weft_dns *d) {
    if (!d || d->stopped)
        return;
    d->stopped = true;
    size_t owed = 0;
    for (size_t i = 0; i < d->n; i++) {
        dns_cluster *dc = &d->clusters[i];
        if (dc->tick)
            event_del(dc->tick);
        for (size_t j = 0; dc->queries && j < dc->c->cfg->n_endpoints; j++)
            owed += dc->queries[j].req != NULL;
    }
    d->owed = owed;
    /* Each cancelled query is answered once, with EVUTIL_EAI_CANCEL, from
     * the loop's next turn: counted above before any can arrive. */
    for (size_t i = 0; i < d->n; i++) {
        dns_cluster *dc = &d->clusters[i];
        for (size_t j = 0; dc->queries && j < dc->c->cfg->n_endpoints; j++)
            if (dc->queries[j].req)
                evdns_getaddrinfo_cancel(dc->queries[j].req);
    }
}

static void dns_destroy(weft_dns *d) {
    for (size_t i = 0; i < d->n; i++) {
        dns_cluster *dc = &d->clusters[i];
        if (dc->tick)
            event_free(dc->tick);
        free(dc->queries);
    }
    free(d->clusters);
    if (d->evdns)
        evdns_base_free(d->evdns, 0);
    weft_snapshot_unref(d->snap);
    free(d);
}

void weft_dns_free(weft_dns *d) {
    if (!d)
        return;
    weft_dns_stop(d);
    if (d->owed) {
        /* Freed by the last cancelled query's callback (the loop runs on
         * after a reload; at exit, main stops DNS when the drain starts so
         * that these have arrived). */
        d->closing = true;
        return;
    }
    dns_destroy(d);
}
