// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* On-CPU time per process and cgroup, and the process lifecycle.
 *
 * sched_switch charges the task switching out (it is still `current`, so its
 * cgroup is the current one) with the growth of its se.sum_exec_runtime
 * since it last switched out: the scheduler's own accounting, the same
 * numbers cgroup cpu.stat sums, so interrupt time and tracepoint latency do
 * not leak into a workload's CPU time. The last seen value lives in task
 * local storage (freed with the task). One per-CPU hash update per switch;
 * only the CPU switching a task out writes that CPU's slot, so no atomics.
 * A dying task's final switch charges its last slice and, for the last thread
 * of a process, emits the EXIT event after it: when the agent reads the
 * event the totals are complete.
 *
 * At each drain the agent also harvests the running tasks' slices so far
 * (wl_sched_harvest, run on every CPU), so CPU time is charged to the
 * interval it was used in, within a tick.
 *
 * Lifecycle events are the only per-event records; they go through one ring
 * buffer without wake-ups (the agent polls it), and reserve failures are
 * counted. */
#include "wattlens.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define WL_TASK_DEAD 0x80 /* include/linux/sched.h, stable since 4.14 */

/* Wake the poller early only once the ring is a quarter full. */
const volatile __u64 wakeup_bytes = 1 << 20;
/* bpf_ktime_get_ns() at load: threads started before it are charged from
 * their first switch seen, not for their whole past. */
const volatile __u64 load_ns = 0;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384); /* --bpf-sched-map-entries */
  __type(key, struct wl_sched_key);
  __type(value, __u64);
} oncpu SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, __u64); /* se.sum_exec_runtime at the last switch-out */
} task_runtime SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20); /* --bpf-ringbuf-bytes */
} events SEC(".maps");

WL_DECLARE_DROPS();

/* Adds `delta` to prev's slot on this CPU; false (counted) if the map is
 * full. */
static __always_inline bool wl_charge(struct task_struct *prev, __u64 delta) {
  struct wl_sched_key key = {
      .tgid = prev->tgid,
      .start_ns = wl_process_start_ns(prev),
      .cgroup_id = wl_task_workload_cgroup(prev),
  };
  __u64 *val = bpf_map_lookup_elem(&oncpu, &key);
  if (val) {
    *val += delta;
    return true;
  }
  long err = bpf_map_update_elem(&oncpu, &key, &delta, BPF_NOEXIST);
  if (err == -EEXIST) {
    val = bpf_map_lookup_elem(&oncpu, &key);
    if (val) {
      *val += delta;
      return true;
    }
  }
  if (err) {
    wl_count_drop(WL_DROP_SCHED_MAP_FULL);
    return false;
  }
  return true;
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
  if (!prev || prev->pid == 0) return 0; /* the idle task */
  __u64 runtime = prev->se.sum_exec_runtime;
  __u64 *seen = bpf_task_storage_get(&task_runtime, prev, 0, 0);
  __u64 delta;
  if (seen) {
    delta = runtime - *seen;
  } else {
    delta = prev->start_time >= load_ns ? runtime : 0;
    seen = bpf_task_storage_get(&task_runtime, prev, 0,
                                BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!seen) {
      wl_count_drop(WL_DROP_TASK_STORAGE);
      return 0;
    }
  }
  *seen = runtime;
  if (delta) wl_charge(prev, delta);
  if (prev_state == WL_TASK_DEAD && prev->signal->live.counter == 0)
    wl_emit(WL_EVENT_EXIT, prev, wl_task_workload_cgroup(prev));
  return 0;
}

/* Charges the task running on this CPU with its slice so far, so that a
 * task that runs for seconds without switching out (alone on its CPU) is
 * not charged late in one chunk. Not attached: the agent runs it on every
 * CPU before each read of oncpu (BPF_PROG_TEST_RUN with
 * BPF_F_TEST_RUN_ON_CPU, an IPI). Interrupts are off while sched_switch
 * runs, so the two never interleave on a CPU, and the running task's
 * storage and this CPU's slot have one writer at a time: no atomics, and
 * nothing added to sched_switch. sum_exec_runtime is as of the task's last
 * update_curr() (at the latest the last tick), so up to a tick of the
 * slice is left for the next harvest or the switch-out. */
SEC("raw_tp")
int wl_sched_harvest(void *ctx) {
  struct task_struct *task = bpf_get_current_task_btf();
  if (task->pid == 0) return 0; /* idle */
  __u64 runtime = task->se.sum_exec_runtime;
  __u64 *seen = bpf_task_storage_get(&task_runtime, task, 0, 0);
  __u64 delta;
  if (seen) {
    delta = runtime - *seen;
  } else { /* as at a first switch-out */
    delta = task->start_time >= load_ns ? runtime : 0;
    seen = bpf_task_storage_get(&task_runtime, task, 0,
                                BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!seen) return 0; /* left to the switch-out */
  }
  /* On a full map the slice stays with the task for its switch-out. */
  if (!delta || wl_charge(task, delta)) *seen = runtime;
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(wl_sched_fork, struct task_struct *parent,
             struct task_struct *child) {
  if (child->pid != child->tgid)
    return 0; /* a thread, not a process */
  /* The child starts in the parent's cgroup (cgroup_post_fork has run). */
  wl_emit(WL_EVENT_FORK, child, wl_task_workload_cgroup(child));
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(wl_sched_exec, struct task_struct *task, pid_t old_pid,
             struct linux_binprm *bprm) {
  wl_emit(WL_EVENT_EXEC, task, wl_task_workload_cgroup(task));
  return 0;
}
