// SPDX-License-Identifier: Apache-2.0
// The syscall program's per-CPU cache (bpf/syscalls.bpf.c) against ground
// truth: counts stay exact while the reader flushes every CPU's cache
// concurrently with the counted calls, while processes evict each other from
// the cache ways of one CPU, while colliding syscall numbers evict each
// other's entries, and when a process moves between cgroups mid-run. And the
// flush protocol both caches share (bpf/include/percpu_cache.bpf.h): a flush
// that lands inside a bracket returns WL_FLUSH_BUSY and the agent retries.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstring>
#include <map>
#include <tuple>
#include <vector>

#include "agent/bpf/syscalls_program.h"
#include "network.skel.h"
#include "syscalls.skel.h"
#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::GatedChild;
using testing::TestCgroup;

// x86-64 create_module: never implemented, always -ENOSYS. 110 (getppid) and
// 174 share an entry of a cache way (mod 64), so alternating them makes each
// call evict the other's entry.
constexpr long kNoSys = 174;
static_assert(SYS_getppid == 110, "x86-64 numbers");

using CountKey = std::tuple<uint32_t, uint32_t, uint64_t>;  // tgid, nr, cgroup

std::map<CountKey, wl_syscall_val> ReadAll(SyscallsProgram& p) {
  std::map<CountKey, wl_syscall_val> out;
  absl::Status s = p.ReadCounts(
      [&](const wl_syscall_key& k, const wl_syscall_val& v) {
        wl_syscall_val& o = out[{k.tgid, k.nr, k.cgroup_id}];
        o.calls += v.calls;
        o.failed += v.failed;
      },
      nullptr);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

std::unique_ptr<SyscallsProgram> Load() {
  auto p = SyscallsProgram::Create({}, libbpf_num_possible_cpus());
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : nullptr;
}

constexpr int kRounds = 20'000;

void* Calls(void*) {
  for (int i = 0; i < kRounds; ++i) {
    syscall(SYS_getppid);
    syscall(kNoSys);
  }
  return nullptr;
}

TEST(SyscallCacheBpfTest, ExactWhileFlushedConcurrentlyAndEvicted) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  auto prog = Load();
  ASSERT_NE(prog, nullptr);
  const int ncpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  // More processes than a CPU's cache has ways, half on the first CPU and
  // half on the last, each with two threads.
  constexpr int kProcs = 24;
  std::vector<std::unique_ptr<GatedChild>> children;
  for (int i = 0; i < kProcs; ++i) {
    const int cpu = i % 2 ? ncpus - 1 : 0;
    children.push_back(std::make_unique<GatedChild>([cpu] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (sched_setaffinity(0, sizeof(set), &set) != 0) return 3;
      pthread_t t;
      if (pthread_create(&t, nullptr, Calls, nullptr) != 0) return 4;
      Calls(nullptr);
      pthread_join(t, nullptr);
      return 0;
    }));
    ASSERT_GT(children.back()->pid(), 0);
  }
  for (auto& c : children) c->Release();

  // Read (flush + read) as fast as possible while they run: no count may
  // ever go down (a count moved twice or lost in a flush would show here).
  std::map<CountKey, wl_syscall_val> last;
  int reads = 0;
  auto running = [&] {
    for (auto& c : children) {
      siginfo_t info{};
      if (waitid(P_PID, c->pid(), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == 0) {
        return true;  // not exited yet (left to Wait() to reap)
      }
    }
    return false;
  };
  while (running()) {
    auto now = ReadAll(*prog);
    ++reads;
    for (const auto& [k, v] : now) {
      auto it = last.find(k);
      if (it == last.end()) continue;
      ASSERT_GE(v.calls, it->second.calls) << "nr " << std::get<1>(k);
      ASSERT_GE(v.failed, it->second.failed) << "nr " << std::get<1>(k);
    }
    last = std::move(now);
  }
  for (auto& c : children) ASSERT_EQ(c->Wait(), 0);
  auto final_counts = ReadAll(*prog);
  std::printf("%d concurrent reads while %d processes ran\n", reads, kProcs);
  EXPECT_GT(reads, 10);
  for (auto& c : children) {
    const uint32_t tgid = static_cast<uint32_t>(c->pid());
    wl_syscall_val getppid{}, nosys{};
    for (const auto& [k, v] : final_counts) {
      if (std::get<0>(k) != tgid) continue;
      if (std::get<1>(k) == SYS_getppid) getppid.calls += v.calls;
      if (std::get<1>(k) == SYS_getppid) getppid.failed += v.failed;
      if (std::get<1>(k) == kNoSys) nosys.calls += v.calls;
      if (std::get<1>(k) == kNoSys) nosys.failed += v.failed;
    }
    EXPECT_EQ(getppid.calls, 2u * kRounds) << "pid " << tgid;
    EXPECT_EQ(getppid.failed, 0u) << "pid " << tgid;
    EXPECT_EQ(nosys.calls, 2u * kRounds) << "pid " << tgid;
    EXPECT_EQ(nosys.failed, 2u * kRounds) << "pid " << tgid;
  }
}

