// SPDX-License-Identifier: Apache-2.0
// Shared helpers for tests that load BPF into the running kernel.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/bpf/kernel_features.h"
#include "agent/identity/cgroup_resolver.h"
#include "gtest/gtest.h"

namespace wattlens::testing {

// Skips (or, with WATTLENS_REQUIRE_BPF=1 as in CI, fails) when this kernel
// or process cannot load the programs, printing why.
#define WATTLENS_REQUIRE_BPF_OR_SKIP()                                      \
  do {                                                                      \
    auto wl_f = ::wattlens::ProbeKernelFeatures("/sys/kernel/btf/vmlinux"); \
    auto wl_s =                                                             \
        ::wattlens::CheckBpfPrerequisites(wl_f, "/sys/kernel/btf/vmlinux"); \
    if (!wl_s.ok()) {                                                       \
      const char* wl_req = std::getenv("WATTLENS_REQUIRE_BPF");             \
      if (wl_req && std::string(wl_req) == "1") {                           \
        FAIL() << "BPF required but unavailable: " << wl_s.message();       \
      }                                                                     \
      GTEST_SKIP() << "BPF unavailable here: " << wl_s.message();           \
    }                                                                       \
  } while (0)

// Whether this kernel runs on an emulated CPU: the kernel test stage
// (tests/kernels/run-in-vm.sh) boots its guests on qemu's software CPU and
// says so with `wattlens.emulated=1` on the kernel command line; qemu's TCG
// CPU also names itself in /proc/cpuinfo. Under emulation every instruction
// costs 5-10x more and the scheduler's tick and timers land at other points
// of a workload, so a test may widen a tolerance that depends on timing
// there, and only there. `proc` is procfs (a fake tree in tests).
inline bool RunningUnderEmulation(const std::string& proc = "/proc") {
  std::ifstream cmdline(proc + "/cmdline");
  std::string word;
  while (cmdline >> word) {
    if (word == "wattlens.emulated=1") return true;
  }
  std::ifstream cpuinfo(proc + "/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      return line.find("QEMU TCG") != std::string::npos;
    }
  }
  return false;
}

// A fresh cgroup v2 directory, removed (after its processes) on scope exit.
class TestCgroup {
 public:
  explicit TestCgroup(const std::string& name) {
    auto mount = FindCgroup2Mount("/proc");
    if (!mount.ok()) return;
    mount_ = *mount;
    rel_ = "/wattlens-test-" + std::to_string(getpid()) + "-" + name;
    path_ = mount_ + rel_;
    rmdir(path_.c_str());
    if (mkdir(path_.c_str(), 0755) != 0) path_.clear();
  }
  ~TestCgroup() {
    if (!path_.empty()) rmdir(path_.c_str());
  }
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  const std::string& relative() const { return rel_; }
  uint64_t id() const {
    struct stat st;
    return stat(path_.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  bool Add(pid_t pid) const {
    std::ofstream f(path_ + "/cgroup.procs");
    f << pid << std::flush;
    return f.good();
  }
  // usage_usec from cpu.stat: the kernel's own accounting.
  uint64_t UsageUsec() const {
    std::ifstream f(path_ + "/cpu.stat");
    std::string k;
    uint64_t v;
    while (f >> k >> v) {
      if (k == "usage_usec") return v;
    }
    return 0;
  }

 private:
  std::string mount_, rel_, path_;
};

// Forks a child that waits until released, so the parent can place it in a
// cgroup before it runs `body` (async-signal-safe code only: the agent's
// threads are running) and _exits with its return value.
class GatedChild {
 public:
  explicit GatedChild(const std::function<int()>& body) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[1]);
      char c;
      while (read(fds[0], &c, 1) < 0) {
      }
      _exit(body());
    }
    close(fds[0]);
    gate_ = fds[1];
  }
  ~GatedChild() {
    if (gate_ >= 0) close(gate_);
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // The CPU time it has run so far (its main thread's schedstat; before
  // Release() that is all of it), 0 when unreadable.
  uint64_t RuntimeNs() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/schedstat");
    uint64_t ns = 0;
    f >> ns;
    return ns;
  }
  void Release() {
    char c = 'g';
    (void)!write(gate_, &c, 1);
    close(gate_);
    gate_ = -1;
  }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int gate_ = -1;
  bool reaped_ = false;
};

