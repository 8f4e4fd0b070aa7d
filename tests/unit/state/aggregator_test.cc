// SPDX-License-Identifier: Apache-2.0
#include "agent/state/aggregator.h"

#include <cstring>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

constexpr uint64_t kTick = 10'000'000;

wl_sched_key SchedKey(uint32_t tgid, uint64_t start, uint64_t cg) {
  wl_sched_key k{};
  k.tgid = tgid;
  k.start_ns = start;
  k.cgroup_id = cg;
  return k;
}

wl_syscall_key SysKey(uint32_t tgid, uint64_t start, uint32_t nr,
                      uint64_t cg = 100) {
  wl_syscall_key k{};
  k.tgid = tgid;
  k.nr = nr;
  k.start_ns = start;
  k.cgroup_id = cg;
  return k;
}

LifecycleEvent Event(EventType t, uint32_t tgid, uint64_t start, uint64_t cg,
                     std::string comm = "proc") {
  LifecycleEvent e;
  e.type = t;
  e.proc = {tgid, start};
  e.cgroup_id = cg;
  e.comm = std::move(comm);
  e.ppid = 1;
  return e;
}

class AggregatorTest : public ::testing::Test {
 protected:
  AggregatorTest() {
    env_.cgroup_path = [this](uint64_t id) -> std::optional<std::string> {
      auto it = paths_.find(id);
      if (it == paths_.end()) return std::nullopt;
      return it->second;
    };
    env_.read_proc = [this](uint32_t pid) -> std::optional<ProcInfo> {
      auto it = procs_.find(pid);
      if (it == procs_.end()) return std::nullopt;
      return it->second;
    };
    env_.tick_ns = kTick;
    paths_[1] = "/";
    paths_[100] = "/a";
    paths_[200] = "/b";
  }

  static AggregatorOptions NoGc() {
    AggregatorOptions o;
    o.gc_every = 0;
    return o;
  }
  Aggregator Make(AggregatorOptions o = NoGc()) { return Aggregator(o, env_); }

  Aggregator::Result Step(Aggregator& a, std::vector<LifecycleEvent> ev,
                          const KernelReadings& r) {
    now_ += 1'000'000'000;
    return a.Update(std::move(ev), r, now_, now_, {});
  }

  static const ProcessStats* Proc(const Snapshot& s, uint32_t pid,
                                  uint64_t start) {
    for (const auto& p : s.processes) {
      if (p.pid == pid && p.start_ns == start) return &p;
    }
    return nullptr;
  }
  static const CgroupStats* Cg(const Snapshot& s, uint64_t id) {
    for (const auto& c : s.cgroups) {
      if (c.id == id) return &c;
    }
    return nullptr;
  }

  AggregatorEnv env_;
  absl::flat_hash_map<uint64_t, std::string> paths_;
  absl::flat_hash_map<uint32_t, ProcInfo> procs_;
  int64_t now_ = 0;
};

TEST_F(AggregatorTest, AddsDeltasOfCumulativeCounters) {
  Aggregator a = Make();
  KernelReadings r;
  r.oncpu = {{SchedKey(10, 5, 100), 1000}};
  r.syscalls = {{SysKey(10, 5, 39), {7, 1}}};
  Step(a, {Event(EventType::kExec, 10, 5, 100, "app")}, r);
  r.oncpu = {{SchedKey(10, 5, 100), 2500}};
  r.syscalls = {{SysKey(10, 5, 39), {10, 2}}};
  auto res = Step(a, {}, r);
  const auto& s = *res.snapshot;
  const ProcessStats* p = Proc(s, 10, 5);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->comm, "app");
  EXPECT_EQ(p->cpu_ns, 2500u);
  EXPECT_EQ(p->syscalls, 10u);
  EXPECT_EQ(p->syscall_errors, 2u);
  ASSERT_EQ(p->by_syscall.size(), 1u);
  EXPECT_EQ(p->by_syscall[0].nr, 39u);
  const CgroupStats* c = Cg(s, 100);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->path, "/a");
  EXPECT_EQ(c->cpu_ns, 2500u);
  EXPECT_EQ(c->syscalls, 10u);
  EXPECT_EQ(c->live_processes, 1u);
  ASSERT_EQ(s.syscalls.size(), 1u);
  EXPECT_EQ(s.syscalls[0].calls, 10u);
  EXPECT_EQ(s.syscalls[0].errors, 2u);
}

