/* memtrim.c: see memtrim.h. */
#include "common/memtrim.h"

#include <malloc.h>
#include <stdatomic.h>

static atomic_bool g_requested;
static _Atomic uint64_t g_last_ms;
static _Atomic uint64_t g_count;
static atomic_flag g_running = ATOMIC_FLAG_INIT;

void weft_memtrim_request(void) {
    atomic_store_explicit(&g_requested, true, memory_order_relaxed);
}

bool weft_memtrim_run(uint64_t now_ms) {
    if (!atomic_load_explicit(&g_requested, memory_order_relaxed))
        return false;
    uint64_t last = atomic_load_explicit(&g_last_ms, memory_order_relaxed);
    if (last && now_ms - last < WEFT_MEMTRIM_INTERVAL_MS)
        return false;
    if (atomic_flag_test_and_set_explicit(&g_running, memory_order_acquire))
        return false;
    /* Cleared first: a request made while trimming asks for another. */
    atomic_store_explicit(&g_requested, false, memory_order_relaxed);
    malloc_trim(0);
    atomic_store_explicit(&g_last_ms, now_ms ? now_ms : 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed);
    atomic_flag_clear_explicit(&g_running, memory_order_release);
    return true;
}

uint64_t weft_memtrim_count(void) {
    return atomic_load_explicit(&g_count, memory_order_relaxed);
}
