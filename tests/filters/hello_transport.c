/* hello_transport: a TRANSPORT filter with a toy handshake, shaped like TLS
 * for the ABI 1.1 calls (write to the peer on its own, timers, close,
 * handshake_done with facts), on both sides of weft:
 *
 *   server side (a listener's filters:): at once, before reading anything,
 *     it sends "HELLO <name> <alpn>\n" to the client; the client answers
 *     "HELLO[ <identity>[ <sni>]]\n". Then bytes pass unchanged. The
 *     handshake_done facts: alpn (config), the client's identity and sni,
 *     TLS version "TOYv1", cipher "NULL-XOR0", WEFT_HANDSHAKE_TLS when
 *     tls: true. Another first line, or none within `timeout`: closed.
 *   client side (a cluster's transport_filters:): at once it sends
 *     "HELLO <identity> <sni>\n" (sni from the cluster, "-" when none) and
 *     waits for the server's line; its alpn must be one the cluster offers
 *     (weft_connection_info.alpn_offer); handshake_done with that alpn and
 *     the server's name as peer identity.
 *
 *   config: {name: weft, alpn: http/1.1, tls: true, timeout: 2s,
 *            identity: spiffe://weft.test/client, fail_after_handshake: false}
 *   alpn "none": no ALPN (the codec sniffs). fail_after_handshake: on_read
 *   returns -1 at the first byte after the handshake (a filter error).
 *   A line "BYE\n" from the client during the handshake makes the server
 *   answer "BYE\n" and close with flush (weft_connection_close(c, true));
 *   "RST\n" closes without flush.
 *
 * Stats: connections, handshakes, timeouts, rejected, upstream_connections,
 * upstream_handshakes (counters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define HELLO_MAX_LINE 512

typedef struct hello_config {
    char name[64], alpn[32], identity[256];
    bool tls, fail_after;
    uint64_t timeout_ms;
    int32_t st_conns, st_handshakes, st_timeouts, st_rejected, st_up_conns, st_up_handshakes;
} hello_config;

typedef struct hello_conn {
    hello_config *cfg;
    bool upstream, done;
    weft_timer *timer;
    char offer[64]; /* upstream: the cluster's alpn_offer */
    size_t n;
    char line[HELLO_MAX_LINE];
} hello_conn;

static int copy_opt(weft_filter_setup *setup, const weft_config_node *node, const char *key,
                    char *dst, size_t cap) {
    const weft_config_node *n = weft_config_get(node, key);
    weft_str v;
    if (!n)
        return 0;
    if (weft_config_string(n, &v) != WEFT_OK || v.len == 0 || v.len >= cap ||
        memchr(v.ptr, ' ', v.len))
        return weft_config_fail(setup, n, "expected a short string without spaces");
    memcpy(dst, v.ptr, v.len);
    dst[v.len] = '\0';
    return 0;
}

static int bool_opt(weft_filter_setup *setup, const weft_config_node *node, const char *key,
                    bool *out) {
    const weft_config_node *n = weft_config_get(node, key);
    if (n && weft_config_bool(n, out) != WEFT_OK)
        return weft_config_fail(setup, n, "expected true or false");
    return 0;
}

static int hello_config_create(const weft_config_node *node, weft_filter_setup *setup,
                               void **config) {
    hello_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    strcpy(c->name, "weft");
    strcpy(c->alpn, "http/1.1");
    strcpy(c->identity, "spiffe://weft.test/client");
    c->tls = true;
    c->timeout_ms = 2000;
    const weft_config_node *t = weft_config_get(node, "timeout");
    if (copy_opt(setup, node, "name", c->name, sizeof(c->name)) ||
        copy_opt(setup, node, "alpn", c->alpn, sizeof(c->alpn)) ||
        copy_opt(setup, node, "identity", c->identity, sizeof(c->identity)) ||
        bool_opt(setup, node, "tls", &c->tls) ||
        bool_opt(setup, node, "fail_after_handshake", &c->fail_after) ||
        (t && (weft_config_duration_ms(t, &c->timeout_ms) != WEFT_OK || !c->timeout_ms) &&
         weft_config_fail(setup, t, "timeout: expected a duration such as 500ms"))) {
        free(c);
        return -1;
    }
    if (!strcmp(c->alpn, "none"))
        c->alpn[0] = '\0';
    c->st_conns = weft_stat_counter(setup, "connections", "server-side connections");
    c->st_handshakes = weft_stat_counter(setup, "handshakes", "server-side handshakes done");
    c->st_timeouts = weft_stat_counter(setup, "timeouts", "handshakes that timed out");
    c->st_rejected = weft_stat_counter(setup, "rejected", "connections closed for a bad line");
    c->st_up_conns = weft_stat_counter(setup, "upstream_connections", "client-side connections");
    c->st_up_handshakes =
        weft_stat_counter(setup, "upstream_handshakes", "client-side handshakes done");
    *config = c;
    return 0;
}