// The bar for a test cgroup's CPU time against its cpu.stat: 0.1 %. A test's
// child runs (fork, then blocking on its gate) before it is moved into the
// cgroup; that time is in the process's own total, and the sampled source
// charges it to the cgroup the thread is in at the drain, but the cgroup's
// cpu.stat has none of it. Natively it is far below 0.1 % of the workload.
// Under emulation a fork alone takes 5-30 ms, so there, and only there, the
// bar also admits the child's runtime when it was moved (`before_move_ns`,
// from GatedChild::RuntimeNs() right after TestCgroup::Add).
inline double CpuTimeToleranceUs(uint64_t kernel_us, uint64_t before_move_ns) {
  return kernel_us * 0.001 +
         (RunningUnderEmulation() ? before_move_ns / 1000.0 : 0.0);
}

// Drains `agent` until `done(snapshot)` holds or `timeout` passes, calling
// `each` on every snapshot. Returns whether the condition was met. The short
// pause between drains only paces the polling of a condition.
inline bool DrainUntil(
    Agent& agent, const std::function<bool(const Snapshot&)>& done,
    const std::function<void(const Snapshot&)>& each = nullptr,
    absl::Duration timeout = absl::Seconds(20)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!agent.DrainOnce().ok()) return false;
    auto s = agent.store().Latest();
    if (each) each(*s);
    if (done(*s)) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// The snapshot entry of an exited process (its one export after exit).
inline const ProcessStats* FindExited(const Snapshot& s, pid_t pid) {
  for (const auto& p : s.processes) {
    if (p.pid == static_cast<uint32_t>(pid) && p.exited) return &p;
  }
  return nullptr;
}

inline const CgroupStats* FindCgroup(const Snapshot& s, uint64_t id) {
  for (const auto& c : s.cgroups) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

inline AgentConfig TestAgentConfig() {
  AgentConfig c;
  c.metrics_address = "";  // tests read snapshots directly
  c.event_poll_ms = 10;
  c.aggregator.gc_every = 0;  // no /proc sweeps mid-test
  // Tests build several agents in one process: keep the privileges (the
  // drop is checked on the real binary, tests/bpf/agent_cli_test.sh).
  c.drop_capabilities = false;
  return c;
}

// The features of the kernel the tests run on, probed once.
inline const KernelFeatures& TestKernelFeatures() {
  static const KernelFeatures f =
      ProbeKernelFeatures("/sys/kernel/btf/vmlinux");
  return f;
}

// Every way of reading on-CPU time (bpf/sched.bpf.c) that this kernel can
// load: each test runs once per design the agent may choose here (both on
// Linux 6.2+, sched_switch alone before), so no instance skips.
//   INSTANTIATE_TEST_SUITE_P(BothSources, Suite, kBothSources, SourceName);
inline std::vector<CpuTimeSource> SupportedCpuTimeSources() {
  std::vector<CpuTimeSource> out;
  for (CpuTimeSource s :
       {CpuTimeSource::kSampled, CpuTimeSource::kSchedSwitch}) {
    if (ChooseCpuTimeSource(TestKernelFeatures(), {false, s}).ok()) {
      out.push_back(s);
    }
  }
  // Without BPF privileges nothing is supported; one instance then skips
  // (or fails where BPF is required) with the reason.
  if (out.empty()) out.push_back(CpuTimeSource::kSchedSwitch);
  return out;
}
inline const auto kBothSources = ::testing::ValuesIn(SupportedCpuTimeSources());
inline std::string SourceName(
    const ::testing::TestParamInfo<CpuTimeSource>& info) {
  return std::string(CpuTimeSourceName(info.param));
}

// Every network byte source this kernel can load (the syscalls source loads
// everywhere; sock_length on Linux 6.3+).
inline std::vector<NetworkBytesSource> SupportedNetworkBytesSources() {
  std::vector<NetworkBytesSource> out;
  for (NetworkBytesSource s :
       {NetworkBytesSource::kSockLength, NetworkBytesSource::kSyscalls}) {
    if (ChooseNetworkBytesSource(TestKernelFeatures(), {false, s}).ok()) {
      out.push_back(s);
    }
  }
  if (out.empty()) out.push_back(NetworkBytesSource::kSyscalls);
  return out;
}
inline const auto kNetworkSources =
    ::testing::ValuesIn(SupportedNetworkBytesSources());
inline std::string NetworkSourceName(
    const ::testing::TestParamInfo<NetworkBytesSource>& info) {
  return std::string(NetworkBytesSourceName(info.param));
}

}  // namespace wattlens::testing

namespace wattlens {
// Test names and messages say which source, not its bytes.
inline void PrintTo(CpuTimeSource source, std::ostream* os) {
  *os << CpuTimeSourceName(source);
}
inline void PrintTo(NetworkBytesSource source, std::ostream* os) {
  *os << NetworkBytesSourceName(source);
}
}  // namespace wattlens
