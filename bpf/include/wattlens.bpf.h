// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Small helpers shared by the BPF objects. BPF side only. */
#ifndef WATTLENS_BPF_INCLUDE_WATTLENS_BPF_H_
#define WATTLENS_BPF_INCLUDE_WATTLENS_BPF_H_

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "wattlens_abi.h"

#ifndef E2BIG
#define E2BIG 7
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

/* Every object declares its own drop counters; the agent reads and sums them. */
#define WL_DECLARE_DROPS()                              \
  struct {                                              \
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);            \
    __uint(max_entries, WL_DROP_MAX);                   \
    __type(key, __u32);                                 \
    __type(value, __u64);                               \
  } drops SEC(".maps")

#define wl_count_drop(reason)                                   \
  do {                                                          \
    __u32 __r = (reason);                                       \
    __u64 *__d = bpf_map_lookup_elem(&drops, &__r);             \
    if (__d) *__d += 1; /* per-CPU slot: no atomic needed */     \
  } while (0)

/* Process identity: the group leader's boot-time start, the same clock
 * /proc/<pid>/stat uses.
 *
 * Hot paths read kernel structs by direct BTF pointer loads, not
 * BPF_CORE_READ: in tp_btf programs the verifier turns them into inline
 * fault-safe loads (still CO-RE relocated: vmlinux.h marks every type
 * preserve_access_index), whereas each BPF_CORE_READ hop is a
 * bpf_probe_read_kernel() call, and calls are what cost most on CPUs with
 * return-stack mitigations. */
static __always_inline __u64 wl_process_start_ns(struct task_struct *task) {
  return task->group_leader->start_boottime;
}

/* The cgroup v2 id of a task, what bpf_get_current_cgroup_id() returns for
 * current, by direct loads instead of a helper call. */
static __always_inline __u64 wl_task_cgroup_id(struct task_struct *task) {
  return task->cgroups->dfl_cgrp->kn->id;
}

/* include/linux/sched.h, stable since 2.6. */
#define WL_PF_KTHREAD 0x00200000

/* The cgroup a task's CPU time and lifecycle are keyed under: its cgroup v2
 * id, or WL_CGROUP_KERNEL for a kernel thread. */
static __always_inline __u64 wl_task_workload_cgroup(struct task_struct *task) {
  return (task->flags & WL_PF_KTHREAD) ? WL_CGROUP_KERNEL
                                       : wl_task_cgroup_id(task);
}

#endif /* WATTLENS_BPF_INCLUDE_WATTLENS_BPF_H_ */
