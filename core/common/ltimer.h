/* ltimer.h: a lazy one-shot timer for deadlines that move on every request
 * (idle, header, route and pool timeouts). Setting or clearing it only
 * stores a deadline; the libevent timer is re-added only when the new
 * deadline is earlier than the armed one, and a timer that fires early
 * re-arms itself for the remainder. This saves the timer-heap operations
 * that event_add/event_del would cost per request. */
#ifndef WEFT_COMMON_LTIMER_H
#define WEFT_COMMON_LTIMER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>

typedef struct weft_ltimer {
    struct event ev;
    uint64_t deadline_ms;  /* 0 = cleared */
    uint64_t armed_for_ms; /* deadline the libevent timer fires at */
    bool armed;
    void (*cb)(void *arg);
    void *arg;
} weft_ltimer;

void weft_ltimer_init(weft_ltimer *t, struct event_base *base, void (*cb)(void *), void *arg);
/* Deadline in `after_ms` from now (0 clears). */
void weft_ltimer_set(weft_ltimer *t, uint64_t after_ms);
static inline void weft_ltimer_clear(weft_ltimer *t) {
    t->deadline_ms = 0;
}
static inline bool weft_ltimer_pending(const weft_ltimer *t) {
    return t->deadline_ms != 0;
}
/* Removes the libevent timer (before freeing the owner). */
void weft_ltimer_stop(weft_ltimer *t);

#endif
