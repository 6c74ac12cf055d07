/* shared_reg.h: the process-wide registry of named, refcounted shared
 * blocks that outlive config snapshots. An entry is keyed by (namespace,
 * key) and carries a layout (size, version): acquiring the same four
 * again while an entry lives returns that entry (its block kept, another
 * reference taken); anything else makes a new, zeroed entry. The entry is
 * freed when its last reference goes, after its destroy callback.
 *
 * Two users: filters' shared state (namespace = the filter's YAML name,
 * references held by the filter instances of each snapshot that asked,
 * core/filter/filter_state.c) and the per-endpoint state of hostsets
 * (ejection deadline, counters; namespace "#endpoint", key
 * "<cluster>\n<ip:port>", references held by every hostset that has the
 * endpoint, core/upstream/hostset.c), which is how ejection survives
 * reloads and endpoint pushes that keep the endpoint.
 *
 * THREAD: any (one mutex; acquire and release are config-time or
 * hostset-change events, never per request). Blocks are 64-byte aligned;
 * what is inside them is their users' business (atomics). */
#ifndef WEFT_COMMON_SHARED_REG_H
#define WEFT_COMMON_SHARED_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct weft_shared_entry weft_shared_entry;

/* Called once, just before the entry is freed (on the thread that drops
 * the last reference). `owner` is released right after (owner_release). */
typedef void (*weft_shared_destroy_cb)(void *block, size_t size, void *arg);
typedef void (*weft_shared_owner_release_cb)(void *owner);

/* The entry for (ns, key, size, version): the live one if there is one
 * (*created = false), else a new zeroed one (*created = true). One
 * reference for the caller either way. NULL on OOM or size 0. */
weft_shared_entry *weft_shared_acquire(const char *ns, const char *key, size_t keylen, size_t size,
                                       uint32_t version, bool *created);
/* The same entry looked up without creating it (a reference taken), or NULL. */
weft_shared_entry *weft_shared_find(const char *ns, const char *key, size_t keylen, size_t size,
                                    uint32_t version);
void weft_shared_ref(weft_shared_entry *e);
void weft_shared_release(weft_shared_entry *e);
void *weft_shared_block(const weft_shared_entry *e);
size_t weft_shared_size(const weft_shared_entry *e);
int weft_shared_refs(const weft_shared_entry *e);
/* Sets the callback run before the entry is freed, with an owner object
 * kept until then (a filter library: the callback's code). The previous
 * owner, if any, is released at once through its own release callback.
 * Main thread (filter libraries are released there). */
void weft_shared_set_destroy(weft_shared_entry *e, weft_shared_destroy_cb cb, void *arg,
                             void *owner, weft_shared_owner_release_cb owner_release);
/* Live entries (all namespaces), for tests and diagnostics. */
size_t weft_shared_count(void);

#endif
