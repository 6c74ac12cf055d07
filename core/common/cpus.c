/* cpus.c: the CPUs this process may use (affinity mask, cgroup quota). */
#include "common/cpus.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One unsigned decimal number at *p (leading blanks skipped); advances
 * *p past it. Returns 0, or -1 when there is none or it overflows. */
static int parse_u64(const char **p, uint64_t *out) {
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *out = v;
    return 0;
}

/* Only blanks and line ends are left at s. */
static int at_end(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '\0';
}

static uint32_t ceil_div(uint64_t q, uint64_t p) {
    uint64_t n = q / p + (q % p != 0);
    if (n < 1)
        n = 1;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int weft_cpu_max_parse(const char *text, uint32_t *cpus) {
    if (!text)
        return -1;
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    uint64_t quota = 0, period = 100000;
    int unlimited = 0;
    if (strncmp(s, "max", 3) == 0) {
        unlimited = 1;
        s += 3;
    } else if (parse_u64(&s, &quota) < 0 || quota == 0) {
        return -1;
    }
    if (*s == ' ' || *s == '\t') {
        if (parse_u64(&s, &period) < 0 || period == 0)
            return -1;
    }
    if (!at_end(s))
        return -1;
    *cpus = unlimited ? 0 : ceil_div(quota, period);
    return 0;
}

int weft_cfs_quota_parse(const char *quota, const char *period, uint32_t *cpus) {
    if (!quota || !period)
        return -1;
    const char *q = quota;
    while (*q == ' ' || *q == '\t')
        q++;
    uint64_t p = 0, n = 0;
    const char *ps = period;
    if (parse_u64(&ps, &p) < 0 || p == 0 || !at_end(ps))
        return -1;
    if (strncmp(q, "-1", 2) == 0 && at_end(q + 2)) {
        *cpus = 0;
        return 0;
    }
    if (parse_u64(&q, &n) < 0 || n == 0 || !at_end(q))
        return -1;
    *cpus = ceil_div(n, p);
    return 0;
}

/* Reads a small file into buf (NUL-terminated). Returns 0 or -1. */
static int read_small(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, len - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* The quota (whole CPUs, 0 = none) set in one cgroup directory. */
static uint32_t dir_limit(const char *dir, int v2) {
    char path[PATH_MAX], a[128], b[128];
    uint32_t n = 0;
    if (v2) {
        if (snprintf(path, sizeof(path), "%s/cpu.max", dir) >= (int)sizeof(path) ||
            read_small(path, a, sizeof(a)) < 0 || weft_cpu_max_parse(a, &n) < 0)
            return 0;
        return n;
    }
    if (snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", dir) >= (int)sizeof(path) ||
        read_small(path, a, sizeof(a)) < 0)
        return 0;
    if (snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", dir) >= (int)sizeof(path) ||
        read_small(path, b, sizeof(b)) < 0 || weft_cfs_quota_parse(a, b, &n) < 0)
        return 0;
    return n;
}

static uint32_t tighter(uint32_t a, uint32_t b) {
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

/* The tightest quota from base/cg up to base itself. */
static uint32_t walk_limit(const char *base, const char *cg, size_t cg_len, int v2) {
    char dir[PATH_MAX];
    size_t blen = strlen(base);
    if (blen + cg_len + 1 >= sizeof(dir))
        return 0;
    memcpy(dir, base, blen);
    memcpy(dir + blen, cg, cg_len);
    size_t len = blen + cg_len;
    while (len > blen && dir[len - 1] == '/')
        len--;
    dir[len] = '\0';
    uint32_t best = 0;
    for (;;) {
        best = tighter(best, dir_limit(dir, v2));
        if (len <= blen)
            break;
        while (len > blen && dir[len - 1] != '/')
            len--;
        while (len > blen && dir[len - 1] == '/')
            len--;
        dir[len] = '\0';
    }
    return best;
}

/* Whether the comma-separated list [s, s+n) holds the word "cpu". */
static int has_cpu_controller(const char *s, size_t n) {
    const char *end = s + n;
    while (s < end) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        size_t w = (size_t)((c ? c : end) - s);
        if (w == 3 && memcmp(s, "cpu", 3) == 0)
            return 1;
        s += w + 1;
    }
    return 0;
}

uint32_t weft_cgroup_cpu_limit(const char *fs_root, const char *proc_cgroup) {
    static const char *const v1_dirs[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
    char base[PATH_MAX];
    uint32_t best = 0;
    if (!fs_root || !proc_cgroup)
        return 0;
    /* Lines are "ID:CONTROLLERS:PATH"; v2 is "0::PATH". */
    for (const char *line = proc_cgroup; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2 && c2[1] == '/') {
            const char *cg = c2 + 1;
            size_t cg_len = len - (size_t)(cg - line);
            size_t ctl_len = (size_t)(c2 - c1 - 1);
            if (ctl_len == 0 && c1 - line == 1 && line[0] == '0') {
                best = tighter(best, walk_limit(fs_root, cg, cg_len, 1));
                if (snprintf(base, sizeof(base), "%s/unified", fs_root) < (int)sizeof(base))
                    best = tighter(best, walk_limit(base, cg, cg_len, 1));
            } else if (has_cpu_controller(c1 + 1, ctl_len)) {
                for (size_t i = 0; i < sizeof(v1_dirs) / sizeof(v1_dirs[0]); i++)
                    if (snprintf(base, sizeof(base), "%s/%s", fs_root, v1_dirs[i]) <
                        (int)sizeof(base))
                        best = tighter(best, walk_limit(base, cg, cg_len, 0));
            }
        }
        line += len + (nl ? 1 : 0);
    }
    return best;
}

/* CPUs in the affinity mask; 0 when it cannot be read. */
static uint32_t affinity_cpus(void) {
    for (int n = 1024; n <= 1 << 16; n *= 2) {
        cpu_set_t *set = CPU_ALLOC((size_t)n);
        if (!set)
            return 0;
        size_t size = CPU_ALLOC_SIZE((size_t)n);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            int c = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return c > 0 ? (uint32_t)c : 0;
        }
        CPU_FREE(set);
        if (errno != EINVAL)
            return 0;
    }
    return 0;
}

uint32_t weft_usable_cpus(uint32_t max, char *detail, size_t detail_len) {
    uint32_t aff = affinity_cpus();
    if (!aff) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        aff = online > 0 ? (uint32_t)online : 1;
    }
    char cg[4096];
    uint32_t quota = 0;
    if (read_small("/proc/self/cgroup", cg, sizeof(cg)) == 0)
        quota = weft_cgroup_cpu_limit("/sys/fs/cgroup", cg);
    uint32_t n = tighter(aff, quota);
    if (n < 1)
        n = 1;
    if (max && n > max)
        n = max;
    if (detail && detail_len) {
        if (quota)
            snprintf(detail, detail_len, "CPUs usable: %u in the affinity mask, cgroup quota %u",
                     aff, quota);
        else
            snprintf(detail, detail_len, "CPUs usable: %u in the affinity mask, no cgroup quota",
                     aff);
    }
    return n;
}