TEST_F(AggregatorTest, ReusedPidIsADifferentProcess) {
  Aggregator a = Make();
  KernelReadings r;
  r.syscalls = {{SysKey(42, 1000, 110, 100), {5, 0}},
                {SysKey(42, 2000, 110, 200), {9, 0}}};
  auto res = Step(a,
                  {Event(EventType::kExit, 42, 1000, 100, "old"),
                   Event(EventType::kFork, 42, 2000, 200, "new")},
                  r);
  const ProcessStats* old_p = Proc(*res.snapshot, 42, 1000);
  const ProcessStats* new_p = Proc(*res.snapshot, 42, 2000);
  ASSERT_NE(old_p, nullptr);
  ASSERT_NE(new_p, nullptr);
  EXPECT_TRUE(old_p->exited);
  EXPECT_FALSE(new_p->exited);
  EXPECT_EQ(old_p->syscalls, 5u);
  EXPECT_EQ(new_p->syscalls, 9u);
  EXPECT_EQ(Cg(*res.snapshot, 100)->syscalls, 5u);
  EXPECT_EQ(Cg(*res.snapshot, 200)->syscalls, 9u);
}

TEST_F(AggregatorTest, ExitedProcessExportedOnceThenKeysDeleted) {
  Aggregator a = Make();
  KernelReadings r;
  r.oncpu = {{SchedKey(7, 1, 100), 500}};
  r.syscalls = {{SysKey(7, 1, 0), {3, 0}}};
  auto res = Step(a, {Event(EventType::kExit, 7, 1, 100)}, r);
  ASSERT_NE(Proc(*res.snapshot, 7, 1), nullptr);
  EXPECT_TRUE(Proc(*res.snapshot, 7, 1)->exited);
  EXPECT_TRUE(res.deletions.oncpu.empty());  // not yet: read once more

  // Next interval: a late sibling slice (+40) lands; keys are deleted, the
  // tail goes to the cgroup, and the process is not exported again.
  r.oncpu = {{SchedKey(7, 1, 100), 540}};
  res = Step(a, {}, r);
  EXPECT_EQ(Proc(*res.snapshot, 7, 1), nullptr);
  ASSERT_EQ(res.deletions.oncpu.size(), 1u);
  ASSERT_EQ(res.deletions.syscalls.size(), 1u);
  EXPECT_EQ(Cg(*res.snapshot, 100)->cpu_ns, 540u);
  a.ForgetDeleted(res.deletions);

  // Gone from the kernel: nothing is double counted afterwards.
  r.oncpu.clear();
  r.syscalls.clear();
  res = Step(a, {}, r);
  EXPECT_EQ(Cg(*res.snapshot, 100)->cpu_ns, 540u);
  EXPECT_EQ(Cg(*res.snapshot, 100)->syscalls, 3u);
}

// Sampled CPU time: EXITING when the last thread starts to exit, EXIT when
// the kernel frees it (after its final slice). A tail that arrives several
// intervals after the export still reaches the cgroup, never a phantom
// live process.
TEST_F(AggregatorTest, ExitingThenExitExportsOnceAndLateTailsGoToTheCgroup) {
  Aggregator a = Make();
  KernelReadings r;
  r.oncpu = {{SchedKey(7, 1, 100), 500}};
  auto res = Step(a, {Event(EventType::kExiting, 7, 1, 100, "job")}, r);
  ASSERT_NE(Proc(*res.snapshot, 7, 1), nullptr);
  EXPECT_FALSE(Proc(*res.snapshot, 7, 1)->exited);  // not ended yet
  EXPECT_EQ(Proc(*res.snapshot, 7, 1)->comm, "job");

  r.oncpu = {{SchedKey(7, 1, 100), 900}};  // exit_mm and the final slice
  res = Step(a, {Event(EventType::kExit, 7, 1, 100)}, r);
  ASSERT_NE(Proc(*res.snapshot, 7, 1), nullptr);
  EXPECT_TRUE(Proc(*res.snapshot, 7, 1)->exited);
  EXPECT_EQ(Proc(*res.snapshot, 7, 1)->cpu_ns, 900u);

  for (int i = 0; i < 3; ++i) {  // keys deleted while it is retired
    res = Step(a, {}, r);
    a.ForgetDeleted(res.deletions);
    r.oncpu.clear();
  }
  // A thread freed long after its leader: cgroup only, no live entry.
  r.oncpu = {{SchedKey(7, 1, 100), 30}};
  res = Step(a, {}, r);
  EXPECT_EQ(Proc(*res.snapshot, 7, 1), nullptr);
  EXPECT_EQ(Cg(*res.snapshot, 100)->cpu_ns, 930u);
  EXPECT_EQ(res.snapshot->self.drops[DropReason::kExitFreeUnseen], 0u);
}

