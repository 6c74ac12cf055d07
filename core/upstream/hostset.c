/* hostset.c: endpoint sets shared by all workers, their ketama-style ring,
 * and IP-literal endpoint addresses. */
#include "upstream/hostset.h"

#include "common/common.h"
#include "common/shared_reg.h"
#include "config/config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

weft_hostset *weft_hostset_new(size_t n) {
    weft_hostset *hs = calloc(1, sizeof(*hs));
    if (!hs)
        return NULL;
    hs->eps = calloc(n ? n : 1, sizeof(*hs->eps));
    if (!hs->eps) {
        free(hs);
        return NULL;
    }
    hs->n = n;
    for (size_t i = 0; i < n; i++) {
        hs->eps[i].weight = 1;
        hs->eps[i].region = hs->eps[i].zone = hs->eps[i].subzone = "";
        atomic_init(&hs->eps[i].healthy, 1);
    }
    atomic_init(&hs->refs, 1);
    return hs;
}

void weft_hostset_ref(weft_hostset *hs) {
    if (hs)
        atomic_fetch_add_explicit(&hs->refs, 1, memory_order_relaxed);
}

void weft_hostset_unref(weft_hostset *hs) {
    if (!hs)
        return;
    if (atomic_fetch_sub_explicit(&hs->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(hs->ring);
    for (size_t i = 0; i < hs->n; i++) {
        free(hs->eps[i].meta);
        weft_shared_release(hs->eps[i].state_entry);
    }
    free(hs->eps);
    free(hs);
}

int weft_hostset_bind_state(weft_hostset *hs, const char *cluster) {
    if (!hs || !cluster)
        return -1;
    char key[sizeof(hs->eps[0].name) + 256];
    for (size_t i = 0; i < hs->n; i++) {
        weft_endpoint *ep = &hs->eps[i];
        if (ep->state_entry)
            continue;
        int len = snprintf(key, sizeof(key), "%s\n%s", cluster, ep->name);
        if (len < 0 || (size_t)len >= sizeof(key))
            continue; /* a cluster name past 255 bytes: not ejectable */
        weft_shared_entry *e = weft_shared_acquire("#endpoint", key, (size_t)len,
                                                   sizeof(weft_endpoint_state), 1, NULL);
        if (!e)
            return -1;
        ep->state_entry = e;
        ep->state = weft_shared_block(e);
    }
    return 0;
}

static size_t str_size(const char *s) {
    return (s ? strlen(s) : 0) + 1;
}

static const char *put_str(char **p, const char *s) {
    size_t n = str_size(s);
    memcpy(*p, s ? s : "", n);
    const char *r = *p;
    *p += n;
    return r;
}

static bool str_empty(const char *s) {
    return !s || !*s;
}

int weft_endpoint_set_meta(weft_endpoint *ep, const weft_cfg_endpoint *cfg) {
    if (!cfg->n_labels && str_empty(cfg->region) && str_empty(cfg->zone) &&
        str_empty(cfg->subzone)) {
        /* The common case (no locality, no labels) allocates nothing. */
        free(ep->meta);
        ep->meta = NULL;
        ep->region = ep->zone = ep->subzone = "";
        ep->labels = NULL;
        ep->n_labels = 0;
        return 0;
    }
    size_t sz = cfg->n_labels * sizeof(weft_endpoint_label) + str_size(cfg->region) +
                str_size(cfg->zone) + str_size(cfg->subzone);
    for (size_t i = 0; i < cfg->n_labels; i++)
        sz += str_size(cfg->labels[i].key) + str_size(cfg->labels[i].value);
    void *block = malloc(sz);
    if (!block)
        return -1;
    weft_endpoint_label *labels = block;
    char *p = (char *)(labels + cfg->n_labels);
    for (size_t i = 0; i < cfg->n_labels; i++) {
        labels[i].key = put_str(&p, cfg->labels[i].key);
        labels[i].value = put_str(&p, cfg->labels[i].value);
    }
    ep->region = put_str(&p, cfg->region);
    ep->zone = put_str(&p, cfg->zone);
    ep->subzone = put_str(&p, cfg->subzone);
    ep->labels = cfg->n_labels ? labels : NULL;
    ep->n_labels = (uint32_t)cfg->n_labels;
    free(ep->meta);
    ep->meta = block;
    return 0;
}

bool weft_endpoint_meta_equal(const weft_endpoint *a, const weft_endpoint *b) {
    if (strcmp(a->region, b->region) || strcmp(a->zone, b->zone) ||
        strcmp(a->subzone, b->subzone) || a->n_labels != b->n_labels)
        return false;
    for (uint32_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i].key, b->labels[i].key) ||
            strcmp(a->labels[i].value, b->labels[i].value))
            return false;
    return true;
}

