// SPDX-License-Identifier: Apache-2.0
// Counter rules that a buggy or hostile agent cannot abuse, epochs that do
// not trust the agent's wall clock, per-workload refusal, and series freed
// after retention.
#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/cluster_state.h"
#include "collector/validate.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace wattlens::collector {
namespace {

using google::protobuf::util::TimeUtil;
using wattlens::v1::NodeReport;

constexpr int64_t kSecond = 1'000'000'000;

class IntegrityTest : public ::testing::Test {
 protected:
  // A report of `node` covering the last 10 s on a node with `cpus` CPUs.
  NodeReport Report(uint64_t epoch, uint64_t seq, uint64_t cpu,
                    uint64_t syscalls = 0, const std::string& node = "n1",
                    uint32_t cpus = 2) {
    NodeReport r;
    r.set_node_name(node);
    r.set_epoch(epoch);
    r.set_sequence(seq);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock_.RealtimeNs());
    r.mutable_interval()->set_seconds(10);
    r.mutable_node()->set_cpus(cpus);
    auto* w = r.add_workloads();
    w->mutable_identity()->set_cgroup_path("/system.slice/a.service");
    w->mutable_identity()->set_cgroup_id(1);
    w->set_cpu_nanoseconds(cpu);
    w->set_syscalls(syscalls);
    return r;
  }
  Counters Total(const std::string& node = "") {
    wattlens::v1::GetUsageRequest req;
    req.mutable_window()->set_seconds(3600);
    req.set_node_name(node);
    auto r = state_.GetUsage(req);
    EXPECT_TRUE(r.ok()) << r.status();
    Counters c;
    c.cpu_ns = r->total().cpu_nanoseconds();
    c.syscalls = r->total().syscalls();
    return c;
  }
  ApplyResult Apply(const NodeReport& r) {
    EXPECT_TRUE(ValidateReport(r, ReportLimits{}).ok());
    ApplyResult res = state_.Apply(r, nullptr);
    clock_.AdvanceNs(10 * kSecond);
    return res;
  }

  FakeClock clock_{1'000'000'000'000};
  ClusterState state_{clock_, ClusterOptions{}};
};

TEST(ValidateFilterTest, OneBadWorkloadIsLeftOutAndCountedNotTheReport) {
  NodeReport r;
  r.set_node_name("n1");
  r.set_epoch(1);
  r.set_sequence(1);
  r.mutable_time()->set_seconds(1'700'000'000);
  auto add = [&](const std::string& path, uint64_t cpu) {
    auto* w = r.add_workloads();
    w->mutable_identity()->set_cgroup_path(path);
    w->set_cpu_nanoseconds(cpu);
    return w;
  };
  add("/good", 1);
  add("<deleted>/42", 2);           // not under /
  add("/ctl\x01", 3);               // control byte
  add("/good", 4);                  // repeated
  add("/huge", uint64_t{1} << 63);  // out of range
  add("/unit", 5)->mutable_identity()->set_systemd_unit(std::string(254, 'u'));
  add("/also-good", 6);
  EXPECT_FALSE(ValidateReport(r, ReportLimits{}).ok());  // strict: refused
  WorkloadRefusalCounters refused;
  auto removed = ValidateAndFilterReport(r, ReportLimits{}, &refused);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 5u);
  ASSERT_EQ(r.workloads_size(), 2);
  EXPECT_EQ(r.workloads(0).identity().cgroup_path(), "/good");
  EXPECT_EQ(r.workloads(0).cpu_nanoseconds(), 1u);
  EXPECT_EQ(r.workloads(1).identity().cgroup_path(), "/also-good");
  EXPECT_EQ(refused.Get(WorkloadRefusal::kPath), 2u);
  EXPECT_EQ(refused.Get(WorkloadRefusal::kRepeated), 1u);
  EXPECT_EQ(refused.Get(WorkloadRefusal::kCounterRange), 1u);
  EXPECT_EQ(refused.Get(WorkloadRefusal::kLabel), 1u);
  // The report's own fields still refuse it whole.
  r.set_node_name("bad name");
  EXPECT_FALSE(ValidateAndFilterReport(r, ReportLimits{}, &refused).ok());
}

