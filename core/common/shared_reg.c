/* shared_reg.c: named, refcounted shared blocks (see shared_reg.h). A
 * chained hash table under one mutex; entries are found by (namespace,
 * key, size, version). */
#include "common/shared_reg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define SHARED_ALIGN 64

struct weft_shared_entry {
    int refs; /* under g_reg.mu */
    uint64_t hash;
    char *ns, *key; /* owned, NUL-terminated (key may hold any byte but NUL) */
    size_t keylen;
    size_t size;
    uint32_t version;
    void *block; /* SHARED_ALIGN-aligned, size bytes, owned */
    weft_shared_destroy_cb destroy;
    void *destroy_arg;
    void *owner;
    weft_shared_owner_release_cb owner_release;
    struct weft_shared_entry *next; /* bucket chain */
};

static struct {
    pthread_mutex_t mu;
    weft_shared_entry **buckets;
    size_t nbuckets, count;
} g_reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t entry_hash(const char *ns, const char *key, size_t keylen) {
    uint64_t h = weft_hash64(ns, strlen(ns), 0x5eed);
    return weft_hash64(key, keylen, h);
}

static bool entry_is(const weft_shared_entry *e, uint64_t h, const char *ns, const char *key,
                     size_t keylen, size_t size, uint32_t version) {
    return e->hash == h && e->keylen == keylen && e->size == size && e->version == version &&
           strcmp(e->ns, ns) == 0 && memcmp(e->key, key, keylen) == 0;
}

/* Under the mutex. */
static weft_shared_entry *lookup(uint64_t h, const char *ns, const char *key, size_t keylen,
                                 size_t size, uint32_t version) {
    if (!g_reg.nbuckets)
        return NULL;
    for (weft_shared_entry *e = g_reg.buckets[h & (g_reg.nbuckets - 1)]; e; e = e->next)
        if (entry_is(e, h, ns, key, keylen, size, version))
            return e;
    return NULL;
}

/* Under the mutex: doubles the table when it holds as many entries as
 * buckets. Keeps the old table on OOM (chains just get longer). */
static void grow(void) {
    if (g_reg.count < g_reg.nbuckets)
        return;
    size_t n = g_reg.nbuckets ? g_reg.nbuckets * 2 : 64;
    weft_shared_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < g_reg.nbuckets; i++) {
        weft_shared_entry *e = g_reg.buckets[i];
        while (e) {
            weft_shared_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(g_reg.buckets);
    g_reg.buckets = b;
    g_reg.nbuckets = n;
}

static void entry_free(weft_shared_entry *e) {
    if (e->destroy)
        e->destroy(e->block, e->size, e->destroy_arg);
    if (e->owner && e->owner_release)
        e->owner_release(e->owner);
    free(e->block);
    free(e->ns);
    free(e->key);
    free(e);
}

weft_shared_entry *weft_shared_find(const char *ns, const char *key, size_t keylen, size_t size,
                                    uint32_t version) {
    if (!ns || (!key && keylen))
        return NULL;
    uint64_t h = entry_hash(ns, key ? key : "", keylen);
    pthread_mutex_lock(&g_reg.mu);
    weft_shared_entry *e = lookup(h, ns, key ? key : "", keylen, size, version);
    if (e)
        e->refs++;
    pthread_mutex_unlock(&g_reg.mu);
    return e;
}

weft_shared_entry *weft_shared_acquire(const char *ns, const char *key, size_t keylen, size_t size,
                                       uint32_t version, bool *created) {
    if (created)
        *created = false;
    if (!ns || (!key && keylen) || size == 0)
        return NULL;
    if (!key)
        key = "";
    uint64_t h = entry_hash(ns, key, keylen);
    pthread_mutex_lock(&g_reg.mu);
    weft_shared_entry *e = lookup(h, ns, key, keylen, size, version);
    if (e) {
        e->refs++;
        pthread_mutex_unlock(&g_reg.mu);
        return e;
    }
    e = calloc(1, sizeof(*e));
    size_t alloc = (size + SHARED_ALIGN - 1) / SHARED_ALIGN * SHARED_ALIGN;
    if (!e || !(e->block = aligned_alloc(SHARED_ALIGN, alloc)) || !(e->ns = strdup(ns)) ||
        !(e->key = malloc(keylen + 1))) {
        pthread_mutex_unlock(&g_reg.mu);
        if (e) {
            free(e->block);
            free(e->ns);
        }
        free(e);
        return NULL;
    }
    memset(e->block, 0, alloc);
    memcpy(e->key, key, keylen);
    e->key[keylen] = '\0';
    e->keylen = keylen;
    e->hash = h;
    e->size = size;
    e->version = version;
    e->refs = 1;
    grow();
    if (!g_reg.nbuckets) {
        pthread_mutex_unlock(&g_reg.mu);
        free(e->block);
        free(e->ns);
        free(e->key);
        free(e);
        return NULL;
    }
    size_t b = h & (g_reg.nbuckets - 1);
    e->next = g_reg.buckets[b];
    g_reg.buckets[b] = e;
    g_reg.count++;
    pthread_mutex_unlock(&g_reg.mu);
    if (created)
        *created = true;
    return e;
}

void weft_shared_ref(weft_shared_entry *e) {
    if (!e)
        return;
    pthread_mutex_lock(&g_reg.mu);
    e->refs++;
    pthread_mutex_unlock(&g_reg.mu);
}

void weft_shared_release(weft_shared_entry *e) {
    if (!e)
        return;
    pthread_mutex_lock(&g_reg.mu);
    if (--e->refs > 0) {
        pthread_mutex_unlock(&g_reg.mu);
        return;
    }
    for (weft_shared_entry **pp = &g_reg.buckets[e->hash & (g_reg.nbuckets - 1)]; *pp;
         pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    g_reg.count--;
    if (!g_reg.count) {
        free(g_reg.buckets);
        g_reg.buckets = NULL;
        g_reg.nbuckets = 0;
    }
    pthread_mutex_unlock(&g_reg.mu);
    /* Out of the table: nobody can find it any more; run the callback
     * without the lock (it is filter code). */
    entry_free(e);
}

void *weft_shared_block(const weft_shared_entry *e) {
    return e ? e->block : NULL;
}

size_t weft_shared_size(const weft_shared_entry *e) {
    return e ? e->size : 0;
}

int weft_shared_refs(const weft_shared_entry *e) {
    if (!e)
        return 0;
    pthread_mutex_lock(&g_reg.mu);
    int r = e->refs;
    pthread_mutex_unlock(&g_reg.mu);
    return r;
}

void weft_shared_set_destroy(weft_shared_entry *e, weft_shared_destroy_cb cb, void *arg,
                             void *owner, weft_shared_owner_release_cb owner_release) {
    if (!e)
        return;
    pthread_mutex_lock(&g_reg.mu);
    void *old = e->owner;
    weft_shared_owner_release_cb old_release = e->owner_release;
    e->destroy = cb;
    e->destroy_arg = arg;
    e->owner = owner;
    e->owner_release = owner_release;
    pthread_mutex_unlock(&g_reg.mu);
    if (old && old_release)
        old_release(old);
}

size_t weft_shared_count(void) {
    pthread_mutex_lock(&g_reg.mu);
    size_t n = g_reg.count;
    pthread_mutex_unlock(&g_reg.mu);
    return n;
}
