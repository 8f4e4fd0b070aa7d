/* The kernel/user ABI of Wattlens: every map key, map value and ring-buffer
 * record shared between the bpf/ objects and the agent. Plain C, fixed-width types,
 * explicit padding, no implicit holes: the agent mirrors each size with a
 * static_assert (agent/bpf/abi.h), so a change here that is not mirrored fails
 * the build instead of corrupting reads. */
#ifndef WATTLENS_BPF_SHARED_ABI_H_
#define WATTLENS_BPF_SHARED_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define WL_COMM_LEN 16

/* Reasons the kernel side could not record something. Index into each
 * object's per-CPU `drops` array; the agent exports them as
 * wattlens_agent_lost_events_total{reason}. */
enum wl_drop_reason {
  WL_DROP_SYSCALL_MAP_FULL = 0, /* (tgid, syscall) counter map full */
  WL_DROP_SCHED_MAP_FULL = 1,   /* on-CPU (tgid, cgroup) map full */
  WL_DROP_RINGBUF_RESERVE = 2,  /* lifecycle ring buffer full */
  WL_DROP_TASK_STORAGE = 3,     /* no memory for a task's runtime slot */
  WL_DROP_MAX = 4,
};

/* A process is (tgid, start time): PID reuse cannot merge two processes.
 * start_ns is the thread-group leader's start_boottime (ns since boot,
 * suspend included), which /proc/<pid>/stat reports in clock ticks. */

/* syscalls.bpf.c: PERCPU_HASH `syscall_counts`. */
struct wl_syscall_key {
  __u32 tgid;
  __u32 nr; /* syscall number of the native ABI */
  __u64 start_ns;
};

struct wl_syscall_val {
  __u64 calls;
  __u64 failed; /* returned -4095..-1 */
};

/* sched.bpf.c: PERCPU_HASH `oncpu`. Keyed by cgroup too, so a process that
 * moves between cgroups charges each its own time exactly. */
struct wl_sched_key {
  __u32 tgid;
  __u32 pad;
  __u64 start_ns;
  __u64 cgroup_id; /* cgroup v2 id (kernfs inode) */
};

enum wl_event_type {
  WL_EVENT_EXEC = 1,
  WL_EVENT_FORK = 2, /* a new process, not a new thread */
  WL_EVENT_EXIT = 3, /* last thread of the group switched out dead: its last
                        slice is already in `oncpu` */
};

/* The only record that crosses the ring buffer: rare lifecycle events. */
struct wl_event {
  __u32 type; /* enum wl_event_type */
  __u32 tgid;
  __u32 ppid;
  __u32 exit_code;
  __u64 start_ns;
  __u64 cgroup_id;
  __u64 timestamp_ns; /* bpf_ktime_get_ns() */
  char comm[WL_COMM_LEN];
};

#endif /* WATTLENS_BPF_SHARED_ABI_H_ */