TEST(ValidateFilterTest, BadOrRepeatedEnergyBucketIsLeftOutAndCounted) {
  NodeReport r;
  r.set_node_name("n1");
  r.set_epoch(1);
  r.set_sequence(1);
  r.mutable_time()->set_seconds(1'700'000'000);
  auto add = [&](wattlens::v1::EnergyBucket bucket, uint64_t uj) {
    auto* b = r.add_energy_buckets();
    b->set_bucket(bucket);
    auto* e = b->add_energy();
    e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
    e->set_mode(wattlens::v1::ENERGY_MODE_IDLE);
    e->set_microjoules(uj);
    return b;
  };
  add(wattlens::v1::ENERGY_BUCKET_IDLE, 1);
  add(wattlens::v1::ENERGY_BUCKET_UNSPECIFIED, 2);     // unknown
  add(wattlens::v1::ENERGY_BUCKET_IDLE, 3);            // repeated
  add(static_cast<wattlens::v1::EnergyBucket>(7), 4);  // unknown
  add(wattlens::v1::ENERGY_BUCKET_UNATTRIBUTED, 5)
      ->mutable_energy(0)
      ->set_zone(static_cast<wattlens::v1::EnergyZone>(99));  // bad zone
  // The same bucket also sent as an old agent's workload.
  r.add_workloads()->mutable_identity()->set_cgroup_path("__idle__");
  r.add_workloads()->mutable_identity()->set_cgroup_path("__unattributed__");
  EXPECT_FALSE(ValidateReport(r, ReportLimits{}).ok());  // strict: refused
  WorkloadRefusalCounters refused;
  auto removed = ValidateAndFilterReport(r, ReportLimits{}, &refused);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 5u);
  ASSERT_EQ(r.energy_buckets_size(), 1);
  EXPECT_EQ(r.energy_buckets(0).bucket(), wattlens::v1::ENERGY_BUCKET_IDLE);
  EXPECT_EQ(r.energy_buckets(0).energy(0).microjoules(), 1u);
  ASSERT_EQ(r.workloads_size(), 1);
  EXPECT_EQ(r.workloads(0).identity().cgroup_path(), "__unattributed__");
  EXPECT_EQ(refused.Get(WorkloadRefusal::kPath), 2u);
  EXPECT_EQ(refused.Get(WorkloadRefusal::kRepeated), 2u);
  EXPECT_EQ(refused.Get(WorkloadRefusal::kEnergy), 1u);
  // More than any agent sends refuses the report.
  for (int i = 0; i < 8; ++i) add(wattlens::v1::ENERGY_BUCKET_IDLE, 1);
  EXPECT_FALSE(ValidateAndFilterReport(r, ReportLimits{}, &refused).ok());
}

TEST(ValidateFilterTest, AgentPlaceholdersPassTheCollectorsValidation) {
  NodeReport r;
  r.set_node_name("n1");
  r.set_epoch(1);
  r.set_sequence(1);
  r.mutable_time()->set_seconds(1'700'000'000);
  for (const std::string& path :
       {absl::StrCat(report_limits::kDeletedCgroupPrefix, 12345),
        std::string(report_limits::kOverflowCgroupPath)}) {
    r.add_workloads()->mutable_identity()->set_cgroup_path(path);
  }
  EXPECT_TRUE(ValidateReport(r, ReportLimits{}).ok());
}

TEST_F(IntegrityTest, RestartAfterTheClockSteppedBackIsANewEpoch) {
  // The first instance started at epoch 1000; the clock stepped back and
  // the restarted agent's epoch is 500.
  for (uint64_t seq = 1; seq <= 5; ++seq) Apply(Report(1000, seq, seq * 100));
  EXPECT_EQ(Total().cpu_ns, 500u);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    const ApplyResult res = Apply(Report(500, seq, seq * 10));
    EXPECT_FALSE(res.duplicate) << seq;
  }
  EXPECT_EQ(Total().cpu_ns, 530u);  // before: 500, every restart report lost
  // The replaced instance, late: adds nothing, and never comes back.
  EXPECT_TRUE(Apply(Report(1000, 6, 9000)).stale_epoch);
  EXPECT_EQ(Total().cpu_ns, 530u);
  EXPECT_FALSE(Apply(Report(500, 4, 40)).duplicate);
  EXPECT_EQ(Total().cpu_ns, 540u);
}

