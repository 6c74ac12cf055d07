/* wsh_handle.h: generation-checked handles, shared by the core and the
 * test kit (compiled into both, so both give the same answer for the same
 * handle). Private to weft and the kit: not installed.
 *
 * A handle is what a filter receives as a `weft_stream *`: an encoded
 * integer, never a pointer to dereference.
 *
 *     bit 0        1 (a real object pointer is aligned: bit 0 is 0)
 *     bits 1..10   domain: the table's owner (a weft worker; the kit uses 0)
 *     bits 11..31  slot in that domain's table
 *     bits 32..63  generation of the slot (never 0)
 *
 * A domain's table maps a slot to the live object and the slot's current
 * generation. Releasing a slot bumps its generation (wrapping to 1, never
 * 0), so every handle given out for the slot before is stale from then on:
 * decoding it fails without touching the object it named. Lookups are an
 * index and a compare: no hashing, no locks (a table is touched by its
 * owner thread only). A handle survives 2^32 - 1 reuses of its slot before
 * its generation comes round again. */
#ifndef WEFT_WSH_HANDLE_H
#define WEFT_WSH_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSH_DOMAIN_BITS 10
#define WSH_SLOT_BITS 21
#define WSH_MAX_DOMAINS (1u << WSH_DOMAIN_BITS)
#define WSH_MAX_SLOTS (1u << WSH_SLOT_BITS)

typedef struct wsh_slot {
    void *obj;          /* NULL while free */
    uint32_t gen;       /* current generation, >= 1 */
    uint32_t next_free; /* free list (index + 1, 0 = end) */
} wsh_slot;

typedef struct wsh_table {
    wsh_slot *slots;
    uint32_t n, cap;    /* slots in use so far / allocated */
    uint32_t free_head; /* index + 1 of the first free slot, 0 none */
    uint32_t live;      /* objects registered now */
    uint32_t domain;
} wsh_table;

/* The parts of a handle. */
typedef struct wsh_parts {
    uint32_t domain, slot, gen;
} wsh_parts;

static inline uint64_t wsh_encode(uint32_t domain, uint32_t slot, uint32_t gen) {
    return 1u | ((uint64_t)(domain & (WSH_MAX_DOMAINS - 1)) << 1) |
           ((uint64_t)(slot & (WSH_MAX_SLOTS - 1)) << (1 + WSH_DOMAIN_BITS)) |
           ((uint64_t)gen << 32);
}

/* False for what no table ever gives out (NULL, a pointer, generation 0). */
static inline bool wsh_decode(uint64_t h, wsh_parts *p) {
    if (!(h & 1u) || !(h >> 32))
        return false;
    p->domain = (uint32_t)(h >> 1) & (WSH_MAX_DOMAINS - 1);
    p->slot = (uint32_t)(h >> (1 + WSH_DOMAIN_BITS)) & (WSH_MAX_SLOTS - 1);
    p->gen = (uint32_t)(h >> 32);
    return true;
}

void wsh_table_init(wsh_table *t, uint32_t domain);
void wsh_table_free(wsh_table *t);
/* Registers obj: its handle, or 0 when the table is full or out of memory. */
uint64_t wsh_alloc(wsh_table *t, void *obj);
/* Forgets the object of handle h (no-op for a stale or foreign handle):
 * every copy of h is stale from now on. */
void wsh_release(wsh_table *t, uint64_t h);
/* The live object of h in this table, or NULL (stale, foreign, freed). */
static inline void *wsh_lookup(const wsh_table *t, const wsh_parts *p) {
    if (p->domain != t->domain || p->slot >= t->n)
        return NULL;
    const wsh_slot *s = &t->slots[p->slot];
    return s->gen == p->gen ? s->obj : NULL;
}
/* Tests: sets a free or live slot's generation (to reach the wrap). */
void wsh_debug_set_gen(wsh_table *t, uint32_t slot, uint32_t gen);

#endif
