/* dns.h: asynchronous resolution of clusters whose endpoints are DNS names
 * (libevent evdns, main thread). Each refresh resolves every name of the
 * cluster and, when the set of addresses changed, publishes a new hostset
 * (health flags of addresses that stay are kept). */
#ifndef WEFT_UPSTREAM_DNS_H
#define WEFT_UPSTREAM_DNS_H

#include <event2/event.h>

#include "runtime/snapshot.h"

typedef struct weft_dns weft_dns;

weft_dns *weft_dns_start(struct event_base *base, weft_snapshot *snap);
/* No more refreshes; queries in flight are cancelled (their callbacks
 * arrive on the loop's next turn). Called when shutdown starts, so that at
 * exit nothing is owed by libevent. Idempotent. */
void weft_dns_stop(weft_dns *d);
/* Stops, and frees now, or (when cancelled queries still owe their
 * callbacks, e.g. on a reload) from the last of those callbacks. */
void weft_dns_free(weft_dns *d);

#endif
