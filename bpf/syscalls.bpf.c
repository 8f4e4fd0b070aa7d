// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Syscall counts per process (tgid + start time) and syscall number.
 *
 * One hook, raw_syscalls:sys_exit (tp_btf), counts both calls and failures:
 * the syscall number is in regs->orig_ax and the return value is an argument,
 * so there is no need for sys_enter, whose dispatch would double the cost
 * every syscall on the node pays. The only syscalls that never reach sys_exit
 * are exit and exit_group; sched_process_exit counts those from the exiting
 * task's saved registers. */
#include "wattlens.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the agent between open and load (native syscall numbers). */
const volatile __u32 exit_nr = 60;
const volatile __u32 exit_group_nr = 231;

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384); /* overridden from --bpf-syscall-map-entries */
  __type(key, struct wl_syscall_key);
  __type(value, struct wl_syscall_val);
} syscall_counts SEC(".maps");

WL_DECLARE_DROPS();

static __always_inline long wl_syscall_nr(struct pt_regs *regs) {
#if defined(__TARGET_ARCH_x86)
  return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
  return regs->syscallno;
#else
#error "wattlens: add this architecture's syscall-number register"
#endif
}

static __always_inline void wl_count(struct task_struct *task, __u32 nr,
                                     bool failed) {
  struct wl_syscall_key key = {
      .tgid = task->tgid,
      .nr = nr,
      .start_ns = wl_process_start_ns(task),
      .cgroup_id = wl_task_cgroup_id(task),
  };
  struct wl_syscall_val *val = bpf_map_lookup_elem(&syscall_counts, &key);
  if (val) {
    /* Per-CPU value: only this CPU writes it, a plain add is exact. */
    val->calls += 1;
    val->failed += failed;
    return;
  }
  struct wl_syscall_val init = {.calls = 1, .failed = failed};
  long err = bpf_map_update_elem(&syscall_counts, &key, &init, BPF_NOEXIST);
  if (err == -EEXIST) {
    /* Another CPU created it between our lookup and update. */
    val = bpf_map_lookup_elem(&syscall_counts, &key);
    if (val) {
      val->calls += 1;
      val->failed += failed;
      return;
    }
  }
  if (err) wl_count_drop(WL_DROP_SYSCALL_MAP_FULL);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(wl_sys_exit, struct pt_regs *regs, long ret) {
  long nr = wl_syscall_nr(regs);
  if (nr < 0) return 0; /* not a syscall (e.g. skipped by seccomp/ptrace) */
  wl_count(bpf_get_current_task_btf(), (__u32)nr, ret < 0 && ret >= -4095);
  return 0;
}

/* exit() and exit_group() never return, so sys_exit never sees them. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(wl_sys_exit_task, struct task_struct *task) {
  struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
  if (!regs) return 0;
  long nr = wl_syscall_nr(regs);
  if (nr != exit_nr && nr != exit_group_nr) return 0; /* killed, not a call */
  wl_count(task, (__u32)nr, false);
  return 0;
}
