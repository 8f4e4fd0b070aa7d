// SPDX-License-Identifier: Apache-2.0
#include "agent/bpf/kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"

namespace wattlens {
namespace {

// A helper is available to raw_tp programs (which share the tracing helper
// set with tp_btf). libbpf loads a tiny program calling it and reads the
// verifier's answer; any error counts as absent.
bool HasHelper(bpf_func_id id) {
  return libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, id, nullptr) ==
         1;
}

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

}  // namespace

bool KernelHasTracepoint(const std::string& name) {
  static btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  return btf__find_by_name_kind(vmlinux, ("btf_trace_" + name).c_str(),
                                BTF_KIND_TYPEDEF) >= 0;
}

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
  utsname u;
  if (uname(&u) == 0) f.kernel_release = u.release;

  if (f.btf) {
    std::unique_ptr<btf, BtfDeleter> vmlinux(
        btf__parse(btf_path.c_str(), nullptr));
    if (vmlinux) {
      auto has = [&](const char* name, int kind) {
        return btf__find_by_name_kind(vmlinux.get(), name, kind) >= 0;
      };
      f.tp_btf = has("btf_trace_sys_exit", BTF_KIND_TYPEDEF);
      f.task_kfuncs = has("bpf_task_acquire", BTF_KIND_FUNC) &&
                      has("bpf_task_release", BTF_KIND_FUNC);
      f.sock_length_tracepoints =
          has("btf_trace_sock_send_length", BTF_KIND_TYPEDEF) &&
          has("btf_trace_sock_recv_length", BTF_KIND_TYPEDEF);
      f.inet_sock_set_state =
          has("btf_trace_inet_sock_set_state", BTF_KIND_TYPEDEF);
    }
  }
  const int probe_fd =
      bpf_map_create(BPF_MAP_TYPE_ARRAY, "wl_probe", 4, 4, 1, nullptr);
  if (probe_fd < 0) {
    f.bpf_syscall_errno = errno;
  } else {
    close(probe_fd);
  }
  if (f.bpf_privileged && f.bpf_syscall_errno == 0) {
    f.ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
    f.task_storage = HasHelper(BPF_FUNC_task_storage_get);
    f.current_task_btf = HasHelper(BPF_FUNC_get_current_task_btf);
    f.task_pt_regs = HasHelper(BPF_FUNC_task_pt_regs);
    f.for_each_map_elem = HasHelper(BPF_FUNC_for_each_map_elem);
    f.percpu_lookup = HasHelper(BPF_FUNC_map_lookup_percpu_elem);
    f.kptr_xchg = HasHelper(BPF_FUNC_kptr_xchg);
    f.loop = HasHelper(BPF_FUNC_loop);
  }
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
  if (f.bpf_syscall_errno != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the bpf() system call is refused (", strerror(f.bpf_syscall_errno),
        "): a seccomp profile or a missing capability (CAP_BPF, "
        "CAP_PERFMON) keeps the agent from loading any program"));
  }
  // What every design of the core sources needs (all in Linux 5.11; each
  // is probed, so a vendor kernel with backports passes).
  std::string missing;
  auto need = [&](bool have, absl::string_view what) {
    if (!have) absl::StrAppend(&missing, missing.empty() ? "" : ", ", what);
  };
  need(f.tp_btf, "BTF-typed tracepoints (tp_btf, Linux 5.5)");
  need(f.ringbuf, "the BPF ring buffer (Linux 5.8)");
  need(f.current_task_btf, "bpf_get_current_task_btf (Linux 5.11)");
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "kernel ", f.kernel_release, " lacks ", missing,
        "; Wattlens needs Linux 5.11 or a kernel with these backported"));
  }
  return absl::OkStatus();
}

absl::string_view CpuTimeSourceName(CpuTimeSource source) {
  return source == CpuTimeSource::kSampled ? "sampled" : "sched_switch";
}

absl::StatusOr<VariantRequest<CpuTimeSource>> ParseCpuTimeSource(
    absl::string_view name) {
  if (name == "auto") return VariantRequest<CpuTimeSource>{};
  if (name == "sampled")
    return VariantRequest<CpuTimeSource>{false, CpuTimeSource::kSampled};
  if (name == "sched_switch") {
    return VariantRequest<CpuTimeSource>{false, CpuTimeSource::kSchedSwitch};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cpu time source must be auto, sampled or sched_switch, "
                   "got \"",
                   name, "\""));
}

