// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* On-CPU time per process and cgroup, and the process lifecycle.
 *
 * sched_switch charges the time since this CPU's previous switch to the task
 * switching out (it is still `current`, so its cgroup is the current one).
 * One per-CPU hash update per switch; only the CPU switching a task out
 * writes that CPU's slot, so no atomics. A dying task's final switch charges
 * its last slice and, for the last thread of a process, emits the EXIT event
 * after it: when the agent reads the event the totals are complete.
 *
 * Lifecycle events are the only per-event records; they go through one ring
 * buffer without wake-ups (the agent polls it), and reserve failures are
 * counted. */
#include "wattlens.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define WL_TASK_DEAD 0x80 /* include/linux/sched.h, stable since 4.14 */

/* Wake the poller early only once the ring is a quarter full. */
const volatile __u64 wakeup_bytes = 1 << 20;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384); /* --bpf-sched-map-entries */
  __type(key, struct wl_sched_key);
  __type(value, __u64);
} oncpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wl_cpu_state);
} cpu_state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20); /* --bpf-ringbuf-bytes */
} events SEC(".maps");

WL_DECLARE_DROPS();

static __always_inline void wl_charge(struct task_struct *prev, __u64 delta) {
  struct wl_sched_key key = {
      .tgid = BPF_CORE_READ(prev, tgid),
      .start_ns = wl_process_start_ns(prev),
      .cgroup_id = bpf_get_current_cgroup_id(),
  };
  __u64 *val = bpf_map_lookup_elem(&oncpu, &key);
  if (val) {
    *val += delta;
    return;
  }
  long err = bpf_map_update_elem(&oncpu, &key, &delta, BPF_NOEXIST);
  if (err == -EEXIST) {
    val = bpf_map_lookup_elem(&oncpu, &key);
    if (val) {
      *val += delta;
      return;
    }
  }
  if (err) wl_count_drop(WL_DROP_SCHED_MAP_FULL);
}

static __always_inline void wl_emit(__u32 type, struct task_struct *task,
                                    __u64 cgroup_id) {
  struct wl_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    wl_count_drop(WL_DROP_RINGBUF_RESERVE);
    return;
  }
  e->type = type;
  e->tgid = BPF_CORE_READ(task, tgid);
  e->ppid = BPF_CORE_READ(task, real_parent, tgid);
  e->exit_code = type == WL_EVENT_EXIT ? BPF_CORE_READ(task, exit_code) : 0;
  e->start_ns = wl_process_start_ns(task);
  e->cgroup_id = cgroup_id;
  e->timestamp_ns = bpf_ktime_get_ns();
  BPF_CORE_READ_STR_INTO(&e->comm, task, group_leader, comm);
  __u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
                    ? BPF_RB_FORCE_WAKEUP
                    : BPF_RB_NO_WAKEUP;
  bpf_ringbuf_submit(e, flags);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(wl_sched_switch, bool preempt, struct task_struct *prev,
             struct task_struct *next, unsigned int prev_state) {
  __u64 now = bpf_ktime_get_ns();
  __u32 zero = 0;
  struct wl_cpu_state *cs = bpf_map_lookup_elem(&cpu_state, &zero);
  if (!cs) return 0;
  __u64 last = cs->last_switch_ns;
  cs->last_switch_ns = now;
  if (!last) return 0; /* first switch seen on this CPU: no known start */
  __u64 delta = now - last;
  if (BPF_CORE_READ(prev, pid) == 0) {
    cs->idle_ns += delta;
    return 0;
  }
  wl_charge(prev, delta);
  if (prev_state == WL_TASK_DEAD &&
      BPF_CORE_READ(prev, signal, live.counter) == 0)
    wl_emit(WL_EVENT_EXIT, prev, bpf_get_current_cgroup_id());
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(wl_sched_fork, struct task_struct *parent,
             struct task_struct *child) {
  if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
    return 0; /* a thread, not a process */
  /* current is the parent; the child starts in the parent's cgroup. */
  wl_emit(WL_EVENT_FORK, child, bpf_get_current_cgroup_id());
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(wl_sched_exec, struct task_struct *task, pid_t old_pid,
             struct linux_binprm *bprm) {
  wl_emit(WL_EVENT_EXEC, task, bpf_get_current_cgroup_id());
  return 0;
}
