// What this kernel and this process can do, probed once at start-up.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wattlens {

struct KernelFeatures {
  bool btf = false;               // vmlinux BTF present (CO-RE needs it)
  bool bpf_privileged = false;    // CAP_BPF+CAP_PERFMON, or CAP_SYS_ADMIN
  bool bpf_stats_sysctl = false;  // kernel.bpf_stats_enabled == 1
  int possible_cpus = 0;
};

// Probes the running kernel. `btf_path` is normally /sys/kernel/btf/vmlinux.
KernelFeatures ProbeKernelFeatures(const std::string& btf_path,
                                   const std::string& proc_root = "/proc");

// OK when the agent can load its programs; otherwise FailedPrecondition with
// a one-line reason fit for a user (no BTF, missing capabilities).
absl::Status CheckBpfPrerequisites(const KernelFeatures& f,
                                   const std::string& btf_path);

// True when the effective capability set has the given capability bit.
bool HasEffectiveCapability(int cap);

}  // namespace wattlens
