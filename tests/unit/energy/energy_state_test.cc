// EnergyState against hand-made snapshots: per-interval CPU deltas,
// cumulative counters, exited processes, kernel threads, idle policies and
// the exposition of the result.
#include <map>
#include <string>
#include <tuple>

#include "agent/export/prometheus_collectable.h"
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
// and cumulatively, for every zone.
void ExpectConserved(const Snapshot& s) {
  for (const NodeZoneEnergy& z : s.energy.zones) {
    int64_t interval = 0;
    uint64_t total = 0;
    for (const WorkloadEnergy& w : s.energy.workloads) {
      if (w.zone != z.zone) continue;
      interval += w.interval_dynamic_uj + w.interval_idle_uj;
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

TEST(EnergyStateTest, KernelThreadsGoToUnattributed) {
  EnergyState state;
  Snapshot s;
  // The root cgroup ran 1000 ns: kthreadd 100, a kworker 200 (ppid 2),
  // init 700.
  s.cgroups = {Cgroup(1, "/", 1000)};
  s.processes = {Process(2, 1, 1, 100, false, 0),
                 Process(40, 2, 1, 200, false, 2), Process(1, 0, 1, 700)};
  ASSERT_TRUE(state.Update({Zone("package", 10'000, 0)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "/"), Row(7000, 0, 7000, 0));
  EXPECT_EQ(At(s, "package", "__unattributed__"), Row(3000, 0, 3000, 0));
  EXPECT_TRUE(IsKernelThread(s.processes[0]));
  EXPECT_TRUE(IsKernelThread(s.processes[1]));
  EXPECT_FALSE(IsKernelThread(s.processes[2]));
  ExpectConserved(s);
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
  c.cpu_request_millicores = [](uint64_t id) -> uint64_t {
    return id == 100 ? 500 : id == 200 ? 1500 : 0;
  };
  EnergyState state(c);
  Snapshot s;
  // /b requested CPU but did not run this interval: it still pays its
  // share of idle, and no dynamic energy.
  s.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 0)};
  ASSERT_TRUE(state.Update({Zone("package", 1000, 400)}, 0, &s).ok());
  EXPECT_EQ(At(s, "package", "/a"), Row(600, 50, 600, 50));
  EXPECT_EQ(At(s, "package", "/b"), Row(0, 150, 0, 150));
  EXPECT_EQ(At(s, "package", "__idle__"), Row(0, 200, 0, 200));
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

TEST(EnergyStateTest, RemovedCgroupIsForgotten) {
  EnergyState state;
  Snapshot s1;
  s1.cgroups = {Cgroup(100, "/a", 100), Cgroup(200, "/b", 100)};
  ASSERT_TRUE(state.Update({Zone("package", 200, 0)}, 0, &s1).ok());
  Snapshot s2;  // /b was exported as gone last time; now it is not listed
  s2.cgroups = {Cgroup(100, "/a", 200)};
  ASSERT_TRUE(state.Update({Zone("package", 200, 0)}, 0, &s2).ok());
  EXPECT_FALSE(Has(s2, "package", "/b"));
  EXPECT_EQ(At(s2, "package", "/a"), Row(300, 0, 200, 0));
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
  s.cgroups = {Cgroup(1, "/", 0), Cgroup(100, "/a", 3'000)};
  s.processes = {Process(40, 2, 1, 1'000, false, 2)};
  ASSERT_TRUE(
      state.Update({Zone("package", 6'000'000, 2'000'000)}, 0, &s).ok());
  s.energy.method = {{"source", "model:ccf"}, {"idle_watts_per_vcpu", "0.74"}};
  s.energy.weighting = "uniform-frequency";
  s.energy.frequency_source = "cpuinfo-mhz";
  s.energy.frequency_khz = 2'596'146;
  std::string text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_THAT(text, HasSubstr("wattlens_node_energy_joules_total{zone="
                              "\"package\",source=\"model:ccf\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_power_watts{zone=\"package\","
                              "source=\"model:ccf\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_idle_power_watts{zone=\"package\","
                              "source=\"model:ccf\",method=\"model\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"/a\",zone=\"package\",mode=\"dynamic\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"__unattributed__\",zone=\"package\",mode="
                              "\"dynamic\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_energy_joules_total{cgroup="
                              "\"__idle__\",zone=\"package\",mode=\"idle\"} "
                              "2\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_energy_attribution_info{source="
                              "\"model:ccf\",idle_watts_per_vcpu=\"0.74\","
                              "idle_policy=\"none\",weighting=\"uniform-"
                              "frequency\",frequency_source=\"cpuinfo-mhz\"} "
                              "1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_cpu_frequency_hertz{source="
                              "\"cpuinfo-mhz\"} 2596146000\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_energy_intervals_total{result="
                              "\"attributed\"} 1\n"));
  // No idle residency known: no idle-residency series (not silent zeros).
  EXPECT_THAT(text, ::testing::Not(HasSubstr("cpu_idle_seconds")));
}

TEST(EnergyStateTest, DisabledEnergyRendersNothing) {
  Snapshot s;
  std::string text = RenderSnapshotText(s, ExpositionOptions{});
  EXPECT_THAT(text, ::testing::Not(HasSubstr("energy")));
}

}  // namespace
}  // namespace wattlens
