// SPDX-License-Identifier: Apache-2.0
// EnergyState against hand-made snapshots: per-interval CPU deltas,
// cumulative counters, exited processes, kernel threads, idle policies and
// the exposition of the result.
#include <map>
#include <string>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/export/prometheus_collectable.h"
#include "agent/identity/workload_identity.h"
#include "agent/state/energy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

using ::testing::HasSubstr;

CgroupStats Cgroup(uint64_t id, std::string path, uint64_t cpu_ns) {
  CgroupStats c;
  c.id = id;
  c.path = std::move(path);
  c.cpu_ns = cpu_ns;
  return c;
}

ProcessStats Process(uint32_t pid, uint64_t start, uint64_t cgroup,
                     uint64_t cpu_ns, bool exited = false, uint32_t ppid = 1) {
  ProcessStats p;
  p.pid = pid;
  p.start_ns = start;
  p.ppid = ppid;
  p.cgroup_id = cgroup;
  p.cpu_ns = cpu_ns;
  p.exited = exited;
  return p;
}

ZoneEnergy Zone(std::string zone, int64_t energy, int64_t idle) {
  ZoneEnergy z;
  z.zone = std::move(zone);
  z.source = "model:ccf";
  z.idle_method = "model";
  z.energy_uj = energy;
  z.idle_uj = idle;
  z.interval_ns = 1'000'000'000;
  return z;
}

// (zone, workload) -> (cumulative dynamic, cumulative idle, interval
// dynamic, interval idle)
using Row = std::tuple<uint64_t, uint64_t, int64_t, int64_t>;
std::map<std::pair<std::string, std::string>, Row> Rows(const Snapshot& s) {
  std::map<std::pair<std::string, std::string>, Row> out;
  for (const WorkloadEnergy& w : s.energy.workloads) {
    out[{w.zone, w.workload}] = {w.dynamic_uj, w.idle_uj, w.interval_dynamic_uj,
                                 w.interval_idle_uj};
  }
  return out;
}

Row At(const Snapshot& s, const std::string& zone, const std::string& w) {
  auto rows = Rows(s);
  auto it = rows.find({zone, w});
  return it == rows.end() ? Row(~0ull, ~0ull, -1, -1) : it->second;
}

bool Has(const Snapshot& s, const std::string& zone, const std::string& w) {
  return Rows(s).contains({zone, w});
}

// Σ workloads + __idle__ + __unattributed__ == node energy, this interval
// and (with __removed__) cumulatively, for every zone.
void ExpectConserved(const Snapshot& s) {
  for (const NodeZoneEnergy& z : s.energy.zones) {
    int64_t interval = 0;
    uint64_t total = 0;
    for (const WorkloadEnergy& w : s.energy.workloads) {
      if (w.zone != z.zone) continue;
      interval += w.interval_dynamic_uj + w.interval_idle_uj;
      total += w.dynamic_uj + w.idle_uj;
    }
    for (const WorkloadEnergy& w : s.energy.removed) {
      if (w.zone != z.zone) continue;
      EXPECT_EQ(w.interval_dynamic_uj + w.interval_idle_uj, 0);
      total += w.dynamic_uj + w.idle_uj;
    }
    EXPECT_EQ(interval, z.interval_energy_uj) << z.zone;
    EXPECT_EQ(total, z.energy_uj) << z.zone;
  }
}

TEST(EnergyStateTest, CountersAccumulateByCpuDeltas) {
  EnergyState state;
  Snapshot s1;
  s1.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 200)};
  ASSERT_TRUE(state.Update({Zone("package", 1000, 400)}, 0, &s1).ok());
  EXPECT_EQ(At(s1, "package", "/a"), Row(200, 0, 200, 0));
  EXPECT_EQ(At(s1, "package", "/b"), Row(400, 0, 400, 0));
  EXPECT_EQ(At(s1, "package", "__idle__"), Row(0, 400, 0, 400));
  EXPECT_EQ(At(s1, "package", "__unattributed__"), Row(0, 0, 0, 0));
  ExpectConserved(s1);

  // Deltas, not totals: /a ran 300 ns more, /b 0.
  Snapshot s2;
  s2.cgroups = {Cgroup(100, "/a", 400), Cgroup(200, "/b", 200)};
  ASSERT_TRUE(state.Update({Zone("package", 900, 300)}, 0, &s2).ok());
  EXPECT_EQ(At(s2, "package", "/a"), Row(800, 0, 600, 0));
  EXPECT_EQ(At(s2, "package", "/b"), Row(400, 0, 0, 0));
  EXPECT_EQ(At(s2, "package", "__idle__"), Row(0, 700, 0, 300));
  ASSERT_EQ(s2.energy.zones.size(), 1u);
  EXPECT_EQ(s2.energy.zones[0].energy_uj, 1900u);
  EXPECT_EQ(s2.energy.zones[0].idle_uj, 700u);
  EXPECT_EQ(s2.energy.zones[0].interval_energy_uj, 900);
  EXPECT_EQ(s2.energy.zones[0].source, "model:ccf");
  EXPECT_EQ(s2.energy.intervals_attributed, 2u);
  ExpectConserved(s2);
}