TEST_F(IntegrityTest, UnseenLowerEpochWithMoreReportsWaitsForSilence) {
  Apply(Report(1000, 1, 100));
  Apply(Report(1000, 2, 200));
  state_.Apply(Report(1000, 3, 300), nullptr);
  // An older-by-sequence instance while the current one reports: refused.
  ApplyResult res = state_.Apply(Report(900, 50, 7), nullptr);
  EXPECT_TRUE(res.stale_epoch);
  clock_.AdvanceNs(kSecond);
  Apply(Report(1000, 4, 400));
  // The current epoch falls silent: the lower one takes over.
  clock_.AdvanceNs(ClusterOptions{}.epoch_silence_ns);
  res = Apply(Report(900, 51, 7));
  EXPECT_FALSE(res.duplicate);
  EXPECT_TRUE(res.new_epoch);
  EXPECT_EQ(Total().cpu_ns, 407u);
}

TEST_F(IntegrityTest, OneFieldGoingBackwardsDoesNotReAddTheOthers) {
  Apply(Report(1, 1, 1'000'000, 100));
  Apply(Report(1, 2, 2'000'000, 50));  // syscalls reset, CPU grew by 1 ms
  const Counters t = Total();
  EXPECT_EQ(t.cpu_ns, 2'000'000u);  // before: 3'000'000
  EXPECT_EQ(t.syscalls, 150u);
  EXPECT_EQ(state_.stats().counter_resets.load(), 1u);
}

