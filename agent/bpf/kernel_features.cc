#include "agent/bpf/kernel_features.h"

#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"

namespace wattlens {

bool HasEffectiveCapability(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1;
}

KernelFeatures ProbeKernelFeatures(const std::string& btf_path,
                                   const std::string& proc_root) {
  KernelFeatures f;
  f.btf = access(btf_path.c_str(), R_OK) == 0;
  constexpr int kCapSysAdmin = 21, kCapPerfmon = 38, kCapBpf = 39;
  f.bpf_privileged =
      HasEffectiveCapability(kCapSysAdmin) ||
      (HasEffectiveCapability(kCapBpf) && HasEffectiveCapability(kCapPerfmon));
  std::ifstream stats(proc_root + "/sys/kernel/bpf_stats_enabled");
  int enabled = 0;
  f.bpf_stats_sysctl = (stats >> enabled) && enabled == 1;
  int cpus = libbpf_num_possible_cpus();
  f.possible_cpus = cpus > 0 ? cpus : 0;
  return f;
}

absl::Status CheckBpfPrerequisites(const KernelFeatures& f,
                                   const std::string& btf_path) {
  if (!f.btf) {
    return absl::FailedPreconditionError(absl::StrCat(
        "kernel BTF not found at ", btf_path,
        " (needs CONFIG_DEBUG_INFO_BTF=y; CO-RE programs cannot load)"));
  }
  if (!f.bpf_privileged) {
    return absl::FailedPreconditionError(
        "loading BPF programs needs CAP_BPF and CAP_PERFMON (or "
        "CAP_SYS_ADMIN); run as root or grant them");
  }
  if (f.possible_cpus <= 0) {
    return absl::FailedPreconditionError(
        "cannot read the possible CPU list from "
        "/sys/devices/system/cpu/possible");
  }
  return absl::OkStatus();
}

}  // namespace wattlens
