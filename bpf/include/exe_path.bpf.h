// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* The path of a file, for the programs that name executables (sched.bpf.c at
 * exec, exe.bpf.c for the processes already running). */
#ifndef WATTLENS_BPF_INCLUDE_EXE_PATH_BPF_H_
#define WATTLENS_BPF_INCLUDE_EXE_PATH_BPF_H_

#include "wattlens.bpf.h"

/* Where the path is built: too large for the stack, one per CPU (neither a
 * tracepoint nor an iterator migrates while it runs). */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wl_exe_path);
} exe_path_scratch SEC(".maps");

struct wl_walk {
  struct dentry *d;
  struct mount *mnt;
  __u32 off;
  __u32 done; /* reached the namespace's root: the path is whole */
};

/* One step up from a dentry: appends its name, or crosses to the mount
 * above. A bpf_loop callback, verified once rather than once per step:
 * unrolled, the walk is more than some verifiers accept (6.1 refuses it as
 * too complex). Pointers are read with probe reads: a task's mm and a
 * binprm's file are not trusted pointers, and bpf_d_path accepts only
 * those. */
static long wl_walk_step(__u32 i, void *arg) {
  struct wl_walk *w = arg;
  __u32 zero = 0;
  struct wl_exe_path *out = bpf_map_lookup_elem(&exe_path_scratch, &zero);
  if (!out) return 1;
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
      &out->names[w->off & (WL_EXE_PATH_MAX - 1)], WL_EXE_NAME_MAX, name);
  if (n <= 0) return 1;
  w->off += n;
  if (w->off >= WL_EXE_PATH_MAX) return 1; /* longer than kept: truncated */
  w->d = parent;
  return 0;
}

/* The path of `file` up to the root of its mount namespace (leaf first; see
 * struct wl_exe_path), in this CPU's scratch; NULL if there is none. */
static __always_inline struct wl_exe_path *wl_file_path(struct file *file) {
  __u32 zero = 0;
  struct wl_exe_path *out = bpf_map_lookup_elem(&exe_path_scratch, &zero);
  if (!out) return NULL;
  struct wl_walk w = {};
  w.d = BPF_CORE_READ(file, f_path.dentry);
  w.mnt = (void *)BPF_CORE_READ(file, f_path.mnt) -
          bpf_core_field_offset(struct mount, mnt);
  bpf_loop(WL_EXE_DEPTH, wl_walk_step, &w, 0);
  out->truncated = !w.done;
  out->len = w.off & (2 * WL_EXE_PATH_MAX - 1);
  return out;
}

#endif /* WATTLENS_BPF_INCLUDE_EXE_PATH_BPF_H_ */
