/* Unit tests for core/common/cpus.c: cgroup cpu.max / cfs quota parsing,
 * the walk over a cgroup hierarchy, and the usable CPU count. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cpus.h"

static void test_cpu_max(void **state) {
    (void)state;
    uint32_t n = 77;
    assert_int_equal(weft_cpu_max_parse("max 100000\n", &n), 0);
    assert_int_equal(n, 0);
    n = 77;
    assert_int_equal(weft_cpu_max_parse("max", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(weft_cpu_max_parse("100000 100000\n", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(weft_cpu_max_parse("150000 100000\n", &n), 0);
    assert_int_equal(n, 2); /* 1.5 CPUs: ceil */
    assert_int_equal(weft_cpu_max_parse("200000 100000", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(weft_cpu_max_parse("50000 100000\n", &n), 0);
    assert_int_equal(n, 1); /* half a CPU is still one worker */
    assert_int_equal(weft_cpu_max_parse("1000 1000000\n", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(weft_cpu_max_parse("400000 50000\n", &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(weft_cpu_max_parse("250000\n", &n), 0); /* period defaults to 100000 */
    assert_int_equal(n, 3);
    assert_int_equal(weft_cpu_max_parse("18446744073709551615 1\n", &n), 0);
    assert_int_equal(n, UINT32_MAX); /* clamped, the caller caps it */

    /* malformed: untouched and refused */
    static const char *const bad[] = {"",
                                      "\n",
                                      "maxx 100000",
                                      "max 0",
                                      "0 100000",
                                      "100000 0",
                                      "-1 100000",
                                      "abc",
                                      "100000 100000 5",
                                      "100000 100000x",
                                      "1.5 1",
                                      "99999999999999999999999 100000",
                                      "100000 99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 77;
        if (weft_cpu_max_parse(bad[i], &n) != -1)
            fail_msg("accepted [%s]", bad[i]);
        assert_int_equal(n, 77);
    }
    assert_int_equal(weft_cpu_max_parse(NULL, &n), -1);
}

static void test_cfs_quota(void **state) {
    (void)state;
    uint32_t n = 77;
    assert_int_equal(weft_cfs_quota_parse("-1\n", "100000\n", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(weft_cfs_quota_parse("150000\n", "100000\n", &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(weft_cfs_quota_parse("100000", "100000", &n), 0);
    assert_int_equal(n, 1);
    n = 77;
    assert_int_equal(weft_cfs_quota_parse("-2", "100000", &n), -1);
    assert_int_equal(weft_cfs_quota_parse("0", "100000", &n), -1);
    assert_int_equal(weft_cfs_quota_parse("100000", "0", &n), -1);
    assert_int_equal(weft_cfs_quota_parse("100000", "", &n), -1);
    assert_int_equal(weft_cfs_quota_parse("-1x", "100000", &n), -1);
    assert_int_equal(n, 77);
}

/* A fake cgroup file system in a temp dir. */
static char root[256];

static void put(const char *rel, const char *content) {
    char path[512], cmd[600];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int make_root(void **state) {
    (void)state;
    snprintf(root, sizeof(root), "%s/weft-test-cpus.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int remove_root(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_cgroup_v2_walk(void **state) {
    (void)state;
    /* no files at all: no quota */
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/\n"), 0);
    /* the container's own cgroup (cgroup namespace: path "/") */
    put("cpu.max", "max 100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/\n"), 0);
    put("cpu.max", "150000 100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/\n"), 2);
    /* a nested cgroup: the tightest quota on the way up wins */
    put("cpu.max", "max 100000\n");
    put("system.slice/cpu.max", "300000 100000\n");
    put("system.slice/weft.service/cpu.max", "max 100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/system.slice/weft.service\n"), 3);
    put("system.slice/weft.service/cpu.max", "100000 100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/system.slice/weft.service\n"), 1);
    /* a host path that does not exist here (no cgroup namespace): the
     * directories that do exist still count */
    put("cpu.max", "200000 100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/docker/0123abcd\n"), 2);
    /* malformed cpu.max is ignored, not a crash */
    put("cpu.max", "garbage\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/docker/0123abcd\n"), 0);
    /* hybrid: v2 under unified/ */
    put("unified/cpu.max", "100000 100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "0::/\n"), 1);
}

static void test_cgroup_v1_walk(void **state) {
    (void)state;
    const char *pc = "12:pids:/\n4:cpu,cpuacct:/kubepods/pod1\n1:name=systemd:/\n0::/\n";
    assert_int_equal(weft_cgroup_cpu_limit(root, pc), 0);
    put("cpu,cpuacct/kubepods/pod1/cpu.cfs_quota_us", "-1\n");
    put("cpu,cpuacct/kubepods/pod1/cpu.cfs_period_us", "100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, pc), 0);
    put("cpu,cpuacct/kubepods/cpu.cfs_quota_us", "250000\n");
    put("cpu,cpuacct/kubepods/cpu.cfs_period_us", "100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, pc), 3);
    /* "cpuacct" alone is not "cpu" */
    assert_int_equal(weft_cgroup_cpu_limit(root, "4:cpuacct:/kubepods/pod1\n"), 0);
    /* a separate cpu mount */
    put("cpu/kubepods/pod1/cpu.cfs_quota_us", "50000\n");
    put("cpu/kubepods/pod1/cpu.cfs_period_us", "100000\n");
    assert_int_equal(weft_cgroup_cpu_limit(root, "3:cpu:/kubepods/pod1\n"), 1);
}

static void test_cgroup_junk(void **state) {
    (void)state;
    static const char *const junk[] = {
        "",        "\n", "::", "0::", "0::relative", "x:y", ":::::\n\n", "0::/../../../../etc\n",
        "4:cpu:\n"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        assert_int_equal(weft_cgroup_cpu_limit(root, junk[i]), 0);
    assert_int_equal(weft_cgroup_cpu_limit(NULL, "0::/\n"), 0);
    assert_int_equal(weft_cgroup_cpu_limit(root, NULL), 0);
    /* a path longer than PATH_MAX */
    size_t len = 10000;
    char *big = malloc(len + 8);
    assert_non_null(big);
    memcpy(big, "0::/", 4);
    memset(big + 4, 'a', len);
    big[len + 4] = '\0';
    assert_int_equal(weft_cgroup_cpu_limit(root, big), 0);
    free(big);
}

static void test_usable_cpus(void **state) {
    (void)state;
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    int aff = CPU_COUNT(&set);
    char detail[96] = "";
    uint32_t n = weft_usable_cpus(0, detail, sizeof(detail));
    assert_true(n >= 1);
    assert_true(n <= (uint32_t)aff);
    assert_non_null(strstr(detail, "affinity mask"));
    assert_int_equal(weft_usable_cpus(1, NULL, 0), 1);

    /* restricted to one CPU, one worker */
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) {
            CPU_SET(c, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    n = weft_usable_cpus(0, detail, sizeof(detail));
    assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(detail, "CPUs usable: 1 in the affinity mask"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_max),
        cmocka_unit_test(test_cfs_quota),
        cmocka_unit_test_setup_teardown(test_cgroup_v2_walk, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_cgroup_v1_walk, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_cgroup_junk, make_root, remove_root),
        cmocka_unit_test(test_usable_cpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
