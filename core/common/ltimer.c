/* ltimer.c: lazy deadlines (see ltimer.h). */
#include "common/ltimer.h"

#include <time.h>

#include "common/common.h"

/* Deadlines are 100 ms and up: the coarse clock (a vDSO read of the
 * last tick, no TSC access) is exact enough and much cheaper, and it is
 * read several times per request. */
static uint64_t coarse_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void arm(weft_ltimer *t, uint64_t now, uint64_t deadline) {
    uint64_t ms = deadline > now ? deadline - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(&t->ev, &tv);
    t->armed = true;
    t->armed_for_ms = deadline;
}

static void fire(evutil_socket_t fd, short what, void *arg) {
    weft_ltimer *t = arg;
    t->armed = false;
    if (!t->deadline_ms)
        return;
    uint64_t now = coarse_now_ms();
    if (now < t->deadline_ms) {
        arm(t, now, t->deadline_ms);
        return;
    }
    t->deadline_ms = 0;
    t->cb(t->arg);
}

void weft_ltimer_init(weft_ltimer *t, struct event_base *base, void (*cb)(void *), void *arg) {
    event_assign(&t->ev, base, -1, 0, fire, t);
    t->deadline_ms = t->armed_for_ms = 0;
    t->armed = false;
    t->cb = cb;
    t->arg = arg;
}

void weft_ltimer_set(weft_ltimer *t, uint64_t after_ms) {
    if (!after_ms) {
        t->deadline_ms = 0;
        return;
    }
    uint64_t now = coarse_now_ms();
    t->deadline_ms = now + after_ms;
    if (!t->armed || t->deadline_ms < t->armed_for_ms)
        arm(t, now, t->deadline_ms);
}

void weft_ltimer_stop(weft_ltimer *t) {
    event_del(&t->ev);
    t->armed = false;
    t->deadline_ms = 0;
}