TEST(SyscallCacheBpfTest, MoveMidRunChargesEachCgroupItsOwnCalls) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  auto prog = Load();
  ASSERT_NE(prog, nullptr);
  TestCgroup a("cache-a"), b("cache-b");
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kBefore = 30'000, kAfter = 20'000;
  int done[2], moved[2];
  ASSERT_EQ(pipe2(done, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(moved, O_CLOEXEC), 0);
  GatedChild child([&] {
    for (int i = 0; i < kBefore; ++i) syscall(SYS_getppid);
    char c = 'd';
    if (write(done[1], &c, 1) != 1) return 3;
    if (read(moved[0], &c, 1) != 1) return 4;
    for (int i = 0; i < kAfter; ++i) syscall(SYS_getppid);
    return 0;
  });
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(a.Add(child.pid()));
  child.Release();
  char c;
  ASSERT_EQ(read(done[0], &c, 1), 1);
  ASSERT_TRUE(b.Add(child.pid()));
  ASSERT_EQ(write(moved[1], &c, 1), 1);
  ASSERT_EQ(child.Wait(), 0);
  for (int fd : {done[0], done[1], moved[0], moved[1]}) close(fd);

  auto counts = ReadAll(*prog);
  const uint32_t tgid = static_cast<uint32_t>(child.pid());
  EXPECT_EQ((counts[{tgid, SYS_getppid, a.id()}].calls), uint64_t{kBefore});
  EXPECT_EQ((counts[{tgid, SYS_getppid, b.id()}].calls), uint64_t{kAfter});
}

// Runs `flush` once on `cpu`; its return value, or -1.
int FlushOn(const bpf_program* flush, int cpu) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU,
              .cpu = static_cast<uint32_t>(cpu));
  if (bpf_prog_test_run_opts(bpf_program__fd(flush), &opts) != 0) return -1;
  return static_cast<int>(opts.retval);
}

