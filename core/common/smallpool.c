/* smallpool.c: see smallpool.h. */
#include "common/smallpool.h"

#include <event2/event.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SP_SLOT 32u
#define SP_BLOCK (64u * 1024u)
#define SP_HDR 2u /* slots taken by the header */
#define SP_SLOTS (SP_BLOCK / SP_SLOT - SP_HDR)
#define SP_NBLOCKS 16384u /* 1 GiB of address space, reserved */

typedef struct sp_slot {
    struct sp_slot *next;
} sp_slot;

/* The first SP_HDR slots of a block. Everything but `remote` is touched only
 * by the owning thread. */
typedef struct sp_block {
    uint64_t owner;               /* the owning thread's id (never reused) */
    sp_slot *free_list;           /* slots freed by the owner */
    _Atomic(sp_slot *) remote;    /* slots freed by other threads */
    struct sp_block *next, *prev; /* the owner's blocks */
    uint32_t n_used;              /* slots handed out, not yet back on free_list */
    uint32_t carved;              /* slots handed out at least once */
} sp_block;
_Static_assert(sizeof(sp_block) <= SP_SLOT * SP_HDR, "block header fits its slots");

typedef struct sp_thread {
    uint64_t id;
    sp_block *cur;    /* allocations come from here first */
    sp_block *blocks; /* every block of this thread */
} sp_thread;

static char *g_base;
static _Atomic uint64_t g_next_id = 1;
static _Atomic uint32_t g_carved; /* blocks ever carved from the range */
static _Atomic size_t g_in_use;   /* blocks holding live slots */
static pthread_mutex_t g_empty_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t g_empty[SP_NBLOCKS]; /* returned blocks, by index */
static size_t g_n_empty;
static _Thread_local sp_thread tl;