const char *weft_endpoint_label_get(const weft_endpoint *ep, const char *key) {
    size_t lo = 0, hi = ep->n_labels;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(key, ep->labels[mid].key);
        if (c == 0)
            return ep->labels[mid].value;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int ring_cmp(const void *a, const void *b) {
    const weft_ring_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    /* Equal hashes (astronomically rare): order by endpoint so the ring
     * is identical on every build of the same endpoints. */
    return x->ep < y->ep ? -1 : x->ep > y->ep;
}

/* Points for an endpoint of weight w. ring_size is a minimum for the
 * whole ring: while the total weight fits in it, each unit of weight gets
 * the same power-of-two number of points, ceil(ring_size / total) rounded
 * up. An endpoint then keeps exactly its points (hashes of "name#0".."#k")
 * when others join or leave, so only the keys of the endpoint that left
 * move (unless the change crosses a power of two). When the total weight
 * exceeds ring_size, points are max(1, ring_size * w / total). */
static uint64_t ring_points(uint64_t w, uint64_t total_w, uint32_t ring_size) {
    if (total_w <= ring_size) {
        uint64_t need = (ring_size + total_w - 1) / total_w;
        uint64_t unit = 1;
        while (unit < need)
            unit <<= 1;
        return w * unit;
    }
    uint64_t pts = (uint64_t)ring_size * w / total_w;
    return pts ? pts : 1;
}

int weft_hostset_build_ring(weft_hostset *hs, uint32_t ring_size) {
    if (!hs)
        return -1;
    if (ring_size == 0)
        ring_size = 1024;
    uint64_t total_w = 0;
    for (size_t i = 0; i < hs->n; i++)
        total_w += hs->eps[i].weight ? hs->eps[i].weight : 1;

    size_t total_pts = 0;
    for (size_t i = 0; i < hs->n; i++)
        total_pts +=
            (size_t)ring_points(hs->eps[i].weight ? hs->eps[i].weight : 1, total_w, ring_size);
    weft_ring_entry *ring = NULL;
    if (total_pts) {
        ring = malloc(total_pts * sizeof(*ring));
        if (!ring)
            return -1;
    }
    size_t k = 0;
    char buf[sizeof(hs->eps[0].name) + 24];
    for (size_t i = 0; i < hs->n; i++) {
        uint64_t pts = ring_points(hs->eps[i].weight ? hs->eps[i].weight : 1, total_w, ring_size);
        for (uint64_t j = 0; j < pts; j++) {
            int len = snprintf(buf, sizeof(buf), "%s#%llu", hs->eps[i].name, (unsigned long long)j);
            ring[k].hash = weft_hash64(buf, (size_t)len, 0);
            ring[k].ep = (uint32_t)i;
            k++;
        }
    }
    if (k)
        qsort(ring, k, sizeof(*ring), ring_cmp);
    free(hs->ring);
    hs->ring = ring;
    hs->ring_n = k;
    return 0;
}

/* Parses an optional "%scope" suffix of an IPv6 literal (interface name
 * or number). Returns 0 and the scope id, or -1. */
static int parse_scope(const char *s, uint32_t *out) {
    if (!*s)
        return -1;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end == '\0' && v <= UINT32_MAX) {
        *out = (uint32_t)v;
        return 0;
    }
    unsigned idx = if_nametoindex(s);
    if (!idx)
        return -1;
    *out = idx;
    return 0;
}

int weft_endpoint_set_ip(weft_endpoint *ep, const char *ip, uint16_t port) {
    if (!ep || !ip)
        return -1;
    struct in_addr a4;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addr;
        memset(&ep->addr, 0, sizeof(ep->addr));
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sin->sin_addr = a4;
        ep->addrlen = sizeof(*sin);
        char canon[INET_ADDRSTRLEN];
        if (!inet_ntop(AF_INET, &a4, canon, sizeof(canon)))
            return -1;
        snprintf(ep->name, sizeof(ep->name), "%s:%u", canon, (unsigned)port);
        return 0;
    }

    /* IPv6, optionally bracketed and/or with a %scope. */
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
    size_t len = strlen(ip);
    if (len >= 2 && ip[0] == '[' && ip[len - 1] == ']') {
        ip++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, ip, len);
    buf[len] = '\0';
    uint32_t scope = 0;
    char *pct = strchr(buf, '%');
    if (pct) {
        if (parse_scope(pct + 1, &scope))
            return -1;
        *pct = '\0';
    }
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1)
        return -1;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ep->addr;
    memset(&ep->addr, 0, sizeof(ep->addr));
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = a6;
    sin6->sin6_scope_id = scope;
    ep->addrlen = sizeof(*sin6);
    char canon[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, &a6, canon, sizeof(canon)))
        return -1;
    if (pct)
        snprintf(ep->name, sizeof(ep->name), "[%s%%%s]:%u", canon, pct + 1, (unsigned)port);
    else
        snprintf(ep->name, sizeof(ep->name), "[%s]:%u", canon, (unsigned)port);
    return 0;
}