absl::string_view NetworkBytesSourceName(NetworkBytesSource source) {
  switch (source) {
    case NetworkBytesSource::kSockLength:
      return "sock_length";
    case NetworkBytesSource::kSyscalls:
      return "syscalls";
    case NetworkBytesSource::kOff:
      return "off";
  }
  return "off";
}

absl::StatusOr<VariantRequest<NetworkBytesSource>> ParseNetworkBytesSource(
    absl::string_view name) {
  using R = VariantRequest<NetworkBytesSource>;
  if (name == "auto") return R{};
  if (name == "sock_length") return R{false, NetworkBytesSource::kSockLength};
  if (name == "syscalls") return R{false, NetworkBytesSource::kSyscalls};
  if (name == "off") return R{false, NetworkBytesSource::kOff};
  return absl::InvalidArgumentError(absl::StrCat(
      "network bytes source must be auto, sock_length, syscalls or off, got "
      "\"",
      name, "\""));
}

namespace {

// Empty when `source` can load on a kernel with `f`; else what it lacks.
std::string CpuTimeMissing(const KernelFeatures& f, CpuTimeSource source) {
  std::string missing;
  auto need = [&](bool have, absl::string_view what) {
    if (!have) absl::StrAppend(&missing, missing.empty() ? "" : ", ", what);
  };
  need(f.task_storage,
       "task-local storage in tracing programs (bpf_task_storage_get, "
       "Linux 5.13)");
  if (source == CpuTimeSource::kSampled) {
    need(f.task_kfuncs,
         "the bpf_task_acquire/bpf_task_release kfuncs "
         "(Linux 6.2)");
    need(f.kptr_xchg, "bpf_kptr_xchg (Linux 5.19)");
    need(f.for_each_map_elem, "bpf_for_each_map_elem (Linux 5.13)");
    need(f.percpu_lookup, "bpf_map_lookup_percpu_elem (Linux 5.19)");
  }
  return missing;
}

std::string NetworkMissing(const KernelFeatures& f, NetworkBytesSource source) {
  std::string missing;
  auto need = [&](bool have, absl::string_view what) {
    if (!have) absl::StrAppend(&missing, missing.empty() ? "" : ", ", what);
  };
  need(f.inet_sock_set_state, "the sock:inet_sock_set_state tracepoint");
  if (source == NetworkBytesSource::kSockLength) {
    need(f.sock_length_tracepoints,
         "the sock:sock_send_length/sock_recv_length tracepoints (Linux 6.3)");
  }
  return missing;
}

}  // namespace

absl::StatusOr<CpuTimeSource> ChooseCpuTimeSource(
    const KernelFeatures& f, const VariantRequest<CpuTimeSource>& request) {
  if (!request.automatic) {
    std::string missing = CpuTimeMissing(f, request.value);
    if (missing.empty()) return request.value;
    return absl::FailedPreconditionError(absl::StrCat(
        "cpu time source ", CpuTimeSourceName(request.value), " needs ",
        missing, ", which kernel ", f.kernel_release, " lacks"));
  }
  // sampled costs nothing per context switch; sched_switch is as exact.
  for (CpuTimeSource s :
       {CpuTimeSource::kSampled, CpuTimeSource::kSchedSwitch}) {
    if (CpuTimeMissing(f, s).empty()) return s;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no on-CPU time design loads on kernel ", f.kernel_release,
                   ": needs ", CpuTimeMissing(f, CpuTimeSource::kSchedSwitch)));
}

absl::StatusOr<NetworkBytesSource> ChooseNetworkBytesSource(
    const KernelFeatures& f,
    const VariantRequest<NetworkBytesSource>& request) {
  if (!request.automatic) {
    std::string missing = NetworkMissing(f, request.value);
    if (missing.empty()) return request.value;
    return absl::FailedPreconditionError(absl::StrCat(
        "network bytes source ", NetworkBytesSourceName(request.value),
        " needs ", missing, ", which kernel ", f.kernel_release, " lacks"));
  }
  // The tracepoints cost nothing on syscalls that are not socket I/O.
  for (NetworkBytesSource s :
       {NetworkBytesSource::kSockLength, NetworkBytesSource::kSyscalls}) {
    if (NetworkMissing(f, s).empty()) return s;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no network design loads on kernel ", f.kernel_release, ": needs ",
      NetworkMissing(f, NetworkBytesSource::kSyscalls)));
}

}  // namespace wattlens
