// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* What the pieces of a syscall-counting program cost on this machine, one
 * piece per program (bench/hookcost.sh attaches one at a time and times
 * sysload). These explain the agent's per-syscall figures in
 * docs/benchmarks.md: the hook itself, a helper call, an inlined per-CPU
 * array access, and the per-CPU hash update the agent's wl_sys_exit did
 * before it got its cache (bpf/syscalls.bpf.c). */
/* clang-format off */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
/* clang-format on */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64[64]);
} arr SEC(".maps");

struct hc_key {
  __u32 tgid;
  __u32 nr;
  __u64 start_ns;
  __u64 cgroup_id;
};

struct hc_val {
  __u64 calls;
  __u64 failed;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct hc_key);
  __type(value, struct hc_val);
} hash SEC(".maps");

/* The floor, and the same empty program on the exit hook. */
SEC("raw_tp/sys_enter")
int hc_rawtp_enter(void *ctx) { return 0; }

SEC("raw_tp/sys_exit")
int hc_rawtp_exit(void *ctx) { return 0; }

SEC("tp_btf/sys_exit")
int hc_btf_exit(void *ctx) { return 0; }

/* One helper call (its result kept so it cannot be dropped). */
SEC("tp_btf/sys_exit")
int hc_helper(void *ctx) {
  __u32 zero = 0;
  __u64 *a = bpf_map_lookup_elem(&arr, &zero);
  if (a) a[0] = (__u64)bpf_get_current_task_btf();
  return 0;
}

/* A per-CPU array access (inlined by the verifier) and two adds. */
SEC("tp_btf/sys_exit")
int BPF_PROG(hc_array, struct pt_regs *regs, long ret) {
  __u32 zero = 0;
  __u64 *a = bpf_map_lookup_elem(&arr, &zero);
  if (!a) return 0;
  a[regs->orig_ax & 63] += 1;
  a[1] += ret < 0;
  return 0;
}

/* The agent's wl_sys_exit before its cache: task, key, per-CPU hash. */
SEC("tp_btf/sys_exit")
int BPF_PROG(hc_hash, struct pt_regs *regs, long ret) {
  struct task_struct *t = bpf_get_current_task_btf();
  struct hc_key key = {
      .tgid = t->tgid,
      .nr = regs->orig_ax,
      .start_ns = t->group_leader->start_boottime,
      .cgroup_id = t->cgroups->dfl_cgrp->kn->id,
  };
  struct hc_val *v = bpf_map_lookup_elem(&hash, &key);
  if (v) {
    v->calls += 1;
    v->failed += ret < 0;
    return 0;
  }
  struct hc_val init = {1, ret < 0};
  bpf_map_update_elem(&hash, &key, &init, BPF_NOEXIST);
  return 0;
}
