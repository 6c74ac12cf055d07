/* smallpool.h: a separate home for libevent's small allocations.
 *
 * libevent allocates a small entry (16 bytes with epoll) per descriptor number
 * the first time an event is added on it, and keeps it until the event
 * base is freed. Allocated from glibc's heap in the middle of a burst of
 * connections, these entries sit between the connections' own blocks, so
 * when the burst closes, every heap page still holds a live entry and
 * malloc_trim can give almost nothing back (9,000 idle connections closed:
 * 18.8 MB of worker heap free but resident, 320 KB in use).
 *
 * weft routes libevent's allocations (event_set_mem_functions) through
 * this pool: requests of at most WEFT_SMALLPOOL_MAX bytes get a 32-byte
 * slot in 64 KiB blocks carved from one reserved address range, away from
 * glibc's heaps; everything larger goes to malloc. A block belongs to the
 * thread that carved it: allocation and same-thread free touch only that
 * thread's state (no lock, no atomic); a free from another thread pushes
 * the slot on the block's lock-free remote list, collected by the owner.
 * A block whose slots are all free again is returned to the kernel
 * (MADV_DONTNEED) and to a shared list of empty blocks (one mutex, taken
 * once per 2,046 slots). A thread that exits leaves its blocks as they are
 * (workers live until the process exits).
 *
 * Larger requests of 513 bytes to 32 KiB (libevent's buffer chains, which
 * it sizes in powers of two from 1 KiB; weft_conn reads into 32 KiB ones)
 * go to malloc, but a freed one waits in a small per-thread list of spare
 * blocks by power-of-two class (a few per class, 176 KiB at most a
 * thread) for the next request of its class: a connection's input and
 * output chains are allocated and freed on every read and write, about
 * 460 instructions a pair through glibc. The spare blocks go back to
 * malloc when the thread exits or calls weft_smallpool_chains_release
 * (an idle worker).
 *
 * Not used in sanitized builds (AddressSanitizer must see libevent's
 * allocations); weft_smallpool_install() then does nothing. */
#ifndef WEFT_COMMON_SMALLPOOL_H
#define WEFT_COMMON_SMALLPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_SMALLPOOL_MAX 32 /* bytes: larger requests go to malloc */

/* Reserves the address range. Idempotent; false when the reservation
 * failed (the pool then hands everything to malloc). Main thread, before
 * any other thread uses the pool. */
bool weft_smallpool_init(void);

/* Any thread. NULL only when malloc fails. */
void *weft_smallpool_alloc(size_t n);
void *weft_smallpool_realloc(void *p, size_t n);
void weft_smallpool_free(void *p);

/* Frees the calling thread's spare chain blocks. */
void weft_smallpool_chains_release(void);

/* The calling thread's spare chain blocks (tests). */
size_t weft_smallpool_chains_spare(void);

/* Whether p is a slot of the pool (tests). */
bool weft_smallpool_owns(const void *p);

/* Blocks holding at least one live slot, and blocks ever carved (tests,
 * diagnostics). */
size_t weft_smallpool_blocks_in_use(void);
size_t weft_smallpool_blocks_carved(void);

/* Installs the pool as libevent's allocator (event_set_mem_functions):
 * before any other libevent call. Does nothing in sanitized builds.
 * Returns whether it installed. */
bool weft_smallpool_install(void);

#endif
