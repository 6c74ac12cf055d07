/* cpus.h: how many CPUs this process may really use, for the default of
 * `workers:`. The host's core count overstates it in a container or under
 * taskset: the affinity mask and the cgroup CPU quota both cap it. */
#ifndef WEFT_CORE_CPUS_H
#define WEFT_CORE_CPUS_H

#include <stddef.h>
#include <stdint.h>

/* Parses the content of a cgroup v2 `cpu.max` file: "max 100000" (no
 * quota) sets *cpus to 0; "QUOTA PERIOD" sets it to ceil(QUOTA / PERIOD),
 * at least 1. A missing period means 100000, as the kernel writes it.
 * Returns 0, or -1 for text that is neither (then *cpus is untouched). */
int weft_cpu_max_parse(const char *text, uint32_t *cpus);

/* The same for cgroup v1: the contents of cpu.cfs_quota_us ("-1" = no
 * quota) and cpu.cfs_period_us. */
int weft_cfs_quota_parse(const char *quota, const char *period, uint32_t *cpus);

/* The CPU quota of the cgroup a process is in, in whole CPUs, 0 for none.
 * fs_root is where the cgroup file systems are mounted ("/sys/fs/cgroup");
 * proc_cgroup is the content of /proc/self/cgroup. The cgroup's own
 * directory and every ancestor up to fs_root are read (the tightest quota
 * wins; a directory that does not exist, as the host path seen from a
 * container without a cgroup namespace, is skipped), for cgroup v2
 * (cpu.max) and v1 (cpu/ or cpu,cpuacct/ cpu.cfs_quota_us). */
uint32_t weft_cgroup_cpu_limit(const char *fs_root, const char *proc_cgroup);

/* The CPUs the process may use: the smaller of its affinity mask
 * (sched_getaffinity) and its cgroup quota, at least 1, at most max.
 * When detail is given, a short explanation ("CPUs usable: 2 in the
 * affinity mask, no cgroup quota") is written to it for the start-up log
 * line. max 0 means no cap. */
uint32_t weft_usable_cpus(uint32_t max, char *detail, size_t detail_len);

#endif