// An EXIT that never follows EXITING (the leader was neither reaped from
// `dying` nor seen freed): retired after the grace period, counted, exported
// once; an EXIT arriving later is not exported again.
TEST_F(AggregatorTest, ExitingWithoutExitIsRetiredAfterTheGraceAndCounted) {
  AggregatorOptions o = NoGc();
  o.exit_grace_ns = 2'500'000'000;  // Step advances 1 s
  Aggregator a = Make(o);
  KernelReadings r;
  r.oncpu = {{SchedKey(9, 1, 100), 100}};
  auto res = Step(a, {Event(EventType::kExiting, 9, 1, 100)}, r);
  res = Step(a, {}, r);
  res = Step(a, {}, r);
  ASSERT_NE(Proc(*res.snapshot, 9, 1), nullptr);
  EXPECT_FALSE(Proc(*res.snapshot, 9, 1)->exited);  // 2 s: within grace
  res = Step(a, {}, r);
  ASSERT_NE(Proc(*res.snapshot, 9, 1), nullptr);
  EXPECT_TRUE(Proc(*res.snapshot, 9, 1)->exited);
  EXPECT_EQ(Proc(*res.snapshot, 9, 1)->cpu_ns, 100u);
  EXPECT_EQ(res.snapshot->self.drops[DropReason::kExitFreeUnseen], 1u);
  res = Step(a, {Event(EventType::kExit, 9, 1, 100)}, r);
  EXPECT_EQ(Proc(*res.snapshot, 9, 1), nullptr);
}

// Retired processes are remembered for graveyard_ns only.
TEST_F(AggregatorTest, GraveyardIsBoundedInTime) {
  AggregatorOptions o = NoGc();
  o.graveyard_ns = 3'000'000'000;
  Aggregator a = Make(o);
  KernelReadings r;
  Step(a, {Event(EventType::kExit, 5, 1, 100)}, r);
  for (int i = 0; i < 3; ++i) Step(a, {}, r);
  // Forgotten: a (bogus) late count makes a live entry again, as any
  // process first seen in counters would.
  r.oncpu = {{SchedKey(5, 1, 100), 10}};
  auto res = Step(a, {}, r);
  ASSERT_NE(Proc(*res.snapshot, 5, 1), nullptr);
  EXPECT_FALSE(Proc(*res.snapshot, 5, 1)->exited);
}

TEST_F(AggregatorTest, DuplicateExitIsIgnored) {
  Aggregator a = Make();
  KernelReadings r;
  auto res = Step(
      a,
      {Event(EventType::kExit, 8, 1, 100), Event(EventType::kExit, 8, 1, 100)},
      r);
  int n = 0;
  for (const auto& p : res.snapshot->processes) n += p.pid == 8;
  EXPECT_EQ(n, 1);
  res = Step(a, {Event(EventType::kExit, 8, 1, 100)}, r);
  EXPECT_EQ(Proc(*res.snapshot, 8, 1), nullptr);
}

TEST_F(AggregatorTest, CounterGoingBackwardsIsAResetNotANegative) {
  Aggregator a = Make();
  KernelReadings r;
  r.oncpu = {{SchedKey(3, 1, 100), 1000}};
  Step(a, {}, r);
  r.oncpu = {{SchedKey(3, 1, 100), 200}};  // key was re-created
  auto res = Step(a, {}, r);
  EXPECT_EQ(Cg(*res.snapshot, 100)->cpu_ns, 1200u);
  EXPECT_EQ(res.snapshot->self.counter_resets, 1u);
}

TEST_F(AggregatorTest, MovedProcessChargesEachCgroupAndSyscallsFollowIt) {
  Aggregator a = Make();
  KernelReadings r;
  r.oncpu = {{SchedKey(5, 1, 100), 100}};
  r.syscalls = {{SysKey(5, 1, 1), {10, 0}}};
  Step(a, {Event(EventType::kExec, 5, 1, 100)}, r);
  // Moved to cgroup 200: its old key stops growing, a new one appears.
  r.oncpu = {{SchedKey(5, 1, 100), 100}, {SchedKey(5, 1, 200), 300}};
  r.syscalls = {{SysKey(5, 1, 1, 100), {10, 0}},
                {SysKey(5, 1, 1, 200), {15, 0}}};
  auto res = Step(a, {}, r);
  EXPECT_EQ(Cg(*res.snapshot, 100)->cpu_ns, 100u);
  EXPECT_EQ(Cg(*res.snapshot, 200)->cpu_ns, 300u);
  EXPECT_EQ(Cg(*res.snapshot, 100)->syscalls, 10u);
  EXPECT_EQ(Cg(*res.snapshot, 200)->syscalls, 15u);
  EXPECT_EQ(Proc(*res.snapshot, 5, 1)->cgroup_id, 200u);
  EXPECT_EQ(Proc(*res.snapshot, 5, 1)->cpu_ns, 400u);
}

