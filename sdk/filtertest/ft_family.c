/* ft_family.c: the kit's labelled stat families (ABI 1.1, stats group),
 * with weft's semantics: the declaration rules of sdk/common/wsh_rules.c,
 * at most max_series series, then the overflow series (every label
 * "__overflow__") and a count of the updates folded into it; a value
 * longer than WEFT_STAT_LABEL_VALUE_MAX is folded too. A configure is
 * weft's reload: the families (and stats) it does not declare leave, one
 * declared again keeps its values, and a family may change its labels
 * (another entry of the same name; the old one kept hidden, as in weft).
 * Tests read a series with wft_stat_series_value. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ft_internal.h"
#include "wsh_rules.h"

typedef struct ft_series {
    char *key; /* per value: uint32_t length, bytes (as weft keys its series) */
    size_t keylen;
    uint64_t value; /* counter, histogram sum */
    int64_t gauge;
    uint64_t count; /* histogram samples */
} ft_series;

typedef struct ft_family {
    char *name, *help;
    uint32_t kind; /* WEFT_STAT_KIND_* */
    size_t n_labels;
    char *labels[WEFT_STAT_FAMILY_MAX_LABELS];
    uint32_t max_series;
    ft_series *series;
    size_t nseries;
    ft_series overflow;
    bool overflow_used;
    uint64_t folded;
    uint64_t pass; /* the last configure that declared it */
    bool hidden;   /* not declared by the last configure that succeeded */
} ft_family;

struct ft_family_set {
    ft_family *v;
    size_t n, cap;
};

static void family_clear(ft_family *f) {
    free(f->name);
    free(f->help);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    for (size_t i = 0; i < f->nseries; i++)
        free(f->series[i].key);
    free(f->series);
}

void ft_family_free(wft_env *env) {
    struct ft_family_set *set = env->families;
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        family_clear(&set->v[i]);
    free(set->v);
    free(set);
    env->families = NULL;
}

static bool same_signature(const ft_family *f, uint32_t kind, const char *const *names, size_t n,
                           uint32_t max_series) {
    if (f->kind != kind || f->n_labels != n || f->max_series != max_series)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->labels[i], names[i]) != 0)
            return false;
    return true;
}

/* The family of this name that is shown. */
static ft_family *family_find(const wft_env *env, const char *name) {
    struct ft_family_set *set = env ? env->families : NULL;
    for (size_t i = 0; set && name && i < set->n; i++)
        if (!set->v[i].hidden && !strcmp(set->v[i].name, name))
            return &set->v[i];
    return NULL;
}

void ft_stats_pass_begin(wft_env *env) {
    env->stat_pass++;
    env->stat_in_pass = true;
}

void ft_stats_redeclared(wft_env *env, uint64_t *pass, bool *hidden) {
    *pass = env->stat_pass;
    if (!env->stat_in_pass)
        *hidden = false;
}

void ft_stats_pass_end(wft_env *env, bool kept) {
    env->stat_in_pass = false;
    if (!kept)
        return;
    for (size_t i = 0; i < env->nstats; i++)
        env->stats[i].hidden = env->stats[i].pass != env->stat_pass;
    struct ft_family_set *set = env->families;
    for (size_t i = 0; set && i < set->n; i++)
        set->v[i].hidden = set->v[i].pass != env->stat_pass;
}

static weft_result family_add(wft_env *env, uint32_t kind, const char *name, const char *help,
                              const char *const *names, size_t n, uint32_t max_series,
                              int32_t *family) {
    struct ft_family_set *set = env->families;
    if (!set && !(set = env->families = calloc(1, sizeof *set)))
        return WEFT_ERR_NOMEM;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4;
        ft_family *v = realloc(set->v, cap * sizeof *v);
        if (!v)
            return WEFT_ERR_NOMEM;
        set->v = v;
        set->cap = cap;
    }
    ft_family f = {.name = ft_strdup(name),
                   .help = ft_strdup(help ? help : ""),
                   .kind = kind,
                   .max_series = max_series,
                   .pass = env->stat_pass};
    bool ok = f.name && f.help;
    for (size_t i = 0; ok && i < n; i++, f.n_labels++)
        ok = (f.labels[i] = ft_strdup(names[i])) != NULL;
    if (!ok) {
        family_clear(&f);
        return WEFT_ERR_NOMEM;
    }
    set->v[set->n] = f;
    *family = (int32_t)set->n++;
    return WEFT_OK;
}

