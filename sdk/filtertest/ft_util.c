/* ft_util.c: the kit's small containers: byte strings, segment-chained
 * buffers (the weft_buffer a filter sees) and ordered header maps. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"

/* ---- strings ---- */

char *ft_strndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ft_strdup(const char *s) {
    return s ? ft_strndup(s, strlen(s)) : NULL;
}

bool ft_streq_nocase(const char *a, size_t alen, const char *b, size_t blen) {
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
    return true;
}

bool ft_has_prefix_nocase(const char *s, size_t len, const char *prefix) {
    size_t pl = strlen(prefix);
    return len >= pl && ft_streq_nocase(s, pl, prefix, pl);
}

int ft_bytes_append(ft_bytes *b, const void *data, size_t len) {
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void ft_bytes_free(ft_bytes *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

const char *ft_bytes_cstr(const ft_bytes *b) {
    return b->data ? b->data : "";
}

/* ---- buffers ---- */

static weft_buffer *g_live_buffers;

weft_buffer *ft_buffer_new(void) {
    weft_buffer *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->magic = FT_MAGIC_BUFFER;
    b->live_next = g_live_buffers;
    g_live_buffers = b;
    return b;
}

bool ft_buffer_live(const weft_buffer *b) {
    for (const weft_buffer *x = g_live_buffers; x; x = x->live_next)
        if (x == b)
            return true;
    return false;
}

void ft_buffer_free(weft_buffer *b) {
    if (!b)
        return;
    for (weft_buffer **pp = &g_live_buffers; *pp; pp = &(*pp)->live_next)
        if (*pp == b) {
            *pp = b->live_next;
            break;
        }
    for (size_t i = 0; i < b->nseg; i++)
        free(b->segs[i].base);
    free(b->segs);
    b->magic = 0;
    free(b);
}

static int seg_reserve(weft_buffer *b) {
    if (b->nseg < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 4;
    ft_seg *p = realloc(b->segs, cap * sizeof(*p));
    if (!p)
        return -1;
    b->segs = p;
    b->cap = cap;
    return 0;
}

int ft_buffer_add(weft_buffer *b, const void *data, size_t len, bool front) {
    if (len == 0)
        return 0;
    if (seg_reserve(b))
        return -1;
    char *copy = malloc(len);
    if (!copy)
        return -1;
    memcpy(copy, data, len);
    if (front) {
        memmove(b->segs + 1, b->segs, b->nseg * sizeof(*b->segs));
        b->segs[0] = (ft_seg){copy, 0, len};
    } else {
        b->segs[b->nseg] = (ft_seg){copy, 0, len};
    }
    b->nseg++;
    b->len += len;
    return 0;
}

int ft_buffer_take_all(weft_buffer *dst, weft_buffer *src) {
    if (dst->nseg + src->nseg > dst->cap) {
        size_t cap = dst->nseg + src->nseg;
        ft_seg *p = realloc(dst->segs, cap * sizeof(*p));
        if (!p)
            return -1;
        dst->segs = p;
        dst->cap = cap;
    }
    for (size_t i = 0; i < src->nseg; i++)
        dst->segs[dst->nseg++] = src->segs[i];
    dst->len += src->len;
    src->nseg = 0;
    src->len = 0;
    return 0;
}

size_t ft_buffer_copy(const weft_buffer *b, size_t off, void *dst, size_t len) {
    size_t done = 0;
    for (size_t i = 0; i < b->nseg && done < len; i++) {
        const ft_seg *s = &b->segs[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        size_t n = s->len - off;
        if (n > len - done)
            n = len - done;
        memcpy((char *)dst + done, s->base + s->off + off, n);
        done += n;
        off = 0;
    }
    return done;
}

int ft_buffer_drain_bytes(weft_buffer *b, size_t len) {
    if (len > b->len)
        return -1;
    b->len -= len;
    size_t i = 0;
    while (len && i < b->nseg) {
        ft_seg *s = &b->segs[i];
        if (len >= s->len) {
            len -= s->len;
            free(s->base);
            i++;
        } else {
            s->off += len;
            s->len -= len;
            len = 0;
        }
    }
    memmove(b->segs, b->segs + i, (b->nseg - i) * sizeof(*b->segs));
    b->nseg -= i;
    return 0;
}

int ft_buffer_to_bytes(const weft_buffer *b, ft_bytes *out) {
    for (size_t i = 0; i < b->nseg; i++)
        if (ft_bytes_append(out, b->segs[i].base + b->segs[i].off, b->segs[i].len))
            return -1;
    return 0;
}

/* ---- header maps ---- */

bool ft_header_name_ok(const char *name, size_t len) {
    if (!name || len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        /* RFC 9110 token characters. */
        if (!(isalnum(c) || strchr("!#$%&'*+-.^_`|~", c)) || c == '\0')
            return false;
    }
    return true;
}

bool ft_header_value_ok(const char *value, size_t len) {
    if (len && !value)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

int ft_hmap_add(ft_hmap *m, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        ft_header *p = realloc(m->h, cap * sizeof(*p));
        if (!p)
            return -1;
        m->h = p;
        m->cap = cap;
    }
    char *n = ft_strndup(name, nlen);
    char *v = ft_strndup(value ? value : "", value ? vlen : 0);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < nlen; i++)
        n[i] = (char)tolower((unsigned char)n[i]);
    m->h[m->n++] = (ft_header){n, nlen, v, value ? vlen : 0, 0};
    return 0;
}

size_t ft_hmap_remove(ft_hmap *m, const char *name, size_t nlen) {
    size_t out = 0, removed = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (ft_streq_nocase(m->h[i].name, m->h[i].nlen, name, nlen)) {
            free(m->h[i].name);
            free(m->h[i].value);
            removed++;
        } else {
            m->h[out++] = m->h[i];
        }
    }
    m->n = out;
    return removed;
}

const ft_header *ft_hmap_find(const ft_hmap *m, const char *name, size_t nlen, size_t index) {
    for (size_t i = 0; i < m->n; i++)
        if (ft_streq_nocase(m->h[i].name, m->h[i].nlen, name, nlen) && index-- == 0)
            return &m->h[i];
    return NULL;
}

size_t ft_hmap_count(const ft_hmap *m, const char *name, size_t nlen) {
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (ft_streq_nocase(m->h[i].name, m->h[i].nlen, name, nlen))
            n++;
    return n;
}

void ft_hmap_clear(ft_hmap *m) {
    for (size_t i = 0; i < m->n; i++) {
        free(m->h[i].name);
        free(m->h[i].value);
    }
    free(m->h);
    m->h = NULL;
    m->n = m->cap = 0;
}

int ft_hmap_add_lines(ft_hmap *m, const char *const *lines, char **authority) {
    for (size_t i = 0; lines && lines[i]; i++) {
        const char *l = lines[i];
        /* A pseudo-header's name starts with ':'; look for the separator
         * after it. */
        const char *colon = strchr(l[0] == ':' ? l + 1 : l, ':');
        if (!colon || colon == l)
            return -1;
        size_t nlen = (size_t)(colon - l);
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vlen = strlen(v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (l[0] == ':') {
            if (authority && ft_streq_nocase(l, nlen, ":authority", 10)) {
                free(*authority);
                *authority = ft_strndup(v, vlen);
                if (!*authority)
                    return -1;
            }
            continue;
        }
        if (!ft_header_name_ok(l, nlen) || !ft_header_value_ok(v, vlen))
            return -1;
        if (ft_hmap_add(m, l, nlen, v, vlen))
            return -1;
    }
    return 0;
}

/* ---- exact-key maps (metadata: keys are case-sensitive) ---- */

const ft_header *ft_kv_find(const ft_hmap *m, const char *key, size_t klen) {
    for (size_t i = 0; i < m->n; i++)
        if (m->h[i].nlen == klen && memcmp(m->h[i].name, key, klen) == 0)
            return &m->h[i];
    return NULL;
}

int ft_kv_put(ft_hmap *m, const char *key, size_t klen, const char *value, size_t vlen,
              char **old_value) {
    *old_value = NULL;
    char *v = ft_strndup(value ? value : "", value ? vlen : 0);
    if (!v)
        return -1;
    for (size_t i = 0; i < m->n; i++)
        if (m->h[i].nlen == klen && memcmp(m->h[i].name, key, klen) == 0) {
            *old_value = m->h[i].value;
            m->h[i].value = v;
            m->h[i].vlen = value ? vlen : 0;
            return 0;
        }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        ft_header *p = realloc(m->h, cap * sizeof(*p));
        if (!p) {
            free(v);
            return -1;
        }
        m->h = p;
        m->cap = cap;
    }
    char *k = ft_strndup(key, klen);
    if (!k) {
        free(v);
        return -1;
    }
    m->h[m->n++] = (ft_header){k, klen, v, value ? vlen : 0, 0};
    return 0;
}
