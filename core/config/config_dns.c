/* config_dns.c: the top-level `dns:` mapping (resolvers for clusters whose
 * endpoints are host names; used by core/upstream/dns.c). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"

#define MAX_RESOLVERS 16
#define DEFAULT_DNS_PORT 53

/* 0 = the system's (resolv.conf `options timeout:` / `attempts:`, else
 * 5 s and 3). */
void cfg_dns_defaults(weft_cfg_dns *d) {
    d->query_timeout_ms = 0;
    d->query_attempts = 0;
}

/* "IPv4", "IPv4:port", "IPv6", "[IPv6]", "[IPv6]:port" -> address, port.
 * Returns 0, or -1 (what is wrong in *why). */
static int parse_resolver(const char *s, weft_cfg_dns_resolver *r, const char **why) {
    unsigned char buf[sizeof(struct in6_addr)];
    char host[INET6_ADDRSTRLEN + 1];
    const char *port = NULL;
    size_t hlen;
    *why = "expected an IP address with an optional port (\"10.0.0.2:53\", \"[::1]:5353\")";
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end)
            return -1;
        hlen = (size_t)(end - s - 1);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            return -1;
        if (hlen == 0 || hlen >= sizeof(host))
            return -1;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, buf) != 1)
            return -1;
    } else if (inet_pton(AF_INET6, s, buf) == 1) {
        hlen = strlen(s); /* bare IPv6: the whole string (no port) */
        memcpy(host, s, hlen + 1);
    } else {
        const char *colon = strchr(s, ':');
        hlen = colon ? (size_t)(colon - s) : strlen(s);
        if (colon)
            port = colon + 1;
        if (hlen == 0 || hlen >= sizeof(host))
            return -1;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, buf) != 1)
            return -1;
    }
    r->port = DEFAULT_DNS_PORT;
    if (port) {
        uint64_t p;
        if (cfg_parse_uint(port, &p) || p < 1 || p > 65535) {
            *why = "port must be between 1 and 65535";
            return -1;
        }
        r->port = (uint16_t)p;
    }
    r->address = cfg_dup_str(host);
    if (!r->address) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

int cfg_load_dns(cfg_ld *L, const cy_node *n) {
    static const char *const keys[] = {"resolvers", "query_timeout", "query_attempts", NULL};
    char qb[96];
    weft_cfg_dns *d = &L->cfg->dns;
    if (cfg_check_map(L, n, "dns", keys))
        return -1;
    if (cfg_get_duration(L, n, "query_timeout", 1, &d->query_timeout_ms) < 0 ||
        cfg_get_u32(L, n, "query_attempts", 1, 255, &d->query_attempts) < 0)
        return -1;
    const cy_node *rs = NULL;
    int rc = cfg_get_seq(L, n, "resolvers", &rs);
    if (rc < 0)
        return -1;
    if (rc == 0 || rs->n == 0)
        return 0;
    if (rs->n > MAX_RESOLVERS)
        return cfg_fail(&L->c, rs, "dns resolvers: at most %d, got %u", MAX_RESOLVERS,
                        (unsigned)rs->n);
    d->resolvers = calloc(rs->n, sizeof(*d->resolvers));
    if (!d->resolvers)
        return cfg_oom(L, rs);
    for (const cy_node *e = rs->first; e; e = e->next) {
        const char *why;
        if (e->kind != CY_SCALAR)
            return cfg_fail(&L->c, e, "dns resolver: expected an address string, got %s",
                            cfg_describe(qb, sizeof(qb), e));
        if (parse_resolver(e->str, &d->resolvers[d->n_resolvers], &why))
            return cfg_fail(&L->c, e, "dns resolver %s: %s", cfg_quote(qb, sizeof(qb), e->str),
                            why);
        d->n_resolvers++;
    }
    return 0;
}

void cfg_free_dns(weft_cfg_dns *d) {
    for (size_t i = 0; d->resolvers && i < d->n_resolvers; i++)
        free(d->resolvers[i].address);
    free(d->resolvers);
    d->resolvers = NULL;
    d->n_resolvers = 0;
}
