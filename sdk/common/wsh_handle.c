/* wsh_handle.c: see wsh_handle.h. */
#include "wsh_handle.h"

#include <stdlib.h>
#include <string.h>

/* A handle travels as a `weft_stream *`: it needs 64-bit pointers. */
_Static_assert(sizeof(void *) >= sizeof(uint64_t), "weft's handles need 64-bit pointers");

void wsh_table_init(wsh_table *t, uint32_t domain) {
    memset(t, 0, sizeof(*t));
    t->domain = domain;
}

void wsh_table_free(wsh_table *t) {
    free(t->slots);
    t->slots = NULL;
    t->n = t->cap = t->free_head = t->live = 0;
}

uint64_t wsh_alloc(wsh_table *t, void *obj) {
    uint32_t i;
    if (!obj)
        return 0;
    if (t->free_head) {
        i = t->free_head - 1;
        t->free_head = t->slots[i].next_free;
    } else {
        if (t->n == WSH_MAX_SLOTS)
            return 0;
        if (t->n == t->cap) {
            uint32_t cap = t->cap ? t->cap * 2 : 64;
            if (cap > WSH_MAX_SLOTS)
                cap = WSH_MAX_SLOTS;
            wsh_slot *s = realloc(t->slots, (size_t)cap * sizeof(*s));
            if (!s)
                return 0;
            t->slots = s;
            t->cap = cap;
        }
        i = t->n++;
        t->slots[i].gen = 1;
    }
    t->slots[i].obj = obj;
    t->slots[i].next_free = 0;
    t->live++;
    return wsh_encode(t->domain, i, t->slots[i].gen);
}

void wsh_release(wsh_table *t, uint64_t h) {
    wsh_parts p;
    if (!wsh_decode(h, &p) || !wsh_lookup(t, &p))
        return;
    wsh_slot *s = &t->slots[p.slot];
    s->obj = NULL;
    s->gen = s->gen == UINT32_MAX ? 1 : s->gen + 1;
    s->next_free = t->free_head;
    t->free_head = p.slot + 1;
    t->live--;
}

void wsh_debug_set_gen(wsh_table *t, uint32_t slot, uint32_t gen) {
    if (slot < t->n && gen)
        t->slots[slot].gen = gen;
}