// Moved within one interval (both keys grew, as for a child forked in one
// cgroup and moved before it runs), with its EXIT a drain later: until
// then it is where it ran most, whatever order the keys are read in; then
// where its EXIT says.
TEST_F(AggregatorTest, ProcessMovedWithinAnIntervalIsWhereItRanMost) {
  for (bool root_last : {false, true}) {
    SCOPED_TRACE(root_last ? "root key read last" : "root key read first");
    Aggregator a = Make();
    KernelReadings r;
    r.oncpu = {{SchedKey(8, 1, 200), 300'000}, {SchedKey(8, 1, 1), 50}};
    if (!root_last) std::swap(r.oncpu[0], r.oncpu[1]);
    auto res = Step(a, {Event(EventType::kFork, 8, 1, 1)}, r);
    EXPECT_EQ(Proc(*res.snapshot, 8, 1)->cgroup_id, 200u);
    EXPECT_EQ(Proc(*res.snapshot, 8, 1)->cpu_ns, 300'050u);
    res = Step(a, {Event(EventType::kExit, 8, 1, 200)}, r);
    ASSERT_TRUE(Proc(*res.snapshot, 8, 1)->exited);
    EXPECT_EQ(Proc(*res.snapshot, 8, 1)->cgroup_id, 200u);
  }
}

TEST_F(AggregatorTest, ProcessFirstSeenInCountersGetsNameFromProc) {
  procs_[77] = ProcInfo{/*start_ticks=*/3, /*ppid=*/1, "sshd"};
  procs_[78] = ProcInfo{/*start_ticks=*/999, 1, "other"};
  Aggregator a = Make();
  KernelReadings r;
  r.syscalls = {{SysKey(77, 3 * kTick + 5, 0), {1, 0}},
                {SysKey(78, 4 * kTick, 0), {1, 0}}};
  auto res = Step(a, {}, r);
  EXPECT_EQ(Proc(*res.snapshot, 77, 3 * kTick + 5)->comm, "sshd");
  EXPECT_EQ(Proc(*res.snapshot, 77, 3 * kTick + 5)->cgroup_id, 100u);
  // /proc holds a different process under that pid: no borrowed name.
  EXPECT_EQ(Proc(*res.snapshot, 78, 4 * kTick)->comm, "?");
}

TEST_F(AggregatorTest, GarbageCollectionRetiresProcessesWhoseExitWasLost) {
  procs_[50] = ProcInfo{1, 1, "alive"};
  AggregatorOptions o;
  o.gc_every = 2;
  Aggregator a(o, env_);
  KernelReadings r;
  r.oncpu = {{SchedKey(50, kTick, 100), 10}, {SchedKey(51, kTick, 100), 10}};
  Step(a, {}, r);
  auto res = Step(a, {}, r);  // GC runs: 51 has no /proc entry
  EXPECT_FALSE(Proc(*res.snapshot, 50, kTick)->exited);
  ASSERT_NE(Proc(*res.snapshot, 51, kTick), nullptr);
  EXPECT_TRUE(Proc(*res.snapshot, 51, kTick)->exited);
  EXPECT_EQ(res.snapshot->self.exits_inferred, 1u);
}

TEST_F(AggregatorTest, TablesAreBoundedAndOverflowIsCounted) {
  AggregatorOptions o = NoGc();
  o.max_processes = 2;
  o.max_cgroups = 2;
  Aggregator a = Make(o);
  KernelReadings r;
  r.oncpu = {{SchedKey(1, 1, 100), 10},
             {SchedKey(2, 1, 100), 10},
             {SchedKey(3, 1, 200), 10},
             {SchedKey(4, 1, 300), 10}};
  auto res = Step(a, {}, r);
  const Snapshot& s = *res.snapshot;
  EXPECT_EQ(s.self.processes_tracked, 2u);
  EXPECT_GE(s.self.drops[DropReason::kProcessTableFull], 1u);
  EXPECT_GE(s.self.drops[DropReason::kCgroupTableFull], 1u);
  // No CPU time vanishes: the overflow bucket (id 0) keeps it.
  uint64_t total = 0;
  for (const auto& c : s.cgroups) total += c.cpu_ns;
  EXPECT_EQ(total, 40u);
}

TEST_F(AggregatorTest, CgroupsThatCannotBeNamedGetPlaceholdersUnderRoot) {
  // 300 never resolves (removed before its path was read); the table holds
  // two cgroups, so 400 and 500 overflow.
  AggregatorOptions o = NoGc();
  o.max_cgroups = 2;
  Aggregator a = Make(o);
  KernelReadings r;
  r.oncpu = {{SchedKey(1, 1, 100), 10},
             {SchedKey(2, 1, 300), 20},
             {SchedKey(3, 1, 400), 30},
             {SchedKey(4, 1, 500), 40}};
  const Aggregator::Result result = Step(a, {}, r);
  const Snapshot& s = *result.snapshot;
  ASSERT_NE(Cg(s, 300), nullptr);
  EXPECT_EQ(Cg(s, 300)->path, "/deleted/300");
  ASSERT_NE(Cg(s, 0), nullptr);
  EXPECT_EQ(Cg(s, 0)->path, "/overflow");
  EXPECT_EQ(Cg(s, 0)->cpu_ns, 70u);
  for (const auto& c : s.cgroups) {
    EXPECT_EQ(c.path[0], '/') << c.path;
  }
}

TEST_F(AggregatorTest, GoneCgroupIsExportedOnceMoreThenForgotten) {
  AggregatorOptions o;
  o.gc_every = 1;
  Aggregator a(o, env_);
  paths_[300] = "/tmp-cg";
  KernelReadings r;
  r.oncpu = {{SchedKey(9, 1, 300), 10}};
  procs_[9] = ProcInfo{0, 1, "x"};
  auto res = Step(a, {}, r);
  ASSERT_NE(Cg(*res.snapshot, 300), nullptr);
  paths_.erase(300);
  procs_.erase(9);
  r.oncpu.clear();
  res = Step(a, {}, r);
  ASSERT_NE(Cg(*res.snapshot, 300), nullptr);
  EXPECT_TRUE(Cg(*res.snapshot, 300)->gone);
  res = Step(a, {}, r);
  EXPECT_EQ(Cg(*res.snapshot, 300), nullptr);
}

// Kernel threads' keys carry kKernelCgroupId: one `kernel` row that never
// asks the resolver (env_ knows no such id), is never unresolved or gone,
// and takes no time from the root.
TEST_F(AggregatorTest, KernelThreadsAreTheKernelRowNeverGone) {
  AggregatorOptions o;
  o.gc_every = 1;
  Aggregator a(o, env_);
  procs_[2] = ProcInfo{1, 0, "kthreadd"};
  procs_[40] = ProcInfo{1, 2, "kworker/0:1"};
  procs_[41] = ProcInfo{1, 2, "kworker/0:2"};
  procs_[1] = ProcInfo{1, 0, "init"};
  LifecycleEvent fork =
      Event(EventType::kFork, 41, kTick, kKernelCgroupId, "kthreadd");
  fork.ppid = 2;
  KernelReadings r;
  r.oncpu = {{SchedKey(2, kTick, kKernelCgroupId), 100},
             {SchedKey(40, kTick, kKernelCgroupId), 200},
             {SchedKey(41, kTick, kKernelCgroupId), 50},
             {SchedKey(1, kTick, 1), 700}};
  auto res = Step(a, {fork}, r);
  const CgroupStats* k = Cg(*res.snapshot, kKernelCgroupId);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->path, "kernel");
  EXPECT_EQ(k->cpu_ns, 350u);
  EXPECT_FALSE(k->gone);
  EXPECT_EQ(Cg(*res.snapshot, 1)->cpu_ns, 700u);
  EXPECT_EQ(Proc(*res.snapshot, 40, kTick)->cgroup_id, kKernelCgroupId);
  EXPECT_EQ(Proc(*res.snapshot, 41, kTick)->cgroup_id, kKernelCgroupId);
  EXPECT_EQ(Proc(*res.snapshot, 41, kTick)->ppid, 2u);
  // Idle for many GC periods: still there, still named, never gone.
  for (int i = 0; i < 5; ++i) res = Step(a, {}, r);
  k = Cg(*res.snapshot, kKernelCgroupId);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->path, "kernel");
  EXPECT_FALSE(k->gone);
  EXPECT_EQ(k->cpu_ns, 350u);
}

TEST_F(AggregatorTest, KernelRowIsKeptWhenTheCgroupTableIsFull) {
  AggregatorOptions o = NoGc();
  o.max_cgroups = 1;
  Aggregator a = Make(o);
  KernelReadings r;
  r.oncpu = {{SchedKey(1, 1, 100), 10}, {SchedKey(40, 1, kKernelCgroupId), 20}};
  auto res = Step(a, {}, r);
  ASSERT_NE(Cg(*res.snapshot, kKernelCgroupId), nullptr);
  EXPECT_EQ(Cg(*res.snapshot, kKernelCgroupId)->cpu_ns, 20u);
}

TEST_F(AggregatorTest, NetworkByClassAndOwnerlessSocketsGoToTheCgroup) {
  Aggregator a = Make();
  KernelReadings r;
  wl_net_key k{};
  k.tgid = 10;
  k.start_ns = 5;
  k.cgroup_id = 100;
  k.net_class = WL_NET_CLUSTER;
  wl_net_key ownerless = k;
  ownerless.tgid = 0;
  ownerless.start_ns = 0;
  wl_net_key bogus = k;
  bogus.net_class = 77;  // out of range: counted as unknown
  r.net = {{k, {100, 50, 2, 1, 1, 0, 0, 0}},
           {ownerless, {0, 0, 0, 0, 0, 3, 3, 0}},
           {bogus, {7, 0, 1, 0, 0, 0, 0, 0}}};
  auto res = Step(a, {Event(EventType::kExec, 10, 5, 100)}, r);
  const CgroupStats* c = Cg(*res.snapshot, 100);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->net[WL_NET_CLUSTER].tx_bytes, 100u);
  EXPECT_EQ(c->net[WL_NET_CLUSTER].rx_packets, 1u);
  EXPECT_EQ(c->net[WL_NET_UNKNOWN].tx_bytes, 7u);
  EXPECT_EQ(c->tcp.connects, 1u);
  EXPECT_EQ(c->tcp.accepts, 3u);
  EXPECT_EQ(c->tcp.closes, 3u);
  const ProcessStats* p = Proc(*res.snapshot, 10, 5);
  EXPECT_EQ(p->net[WL_NET_CLUSTER].rx_bytes, 50u);
  EXPECT_EQ(p->tcp.accepts, 0u);  // the ownerless accepts are not its
  EXPECT_EQ(Proc(*res.snapshot, 0, 0), nullptr);
  // Next interval: only growth is added.
  r.net = {{k, {150, 50, 3, 1, 1, 0, 1, 0}}};
  res = Step(a, {}, r);
  EXPECT_EQ(Cg(*res.snapshot, 100)->net[WL_NET_CLUSTER].tx_bytes, 150u);
  EXPECT_EQ(Cg(*res.snapshot, 100)->tcp.closes, 4u);
}

