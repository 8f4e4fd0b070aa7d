// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* The kernel/user ABI of bpf/power.bpf.c: one value per possible CPU. Plain
 * C, fixed-width types, no holes; agent/bpf/power_program.h mirrors the size
 * with a static_assert. Kept apart from wattlens_abi.h so that the power
 * concern can change without touching the other objects' ABI. */
#ifndef WATTLENS_BPF_SHARED_POWER_ABI_H_
#define WATTLENS_BPF_SHARED_POWER_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* power.bpf.c: ARRAY `cpu_power`, key = CPU id, max_entries = possible CPUs.
 *
 * Writers: the frequency fields are written by power:cpu_frequency, which
 * the CPU running the cpufreq governor emits for every CPU of the policy
 * (serialised per policy by cpufreq); the idle fields only by
 * power:cpu_idle on the CPU itself. No field has two concurrent writers, so
 * no atomics; the agent reads a slightly torn record at worst and clamps.
 *
 * Cumulative counters wrap modulo 2^64; the agent takes differences. */
struct wl_cpu_power {
  __u64 khz;          /* last frequency reported (0: never reported) */
  __u64 khz_since_ns; /* bpf_ktime_get_ns() when `khz` was set */
  __u64 khz_us;       /* Σ khz × µs over wall time up to khz_since_ns */
  __u64 freq_changes; /* power:cpu_frequency events for this CPU */
  __u64 idle_entries; /* power:cpu_idle enters (any state) */
  __u64 idle_ns;      /* completed idle residency */
  __u64 idle_since_ns; /* 0 while busy, else when the current idle began */
  __u64 busy_since_ns; /* when the last idle ended (0: not yet seen) */
  __u64 busy_ns;       /* busy stretches closed at an idle entry with a known
                          frequency */
  __u64 busy_khz_us;   /* Σ khz × µs over those stretches */
};

#endif /* WATTLENS_BPF_SHARED_POWER_ABI_H_ */
