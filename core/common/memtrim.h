/* memtrim.h: giving freed heap memory back to the kernel.
 *
 * glibc keeps freed memory in its arenas (the main one and one per thread
 * that allocates) and on its own returns only the top of the main heap.
 * After a reload (the old snapshot and its config freed) or after a burst
 * of connections closes, tens of MB stay in RSS, reused but never
 * returned. malloc_trim(0) releases the free pages of every arena
 * (madvise); it walks the free chunks, so it runs only when asked and at
 * most once per WEFT_MEMTRIM_INTERVAL_MS, from a worker's idle tick. */
#ifndef WEFT_COMMON_MEMTRIM_H
#define WEFT_COMMON_MEMTRIM_H

#include <stdbool.h>
#include <stdint.h>

#define WEFT_MEMTRIM_INTERVAL_MS 1000

/* Any thread: a large amount of memory was freed (a config, a worker's
 * connections); the next weft_memtrim_run trims. Lock-free. */
void weft_memtrim_request(void);

/* Trims when requested and the last trim is at least
 * WEFT_MEMTRIM_INTERVAL_MS old (now_ms: weft_now_ms()). Returns true when
 * it trimmed. Any thread; one trims, concurrent callers return false. */
bool weft_memtrim_run(uint64_t now_ms);

/* Trims done so far (tests, diagnostics). */
uint64_t weft_memtrim_count(void);

#endif