TEST_F(IntegrityTest, CpuGrowthIsBoundedByTimeTimesCpus) {
  Apply(Report(1, 1, 0));
  // 10 s later on 2 CPUs: at most (10 s + slack) x 2 of CPU time.
  Apply(Report(1, 2, 1'000 * kSecond));
  const uint64_t cpu = Total().cpu_ns;
  EXPECT_GE(cpu, 20u * kSecond);
  EXPECT_LE(cpu, 24u * kSecond);
  EXPECT_EQ(state_.stats().capped_cpu.load(), 1u);
  // A value near 2^62 in a new epoch: bounded by what the epoch covered.
  Apply(Report(2, 1, uint64_t{1} << 62));
  EXPECT_LE(Total().cpu_ns, cpu + 24u * kSecond);
  EXPECT_EQ(state_.stats().capped_cpu.load(), 2u);
}

TEST(CountersTest, SumsSaturateInsteadOfWrapping) {
  Counters a, b;
  a.cpu_ns = UINT64_MAX - 1;
  a.syscalls = 5;
  b.cpu_ns = 10;
  b.syscalls = 6;
  EXPECT_TRUE(a.Add(b));
  EXPECT_EQ(a.cpu_ns, UINT64_MAX);
  EXPECT_EQ(a.syscalls, 11u);
  EXPECT_FALSE(b.Add(b));
}

// Property: whatever one hostile agent sends (resets, wraps, values up to the
// validation limit, steps back), an honest node's totals stay exact, the
// hostile node's CPU total stays within its CPUs x the time covered, and the
// cluster total never goes backwards.
TEST_F(IntegrityTest, RandomHostileStreamsNeverCorruptTotals) {
  std::mt19937_64 rng(17);
  uint64_t honest_cpu = 0, honest_sys = 0;
  uint64_t hostile_epoch = 1, hostile_seq = 0;
  uint64_t prev_total = 0;
  constexpr uint32_t kHostileCpus = 4;
  const int64_t start = clock_.RealtimeNs();
  for (int round = 0; round < 300; ++round) {
    honest_cpu += rng() % (15 * kSecond);  // < 2 CPUs x 10 s
    honest_sys += rng() % 100000;
    ASSERT_FALSE(
        state_
            .Apply(Report(1, round + 1, honest_cpu, honest_sys, "honest"),
                   nullptr)
            .duplicate);
    uint64_t cpu, sys;
    switch (rng() % 6) {
      case 0:
        cpu = uint64_t{1} << 62;
        sys = uint64_t{1} << 61;
        break;
      case 1:
        cpu = 0;  // reset
        sys = rng() % 1000;
        break;
      case 2:
        cpu = (uint64_t{1} << 62) - rng() % 1000;
        sys = cpu / 2;
        break;
      case 3:
        ++hostile_epoch;  // a restart
        hostile_seq = 0;
        cpu = rng() % (uint64_t{1} << 62);
        sys = rng() % 1000;
        break;
      default:
        cpu = rng() % (uint64_t{1} << 62);
        sys = rng() % (uint64_t{1} << 40);
        break;
    }
    NodeReport h =
        Report(hostile_epoch, ++hostile_seq, cpu, sys, "hostile", kHostileCpus);
    if (rng() % 4 == 0) {  // the agent's clock jumps
      *h.mutable_time() = TimeUtil::NanosecondsToTimestamp(
          clock_.RealtimeNs() + static_cast<int64_t>(rng() % (3600 * kSecond)) -
          1800 * kSecond);
    }
    WorkloadRefusalCounters refused;
    ASSERT_TRUE(ValidateAndFilterReport(h, ReportLimits{}, &refused).ok());
    state_.Apply(h, nullptr);
    clock_.AdvanceNs(10 * kSecond);
    const uint64_t total = Total().cpu_ns;
    ASSERT_GE(total, prev_total) << "round " << round;
    prev_total = total;
  }
  EXPECT_EQ(Total("honest").cpu_ns, honest_cpu);
  EXPECT_EQ(Total("honest").syscalls, honest_sys);
  // The node's first report may cover 31 days (a collector meeting an agent
  // that ran for long); within an epoch report times may range from the
  // retention's start to 600 s ahead (the skew allowed); each report adds
  // its slack.
  const uint64_t covered = static_cast<uint64_t>(clock_.RealtimeNs() - start);
  const uint64_t per_epoch = (24 * 3600 + 600 + 20) * kSecond;
  const uint64_t bound =
      kHostileCpus * (31 * 86400 * kSecond + covered + 300 * 2 * kSecond +
                      hostile_epoch * per_epoch);
  EXPECT_LE(Total("hostile").cpu_ns, bound);
  EXPECT_GT(state_.stats().capped_cpu.load(), 0u);
}

TEST(SeriesRetentionTest, ChurnedSeriesAreFreedAfterRetention) {
  FakeClock clock(1'000'000'000'000);
  ClusterOptions o;
  o.retention_ns = 3600 * kSecond;
  ClusterState state(clock, o);
  // 100,000 short-lived cgroups, 1,000 per report, on a live node.
  uint64_t seq = 0;
  for (int batch = 0; batch < 100; ++batch) {
    NodeReport r;
    r.set_node_name("n1");
    r.set_epoch(1);
    r.set_sequence(++seq);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock.RealtimeNs());
    r.mutable_interval()->set_seconds(10);
    for (int i = 0; i < 1000; ++i) {
      auto* w = r.add_workloads();
      w->mutable_identity()->set_cgroup_path(
          absl::StrCat("/job.slice/run-", batch, "-", i, ".scope"));
      w->mutable_identity()->set_cgroup_id(1000 * batch + i + 10);
      w->set_cpu_nanoseconds(1000);
    }
    auto* steady = r.add_workloads();
    steady->mutable_identity()->set_cgroup_path("/system.slice/steady.service");
    steady->mutable_identity()->set_cgroup_id(1);
    steady->set_cpu_nanoseconds(5);  // reported every time, never grows
    state.Apply(r, nullptr);
    clock.AdvanceNs(10 * kSecond);
  }
  EXPECT_EQ(state.CountStates().series, 100'001u);
  // Past retention the node still reports, only its steady service.
  for (int i = 0; i < 400; ++i) {
    NodeReport r;
    r.set_node_name("n1");
    r.set_epoch(1);
    r.set_sequence(++seq);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock.RealtimeNs());
    r.mutable_interval()->set_seconds(10);
    auto* steady = r.add_workloads();
    steady->mutable_identity()->set_cgroup_path("/system.slice/steady.service");
    steady->mutable_identity()->set_cgroup_id(1);
    steady->set_cpu_nanoseconds(5);
    state.Apply(r, nullptr);
    clock.AdvanceNs(10 * kSecond);
    state.Tick();
  }
  const auto counts = state.CountStates();
  EXPECT_EQ(counts.connected, 1u);
  EXPECT_EQ(counts.series, 1u);  // before: 100,001
  EXPECT_EQ(state.stats().series_freed.load(), 100'000u);
  // The steady service kept its baseline: its next report adds nothing.
  wattlens::v1::GetUsageRequest req;
  req.mutable_window()->set_seconds(600);
  auto usage = state.GetUsage(req);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->total().cpu_nanoseconds(), 0u);
}

}  // namespace
}  // namespace wattlens::collector
