/* common.h: small shared vocabulary of the core: string views, arena,
 * monotonic time, logging. Everything here is private to core/. */
#ifndef WEFT_CORE_COMMON_H
#define WEFT_CORE_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WEFT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WEFT_UNUSED(x) ((void)(x))

/* A borrowed (ptr, len) view; never NUL-terminated by contract. */
typedef struct weft_sv {
    const char *p;
    size_t len;
} weft_sv;

#define WEFT_SV_LIT(s) ((weft_sv){(s), sizeof(s) - 1})
static inline weft_sv weft_sv_from(const char *s) {
    return (weft_sv){s, s ? strlen(s) : 0};
}
/* Inline: most calls compare with a literal, whose length the compiler
 * then knows (the memcmp becomes a few loads and compares). */
static inline bool weft_sv_eq(weft_sv a, weft_sv b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}
bool weft_sv_ieq(weft_sv a, weft_sv b); /* ASCII case-insensitive */
bool weft_sv_ieq_cstr(weft_sv a, const char *b);
bool weft_sv_has_prefix(weft_sv s, weft_sv prefix);
bool weft_sv_has_suffix(weft_sv s, weft_sv suffix);
/* Trims SP and HTAB at both ends (inline: every parsed field value). */
static inline weft_sv weft_sv_trim(weft_sv s) {
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Arena: bump allocator freed all at once. Owner: whoever created it
 * (a stream owns one for all per-request strings and header arrays).
 * The first block is embedded in the struct, so a small request costs
 * no malloc at all; growth takes blocks from malloc, and reset gives
 * 4 KiB blocks to a per-thread spare list (64 at most) that the next
 * growth on the same thread takes first; weft_arena_spares_release gives
 * the calling thread's back to malloc (an idle worker; thread exit). */
#define WEFT_ARENA_INLINE 1024
typedef struct weft_arena_block weft_arena_block;
typedef struct weft_arena {
    char *cur;
    char *end;
    weft_arena_block *blocks; /* malloc'd blocks, freed by reset/free */
    size_t total;             /* bytes handed out (for limits/diagnostics) */
    _Alignas(16) char inline_buf[WEFT_ARENA_INLINE];
} weft_arena;

void weft_arena_init(weft_arena *a);
void *weft_arena_alloc(weft_arena *a, size_t n);                  /* 16-byte aligned; NULL on OOM */
char *weft_arena_strndup(weft_arena *a, const char *s, size_t n); /* NUL-terminated */
void weft_arena_reset(weft_arena *a);                             /* frees blocks, keeps inline */
void weft_arena_free(weft_arena *a);                              /* == reset */
void weft_arena_spares_release(void);

/* Time. */
uint64_t weft_now_ms(void);  /* CLOCK_MONOTONIC, ms */
uint64_t weft_now_us(void);  /* CLOCK_MONOTONIC, us */
uint64_t weft_wall_ms(void); /* CLOCK_REALTIME, ms since epoch */

/* Parses "250ms", "1s", "2m", "1h", "1500us"; bare integer means ms.
 * Returns 0 on success. */
int weft_parse_duration_ms(const char *s, uint64_t *out_ms);
/* Parses "64KiB", "1MiB", "512", "1GiB", "10KB" (KB = 1000). */
int weft_parse_size(const char *s, uint64_t *out);

/* Logging to stderr, one line each. */
typedef enum { WEFT_LOG_DEBUG = 0, WEFT_LOG_INFO, WEFT_LOG_WARN, WEFT_LOG_ERROR } weft_log_level;
extern int weft_log_min_level;
void weft_log(weft_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define WEFT_DEBUG(...)                                                                            \
    do {                                                                                           \
        if (weft_log_min_level <= WEFT_LOG_DEBUG)                                                  \
            weft_log(WEFT_LOG_DEBUG, __VA_ARGS__);                                                 \
    } while (0)
#define WEFT_INFO(...) weft_log(WEFT_LOG_INFO, __VA_ARGS__)
#define WEFT_WARN(...) weft_log(WEFT_LOG_WARN, __VA_ARGS__)
#define WEFT_ERROR(...) weft_log(WEFT_LOG_ERROR, __VA_ARGS__)

/* RFC 9110 tchar (token characters), as a table: the parsers and the
 * writer test it for every header-name byte on the request path. */
extern const bool weft_tchar_table[256];
static inline bool weft_is_tchar(unsigned char c) {
    return weft_tchar_table[c];
}

/* field-value and reason-phrase bytes (RFC 9110 5.5, RFC 9112 4): HTAB,
 * SP, VCHAR, obs-text. */
static inline bool weft_is_text_byte(unsigned char c) {
    return (c >= 0x20 || c == '\t') && c != 0x7f;
}
/* The end of the run of such bytes in p[i, end): eight at a time while a
 * word holds none below 0x20 and none equal to 0x7f (exact as a yes/no: a
 * borrow only propagates from a byte that already matched), then byte by
 * byte from the word holding an HTAB or a control byte. The h1 parser and
 * writer check every header value with it. */
static inline size_t weft_text_span(const char *p, size_t i, size_t end) {
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    while (end - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t y = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((y - ones) & ~y)) & high)
            break;
        i += 8;
    }
    while (i < end && weft_is_text_byte((unsigned char)p[i]))
        i++;
    return i;
}

/* Hashes used by load balancing and lookups. */
uint64_t weft_hash64(const void *data, size_t len, uint64_t seed);

/* The next number of a xorshift64* generator (Vigna); *state must not be
 * 0. Used by the per-worker and per-load-balancer generators. */
static inline uint64_t weft_xorshift64s(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif
