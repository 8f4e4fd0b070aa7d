// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* Executables of the processes already running when the agent starts, read
 * once through a task iterator, so that host project identity needs no
 * ptrace access to /proc/<pid>/exe.
 *
 * The walk is a bpf_loop callback, verified once rather than once per
 * dentry: unrolled inside a task iterator it is more than some verifiers
 * accept (6.1 refuses it as too complex). An object of its own, so that a
 * kernel without bpf_loop (before 5.17) loses this scan (the agent falls
 * back to /proc), never the sched source that names executables at exec. */
#include "wattlens.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Too large for the stack; one per CPU (an iterator does not migrate while
 * it shows a task). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wl_exe_record);
} exe_scratch SEC(".maps");

/* One step of the walk from a file's dentry up to the root of its mount
 * namespace (as wl_file_path in exe_path.bpf.h): appends a name to the
 * scratch record, or crosses to the mount above. */
struct wl_walk {
  struct dentry *d;
  struct mount *mnt;
  __u32 off;
  __u32 done; /* reached the namespace's root: the path is whole */
};

static long wl_walk_step(__u32 i, void *arg) {
  struct wl_walk *w = arg;
  __u32 zero = 0;
  struct wl_exe_record *r = bpf_map_lookup_elem(&exe_scratch, &zero);
  if (!r) return 1;
  struct dentry *d = w->d;
  struct mount *mnt = w->mnt;
  struct dentry *parent = BPF_CORE_READ(d, d_parent);
  if (d == BPF_CORE_READ(mnt, mnt.mnt_root) || d == parent) {
    struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
    if (up == mnt) {
      w->done = 1;
      return 1;
    }
    w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
    w->mnt = up;
    return 0;
  }
  const unsigned char *name = BPF_CORE_READ(d, d_name.name);
  long n = bpf_probe_read_kernel_str(
      &r->exe.names[w->off & (WL_EXE_PATH_MAX - 1)], WL_EXE_NAME_MAX, name);
  if (n <= 0) return 1;
  w->off += n;
  if (w->off >= WL_EXE_PATH_MAX) return 1; /* longer than kept: truncated */
  w->d = parent;
  return 0;
}

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
  struct wl_walk w = {};
  w.d = BPF_CORE_READ(exe, f_path.dentry);
  w.mnt = (void *)BPF_CORE_READ(exe, f_path.mnt) -
          bpf_core_field_offset(struct mount, mnt);
  bpf_loop(WL_EXE_DEPTH, wl_walk_step, &w, 0);
  r->exe.truncated = !w.done;
  r->exe.len = w.off & (2 * WL_EXE_PATH_MAX - 1);
  bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
  return 0;
}
