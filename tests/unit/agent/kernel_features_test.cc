// SPDX-License-Identifier: Apache-2.0
// Which variant of each BPF source a kernel gets, from its probed features
// alone (no kernel needed: the features are the input).
#include "agent/bpf/kernel_features.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

// What every kernel the agent runs on has (Linux 5.11 baseline).
KernelFeatures Baseline() {
  KernelFeatures f;
  f.btf = true;
  f.bpf_privileged = true;
  f.possible_cpus = 2;
  f.kernel_release = "test";
  f.ringbuf = true;
  f.tp_btf = true;
  f.current_task_btf = true;
  f.inet_sock_set_state = true;
  return f;
}

// Debian 12, Amazon Linux 2023, COS LTS: kptrs but no task kfuncs, no
// socket length tracepoints.
KernelFeatures Linux61() {
  KernelFeatures f = Baseline();
  f.task_storage = true;
  f.task_pt_regs = true;
  f.for_each_map_elem = true;
  f.percpu_lookup = true;
  f.kptr_xchg = true;
  return f;
}

KernelFeatures Linux66() {
  KernelFeatures f = Linux61();
  f.task_kfuncs = true;
  f.sock_length_tracepoints = true;
  return f;
}

constexpr VariantRequest<CpuTimeSource> kAutoCpu{};
constexpr VariantRequest<NetworkBytesSource> kAutoNet{};

TEST(ChooseVariantsTest, NewKernelGetsSampledAndTracepoints) {
  EXPECT_EQ(ChooseCpuTimeSource(Linux66(), kAutoCpu).value(),
            CpuTimeSource::kSampled);
  EXPECT_EQ(ChooseNetworkBytesSource(Linux66(), kAutoNet).value(),
            NetworkBytesSource::kSockLength);
}

TEST(ChooseVariantsTest, Linux61GetsSchedSwitchAndSyscalls) {
  EXPECT_EQ(ChooseCpuTimeSource(Linux61(), kAutoCpu).value(),
            CpuTimeSource::kSchedSwitch);
  EXPECT_EQ(ChooseNetworkBytesSource(Linux61(), kAutoNet).value(),
            NetworkBytesSource::kSyscalls);
}

TEST(ChooseVariantsTest, ExplicitRequestTheKernelCannotLoadIsAnError) {
  auto cpu = ChooseCpuTimeSource(Linux61(), {false, CpuTimeSource::kSampled});
  ASSERT_FALSE(cpu.ok());
  EXPECT_EQ(cpu.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(cpu.status().message().find("bpf_task_acquire"), std::string::npos)
      << cpu.status();
  auto net = ChooseNetworkBytesSource(Linux61(),
                                      {false, NetworkBytesSource::kSockLength});
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("sock_send_length"), std::string::npos)
      << net.status();
}

TEST(ChooseVariantsTest, ExplicitRequestTheKernelCanLoadIsKept) {
  EXPECT_EQ(ChooseCpuTimeSource(Linux66(), {false, CpuTimeSource::kSchedSwitch})
                .value(),
            CpuTimeSource::kSchedSwitch);
  EXPECT_EQ(ChooseNetworkBytesSource(Linux66(),
                                     {false, NetworkBytesSource::kSyscalls})
                .value(),
            NetworkBytesSource::kSyscalls);
  EXPECT_EQ(
      ChooseNetworkBytesSource(Linux61(), {false, NetworkBytesSource::kOff})
          .value(),
      NetworkBytesSource::kOff);
}

// Before task storage reached tracing programs (5.13) no CPU time design
// loads: the error names the missing feature.
TEST(ChooseVariantsTest, TooOldForCpuTimeNamesTheMissingFeature) {
  auto cpu = ChooseCpuTimeSource(Baseline(), kAutoCpu);
  ASSERT_FALSE(cpu.ok());
  EXPECT_NE(cpu.status().message().find("bpf_task_storage_get"),
            std::string::npos)
      << cpu.status();
}

TEST(CheckBpfPrerequisitesTest, RefusesKernelsWithoutTheBaselineByName) {
  KernelFeatures f = Baseline();
  f.ringbuf = false;
  absl::Status s = CheckBpfPrerequisites(f, "/btf");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ring buffer"), std::string::npos) << s;
  EXPECT_TRUE(CheckBpfPrerequisites(Baseline(), "/btf").ok());
}

// A refused bpf() (seccomp, capabilities) is named as such, not blamed on
// the kernel's age.
TEST(CheckBpfPrerequisitesTest, RefusedBpfSyscallIsNotAnOldKernel) {
  KernelFeatures f = Baseline();
  f.bpf_syscall_errno = EPERM;
  absl::Status s = CheckBpfPrerequisites(f, "/btf");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("bpf() system call is refused"),
            std::string::npos)
      << s;
  EXPECT_NE(s.message().find("Operation not permitted"), std::string::npos)
      << s;
}

TEST(ParseVariantTest, NamesRoundTripAndUnknownIsRefused) {
  for (const char* name : {"sampled", "sched_switch"}) {
    auto r = ParseCpuTimeSource(name);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->automatic);
    EXPECT_EQ(CpuTimeSourceName(r->value), name);
  }
  for (const char* name : {"sock_length", "syscalls", "off"}) {
    auto r = ParseNetworkBytesSource(name);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(NetworkBytesSourceName(r->value), name);
  }
  EXPECT_TRUE(ParseCpuTimeSource("auto")->automatic);
  EXPECT_FALSE(ParseCpuTimeSource("fast").ok());
  EXPECT_FALSE(ParseNetworkBytesSource("ebpf").ok());
}

}  // namespace
}  // namespace wattlens