weft_result ft_family_declare(weft_filter_setup *setup, uint32_t kind, const char *name,
                              const char *help, const char *const *names, size_t n,
                              uint32_t max_series, int32_t *family) {
    if (family)
        *family = -1;
    if (!setup || !setup->live)
        return ft_misuse(ft_current_env(), WEFT_ERR_STATE,
                         "stat family \"%s\" declared outside config_create",
                         name ? name : "(null)");
    wft_env *env = setup->env;
    const char *why = !family || !ft_name_ok(name)
                          ? "name is not [a-z0-9_]+"
                          : wsh_stat_family_refusal(kind, names, n, max_series);
    if (why)
        return ft_misuse(env, WEFT_ERR_INVALID, "stat family \"%s\": %s", name ? name : "(null)",
                         why);
    /* The same declaration finds its family (values kept); another one
     * of the same name is refused while this configure declared it. */
    ft_family *same = NULL;
    for (size_t i = 0; env->families && i < env->families->n; i++) {
        ft_family *f = &env->families->v[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (same_signature(f, kind, names, n, max_series))
            same = f;
        else if (f->pass == env->stat_pass)
            return ft_misuse(env, WEFT_ERR_INVALID,
                             "stat family \"%s\" declared again with another kind, labels or "
                             "max_series",
                             name);
    }
    if (same) {
        ft_stats_redeclared(env, &same->pass, &same->hidden);
        *family = (int32_t)(same - env->families->v);
        return WEFT_OK;
    }
    for (size_t i = 0; i < env->nstats; i++)
        if (!strcmp(env->stats[i].name, name) && (uint32_t)env->stats[i].kind != kind)
            return ft_misuse(env, WEFT_ERR_INVALID, "stat family \"%s\": a stat of another kind",
                             name);
    return family_add(env, kind, name, help, names, n, max_series, family);
}

/* The series key of n values into buf (big enough: see ft_family_update). */
static size_t make_key(char *buf, const weft_str *v, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)v[i].len;
        memcpy(buf + len, &l, sizeof l);
        if (l)
            memcpy(buf + len + sizeof l, v[i].ptr, l);
        len += sizeof l + l;
    }
    return len;
}

static ft_series *series_find(ft_family *f, const char *key, size_t len) {
    for (size_t i = 0; i < f->nseries; i++)
        if (f->series[i].keylen == len && !memcmp(f->series[i].key, key, len))
            return &f->series[i];
    return NULL;
}

/* The series an update of these values goes to (made if new and there is
 * room), or NULL: the overflow series. */
static ft_series *series_resolve(ft_family *f, const weft_str *v, size_t n) {
    char key[WEFT_STAT_FAMILY_MAX_LABELS * (sizeof(uint32_t) + WEFT_STAT_LABEL_VALUE_MAX)];
    bool fold = false;
    for (size_t i = 0; i < n; i++)
        fold |= v[i].len > WEFT_STAT_LABEL_VALUE_MAX;
    size_t len = fold ? 0 : make_key(key, v, n);
    ft_series *s = fold ? NULL : series_find(f, key, len);
    if (!s && !fold && f->nseries < f->max_series) {
        ft_series *arr = realloc(f->series, (f->nseries + 1) * sizeof *arr);
        char *k = malloc(len ? len : 1);
        if (arr)
            f->series = arr;
        if (arr && k) {
            memcpy(k, key, len);
            s = &f->series[f->nseries++];
            *s = (ft_series){.key = k, .keylen = len};
        } else {
            free(k);
        }
    }
    return s;
}

/* The overflow series, taking one folded update. */
static ft_series *overflow_take(ft_family *f) {
    f->overflow_used = true;
    f->folded++;
    return &f->overflow;
}

/* The series an update of these values goes to; the overflow series
 * counted. */
static ft_series *series_for(ft_family *f, const weft_str *v, size_t n) {
    ft_series *s = series_resolve(f, v, n);
    return s ? s : overflow_take(f);
}

static void series_add(ft_series *s, uint32_t kind, uint64_t arg) {
    if (kind == WEFT_STAT_KIND_GAUGE) {
        s->gauge += (int64_t)arg;
    } else {
        s->value += arg;
        s->count += kind == WEFT_STAT_KIND_HISTOGRAM;
    }
}

weft_result ft_family_update(int32_t family, const weft_str *v, size_t n, uint32_t kind,
                             uint64_t arg) {
    wft_env *env = ft_current_env();
    struct ft_family_set *set = env ? env->families : NULL;
    if (!set || family < 0 || (size_t)family >= set->n)
        return WEFT_ERR_INVALID;
    ft_family *f = &set->v[family];
    if (f->kind != kind || n != f->n_labels || (n && !v))
        return ft_misuse(env, WEFT_ERR_INVALID,
                         "stat family \"%s\": update of another kind or label count", f->name);
    for (size_t i = 0; i < n; i++)
        if (!v[i].ptr && v[i].len)
            return ft_misuse(env, WEFT_ERR_INVALID, "stat family \"%s\": value NULL", f->name);
    series_add(series_for(f, v, n), kind, arg);
    return WEFT_OK;
}

/* ---- series handles (ABI 1.2): weft's encoding (core/stats/stats.h)
 * with the series' index + 1 (0: the overflow series) for the slot ---- */

