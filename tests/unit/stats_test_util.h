/* stats_test_util.h: what the core/stats unit tests share (test_stats.c,
 * test_stat_families.c): a clean registry around each test, and the
 * Prometheus text of the registry. Include after cmocka.h. */
#ifndef WEFT_STATS_TEST_UTIL_H
#define WEFT_STATS_TEST_UTIL_H

#include <event2/buffer.h>
#include <stdlib.h>

#include "stats/stats.h"

static inline int setup(void **state) {
    (void)state;
    weft_stats_reset_for_tests();
    return 0;
}

static inline int teardown(void **state) {
    (void)state;
    weft_stats_reset_for_tests();
    return 0;
}

/* Renders the registry into a NUL-terminated heap string. */
static inline char *render(void) {
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    assert_int_equal(weft_stats_render_prometheus(b), 0);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    assert_int_equal(evbuffer_remove(b, s, n), (int)n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

#endif