// A process moved mid-interval has growing keys in two cgroups: each
// cgroup gets exactly the calls made in it, whatever the event order.
TEST_F(AggregatorTest, SyscallsChargeTheCgroupTheirKeyNames) {
  Aggregator a = Make();
  KernelReadings r;
  r.oncpu = {{SchedKey(60, 1, 1), 5}, {SchedKey(60, 1, 200), 10}};
  r.syscalls = {{SysKey(60, 1, 0, 1), {2, 0}}, {SysKey(60, 1, 0, 200), {7, 1}}};
  paths_[1] = "/";
  auto res = Step(a, {Event(EventType::kFork, 60, 1, 1)}, r);
  EXPECT_EQ(Cg(*res.snapshot, 1)->syscalls, 2u);
  EXPECT_EQ(Cg(*res.snapshot, 200)->syscalls, 7u);
  EXPECT_EQ(Cg(*res.snapshot, 200)->syscall_errors, 1u);
  EXPECT_EQ(Proc(*res.snapshot, 60, 1)->syscalls, 9u);
}

TEST_F(AggregatorTest, UnknownWireEventTypeIsRejected) {
  wl_event e{};
  e.type = 99;
  EXPECT_FALSE(FromWire(e).has_value());
  e.type = WL_EVENT_EXIT;
  e.tgid = 4;
  std::memcpy(e.comm, "0123456789abcdef", 16);  // no NUL terminator
  auto ev = FromWire(e);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->comm, "0123456789abcdef");
}

}  // namespace
}  // namespace wattlens
