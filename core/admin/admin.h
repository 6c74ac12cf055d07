/* admin.h: the admin listener (main thread, libevent's evhttp): /ready,
 * /stats/prometheus, /config_dump, /clusters, /drain. */
#ifndef WEFT_ADMIN_H
#define WEFT_ADMIN_H

#include <event2/event.h>

#include "runtime/snapshot.h"

typedef struct weft_admin weft_admin;

typedef struct weft_admin_host {
    void *ctx;
    weft_snapshot *(*current)(void *ctx); /* borrowed */
    bool (*draining)(void *ctx);
    void (*drain)(void *ctx); /* stop listeners, keep serving in-flight */
} weft_admin_host;

weft_admin *weft_admin_start(struct event_base *base, const char *address, uint16_t port,
                             const weft_admin_host *host, char *err, size_t errlen);
void weft_admin_free(weft_admin *a);

#endif
