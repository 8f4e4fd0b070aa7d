// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/* The path of a file, walked dentry by dentry, for the programs that name
 * executables (sched.bpf.c at exec, exe.bpf.c for the processes already
 * running). */
#pragma once

#include "wattlens.bpf.h"

/* Fills `out` with the path of `file` up to the root of its mount namespace
 * (leaf first; see struct wl_exe_path). Pointers are read with probe reads:
 * a task's mm and a binprm's file are not trusted pointers, and bpf_d_path
 * accepts only those (and only in some program types). */
static __always_inline void wl_file_path(struct file *file,
                                         struct wl_exe_path *out) {
  struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
  struct vfsmount *vfs = BPF_CORE_READ(file, f_path.mnt);
  struct mount *mnt = (void *)vfs - bpf_core_field_offset(struct mount, mnt);
  __u32 off = 0;
  out->truncated = 1;
  for (int i = 0; i < WL_EXE_DEPTH; i++) {
    struct dentry *parent = BPF_CORE_READ(d, d_parent);
    if (d == BPF_CORE_READ(mnt, mnt.mnt_root) || d == parent) {
      struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
      if (up == mnt) { /* the namespace's root: done */
        out->truncated = 0;
        break;
      }
      d = BPF_CORE_READ(mnt, mnt_mountpoint); /* cross to the mount above */
      mnt = up;
      continue;
    }
    const unsigned char *name = BPF_CORE_READ(d, d_name.name);
    long n = bpf_probe_read_kernel_str(&out->names[off & (WL_EXE_PATH_MAX - 1)],
                                       WL_EXE_NAME_MAX, name);
    if (n <= 0) break;
    off += n;
    if (off >= WL_EXE_PATH_MAX) break; /* longer than kept: truncated */
    d = parent;
  }
  out->len = off & (2 * WL_EXE_PATH_MAX - 1);
}
