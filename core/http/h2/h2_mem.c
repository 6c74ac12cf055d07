/* h2_mem.c: nghttp2's allocator, per-worker free lists by size class (see
 * h2_mem.h).
 *
 * Every block starts with a 16-byte header (the size asked for and the
 * class), so free() and realloc() know where a block goes without asking
 * malloc. Class c holds blocks of 64 << c bytes, header included. */
#include "http/h2/h2_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define H2MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2MEM_ASAN 1
#endif
#endif
#ifdef H2MEM_ASAN
#include <sanitizer/asan_interface.h>
#define H2MEM_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define H2MEM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define H2MEM_POISON(p, n) ((void)(p), (void)(n))
#define H2MEM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct h2blk h2blk;
struct h2blk {
    union {
        size_t size; /* bytes asked for (in use) */
        h2blk *next; /* next cached block of the class (cached) */
    };
    uint32_t cls; /* size class; WEFT_H2MEM_CLASSES: from malloc, any size */
    uint32_t unused;
};
_Static_assert(sizeof(h2blk) == 16, "the header keeps malloc's 16-byte alignment");

#define HDR sizeof(h2blk)
#define LARGE WEFT_H2MEM_CLASSES

/* Blocks kept per class: the churn of a busy worker (a stream, its frames
 * and header copies come and go within a few loop turns; 100 streams in
 * flight hold more than 64 blocks of a class, which sent a burst's excess
 * to malloc every time) without holding much: 216 KiB at most a worker,
 * given back when it goes idle. */
static const uint16_t cache_max[WEFT_H2MEM_CLASSES] = {128, 128, 128, 128, 32, 16, 8};

static size_t block_bytes(unsigned c) {
    return (size_t)64 << c;
}

static unsigned class_of(size_t n) {
    if (n > WEFT_H2MEM_MAX_BLOCK - HDR)
        return LARGE;
    size_t t = n + HDR;
    if (t <= 64)
        return 0;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(t - 1))) - 6;
}

static void *mem_malloc(size_t n, void *ud) {
    weft_worker *w = ud;
    unsigned c = class_of(n);
    h2blk *b = NULL;
    if (c != LARGE && (b = w->h2mem_free[c])) {
        w->h2mem_free[c] = b->next;
        w->h2mem_n[c]--;
    } else {
        if (n > SIZE_MAX - HDR)
            return NULL;
        b = malloc(c != LARGE ? block_bytes(c) : n + HDR);
        if (!b)
            return NULL;
        if (c != LARGE)
            H2MEM_POISON(b + 1, block_bytes(c) - HDR);
    }
    b->size = n;
    b->cls = c;
    if (c != LARGE)
        H2MEM_UNPOISON(b + 1, n);
    return b + 1;
}

static void mem_free(void *p, void *ud) {
    if (!p)
        return;
    weft_worker *w = ud;
    h2blk *b = (h2blk *)p - 1;
    unsigned c = b->cls;
    if (c == LARGE) {
        free(b);
        return;
    }
    if (w->h2mem_n[c] >= cache_max[c]) {
        H2MEM_UNPOISON(b + 1, block_bytes(c) - HDR);
        free(b);
        return;
    }
    H2MEM_POISON(b + 1, block_bytes(c) - HDR);
    b->next = w->h2mem_free[c];
    w->h2mem_free[c] = b;
    w->h2mem_n[c]++;
}

static void *mem_calloc(size_t nmemb, size_t size, void *ud) {
    if (size && nmemb > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(nmemb * size, ud);
    if (p)
        memset(p, 0, nmemb * size);
    return p;
}

static void *mem_realloc(void *p, size_t n, void *ud) {
    if (!p)
        return mem_malloc(n, ud);
    h2blk *b = (h2blk *)p - 1;
    unsigned c = b->cls;
    if (c != LARGE && n <= block_bytes(c) - HDR) { /* fits where it is */
        H2MEM_POISON(b + 1, block_bytes(c) - HDR);
        H2MEM_UNPOISON(b + 1, n);
        b->size = n;
        return p;
    }
    if (c == LARGE && class_of(n) == LARGE) {
        if (n > SIZE_MAX - HDR)
            return NULL;
        h2blk *nb = realloc(b, n + HDR);
        if (!nb)
            return NULL;
        nb->size = n;
        return nb + 1;
    }
    void *q = mem_malloc(n, ud);
    if (!q)
        return NULL;
    memcpy(q, p, b->size < n ? b->size : n);
    mem_free(p, ud);
    return q;
}

nghttp2_mem weft_h2_mem_of(weft_worker *w) {
    return (nghttp2_mem){
        .mem_user_data = w,
        .malloc = mem_malloc,
        .free = mem_free,
        .calloc = mem_calloc,
        .realloc = mem_realloc,
    };
}

void weft_h2_mem_release(weft_worker *w) {
    for (unsigned c = 0; c < WEFT_H2MEM_CLASSES; c++) {
        while (w->h2mem_free[c]) {
            h2blk *b = w->h2mem_free[c];
            w->h2mem_free[c] = b->next;
            H2MEM_UNPOISON(b + 1, block_bytes(c) - HDR);
            free(b);
        }
        w->h2mem_n[c] = 0;
    }
}

size_t weft_h2_mem_cached(const weft_worker *w) {
    size_t n = 0;
    for (unsigned c = 0; c < WEFT_H2MEM_CLASSES; c++)
        n += w->h2mem_n[c];
    return n;
}