#define SERIES_VALID (1ull << 63)
#define SERIES_KIND_SHIFT 48

weft_result ft_family_series(int32_t family, const weft_str *v, size_t n, weft_stat_series *out) {
    wft_env *env = ft_current_env();
    struct ft_family_set *set = env ? env->families : NULL;
    if (out)
        *out = WEFT_STAT_SERIES_NONE;
    if (!out || !set || family < 0 || (size_t)family >= set->n)
        return WEFT_ERR_INVALID;
    ft_family *f = &set->v[family];
    if (n != f->n_labels || (n && !v))
        return ft_misuse(env, WEFT_ERR_INVALID, "stat family \"%s\": series of another label count",
                         f->name);
    for (size_t i = 0; i < n; i++)
        if (!v[i].ptr && v[i].len)
            return ft_misuse(env, WEFT_ERR_INVALID, "stat family \"%s\": value NULL", f->name);
    ft_series *s = series_resolve(f, v, n);
    *out = SERIES_VALID | (uint64_t)f->kind << SERIES_KIND_SHIFT | (uint64_t)family << 32 |
           (s ? (uint64_t)(s - f->series) + 1 : 0);
    return WEFT_OK;
}

void ft_series_update(weft_stat_series h, uint32_t kind, uint64_t arg, const char *call) {
    wft_env *env = ft_current_env();
    struct ft_family_set *set = env ? env->families : NULL;
    if (h == WEFT_STAT_SERIES_NONE || !set)
        return;
    uint32_t family = (uint32_t)(h >> 32) & 0xffff, idx = (uint32_t)h;
    ft_family *f = (h & SERIES_VALID) && family < set->n ? &set->v[family] : NULL;
    if (!f || idx > f->nseries) {
        ft_misuse(env, WEFT_ERR_INVALID, "%s: not a series handle", call);
        return;
    }
    if ((uint32_t)(h >> SERIES_KIND_SHIFT & 3) != kind || f->kind != kind) {
        ft_misuse(env, WEFT_ERR_INVALID, "%s: a series of family \"%s\" of another kind", call,
                  f->name);
        return;
    }
    series_add(idx ? &f->series[idx - 1] : overflow_take(f), kind, arg);
}

/* ---- reading (filtertest.h) ---- */

static const ft_series *series_va(const wft_env *env, const char *name, va_list ap,
                                  const ft_family **fam) {
    ft_family *f = family_find(env, name);
    *fam = f;
    if (!f)
        return NULL;
    weft_str v[WEFT_STAT_FAMILY_MAX_LABELS];
    size_t n = 0;
    bool overflow = true;
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        if (n == WEFT_STAT_FAMILY_MAX_LABELS)
            return NULL;
        v[n++] = (weft_str){s, strlen(s)};
        overflow &= !strcmp(s, WEFT_STAT_OVERFLOW_VALUE);
    }
    if (n != f->n_labels)
        return NULL;
    char key[WEFT_STAT_FAMILY_MAX_LABELS * (sizeof(uint32_t) + WEFT_STAT_LABEL_VALUE_MAX)];
    for (size_t i = 0; i < n; i++)
        if (v[i].len > WEFT_STAT_LABEL_VALUE_MAX)
            return NULL;
    const ft_series *s = series_find(f, key, make_key(key, v, n));
    return s ? s : overflow && f->overflow_used ? &f->overflow : NULL;
}

uint64_t wft_stat_series_value(const wft_env *env, const char *name, ...) {
    va_list ap;
    va_start(ap, name);
    const ft_family *f;
    const ft_series *s = series_va(env, name, ap, &f);
    va_end(ap);
    if (!s)
        return 0;
    return f->kind == WEFT_STAT_KIND_COUNTER     ? s->value
           : f->kind == WEFT_STAT_KIND_HISTOGRAM ? s->count
           : s->gauge > 0                        ? (uint64_t)s->gauge
                                                 : 0;
}

bool wft_stat_series_exists(const wft_env *env, const char *name, ...) {
    va_list ap;
    va_start(ap, name);
    const ft_family *f;
    const ft_series *s = series_va(env, name, ap, &f);
    va_end(ap);
    return s != NULL;
}

int64_t wft_stat_series_gauge(const wft_env *env, const char *name, ...) {
    va_list ap;
    va_start(ap, name);
    const ft_family *f;
    const ft_series *s = series_va(env, name, ap, &f);
    va_end(ap);
    return s && f->kind == WEFT_STAT_KIND_GAUGE ? s->gauge : 0;
}

size_t wft_stat_family_series(const wft_env *env, const char *name) {
    const ft_family *f = family_find(env, name);
    return f ? f->nseries : 0;
}

uint64_t wft_stat_family_overflow(const wft_env *env, const char *name) {
    const ft_family *f = family_find(env, name);
    return f ? f->folded : 0;
}