static void hello_config_destroy(void *config) {
    free(config);
}

static void on_timeout(weft_connection *c, void *ctx, void *arg) {
    (void)arg;
    hello_conn *h = ctx;
    h->timer = NULL;
    if (h->done)
        return;
    weft_stat_inc(h->cfg->st_timeouts, 1);
    weft_connection_close(c, false);
}

static hello_conn *conn_new(hello_config *cfg, weft_connection *c, bool upstream) {
    hello_conn *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cfg = cfg;
    h->upstream = upstream;
    if (weft_connection_timer_start(c, cfg->timeout_ms, on_timeout, NULL, &h->timer) != WEFT_OK)
        h->timer = NULL;
    return h;
}

static void *hello_connection_create(void *config, weft_connection *c) {
    hello_config *cfg = config;
    hello_conn *h = conn_new(cfg, c, false);
    if (!h)
        return NULL;
    weft_stat_inc(cfg->st_conns, 1);
    /* The server speaks first: before any byte from the client. */
    char line[160];
    int n =
        snprintf(line, sizeof(line), "HELLO %s %s\n", cfg->name, cfg->alpn[0] ? cfg->alpn : "-");
    weft_connection_write(c, line, (size_t)n);
    return h;
}

static void *hello_upstream_create(void *config, weft_connection *c,
                                   const weft_connection_info *info) {
    hello_config *cfg = config;
    hello_conn *h = conn_new(cfg, c, true);
    if (!h)
        return NULL;
    weft_stat_inc(cfg->st_up_conns, 1);
    if (info->alpn_offer.len < sizeof(h->offer)) {
        memcpy(h->offer, info->alpn_offer.ptr, info->alpn_offer.len);
        h->offer[info->alpn_offer.len] = '\0';
    }
    /* The client writes first, as a TLS ClientHello does. */
    char line[600];
    int n = snprintf(line, sizeof(line), "HELLO %s %.*s\n", cfg->identity,
                     info->sni.len ? (int)info->sni.len : 1, info->sni.len ? info->sni.ptr : "-");
    if (n > 0 && (size_t)n < sizeof(line))
        weft_connection_write(c, line, (size_t)n);
    return h;
}

static void hello_connection_destroy(void *ctx) {
    free(ctx);
}

/* Splits "HELLO a b" into up to two words after HELLO. */
static bool parse_hello(char *line, size_t len, weft_str *w1, weft_str *w2) {
    *w1 = *w2 = (weft_str){"", 0};
    if (len < 5 || memcmp(line, "HELLO", 5) != 0 || (len > 5 && line[5] != ' '))
        return false;
    size_t i = 6;
    weft_str *w[2] = {w1, w2};
    for (int k = 0; k < 2 && i < len; k++) {
        size_t s = i;
        while (i < len && line[i] != ' ')
            i++;
        *w[k] = (weft_str){line + s, i - s};
        i++;
    }
    return true;
}

