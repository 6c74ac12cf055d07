/* health.h: active HTTP health checking, run on the main thread. For every
 * endpoint of a cluster with health_check, a GET of the configured path at
 * each interval; `unhealthy_threshold` failures in a row take the endpoint
 * out of rotation (its atomic `healthy` flag), `healthy_threshold` passes
 * bring it back. Workers only read the flag. */
#ifndef WEFT_UPSTREAM_HEALTH_H
#define WEFT_UPSTREAM_HEALTH_H

#include <event2/event.h>

#include "runtime/snapshot.h"

typedef struct weft_health weft_health;

/* Starts checking the snapshot's clusters; streaks of endpoints that also
 * appear in `prev` carry over. `prev` is stopped and freed. */
weft_health *weft_health_start(struct event_base *base, weft_snapshot *snap, weft_health *prev);
void weft_health_free(weft_health *h);

#endif