TEST(EnergyStateTest, UniformFrequencyDoesNotChangeShares) {
  EnergyState plain, weighted;
  Snapshot a, b;
  a.cgroups =
      b.cgroups = {Cgroup(100, "/a", 1'000'003), Cgroup(200, "/b", 2'000'001)};
  ASSERT_TRUE(plain.Update({Zone("package", 999'999, 0)}, 0, &a).ok());
  ASSERT_TRUE(
      weighted.Update({Zone("package", 999'999, 0)}, 2'596'146, &b).ok());
  EXPECT_EQ(Rows(a), Rows(b));
}

TEST(EnergyStateTest, ExitedProcessKeepsItsShareThenIsForgotten) {
  EnergyState state;
  Snapshot s1;
  s1.cgroups = {Cgroup(100, "/a", 400)};
  s1.processes = {Process(10, 1, 100, 100), Process(11, 2, 100, 300)};
  ASSERT_TRUE(state.Update({Zone("package", 4000, 0)}, 0, &s1).ok());

  // pid 10 ran 300 ns more and exited; pid 11 ran 100 ns more.
  Snapshot s2;
  s2.cgroups = {Cgroup(100, "/a", 800)};
  s2.processes = {Process(10, 1, 100, 400, /*exited=*/true),
                  Process(11, 2, 100, 400)};
  ASSERT_TRUE(state.Update({Zone("package", 4000, 0)}, 0, &s2).ok());
  ASSERT_EQ(s2.energy.processes.size(), 2u);
  const ProcessEnergy& gone = s2.energy.processes[0];
  EXPECT_EQ(gone.pid, 10u);
  EXPECT_TRUE(gone.exited);
  EXPECT_EQ(gone.interval_dynamic_uj, 3000);
  EXPECT_EQ(gone.dynamic_uj, 1000u + 3000u);
  EXPECT_EQ(s2.energy.processes[1].interval_dynamic_uj, 1000);
  EXPECT_EQ(At(s2, "package", "/a"), Row(8000, 0, 4000, 0));

  // Next interval: the exited process is gone; the same pid with a new
  // start time is a new process that starts from zero.
  Snapshot s3;
  s3.cgroups = {Cgroup(100, "/a", 1000)};
  s3.processes = {Process(10, 5, 100, 100), Process(11, 2, 100, 500)};
  ASSERT_TRUE(state.Update({Zone("package", 2000, 0)}, 0, &s3).ok());
  ASSERT_EQ(s3.energy.processes.size(), 2u);
  EXPECT_EQ(s3.energy.processes[0].pid, 10u);
  EXPECT_EQ(s3.energy.processes[0].start_ns, 5u);
  EXPECT_FALSE(s3.energy.processes[0].exited);
  EXPECT_EQ(s3.energy.processes[0].dynamic_uj, 1000u);
  ExpectConserved(s3);
}

TEST(EnergyStateTest, PidReusedWithinOneIntervalIsTwoProcesses) {
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 400)};
  s.processes = {Process(10, 1, 100, 100, /*exited=*/true),
                 Process(10, 9, 100, 300)};
  ASSERT_TRUE(state.Update({Zone("package", 4000, 0)}, 0, &s).ok());
  ASSERT_EQ(s.energy.processes.size(), 2u);
  EXPECT_EQ(s.energy.processes[0].interval_dynamic_uj, 1000);
  EXPECT_EQ(s.energy.processes[1].interval_dynamic_uj, 3000);
}

// Kernel threads are the workload `kernel`: the sched programs key their
// time under kKernelCgroupId, so they are charged like any workload (they
// used to go to __unattributed__ and come out of the root's share).
TEST(EnergyStateTest, KernelThreadsAreTheKernelWorkload) {
  EnergyState state;
  Snapshot s;
  // kthreadd ran 100 ns and a kworker (ppid 2) 200, under the kernel key;
  // init 700 in the root cgroup.
  s.cgroups = {Cgroup(1, "/", 700),
               Cgroup(kKernelCgroupId, kKernelCgroupPath, 300)};
  s.processes = {Process(2, 1, kKernelCgroupId, 100, false, 0),
                 Process(40, 2, kKernelCgroupId, 200, false, 2),
                 Process(1, 0, 1, 700)};
  ASSERT_TRUE(state.Update({Zone("package", 10'000, 0)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "/"), Row(7000, 0, 7000, 0));
  EXPECT_EQ(At(s, "package", "kernel"), Row(3000, 0, 3000, 0));
  EXPECT_EQ(At(s, "package", "__unattributed__"), Row(0, 0, 0, 0));
  for (const WorkloadEnergy& w : s.energy.workloads) {
    if (w.workload == "kernel") {
      EXPECT_EQ(w.cgroup_id, kKernelCgroupId);
    }
  }
  // Each kernel thread has its share of the kernel workload's energy.
  ASSERT_EQ(s.energy.processes.size(), 3u);
  EXPECT_EQ(s.energy.processes[0].pid, 1u);
  EXPECT_EQ(s.energy.processes[0].dynamic_uj, 7000u);
  EXPECT_EQ(s.energy.processes[1].pid, 2u);
  EXPECT_EQ(s.energy.processes[1].dynamic_uj, 1000u);
  EXPECT_EQ(s.energy.processes[1].cgroup_id, kKernelCgroupId);
  EXPECT_EQ(s.energy.processes[2].pid, 40u);
  EXPECT_EQ(s.energy.processes[2].dynamic_uj, 2000u);
  ExpectConserved(s);

  // It stays listed while idle, and is never folded into __removed__.
  Snapshot s2;
  s2.cgroups = s.cgroups;
  s2.cgroups[0].cpu_ns = 1700;
  s2.processes = s.processes;
  s2.processes[2].cpu_ns = 1700;
  ASSERT_TRUE(state.Update({Zone("package", 5'000, 1'000)}, 0, &s2).ok());
  EXPECT_EQ(At(s2, "package", "kernel"), Row(3000, 0, 0, 0));
  EXPECT_EQ(At(s2, "package", "/"), Row(11000, 0, 4000, 0));
  EXPECT_TRUE(s2.energy.removed.empty());
  ExpectConserved(s2);
}

TEST(EnergyStateTest, NothingRanDynamicGoesToUnattributed) {
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 0)};
  ASSERT_TRUE(state.Update({Zone("package", 500, 200)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "__unattributed__"), Row(300, 0, 300, 0));
  EXPECT_EQ(At(s, "package", "__idle__"), Row(0, 200, 0, 200));
  EXPECT_FALSE(Has(s, "package", "/a"));
}

TEST(EnergyStateTest, UsagePolicySharesIdleByCpu) {
  EnergyConfig c;
  c.idle_policy = power::IdlePolicy::kUsageShare;
  EnergyState state(c);
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 300)};
  ASSERT_TRUE(state.Update({Zone("package", 1000, 400)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "/a"), Row(150, 100, 150, 100));
  EXPECT_EQ(At(s, "package", "/b"), Row(450, 300, 450, 300));
  EXPECT_EQ(At(s, "package", "__idle__"), Row(0, 0, 0, 0));
  EXPECT_EQ(s.energy.idle_policy, "usage");
  ExpectConserved(s);
}

TEST(EnergyStateTest, RequestPolicySharesIdleByRequests) {
  EnergyConfig c;
  c.idle_policy = power::IdlePolicy::kRequestShare;
  c.node_allocatable_millicores = 4000;
  EnergyState state(c);
  CpuAllocation requests;
  requests.request_millicores = {{100, 500}, {200, 1500}};
  state.SetCpuAllocation(requests);
  Snapshot s;
  // /b requested CPU but did not run this interval: it still pays its
  // share of idle, and no dynamic energy.
  s.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 0)};
  ASSERT_TRUE(state.Update({Zone("package", 1000, 400)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "/a"), Row(600, 50, 600, 50));
  EXPECT_EQ(At(s, "package", "/b"), Row(0, 150, 0, 150));
  EXPECT_EQ(At(s, "package", "__idle__"), Row(0, 200, 0, 200));
  EXPECT_EQ(s.energy.idle_policy, "request");
  EXPECT_EQ(s.energy.idle_policy_in_force, "request");
  EXPECT_EQ(s.energy.idle_policy_reason, "");
  ExpectConserved(s);
}

TEST(EnergyStateTest, RequestPolicyAllocatesMaxOfRequestAndUsage) {
  // OpenCost: allocation = max(request, usage); usage is CPU time over the
  // interval (1 s here). A from CpuAllocation overrides the config's.
  EnergyConfig c;
  c.idle_policy = power::IdlePolicy::kRequestShare;
  c.node_allocatable_millicores = 64'000;
  EnergyState state(c);
  CpuAllocation requests;
  requests.request_millicores = {{100, 250}, {200, 1000}};
  requests.allocatable_millicores = 4000;
  state.SetCpuAllocation(requests);
  Snapshot s;
  // /a requested 0.25 cores but used 1.5; /b requested 1 and used 0.5; /c
  // has no request and used 0.5. a = 1500 + 1000 + 500 of A = 4000.
  s.cgroups = {Cgroup(100, "/a", 1'500'000'000), Cgroup(200, "/b", 500'000'000),
               Cgroup(300, "/c", 500'000'000)};
  ASSERT_TRUE(
      state.Update({Zone("package", 8'000'000, 4'000'000)}, 0, &s).ok());
  EXPECT_EQ(std::get<1>(At(s, "package", "/a")), 1'500'000u);
  EXPECT_EQ(std::get<1>(At(s, "package", "/b")), 1'000'000u);
  EXPECT_EQ(std::get<1>(At(s, "package", "/c")), 500'000u);
  EXPECT_EQ(At(s, "package", "__idle__"), Row(0, 1'000'000, 0, 1'000'000));
  EXPECT_EQ(std::get<1>(At(s, "package", "__unattributed__")), 0u);
  // Dynamic energy still follows CPU time only: 4 J as 3 : 1 : 1.
  EXPECT_EQ(std::get<0>(At(s, "package", "/a")), 2'400'000u);
  ExpectConserved(s);
}

TEST(EnergyStateTest, RequestPolicyWithoutRequestsKeepsIdle) {
  EnergyConfig c;
  c.idle_policy = power::IdlePolicy::kRequestShare;
  EnergyState state(c);
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 100)};
  ASSERT_TRUE(state.Update({Zone("package", 1000, 400)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "__idle__"), Row(0, 400, 0, 400));
  EXPECT_EQ(At(s, "package", "/a"), Row(600, 0, 600, 0));
  // The fallback is stated, in the snapshot and on the info metric.
  EXPECT_EQ(s.energy.idle_policy, "request");
  EXPECT_EQ(s.energy.idle_policy_in_force, "none");
  EXPECT_THAT(s.energy.idle_policy_reason, HasSubstr("no CPU requests"));
  EXPECT_THAT(RenderSnapshotText(s, ExpositionOptions{}),
              HasSubstr("idle_policy=\"request\",idle_policy_in_force="
                        "\"none\""));
}

TEST(EnergyStateTest, UnmeteredIntervalConsumesCpuWithoutEnergy) {
  EnergyState state;
  Snapshot s1;
  s1.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 100)};
  ASSERT_TRUE(state.Update({Zone("package", 200, 0)}, 0, &s1).ok());
  Snapshot s2;  // /a ran 1000 ns while the meter gave nothing
  s2.cgroups = {Cgroup(100, "/a", 1100), Cgroup(200, "/b", 100)};
  ASSERT_TRUE(state.Update({}, 0, &s2).ok());
  EXPECT_EQ(s2.energy.intervals_unmetered, 1u);
  EXPECT_EQ(At(s2, "package", "/a"), Row(100, 0, 0, 0));
  Snapshot s3;  // then both ran 100 ns: an even split
  s3.cgroups = {Cgroup(100, "/a", 1200), Cgroup(200, "/b", 200)};
  ASSERT_TRUE(state.Update({Zone("package", 200, 0)}, 0, &s3).ok());
  EXPECT_EQ(At(s3, "package", "/a"), Row(200, 0, 100, 0));
  EXPECT_EQ(At(s3, "package", "/b"), Row(200, 0, 100, 0));
}

TEST(EnergyStateTest, RemovedCgroupIsFoldedIntoRemoved) {
  EnergyConfig c;
  c.idle_policy = power::IdlePolicy::kUsageShare;
  EnergyState state(c);
  Snapshot s1;
  s1.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 100)};
  ASSERT_TRUE(state.Update({Zone("package", 300, 100)}, 0, &s1).ok());
  EXPECT_TRUE(s1.energy.removed.empty());
  Snapshot s2;  // /b was exported as gone last time; now it is not listed
  s2.cgroups = {Cgroup(100, "/a", 200)};
  ASSERT_TRUE(state.Update({Zone("package", 200, 0)}, 0, &s2).ok());
  EXPECT_FALSE(Has(s2, "package", "/b"));
  EXPECT_EQ(At(s2, "package", "/a"), Row(300, 50, 200, 0));
  ASSERT_EQ(s2.energy.removed.size(), 1u);
  const WorkloadEnergy& r = s2.energy.removed[0];
  EXPECT_EQ(r.workload, "__removed__");
  EXPECT_EQ(r.zone, "package");
  EXPECT_EQ(r.cgroup_id, 0u);
  EXPECT_EQ(r.dynamic_uj, 100u);  // /b's totals, kept
  EXPECT_EQ(r.idle_uj, 50u);
  ExpectConserved(s2);
}

// Cgroups come and go over many intervals; at every scrape the exported
// workload series (all of them, buckets included) sum to the node total.
TEST(EnergyStateTest, ExportedSeriesSumToNodeTotalAsCgroupsComeAndGo) {
  EnergyState state;
  std::map<uint64_t, uint64_t> cpu;  // live cgroups: id -> cumulative ns
  for (int i = 0; i < 40; ++i) {
    if (i % 3 == 0) cpu[1000 + i] = 0;                         // a new one
    if (i % 4 == 1 && cpu.size() > 1) cpu.erase(cpu.begin());  // one goes
    Snapshot s;
    uint64_t k = 1;
    for (auto& [id, ns] : cpu) {
      ns += 1000 * (k++ % 5);
      s.cgroups.push_back(Cgroup(id, absl::StrCat("/w", id), ns));
    }
    ASSERT_TRUE(state
                    .Update({Zone("package", 10'000 + i, 3'000),
                             Zone("dram", 777, 333)},
                            0, &s)
                    .ok());
    ExpectConserved(s);
    // And the same through the exposition a Prometheus user sums over.
    const std::string text = RenderSnapshotText(s, ExpositionOptions{});
    double series = 0, node = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (!absl::StrContains(line, "zone=\"package\"")) continue;
      const size_t sp = line.rfind(' ');
      double v = 0;
      ASSERT_TRUE(absl::SimpleAtod(line.substr(sp + 1), &v)) << line;
      if (absl::StartsWith(line, "wattlens_workload_energy_joules_total{")) {
        series += v;
      } else if (absl::StartsWith(line, "wattlens_node_energy_joules_total{")) {
        node = v;
      }
    }
    EXPECT_NEAR(series, node, 1e-9) << "interval " << i;
  }
  EXPECT_THAT(RenderSnapshotText(Snapshot(), ExpositionOptions{}),
              ::testing::Not(HasSubstr("__removed__")));
}

// Per-CPU frequency weighting. This VM's cpu_frequency tracepoint never
// fires (one frequency for all CPUs), so these synthetic readings are what
// exercises the path: each CPU's time is weighted by its own frequency.
wl_sched_key Key(uint32_t tgid, uint64_t start, uint64_t cgroup) {
  wl_sched_key k{};
  k.tgid = tgid;
  k.start_ns = start;
  k.cgroup_id = cgroup;
  return k;
}

TEST(EnergyStateTest, PerCpuFrequencyWeightsEachCpusTime) {
  EnergyState state;
  Snapshot s;
  // /a: pid 10 ran 500 ns on CPU 0 (1 GHz) and 500 on CPU 1 (3 GHz); pid
  // 11 ran 1000 on CPU 0. /b: pid 20 ran 1000 on CPU 1. Cycles: 10 -> 2000,
  // 11 -> 1000, /a -> 3000, /b -> 3000, although /a ran twice as long.
  s.cgroups = {Cgroup(100, "/a", 2000), Cgroup(200, "/b", 1000)};
  s.processes = {Process(10, 1, 100, 1000), Process(11, 2, 100, 1000),
                 Process(20, 3, 200, 1000)};
  const uint64_t p10[] = {500, 500}, p11[] = {1000, 0}, p20[] = {0, 1000};
  state.ObserveOnCpu(Key(10, 1, 100), p10, 2);
  state.ObserveOnCpu(Key(11, 2, 100), p11, 2);
  state.ObserveOnCpu(Key(20, 3, 200), p20, 2);
  state.ObserveCpu(s);
  IntervalFrequency f{2'000'000, {1'000'000, 3'000'000}};
  ASSERT_TRUE(state.Attribute({Zone("package", 6000, 0)}, f, &s).ok());
  EXPECT_EQ(At(s, "package", "/a"), Row(3000, 0, 3000, 0));
  EXPECT_EQ(At(s, "package", "/b"), Row(3000, 0, 3000, 0));
  std::map<uint32_t, int64_t> by_pid;
  for (const ProcessEnergy& p : s.energy.processes) {
    by_pid[p.pid] = p.interval_dynamic_uj;
  }
  EXPECT_EQ(by_pid[10], 2000);
  EXPECT_EQ(by_pid[11], 1000);
  EXPECT_EQ(by_pid[20], 3000);
  EXPECT_EQ(s.energy.weighting, "per-cpu-frequency");
  ExpectConserved(s);

  // Next read: cumulative values, so only the growth counts. /a ran 1000 ns
  // more on the fast CPU, /b 1000 more on the slow one: 3 : 1.
  Snapshot s2;
  s2.cgroups = {Cgroup(100, "/a", 3000), Cgroup(200, "/b", 2000)};
  s2.processes = {Process(10, 1, 100, 2000), Process(11, 2, 100, 1000),
                  Process(20, 3, 200, 2000)};
  const uint64_t q10[] = {500, 1500}, q20[] = {1000, 1000};
  state.ObserveOnCpu(Key(10, 1, 100), q10, 2);
  state.ObserveOnCpu(Key(11, 2, 100), p11, 2);
  state.ObserveOnCpu(Key(20, 3, 200), q20, 2);
  state.ObserveCpu(s2);
  ASSERT_TRUE(state.Attribute({Zone("package", 4000, 0)}, f, &s2).ok());
  EXPECT_EQ(At(s2, "package", "/a"), Row(6000, 0, 3000, 0));
  EXPECT_EQ(At(s2, "package", "/b"), Row(4000, 0, 1000, 0));

  // A key deleted from the kernel map starts over from zero.
  state.ForgetOnCpu({Key(20, 3, 200)});
  Snapshot s3;
  s3.cgroups = {Cgroup(100, "/a", 4000), Cgroup(200, "/b", 3000)};
  s3.processes = {Process(10, 1, 100, 3000), Process(11, 2, 100, 1000),
                  Process(20, 3, 200, 3000)};
  const uint64_t r10[] = {1500, 1500}, r20[] = {0, 1000};
  state.ObserveOnCpu(Key(10, 1, 100), r10, 2);
  state.ObserveOnCpu(Key(20, 3, 200), r20, 2);
  state.ObserveCpu(s3);
  ASSERT_TRUE(state.Attribute({Zone("package", 4000, 0)}, f, &s3).ok());
  EXPECT_EQ(std::get<2>(At(s3, "package", "/a")), 1000);  // 1000 ns at 1 GHz
  EXPECT_EQ(std::get<2>(At(s3, "package", "/b")), 3000);  // 1000 ns at 3 GHz
}

// A process moved from /a to /b within one interval ran under both cgroup
// keys: it gets its share of each cgroup's energy for its time there (the
// sum is its energy), and its series follows its current cgroup, also when
// that is known only a drain later (its EXIT arrived after its last slice).
TEST(EnergyStateTest, ProcessThatMovedIsChargedInEachCgroupItRanIn) {
  EnergyState state;
  // /a: pid 11 ran 800 ns, pid 10 200 ns before the move; /b: pid 10 800.
  // The aggregator still places pid 10 in /a (read before its EXIT).
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 1000), Cgroup(200, "/b", 800)};
  s.processes = {Process(10, 1, 100, 1000), Process(11, 2, 100, 800)};
  const uint64_t a10[] = {200, 0}, b10[] = {0, 800}, a11[] = {800, 0};
  state.ObserveOnCpu(Key(10, 1, 100), a10, 2);
  state.ObserveOnCpu(Key(10, 1, 200), b10, 2);
  state.ObserveOnCpu(Key(11, 2, 100), a11, 2);
  ASSERT_TRUE(state.Update({Zone("package", 1800, 0)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "/a"), Row(1000, 0, 1000, 0));
  EXPECT_EQ(At(s, "package", "/b"), Row(800, 0, 800, 0));
  std::map<uint32_t, const ProcessEnergy*> by_pid;
  for (const ProcessEnergy& p : s.energy.processes) by_pid[p.pid] = &p;
  ASSERT_EQ(by_pid.size(), 2u);
  EXPECT_EQ(by_pid[10]->dynamic_uj, 200u + 800u);  // all of /b, 1/5 of /a
  EXPECT_EQ(by_pid[11]->dynamic_uj, 800u);
  ExpectConserved(s);

  // Its EXIT: it ended in /b, with no CPU time since.
  Snapshot s2;
  s2.cgroups = {Cgroup(100, "/a", 1000), Cgroup(200, "/b", 800)};
  s2.processes = {Process(10, 1, 200, 1000, /*exited=*/true),
                  Process(11, 2, 100, 800)};
  ASSERT_TRUE(state.Update({Zone("package", 0, 0)}, 0, &s2).ok());
  by_pid.clear();
  for (const ProcessEnergy& p : s2.energy.processes) by_pid[p.pid] = &p;
  ASSERT_TRUE(by_pid.contains(10));
  EXPECT_TRUE(by_pid[10]->exited);
  EXPECT_EQ(by_pid[10]->cgroup_id, 200u);
  EXPECT_EQ(by_pid[10]->dynamic_uj, 1000u);
  EXPECT_EQ(by_pid[10]->interval_dynamic_uj, 0);
}

TEST(EnergyStateTest, PerCpuWeightingWithEqualFrequenciesChangesNothing) {
  EnergyState mean, per_cpu;
  Snapshot a, b;
  a.cgroups =
      b.cgroups = {Cgroup(100, "/a", 1'000'003), Cgroup(200, "/b", 2'000'001)};
  a.processes = b.processes = {Process(10, 1, 100, 1'000'003),
                               Process(20, 2, 200, 2'000'001)};
  const uint64_t k10[] = {1, 1'000'002}, k20[] = {2'000'000, 1};
  per_cpu.ObserveOnCpu(Key(10, 1, 100), k10, 2);
  per_cpu.ObserveOnCpu(Key(20, 2, 200), k20, 2);
  mean.ObserveCpu(a);
  per_cpu.ObserveCpu(b);
  ASSERT_TRUE(mean.Attribute({Zone("package", 999'999, 0)},
                             IntervalFrequency{2'596'146, {}}, &a)
                  .ok());
  ASSERT_TRUE(per_cpu
                  .Attribute({Zone("package", 999'999, 0)},
                             IntervalFrequency{2'596'146, {2'596'146, 0}}, &b)
                  .ok());
  EXPECT_EQ(Rows(a), Rows(b));
  EXPECT_EQ(a.energy.weighting, "node-mean-frequency");
  EXPECT_EQ(b.energy.weighting, "per-cpu-frequency");
}

TEST(EnergyStateTest, PerCpuWeightingOfKernelThreadsAndUnknownFrequency) {
  EnergyState state;
  Snapshot s;
  // A kworker (the kernel workload) ran 1000 ns on the 3 GHz CPU and init
  // 1000 in the root cgroup on the 1 GHz one: the kworker's cycles are the
  // kernel workload's, 3 of every 4.
  s.cgroups = {Cgroup(1, "/", 1000),
               Cgroup(kKernelCgroupId, kKernelCgroupPath, 1000)};
  s.processes = {Process(40, 2, kKernelCgroupId, 1000, false, 2),
                 Process(1, 0, 1, 1000)};
  const uint64_t kw[] = {0, 1000}, init[] = {1000, 0};
  state.ObserveOnCpu(Key(40, 2, kKernelCgroupId), kw, 2);
  state.ObserveOnCpu(Key(1, 0, 1), init, 2);
  state.ObserveCpu(s);
  ASSERT_TRUE(
      state
          .Attribute({Zone("package", 4000, 0)},
                     IntervalFrequency{2'000'000, {1'000'000, 3'000'000}}, &s)
          .ok());
  EXPECT_EQ(At(s, "package", "/"), Row(1000, 0, 1000, 0));
  EXPECT_EQ(At(s, "package", "kernel"), Row(3000, 0, 3000, 0));
  EXPECT_EQ(At(s, "package", "__unattributed__"), Row(0, 0, 0, 0));
  // No frequency known at all: plain CPU time, per-CPU readings or not.
  Snapshot s2;
  s2.cgroups = {Cgroup(1, "/", 3000),
                Cgroup(kKernelCgroupId, kKernelCgroupPath, 3000)};
  s2.processes = {Process(40, 2, kKernelCgroupId, 3000, false, 2),
                  Process(1, 0, 1, 3000)};
  const uint64_t kw2[] = {0, 3000}, init2[] = {3000, 0};
  state.ObserveOnCpu(Key(40, 2, kKernelCgroupId), kw2, 2);
  state.ObserveOnCpu(Key(1, 0, 1), init2, 2);
  state.ObserveCpu(s2);
  ASSERT_TRUE(state
                  .Attribute({Zone("package", 4000, 0)},
                             IntervalFrequency{0, {1'000'000, 3'000'000}}, &s2)
                  .ok());
  EXPECT_EQ(std::get<2>(At(s2, "package", "/")), 2000);
  EXPECT_EQ(std::get<2>(At(s2, "package", "kernel")), 2000);
  EXPECT_EQ(s2.energy.weighting, "cpu-time");
  ExpectConserved(s2);
}

TEST(EnergyStateTest, PerCpuWeightingOnALargeNode) {
  // 256 CPUs, the first 128 at 1 GHz and the rest at 3 GHz; each cgroup
  // ran on two of them (values kept sparse per key).
  EnergyState state;
  std::vector<uint64_t> khz(256, 1'000'000);
  for (int c = 128; c < 256; ++c) khz[c] = 3'000'000;
  std::vector<uint64_t> a(256, 0), b(256, 0);
  for (int round = 1; round <= 2; ++round) {
    a[3] += 500, a[200] += 500;  // 500 + 1500 cycles per round
    b[7] += 1000, b[100] += 1000;
    Snapshot s;
    s.cgroups = {Cgroup(100, "/a", 1000ull * round),
                 Cgroup(200, "/b", 2000ull * round)};
    state.ObserveOnCpu(Key(1, 1, 100), a.data(), 256);
    state.ObserveOnCpu(Key(2, 2, 200), b.data(), 256);
    state.ObserveCpu(s);
    ASSERT_TRUE(state
                    .Attribute({Zone("package", 4000, 0)},
                               IntervalFrequency{2'000'000, khz}, &s)
                    .ok());
    // /a: 2000 cycles for 1000 ns; /b: 2000 cycles for 2000 ns.
    EXPECT_EQ(std::get<2>(At(s, "package", "/a")), 2000) << round;
    EXPECT_EQ(std::get<2>(At(s, "package", "/b")), 2000) << round;
  }
}

TEST(EnergyStateTest, ProcessEnergyIsExportedForTheTopProcessesOnly) {
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 6000)};
  s.processes = {Process(10, 1, 100, 1000), Process(11, 2, 100, 2000),
                 Process(12, 3, 100, 3000)};
  for (ProcessStats& p : s.processes) p.comm = absl::StrCat("w", p.pid);
  // dram is all idle here: no process has energy there, and no series.
  ASSERT_TRUE(state
                  .Update({Zone("package", 6'000'000, 0),
                           Zone("dram", 1'000'000, 1'000'000)},
                          0, &s)
                  .ok());
  for (const ProcessEnergy& p : s.energy.processes) {
    EXPECT_EQ(p.zone, "package");
  }
  ExpositionOptions top2;
  top2.process_top_n = 2;
  const std::string text = RenderSnapshotText(s, top2);
  EXPECT_THAT(text, HasSubstr("wattlens_process_energy_joules_total{pid="
                              "\"12\",comm=\"w12\",cgroup=\"/a\",zone="
                              "\"package\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_process_energy_joules_total{pid="
                              "\"11\",comm=\"w11\",cgroup=\"/a\",zone="
                              "\"package\"} 2\n"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("pid=\"10\"")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("wattlens_process_energy_joules_"
                                             "total{pid=\"12\",comm=\"w12\","
                                             "cgroup=\"/a\",zone=\"dram\"")));
  // A process idle in the next interval keeps its (cumulative) series.
  Snapshot s2 = s;
  s2.cgroups = {Cgroup(100, "/a", 7000)};
  s2.processes[0].cpu_ns = 2000;  // only pid 10 ran
  ASSERT_TRUE(state.Update({Zone("package", 1'000'000, 0)}, 0, &s2).ok());
  EXPECT_THAT(RenderSnapshotText(s2, top2),
              HasSubstr("wattlens_process_energy_joules_total{pid=\"12\","
                        "comm=\"w12\",cgroup=\"/a\",zone=\"package\"} "
                        "3\n"));
  // Off by default (--process_metrics_top_n 0).
  EXPECT_THAT(RenderSnapshotText(s2, ExpositionOptions{}),
              ::testing::Not(HasSubstr("wattlens_process_energy")));
}

TEST(EnergyStateTest, CpuBeyondCapacityIsDeferredWithItsWorkloads) {
  // Interval 1 measured 1200 ns of CPU against a capacity of 1000 (slices
  // harvested a tick late on a saturated node): the model turns 1000 into
  // energy (1 uJ/ns here) and 200 is deferred, a sixth of each workload's.
  EnergyState state;
  Snapshot s1;
  s1.cgroups = {Cgroup(100, "/a", 600), Cgroup(200, "/b", 600)};
  state.ObserveCpu(s1);
  EXPECT_EQ(state.LimitToCapacity(1000), 1000u);
  ASSERT_TRUE(state.Attribute({Zone("package", 1000, 0)}, 0, &s1).ok());
  EXPECT_EQ(At(s1, "package", "/a"), Row(500, 0, 500, 0));
  EXPECT_EQ(At(s1, "package", "/b"), Row(500, 0, 500, 0));
  // Interval 2: only /b ran (400 ns); with the 200 deferred, 600 fits.
  Snapshot s2;
  s2.cgroups = {Cgroup(100, "/a", 600), Cgroup(200, "/b", 1000)};
  state.ObserveCpu(s2);
  EXPECT_EQ(state.LimitToCapacity(1000), 600u);
  ASSERT_TRUE(state.Attribute({Zone("package", 600, 0)}, 0, &s2).ok());
  // Each got exactly its own CPU time's energy: /a 600, /b 1000 (a plain
  // carry of energy would have given /b all 600: /a 500, /b 1100).
  EXPECT_EQ(At(s2, "package", "/a"), Row(600, 0, 100, 0));
  EXPECT_EQ(At(s2, "package", "/b"), Row(1000, 0, 500, 0));
  ExpectConserved(s2);
  // Nothing left over: the next interval is plain again.
  Snapshot s3;
  s3.cgroups = {Cgroup(100, "/a", 700), Cgroup(200, "/b", 1000)};
  state.ObserveCpu(s3);
  EXPECT_EQ(state.LimitToCapacity(1000), 100u);
  ASSERT_TRUE(state.Attribute({Zone("package", 100, 0)}, 0, &s3).ok());
  EXPECT_EQ(std::get<2>(At(s3, "package", "/a")), 100);
}

TEST(EnergyStateTest, AccountingLagIsTakenAsItIs) {
  // Up to `lag` beyond capacity is used as measured (the model extends its
  // line), so each interval's energy stays exactly its CPU time's.
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 1004), Cgroup(200, "/b", 10)};
  state.ObserveCpu(s);
  EXPECT_EQ(state.LimitToCapacity(1000, 8), 1008u);  // 6 deferred
  ASSERT_TRUE(state.Attribute({Zone("package", 1008, 0)}, 0, &s).ok());
  ExpectConserved(s);
  Snapshot s2;
  s2.cgroups = {Cgroup(100, "/a", 1004), Cgroup(200, "/b", 10)};
  state.ObserveCpu(s2);
  EXPECT_EQ(state.LimitToCapacity(1000, 8), 6u);
  ASSERT_TRUE(state.Attribute({Zone("package", 6, 0)}, 0, &s2).ok());
  EXPECT_EQ(std::get<0>(At(s2, "package", "/a")), 1004u);
  EXPECT_EQ(std::get<0>(At(s2, "package", "/b")), 10u);
}

TEST(EnergyStateTest, SeveralZonesAreAttributedSeparately) {
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(100, "/a", 1), Cgroup(200, "/b", 2)};
  ASSERT_TRUE(state
                  .Update({Zone("package", 1001, 0), Zone("dram", 7, 7),
                           Zone("platform", 0, 0)},
                          0, &s)
                  .ok());
  EXPECT_EQ(At(s, "package", "/a"), Row(334, 0, 334, 0));
  EXPECT_EQ(At(s, "package", "/b"), Row(667, 0, 667, 0));
  EXPECT_EQ(At(s, "dram", "__idle__"), Row(0, 7, 0, 7));
  EXPECT_EQ(s.energy.zones.size(), 3u);
  ExpectConserved(s);
}

TEST(EnergyStateTest, ExpositionLinesSumToTheNodeTotal) {
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(1, "/", 0), Cgroup(100, "/a", 3'000),
               Cgroup(kKernelCgroupId, kKernelCgroupPath, 1'000)};
  // The identity stage's labels for the kernel threads.
  const identity::ProjectMap no_rules;
  s.cgroups[2].identity =
      identity::ResolveCgroup(kKernelCgroupPath, nullptr, no_rules,
                              identity::HintForCgroup(kKernelCgroupId))
          .labels;
  s.processes = {Process(40, 2, kKernelCgroupId, 1'000, false, 2)};
  ASSERT_TRUE(
      state.Update({Zone("package", 6'000'000, 2'000'000)}, 0, &s).ok());
  s.energy.method = {{"source", "model:ccf"}, {"idle_watts_per_vcpu", "0.74"}};
  s.energy.weighting = "per-cpu-frequency";
  s.energy.frequency_source = "cpuinfo-mhz";
  s.energy.frequency_khz = 2'596'146;
  std::string text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_THAT(text, HasSubstr("wattlens_node_energy_joules_total{zone="
                              "\"package\",source=\"model:ccf\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_power_watts{zone=\"package\","
                              "source=\"model:ccf\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_idle_power_watts{zone=\"package\","
                              "source=\"model:ccf\",method=\"model\"} 2\n"));
  // Workload series carry the identity labels (empty here).
  const std::string none =
      ",namespace=\"\",pod=\"\",container=\"\",workload_kind=\"\","
      "workload=\"\",project=\"\"";
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"/a\"" + none +
                              ",zone=\"package\",mode=\"dynamic\"} 3\n"));
  // The kernel threads: a workload with labels of its own.
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"kernel\",namespace=\"\",pod=\"\","
                              "container=\"\",workload_kind=\"kernel\","
                              "workload=\"kernel\",project=\"linux\","
                              "zone=\"package\",mode=\"dynamic\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"__unattributed__\"" + none +
                              ",zone=\"package\",mode=\"dynamic\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"__idle__\"" + none +
                              ",zone=\"package\",mode=\"idle\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_energy_attribution_info{source="
                              "\"model:ccf\",idle_watts_per_vcpu=\"0.74\","
                              "idle_policy=\"none\",weighting=\"per-cpu-"
                              "frequency\",frequency_source=\"cpuinfo-mhz\"} "
                              "1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_cpu_frequency_hertz{source="
                              "\"cpuinfo-mhz\"} 2596146000\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_energy_intervals_total{result="
                              "\"attributed\"} 1\n"));
  // No idle residency known: no idle-residency series (not silent zeros).
  EXPECT_THAT(text, ::testing::Not(HasSubstr("cpu_idle_seconds")));
}

// Provenance on /metrics: the source in use with measured or modelled, and
// every rejected source with its reason.
TEST(EnergyStateTest, ExpositionSaysWhichSourceIsBelievedAndWhichNot) {
  EnergyState state;
  Snapshot s;
  s.cgroups = {Cgroup(1, "/", 0), Cgroup(100, "/a", 3'000)};
  ASSERT_TRUE(state.Update({Zone("package", 6'000'000, 0)}, 0, &s).ok());
  s.energy.power_source = "model:ccf";
  s.energy.power_rejected = {
      {"perf-power", "stuck", "energy-psys (psys) did not advance"},
      {"rapl-powercap", "absent", "no powercap class"}};
  std::string text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_THAT(text, HasSubstr("wattlens_agent_power_source_in_use{source="
                              "\"model:ccf\",provenance=\"modelled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_power_source_rejected{source="
                              "\"perf-power\",reason=\"stuck\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_power_source_rejected{source="
                              "\"rapl-powercap\",reason=\"absent\"} 1\n"));
  s.energy.power_source = "rapl-powercap";
  s.energy.power_measured = true;
  s.energy.power_rejected.clear();
  text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_THAT(text, HasSubstr("wattlens_agent_power_source_in_use{source="
                              "\"rapl-powercap\",provenance=\"measured\"} "
                              "1\n"));
  EXPECT_THAT(
      text, ::testing::Not(HasSubstr("wattlens_agent_power_source_rejected{")));
}

TEST(EnergyStateTest, DisabledEnergyRendersNothing) {
  Snapshot s;
  std::string text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_THAT(text, ::testing::Not(HasSubstr("energy")));
}

}  // namespace
}  // namespace wattlens
