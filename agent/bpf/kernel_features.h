// SPDX-License-Identifier: Apache-2.0
// What this kernel and this process can do, probed once at start-up, and
// which variant of each BPF source that allows.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wattlens {

// Each field is a probe of the running kernel, never a version check:
// distribution kernels backport. The comments give the first mainline
// release only to explain what a node without the feature runs.
struct KernelFeatures {
  bool btf = false;               // vmlinux BTF present (CO-RE needs it)
  bool bpf_privileged = false;    // CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN
  bool bpf_stats_sysctl = false;  // kernel.bpf_stats_enabled == 1
  int possible_cpus = 0;
  std::string kernel_release;  // uname -r, for messages only
  // errno of a trivial bpf() call (creating a one-entry array map), 0 when it
  // worked: a seccomp profile or a missing capability refuses every probe
  // below, and must not read as an old kernel.
  int bpf_syscall_errno = 0;

  // BPF program and map types every source needs.
  bool ringbuf = false;  // BPF_MAP_TYPE_RINGBUF (5.8)
  bool tp_btf = false;   // btf_trace_sys_exit in vmlinux BTF (5.5)
  // Helpers, probed for tracing programs.
  bool task_storage = false;       // bpf_task_storage_get (5.13)
  bool current_task_btf = false;   // bpf_get_current_task_btf (5.11)
  bool task_pt_regs = false;       // bpf_task_pt_regs (5.15)
  bool for_each_map_elem = false;  // bpf_for_each_map_elem (5.13)
  bool percpu_lookup = false;      // bpf_map_lookup_percpu_elem (5.19)
  bool kptr_xchg = false;          // bpf_kptr_xchg (5.19)
  bool loop = false;               // bpf_loop (5.17)
  // kfuncs, by name in vmlinux BTF.
  bool task_kfuncs = false;  // bpf_task_acquire + bpf_task_release (6.2)
  // Tracepoints, by their btf_trace_<name> typedef.
  bool sock_length_tracepoints = false;  // sock:sock_{send,recv}_length (6.3)
  bool inet_sock_set_state = false;      // sock:inet_sock_set_state
};

// Probes the running kernel. `btf_path` is normally /sys/kernel/btf/vmlinux.
KernelFeatures ProbeKernelFeatures(const std::string& btf_path,
                                   const std::string& proc_root = "/proc");

// OK when the agent can load its programs; otherwise FailedPrecondition with
// a one-line reason fit for a user (no BTF, missing capabilities, a kernel
// older than the oldest design of the core sources).
absl::Status CheckBpfPrerequisites(const KernelFeatures& f,
                                   const std::string& btf_path);

// True when vmlinux BTF has the named raw tracepoint (btf_trace_<name>).
bool KernelHasTracepoint(const std::string& name);

// True when the effective capability set has the given capability bit.
bool HasEffectiveCapability(int cap);

// How on-CPU time is read (bpf/sched.bpf.c).
enum class CpuTimeSource {
  kSampled,      // task iterator at each drain + held exiting threads
  kSchedSwitch,  // a program on every context switch
};

// Where network bytes come from (bpf/network.bpf.c).
enum class NetworkBytesSource {
  kSockLength,  // sock:sock_{send,recv}_length tracepoints
  kSyscalls,    // raw_syscalls:sys_exit, socket I/O syscalls only
  kOff,         // connection counts only
};

// A variant the user asked for, or automatic (the best this kernel allows).
template <typename T>
struct VariantRequest {
  bool automatic = true;
  T value{};
};

absl::string_view CpuTimeSourceName(CpuTimeSource source);
absl::StatusOr<VariantRequest<CpuTimeSource>> ParseCpuTimeSource(
    absl::string_view name);  // auto | sampled | sched_switch
absl::string_view NetworkBytesSourceName(NetworkBytesSource source);
absl::StatusOr<VariantRequest<NetworkBytesSource>> ParseNetworkBytesSource(
    absl::string_view name);  // auto | sock_length | syscalls | off

// The best CPU time variant this kernel accepts, or the requested one; an
// error naming the missing feature when the request (or every variant)
// cannot load here.
absl::StatusOr<CpuTimeSource> ChooseCpuTimeSource(
    const KernelFeatures& f, const VariantRequest<CpuTimeSource>& request);
absl::StatusOr<NetworkBytesSource> ChooseNetworkBytesSource(
    const KernelFeatures& f, const VariantRequest<NetworkBytesSource>& request);

}  // namespace wattlens
