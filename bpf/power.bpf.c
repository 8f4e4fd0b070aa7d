// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Per-CPU frequency and idle residency, for frequency-weighted attribution.
 *
 * power:cpu_frequency(state = kHz, cpu_id) fires when cpufreq changes a
 * CPU's frequency; the time-weighted integral of kHz is kept per CPU.
 * power:cpu_idle(state, cpu_id) fires on the CPU itself when it enters an
 * idle state (state = index) and when it leaves (state = PWR_EVENT_EXIT);
 * idle residency, entries, and the busy stretches between idles (weighted
 * by the frequency at their end) are kept per CPU.
 *
 * Neither fires on many VMs (no cpufreq driver; idle in the hypervisor):
 * the agent then falls back to cpufreq sysfs or /proc/cpuinfo and says so.
 * One array slot per CPU, plain stores: see wattlens_power_abi.h for why
 * that is race-free. */
#include "wattlens.bpf.h"
#include "wattlens_power_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* include/trace/events/power.h: PWR_EVENT_EXIT is -1 as an unsigned int. */
#define WL_PWR_EVENT_EXIT 0xffffffffu

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); /* possible CPUs, set between open and load */
  __type(key, __u32);
  __type(value, struct wl_cpu_power);
} cpu_power SEC(".maps");

SEC("tp_btf/cpu_frequency")
int BPF_PROG(wl_cpu_frequency, unsigned int state, unsigned int cpu_id) {
  __u32 cpu = cpu_id;
  struct wl_cpu_power *p = bpf_map_lookup_elem(&cpu_power, &cpu);
  if (!p) return 0;
  __u64 now = bpf_ktime_get_ns();
  if (p->khz && now > p->khz_since_ns)
    p->khz_us += p->khz * ((now - p->khz_since_ns) / 1000);
  p->khz = state;
  p->khz_since_ns = now;
  p->freq_changes += 1;
  return 0;
}

SEC("tp_btf/cpu_idle")
int BPF_PROG(wl_cpu_idle, unsigned int state, unsigned int cpu_id) {
  __u32 cpu = cpu_id;
  struct wl_cpu_power *p = bpf_map_lookup_elem(&cpu_power, &cpu);
  if (!p) return 0;
  __u64 now = bpf_ktime_get_ns();
  if (state != WL_PWR_EVENT_EXIT) {
    if (p->idle_since_ns) return 0; /* nested enter: already idle */
    p->idle_since_ns = now;
    p->idle_entries += 1;
    __u64 khz = p->khz;
    if (p->busy_since_ns && khz && now > p->busy_since_ns) {
      __u64 busy = now - p->busy_since_ns;
      p->busy_ns += busy;
      p->busy_khz_us += khz * (busy / 1000);
    }
    return 0;
  }
  if (p->idle_since_ns && now > p->idle_since_ns)
    p->idle_ns += now - p->idle_since_ns;
  p->idle_since_ns = 0;
  p->busy_since_ns = now;
  return 0;
}
