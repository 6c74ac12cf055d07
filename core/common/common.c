/* common.c: string views, arena, clock, duration/size parsing, logging. */
#include "common/common.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ASCII only (as tolower in the C locale, which weft never changes): two
 * different bytes match when they are the same letter in both cases. */
bool weft_sv_ieq(weft_sv a, weft_sv b) {
    if (a.len != b.len)
        return false;
    /* Mostly two lower-case names: one memcmp settles a match. */
    if (a.len == 0 || memcmp(a.p, b.p, a.len) == 0)
        return true;
    for (size_t i = 0; i < a.len; i++) {
        unsigned char x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
        if (x != y && ((x | 0x20) != (y | 0x20) || (unsigned)((x | 0x20) - 'a') >= 26u))
            return false;
    }
    return true;
}

bool weft_sv_ieq_cstr(weft_sv a, const char *b) {
    return weft_sv_ieq(a, weft_sv_from(b));
}

bool weft_sv_has_prefix(weft_sv s, weft_sv prefix) {
    return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.p, prefix.p, prefix.len) == 0);
}

bool weft_sv_has_suffix(weft_sv s, weft_sv suffix) {
    return s.len >= suffix.len &&
           (suffix.len == 0 || memcmp(s.p + s.len - suffix.len, suffix.p, suffix.len) == 0);
}

/* ---- arena ---- */
struct weft_arena_block {
    weft_arena_block *next;
    size_t size;
    _Alignas(16) char data[];
};

/* Spare blocks: a worker's arenas (one per request) outgrow their inline
 * buffer on most requests and would take a block from malloc and give it
 * back at every request; each thread keeps up to ARENA_SPARE_MAX free
 * blocks of the default size instead (at most 256 KiB a thread: an HTTP/2
 * connection has up to 100 streams in flight, and a list of 8 ran dry at
 * every burst of them; given back by weft_arena_spares_release when the
 * worker goes idle). Under
 * AddressSanitizer a spare block is poisoned, so a view used after its
 * arena's reset is still reported. */
#define ARENA_BLOCK 4096
#define ARENA_SPARE_MAX 64
static _Thread_local weft_arena_block *arena_spare;
static _Thread_local unsigned arena_n_spare;

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ARENA_POISON(p, n) ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static weft_arena_block *block_get(size_t bsize) {
    weft_arena_block *b = arena_spare;
    if (bsize == ARENA_BLOCK && b) {
        arena_spare = b->next;
        arena_n_spare--;
        ARENA_UNPOISON(b->data, ARENA_BLOCK);
        return b;
    }
    b = malloc(sizeof(*b) + bsize);
    if (b)
        b->size = bsize;
    return b;
}

/* The spare blocks of a thread that exits go back to malloc. */
static pthread_once_t arena_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t arena_key;
static _Thread_local bool arena_keyed;

static void arena_spare_free(void *unused) {
    (void)unused;
    weft_arena_spares_release();
}

void weft_arena_spares_release(void) {
    while (arena_spare) {
        weft_arena_block *b = arena_spare;
        arena_spare = b->next;
        ARENA_UNPOISON(b->data, ARENA_BLOCK);
        free(b);
    }
    arena_n_spare = 0;
}

static void arena_key_make(void) {
    if (pthread_key_create(&arena_key, arena_spare_free) != 0)
        abort();
}

static void block_put(weft_arena_block *b) {
    if (b->size != ARENA_BLOCK || arena_n_spare >= ARENA_SPARE_MAX) {
        free(b);
        return;
    }
    if (!arena_keyed) {
        pthread_once(&arena_key_once, arena_key_make);
        if (pthread_setspecific(arena_key, &arena_keyed) != 0) {
            free(b);
            return;
        }
        arena_keyed = true;
    }
    ARENA_POISON(b->data, ARENA_BLOCK);
    b->next = arena_spare;
    arena_spare = b;
    arena_n_spare++;
}

void weft_arena_init(weft_arena *a) {
    a->cur = a->inline_buf;
    a->end = a->inline_buf + sizeof(a->inline_buf);
    a->blocks = NULL;
    a->total = 0;
}

