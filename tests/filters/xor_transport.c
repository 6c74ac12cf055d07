/* xor_transport: a TRANSPORT filter (below the HTTP codec). The client
 * first sends one plaintext line "ID <identity>\n"; after it every byte in
 * both directions is XORed with the configured key byte. The identity
 * becomes the connection's peer identity and the ALPN is set to
 * "http/1.1". A connection whose first line is not an ID line (or is
 * longer than 255 bytes) is closed.
 *
 *   config: {key: 90, alpn: h2}   (key 0..255; alpn default http/1.1)
 *
 * Stats: connections, identified, rejected (counters). */
#include <stdlib.h>
#include <string.h>

#include <weft/filter.h>

#define XOR_MAX_LINE 256

typedef struct xor_config {
    unsigned char key;
    char alpn[32];
    size_t alpn_len;
    int32_t st_conns, st_identified, st_rejected;
} xor_config;

typedef struct xor_conn {
    xor_config *cfg;
    bool identified;
    size_t n;
    char line[XOR_MAX_LINE];
} xor_conn;

static int xor_config_create(const weft_config_node *node, weft_filter_setup *setup,
                             void **config) {
    const weft_config_node *n = weft_config_get(node, "key");
    int64_t key;
    if (!n || weft_config_int(n, &key) != WEFT_OK || key < 0 || key > 255)
        return weft_config_fail(setup, n ? n : node, "key: expected an integer 0..255");
    xor_config *c = calloc(1, sizeof(*c));
    if (!c)
        return weft_config_fail(setup, node, "out of memory");
    c->key = (unsigned char)key;
    /* alpn: what the filter "negotiates" (as TLS would): http/1.1 or h2. */
    const weft_config_node *an = weft_config_get(node, "alpn");
    weft_str alpn = WEFT_STR("http/1.1");
    if (an && (weft_config_string(an, &alpn) != WEFT_OK || alpn.len == 0 ||
               alpn.len >= sizeof(c->alpn))) {
        free(c);
        return weft_config_fail(setup, an, "alpn: expected a protocol name such as h2");
    }
    memcpy(c->alpn, alpn.ptr, alpn.len);
    c->alpn_len = alpn.len;
    c->st_conns = weft_stat_counter(setup, "connections", "connections seen");
    c->st_identified = weft_stat_counter(setup, "identified", "connections that sent an ID line");
    c->st_rejected = weft_stat_counter(setup, "rejected", "connections closed for a bad ID line");
    *config = c;
    return 0;
}

static void xor_config_destroy(void *config) {
    free(config);
}

static void *xor_connection_create(void *config, weft_connection *c) {
    xor_conn *x = calloc(1, sizeof(*x));
    if (x) {
        x->cfg = config;
        weft_stat_inc(x->cfg->st_conns, 1);
    }
    return x;
}

static void xor_connection_destroy(void *ctx) {
    free(ctx);
}

/* Moves all of in to out, XORed with key. */
static int xor_move(unsigned char key, weft_buffer *in, weft_buffer *out) {
    unsigned char buf[4096];
    size_t n;
    while ((n = weft_buffer_copy_out(in, 0, buf, sizeof(buf))) > 0) {
        for (size_t i = 0; i < n; i++)
            buf[i] ^= key;
        if (weft_buffer_append(out, buf, n) != WEFT_OK || weft_buffer_drain(in, n) != WEFT_OK)
            return -1;
    }
    return 0;
}

static int xor_read(void *ctx, weft_connection *c, weft_buffer *in, weft_buffer *out) {
    xor_conn *x = ctx;
    if (!x)
        return -1;
    while (!x->identified) {
        char ch;
        if (weft_buffer_copy_out(in, 0, &ch, 1) != 1)
            return 0; /* the rest of the ID line has not arrived yet */
        weft_buffer_drain(in, 1);
        if (ch != '\n') {
            if (x->n + 1 >= sizeof(x->line)) {
                weft_stat_inc(x->cfg->st_rejected, 1);
                return -1;
            }
            x->line[x->n++] = ch;
            continue;
        }
        size_t len = x->n;
        if (len && x->line[len - 1] == '\r')
            len--;
        if (len < 4 || memcmp(x->line, "ID ", 3) != 0 ||
            weft_connection_set_peer_identity(c, (weft_str){x->line + 3, len - 3}) != WEFT_OK) {
            weft_stat_inc(x->cfg->st_rejected, 1);
            return -1;
        }
        weft_connection_set_alpn(c, (weft_str){x->cfg->alpn, x->cfg->alpn_len});
        weft_stat_inc(x->cfg->st_identified, 1);
        x->identified = true;
    }
    return xor_move(x->cfg->key, in, out);
}

static int xor_write(void *ctx, weft_connection *c, weft_buffer *in, weft_buffer *out) {
    xor_conn *x = ctx;
    return x ? xor_move(x->cfg->key, in, out) : -1;
}

static const weft_transport_filter_ops ops = {
    .size = sizeof(weft_transport_filter_ops),
    .config_create = xor_config_create,
    .config_destroy = xor_config_destroy,
    .connection_create = xor_connection_create,
    .connection_destroy = xor_connection_destroy,
    .on_read = xor_read,
    .on_write = xor_write,
};

static const weft_filter_descriptor desc = {
    WEFT_FILTER_DESCRIPTOR_INIT("xor_transport", WEFT_FILTER_TRANSPORT),
    .transport = &ops,
};

WEFT_FILTER_DEFINE(desc)