static bool offered(const char *offer, weft_str alpn) {
    const char *p = offer;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == alpn.len && !memcmp(p, alpn.ptr, l))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static int finish(hello_conn *h, weft_connection *c) {
    size_t len = h->n;
    if (len && h->line[len - 1] == '\r')
        len--;
    h->line[len] = '\0';
    hello_config *cfg = h->cfg;
    if (!h->upstream && (!strcmp(h->line, "BYE") || !strcmp(h->line, "RST"))) {
        bool flush = h->line[0] == 'B';
        if (flush)
            weft_connection_write(c, "BYE\n", 4);
        weft_connection_close(c, flush);
        return 0;
    }
    weft_str w1, w2;
    if (!parse_hello(h->line, len, &w1, &w2)) {
        weft_stat_inc(cfg->st_rejected, 1);
        return -1;
    }
    weft_handshake_info hi = {.size = sizeof(hi)};
    hi.tls_version = WEFT_STR("TOYv1");
    hi.cipher = WEFT_STR("NULL-XOR0");
    hi.flags = cfg->tls ? WEFT_HANDSHAKE_TLS : 0;
    if (h->upstream) {
        /* The server's line: its name and the protocol it chose. */
        if (w2.len == 1 && w2.ptr[0] == '-')
            w2.len = 0;
        if (w2.len && !offered(h->offer, w2)) {
            weft_stat_inc(cfg->st_rejected, 1);
            return -1;
        }
        hi.alpn = w2;
        hi.peer_identity = w1;
        hi.flags |= WEFT_HANDSHAKE_PEER_VERIFIED;
        weft_stat_inc(cfg->st_up_handshakes, 1);
    } else {
        hi.alpn = (weft_str){cfg->alpn, strlen(cfg->alpn)};
        hi.peer_identity = w1;
        if (!(w2.len == 1 && w2.ptr[0] == '-'))
            hi.sni = w2;
        if (w1.len)
            hi.flags |= WEFT_HANDSHAKE_PEER_VERIFIED;
        weft_stat_inc(cfg->st_handshakes, 1);
    }
    if (weft_connection_handshake_done(c, &hi) != WEFT_OK) {
        weft_stat_inc(cfg->st_rejected, 1);
        return -1;
    }
    h->done = true;
    if (h->timer) {
        weft_connection_timer_cancel(c, h->timer);
        h->timer = NULL;
    }
    return 0;
}

static int hello_read(void *ctx, weft_connection *c, weft_buffer *in, weft_buffer *out) {
    hello_conn *h = ctx;
    if (!h)
        return -1;
    while (!h->done) {
        char ch;
        if (weft_buffer_copy_out(in, 0, &ch, 1) != 1)
            return 0; /* the rest of the line has not arrived yet */
        weft_buffer_drain(in, 1);
        if (ch == '\n') {
            if (finish(h, c) != 0)
                return -1;
            if (!h->done)
                return 0; /* BYE / RST: closing */
            break;
        }
        if (h->n + 1 >= sizeof(h->line)) {
            weft_stat_inc(h->cfg->st_rejected, 1);
            return -1;
        }
        h->line[h->n++] = ch;
    }
    size_t n = weft_buffer_length(in);
    if (n && h->cfg->fail_after && !h->upstream)
        return -1;
    char buf[4096];
    while ((n = weft_buffer_copy_out(in, 0, buf, sizeof(buf))) > 0)
        if (weft_buffer_append(out, buf, n) != WEFT_OK || weft_buffer_drain(in, n) != WEFT_OK)
            return -1;
    return 0;
}

static int hello_write(void *ctx, weft_connection *c, weft_buffer *in, weft_buffer *out) {
    (void)c;
    hello_conn *h = ctx;
    if (!h)
        return -1;
    char buf[4096];
    size_t n;
    while ((n = weft_buffer_copy_out(in, 0, buf, sizeof(buf))) > 0)
        if (weft_buffer_append(out, buf, n) != WEFT_OK || weft_buffer_drain(in, n) != WEFT_OK)
            return -1;
    return 0;
}

static const weft_transport_filter_ops ops = {
    .size = sizeof(weft_transport_filter_ops),
    .config_create = hello_config_create,
    .config_destroy = hello_config_destroy,
    .connection_create = hello_connection_create,
    .connection_destroy = hello_connection_destroy,
    .on_read = hello_read,
    .on_write = hello_write,
    .flags = WEFT_TRANSPORT_HANDSHAKE,
    .upstream_connection_create = hello_upstream_create,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("hello_transport", WEFT_FILTER_TRANSPORT),
    .transport = &ops,
};

WEFT_FILTER_DEFINE(desc)