void *weft_arena_alloc(weft_arena *a, size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        return NULL;
    if ((size_t)(a->end - a->cur) < need) {
        size_t bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        if (a->blocks && a->blocks->size * 2 > bsize && a->blocks->size < (1u << 20))
            bsize = a->blocks->size * 2 >= need ? a->blocks->size * 2 : bsize;
        weft_arena_block *b = block_get(bsize);
        if (!b)
            return NULL;
        b->next = a->blocks;
        a->blocks = b;
        a->cur = b->data;
        a->end = b->data + bsize;
    }
    void *p = a->cur;
    a->cur += need;
    a->total += n;
    return p;
}

char *weft_arena_strndup(weft_arena *a, const char *s, size_t n) {
    char *p = weft_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void weft_arena_reset(weft_arena *a) {
    weft_arena_block *b = a->blocks;
    while (b) {
        weft_arena_block *next = b->next;
        block_put(b);
        b = next;
    }
    weft_arena_init(a);
}

void weft_arena_free(weft_arena *a) {
    weft_arena_reset(a);
}

/* ---- time ---- */
static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
uint64_t weft_now_ms(void) {
    return clock_ns(CLOCK_MONOTONIC) / 1000000ull;
}
uint64_t weft_now_us(void) {
    return clock_ns(CLOCK_MONOTONIC) / 1000ull;
}
uint64_t weft_wall_ms(void) {
    return clock_ns(CLOCK_REALTIME) / 1000000ull;
}

/* ---- parsing ---- */
static int parse_number_unit(const char *s, uint64_t *num, const char **unit) {
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    *num = v;
    *unit = end;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *out) {
    if (b && a > UINT64_MAX / b)
        return -1;
    *out = a * b;
    return 0;
}

int weft_parse_duration_ms(const char *s, uint64_t *out_ms) {
    uint64_t v;
    const char *u;
    if (parse_number_unit(s, &v, &u))
        return -1;
    if (*u == '\0' || strcmp(u, "ms") == 0)
        return mul_checked(v, 1, out_ms);
    if (strcmp(u, "us") == 0) {
        *out_ms = (v + 999) / 1000;
        return 0;
    }
    if (strcmp(u, "s") == 0)
        return mul_checked(v, 1000, out_ms);
    if (strcmp(u, "m") == 0)
        return mul_checked(v, 60000, out_ms);
    if (strcmp(u, "h") == 0)
        return mul_checked(v, 3600000, out_ms);
    return -1;
}

int weft_parse_size(const char *s, uint64_t *out) {
    uint64_t v;
    const char *u;
    if (parse_number_unit(s, &v, &u))
        return -1;
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1024ull},
        {"MiB", 1024ull * 1024},
        {"GiB", 1024ull * 1024 * 1024},
        {"KB", 1000ull},
        {"MB", 1000000ull},
        {"GB", 1000000000ull},
        {"Ki", 1024ull},
        {"Mi", 1024ull * 1024},
        {"Gi", 1024ull * 1024 * 1024},
    };
    for (size_t i = 0; i < WEFT_ARRAY_LEN(units); i++)
        if (strcmp(u, units[i].unit) == 0)
            return mul_checked(v, units[i].mul, out);
    return -1;
}

/* ---- logging ---- */
int weft_log_min_level = WEFT_LOG_INFO;

void weft_log(weft_log_level lvl, const char *fmt, ...) {
    if ((int)lvl < weft_log_min_level)
        return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* One write(2) per line so that lines from several threads never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* ---- character classes ---- */
#define T_ALNUM_RANGE(a, b) [a... b] = true
const bool weft_tchar_table[256] = {
    T_ALNUM_RANGE('0', '9'),
    T_ALNUM_RANGE('a', 'z'),
    T_ALNUM_RANGE('A', 'Z'),
    ['!'] = true,
    ['#'] = true,
    ['$'] = true,
    ['%'] = true,
    ['&'] = true,
    ['\''] = true,
    ['*'] = true,
    ['+'] = true,
    ['-'] = true,
    ['.'] = true,
    ['^'] = true,
    ['_'] = true,
    ['`'] = true,
    ['|'] = true,
    ['~'] = true,
};
#undef T_ALNUM_RANGE

/* ---- hash: 64-bit FNV-1a followed by a murmur3 finalizer (good avalanche,
 * cheap, stable across runs and machines: ring positions depend on it). */
uint64_t weft_hash64(const void *data, size_t len, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}