// Loads only the flush program of `obj` (nothing attached, so nothing else
// touches the cache), opens a bracket on CPU 0 by writing `busy` (the
// cache's first field) as a cached program would, and checks what the
// flush returns on each side of it.
void CheckFlushHonoursBracket(bpf_object* obj, const char* flush_name,
                              const char* cache_name) {
  bpf_program* flush = bpf_object__find_program_by_name(obj, flush_name);
  ASSERT_NE(flush, nullptr) << flush_name;
  bpf_program* p;
  bpf_object__for_each_program(p, obj) bpf_program__set_autoload(p, p == flush);
  ASSERT_EQ(bpf_object__load(obj), 0) << flush_name;
  bpf_map* cache = bpf_object__find_map_by_name(obj, cache_name);
  ASSERT_NE(cache, nullptr) << cache_name;
  const int ncpus = libbpf_num_possible_cpus();
  const size_t stride = (bpf_map__value_size(cache) + 7) & ~size_t{7};
  std::vector<unsigned char> values(stride * ncpus, 0);
  const uint32_t zero = 0;
  const uint64_t tag = 1;

  EXPECT_EQ(FlushOn(flush, 0), WL_FLUSH_DONE) << flush_name;
  std::memcpy(values.data(), &tag, sizeof(tag));  // CPU 0 only
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(cache), &zero, values.data(), 0),
            0);
  EXPECT_EQ(FlushOn(flush, 0), WL_FLUSH_BUSY) << flush_name;
  if (sysconf(_SC_NPROCESSORS_ONLN) > 1) {
    EXPECT_EQ(FlushOn(flush, 1), WL_FLUSH_DONE) << "CPU 1 has no bracket";
  }
  // The agent's flush retries a busy CPU, then gives up rather than read a
  // hash that lacks that CPU's counts.
  absl::Status s = FlushPerCpuCaches(bpf_program__fd(flush), 1);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  std::memset(values.data(), 0, sizeof(tag));
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(cache), &zero, values.data(), 0),
            0);
  EXPECT_EQ(FlushOn(flush, 0), WL_FLUSH_DONE) << flush_name;
  EXPECT_TRUE(FlushPerCpuCaches(bpf_program__fd(flush), 1).ok());
}

TEST(PerCpuCacheBpfTest, FlushReturnsBusyInsideABracket) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  std::unique_ptr<syscalls_bpf, decltype(&syscalls_bpf__destroy)> sys(
      syscalls_bpf__open(), syscalls_bpf__destroy);
  ASSERT_NE(sys, nullptr);
  CheckFlushHonoursBracket(sys->obj, "wl_sys_flush", "cache");
  std::unique_ptr<network_bpf, decltype(&network_bpf__destroy)> net(
      network_bpf__open(), network_bpf__destroy);
  ASSERT_NE(net, nullptr);
  CheckFlushHonoursBracket(net->obj, "wl_net_flush", "io_cache");
}

void* ReturnAtOnce(void*) { return nullptr; }  // the thread ends in exit()

// exit() and exit_group() never reach sys_exit; they are counted from the
// exiting task's saved registers, found by bpf_task_pt_regs() where the
// kernel has it (Linux 5.15) and on the task's kernel stack elsewhere. Both
// ways run here, whatever this kernel has.
class ExitCallsBpfTest : public ::testing::TestWithParam<bool> {};

TEST_P(ExitCallsBpfTest, EveryThreadExitAndTheGroupExitAreCounted) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  SyscallsProgramConfig config;
  config.task_pt_regs = GetParam();
  auto p = SyscallsProgram::Create(config, libbpf_num_possible_cpus());
  ASSERT_TRUE(p.ok()) << p.status();
  constexpr int kThreads = 5;
  GatedChild child([] {
    for (int i = 0; i < kThreads; ++i) {
      pthread_t t;
      if (pthread_create(&t, nullptr, ReturnAtOnce, nullptr) != 0) return 3;
      if (pthread_join(t, nullptr) != 0) return 4;
    }
    return 0;  // exit_group()
  });
  ASSERT_GT(child.pid(), 0);
  child.Release();
  ASSERT_EQ(child.Wait(), 0);
  uint64_t exits = 0, group_exits = 0;
  for (const auto& [key, v] : ReadAll(**p)) {
    if (std::get<0>(key) != static_cast<uint32_t>(child.pid())) continue;
    if (std::get<1>(key) == SYS_exit) exits += v.calls;
    if (std::get<1>(key) == SYS_exit_group) group_exits += v.calls;
  }
  EXPECT_EQ(exits, uint64_t{kThreads});
  EXPECT_EQ(group_exits, 1u);
}

std::vector<bool> RegsSources() {
  if (testing::TestKernelFeatures().task_pt_regs) return {true, false};
  return {false};
}

INSTANTIATE_TEST_SUITE_P(RegsFrom, ExitCallsBpfTest,
                         ::testing::ValuesIn(RegsSources()),
                         [](const auto& info) {
                           return info.param ? "task_pt_regs" : "kernel_stack";
                         });

}  // namespace
}  // namespace wattlens