bool weft_smallpool_init(void) {
    if (g_base)
        return true;
    size_t len = (size_t)SP_NBLOCKS * SP_BLOCK;
    char *raw = mmap(NULL, len + SP_BLOCK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return false;
    /* Align the range to a block so that a slot finds its block by masking. */
    uintptr_t a = ((uintptr_t)raw + SP_BLOCK - 1) & ~(uintptr_t)(SP_BLOCK - 1);
    size_t head = a - (uintptr_t)raw;
    if (head)
        munmap(raw, head);
    if (SP_BLOCK - head)
        munmap((char *)a + len, SP_BLOCK - head);
    g_base = (char *)a;
    return true;
}

bool weft_smallpool_owns(const void *p) {
    return g_base && (uintptr_t)p >= (uintptr_t)g_base &&
           (uintptr_t)p - (uintptr_t)g_base < (size_t)SP_NBLOCKS * SP_BLOCK;
}

static sp_block *block_of(const void *p) {
    return (sp_block *)((uintptr_t)p & ~(uintptr_t)(SP_BLOCK - 1));
}

static sp_thread *me(void) {
    if (!tl.id)
        tl.id = atomic_fetch_add(&g_next_id, 1);
    return &tl;
}

static sp_block *block_new(sp_thread *t) {
    uint32_t idx;
    pthread_mutex_lock(&g_empty_mu);
    bool reuse = g_n_empty > 0;
    if (reuse)
        idx = g_empty[--g_n_empty];
    pthread_mutex_unlock(&g_empty_mu);
    if (!reuse) {
        idx = atomic_fetch_add(&g_carved, 1);
        if (idx >= SP_NBLOCKS) {
            atomic_fetch_sub(&g_carved, 1);
            return NULL;
        }
    }
    sp_block *b = (sp_block *)(g_base + (size_t)idx * SP_BLOCK);
    b->owner = t->id;
    b->free_list = NULL;
    atomic_store_explicit(&b->remote, NULL, memory_order_relaxed);
    b->n_used = 0;
    b->carved = 0;
    b->prev = NULL;
    b->next = t->blocks;
    if (t->blocks)
        t->blocks->prev = b;
    t->blocks = b;
    atomic_fetch_add(&g_in_use, 1);
    return b;
}

/* Every slot of b is free: give its pages to the kernel and the block to
 * the shared list. */
static void block_release(sp_thread *t, sp_block *b) {
    if (b->prev)
        b->prev->next = b->next;
    else
        t->blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    if (t->cur == b)
        t->cur = NULL;
    uint32_t idx = (uint32_t)(((char *)b - g_base) / SP_BLOCK);
    madvise(b, SP_BLOCK, MADV_DONTNEED);
    pthread_mutex_lock(&g_empty_mu);
    g_empty[g_n_empty++] = idx;
    pthread_mutex_unlock(&g_empty_mu);
    atomic_fetch_sub(&g_in_use, 1);
}

/* Moves the slots other threads freed onto the owner's list. */
static void collect(sp_block *b) {
    sp_slot *s = atomic_exchange_explicit(&b->remote, NULL, memory_order_acquire);
    while (s) {
        sp_slot *next = s->next;
        s->next = b->free_list;
        b->free_list = s;
        b->n_used--;
        s = next;
    }
}

static void *take(sp_block *b) {
    if (!b->free_list && atomic_load_explicit(&b->remote, memory_order_relaxed))
        collect(b);
    sp_slot *s = b->free_list;
    if (s) {
        b->free_list = s->next;
    } else if (b->carved < SP_SLOTS) {
        s = (sp_slot *)((char *)b + SP_SLOT * (SP_HDR + b->carved));
        b->carved++;
    } else {
        return NULL;
    }
    b->n_used++;
    return s;
}

/* ---------- chains: per-thread spare blocks of 1 KiB to 32 KiB ---------- */

/* Class k holds blocks whose usable size is at least 1 KiB << k and serves
 * requests in (512 << k, 1 KiB << k]. */
#define CH_MIN_SHIFT 10
#define CH_CLASSES 6
static const uint8_t ch_max[CH_CLASSES] = {64, 16, 8, 4, 4, 4}; /* 352 KiB at most */

typedef struct ch_spare {
    struct ch_spare *next;
} ch_spare;

typedef struct ch_thread {
    ch_spare *spare[CH_CLASSES];
    uint8_t n[CH_CLASSES];
    bool keyed; /* the thread-exit destructor is registered */
} ch_thread;

static _Thread_local ch_thread tch;
static pthread_once_t ch_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t ch_key;

static void ch_release(void *unused) {
    (void)unused;
    for (int k = 0; k < CH_CLASSES; k++) {
        while (tch.spare[k]) {
            ch_spare *s = tch.spare[k];
            tch.spare[k] = s->next;
            free(s);
        }
        tch.n[k] = 0;
    }
}

static void ch_key_make(void) {
    if (pthread_key_create(&ch_key, ch_release) != 0)
        abort();
}

/* The class a request of n bytes (> WEFT_SMALLPOOL_MAX) is served from, or
 * -1: malloc. */
static int ch_class_of_request(size_t n) {
    if (n <= (size_t)1 << (CH_MIN_SHIFT - 1) || n > (size_t)1 << (CH_MIN_SHIFT + CH_CLASSES - 1))
        return -1;
    return (int)(64 - __builtin_clzll((unsigned long long)(n - 1))) - CH_MIN_SHIFT;
}

static void *ch_alloc(size_t n) {
    int k = ch_class_of_request(n);
    if (k >= 0 && tch.spare[k]) {
        ch_spare *s = tch.spare[k];
        tch.spare[k] = s->next;
        tch.n[k]--;
        return s;
    }
    return malloc(n ? n : 1);
}

static void ch_free(void *p) {
    size_t u = malloc_usable_size(p);
    if (u < (size_t)1 << CH_MIN_SHIFT) {
        free(p);
        return;
    }
    int k = (int)(63 - __builtin_clzll((unsigned long long)u)) - CH_MIN_SHIFT;
    if (k >= CH_CLASSES || tch.n[k] >= ch_max[k]) {
        free(p);
        return;
    }
    if (!tch.keyed) {
        pthread_once(&ch_key_once, ch_key_make);
        if (pthread_setspecific(ch_key, &tch) != 0) {
            free(p);
            return;
        }
        tch.keyed = true;
    }
    ch_spare *s = p;
    s->next = tch.spare[k];
    tch.spare[k] = s;
    tch.n[k]++;
}

void weft_smallpool_chains_release(void) {
    ch_release(NULL);
}

size_t weft_smallpool_chains_spare(void) {
    size_t n = 0;
    for (int k = 0; k < CH_CLASSES; k++)
        n += tch.n[k];
    return n;
}

/* ---------- allocation ---------- */

void *weft_smallpool_alloc(size_t n) {
    if (n > WEFT_SMALLPOOL_MAX || !g_base)
        return ch_alloc(n);
    sp_thread *t = me();
    void *p;
    if (t->cur && (p = take(t->cur)))
        return p;
    for (sp_block *b = t->blocks, *next; b; b = next) {
        next = b->next;
        if (b == t->cur)
            continue;
        collect(b);
        if (b->n_used == 0 && b->carved) {
            block_release(t, b); /* all its slots came back from elsewhere */
            continue;
        }
        if ((p = take(b))) {
            t->cur = b;
            return p;
        }
    }
    sp_block *b = block_new(t);
    if (!b)
        return malloc(n ? n : 1);
    t->cur = b;
    return take(b);
}

void weft_smallpool_free(void *p) {
    if (!p)
        return;
    if (!weft_smallpool_owns(p)) {
        ch_free(p);
        return;
    }
    sp_block *b = block_of(p);
    sp_slot *s = p;
    sp_thread *t = &tl;
    if (t->id && b->owner == t->id) {
        s->next = b->free_list;
        b->free_list = s;
        if (--b->n_used == 0 && b != t->cur)
            block_release(t, b);
        return;
    }
    sp_slot *head = atomic_load_explicit(&b->remote, memory_order_relaxed);
    do
        s->next = head;
    while (!atomic_compare_exchange_weak_explicit(&b->remote, &head, s, memory_order_release,
                                                  memory_order_relaxed));
}

void *weft_smallpool_realloc(void *p, size_t n) {
    if (!p)
        return weft_smallpool_alloc(n);
    if (!weft_smallpool_owns(p))
        return realloc(p, n);
    if (n <= WEFT_SMALLPOOL_MAX)
        return p;
    void *q = ch_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, WEFT_SMALLPOOL_MAX);
    weft_smallpool_free(p);
    return q;
}

size_t weft_smallpool_blocks_in_use(void) {
    return atomic_load(&g_in_use);
}

size_t weft_smallpool_blocks_carved(void) {
    return atomic_load(&g_carved);
}

#if defined(__SANITIZE_ADDRESS__)
#define SP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SP_ASAN 1
#endif
#endif

bool weft_smallpool_install(void) {
#ifdef SP_ASAN
    return false; /* AddressSanitizer must see libevent's allocations */
#else
    if (!weft_smallpool_init())
        return false;
    event_set_mem_functions(weft_smallpool_alloc, weft_smallpool_realloc, weft_smallpool_free);
    return true;
#endif
}
