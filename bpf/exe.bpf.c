// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Executables of the processes already running when the agent starts, read
 * once through a task iterator, so that host project identity needs no
 * ptrace access to /proc/<pid>/exe.
 *
 * An object of its own: the path walk needs bpf_loop (5.17), and a kernel
 * without it loses this scan (the agent falls back to /proc), never the
 * sched source. */
#include "wattlens.bpf.h"
#include "exe_path.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* One record per process, built here before it is written. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wl_exe_record);
} exe_scratch SEC(".maps");

/* Every process's executable, once at the agent's start (the agent reads an
 * iterator fd): the processes that exec'd before the agent. */
SEC("iter/task")
int wl_exe_scan(struct bpf_iter__task *ctx) {
  struct task_struct *task = ctx->task;
  if (!task || task->pid != task->tgid) return 0;
  struct file *exe = BPF_CORE_READ(task, mm, exe_file);
  if (!exe) return 0; /* a kernel thread, or an exiting process */
  __u32 zero = 0;
  struct wl_exe_record *r = bpf_map_lookup_elem(&exe_scratch, &zero);
  if (!r) return 0;
  r->tgid = task->tgid;
  r->start_ns = wl_process_start_ns(task);
  struct wl_exe_path *path = wl_file_path(exe);
  if (!path) return 0;
  bpf_probe_read_kernel(&r->exe, sizeof(r->exe), path);
  bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
  return 0;
}
