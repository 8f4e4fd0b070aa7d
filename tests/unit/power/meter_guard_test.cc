// SPDX-License-Identifier: Apache-2.0
// MeterGuard: dead, stuck, jumping, wrapping, backwards and psys-only meters
// on fake trees and a fake perf backend, each against the model behind it.
#include "agent/power/meter_guard.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/common/clock.h"
#include "agent/power/perf_power.h"
#include "agent/power/power_model.h"
#include "agent/power/probe.h"
#include "agent/power/rapl_powercap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/power/fake_tree.h"

namespace wattlens::power {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempTree;

constexpr int64_t kInterval = 500'000'000;  // 0.5 s, the agent's default
constexpr char kPmu[] = "/sys/bus/event_source/devices/power";
constexpr double kCountsPerJoule = 4294967296.0;  // scale 2^-32 J
constexpr char kRapl[] = "/sys/class/powercap/intel-rapl:0";

// The load of one interval: `busy_ms` of CPU time in 500 ms.
IntervalLoad Load(int busy_ms) {
  return {kInterval, static_cast<uint64_t>(busy_ms) * 1'000'000};
}

class FixedUtilisation final : public UtilisationSource {
 public:
  absl::StatusOr<double> Next() override { return 0.5; }
};

void Proc(const TempTree& tree) {
  tree.Write("/proc/cpuinfo",
             "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
             "model\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL "
             "CPU @ 2.50GHz\nstepping\t: 7\n\nprocessor\t: 1\n");
  tree.Write("/proc/meminfo", "MemTotal:        8000000 kB\n");
}

// A perf power PMU with the given events ("energy-psys", "energy-pkg").
void Pmu(const TempTree& tree, const std::vector<std::string>& events) {
  tree.Write(std::string(kPmu) + "/type", "23\n");
  tree.Write(std::string(kPmu) + "/cpumask", "0\n");
  int config = 1;
  for (const std::string& name : events) {
    const std::string base = std::string(kPmu) + "/events/" + name;
    tree.Write(base, absl::StrCat("event=0x0", config++, "\n"));
    tree.Write(base + ".scale", "2.3283064365386962890625e-10\n");
    tree.Write(base + ".unit", "Joules\n");
  }
}

// Counters by config; every Read() adds `step[config]` first.
class ScriptedPerfBackend final : public PerfCounterBackend {
 public:
  absl::StatusOr<int> Open(uint32_t, uint64_t config, int) override {
    return static_cast<int>(config);
  }
  absl::StatusOr<uint64_t> Read(int handle) override {
    uint64_t& v = value[handle];
    v += step[handle];
    return v;
  }
  void Close(int) override {}
  std::map<int, uint64_t> value;
  std::map<int, int64_t> step;  // may be negative: the counter goes down
};

// RAPL package (and optionally core) zones with a wrap range.
void Rapl(const TempTree& tree, uint64_t package_uj, uint64_t range_uj,
          std::optional<uint64_t> core_uj = std::nullopt) {
  tree.Write(absl::StrCat(kRapl, "/name"), "package-0\n");
  tree.Write(absl::StrCat(kRapl, "/energy_uj"), absl::StrCat(package_uj, "\n"));
  tree.Write(absl::StrCat(kRapl, "/max_energy_range_uj"),
             absl::StrCat(range_uj, "\n"));
  if (core_uj) {
    tree.Write(absl::StrCat(kRapl, ":0/name"), "core\n");
    tree.Write(absl::StrCat(kRapl, ":0/energy_uj"),
               absl::StrCat(*core_uj, "\n"));
    tree.Write(absl::StrCat(kRapl, ":0/max_energy_range_uj"),
               absl::StrCat(range_uj, "\n"));
  }
}

class MeterGuardTest : public ::testing::Test {
 protected:
  void SetUp() override { Proc(tree_); }

  // The guard over `meter` (initialised here) and the model behind it.
  MeterGuard Guard(std::unique_ptr<PowerSource> meter) {
    std::vector<std::unique_ptr<PowerSource>> sources;
    if (meter) {
      EXPECT_TRUE(meter->Init().ok()) << meter->last_error();
      sources.push_back(std::move(meter));
    }
    auto model = std::make_unique<ModelSource>(
        tree_.fs(), clock_, std::make_shared<FixedUtilisation>());
    EXPECT_TRUE(model->Init().ok()) << model->last_error();
    sources.push_back(std::move(model));
    MeterCheckConfig config;
    config.cpus = 2;
    return MeterGuard(std::move(sources), {}, config);
  }

  static std::string SourceOf(const PowerSample& s) {
    return s.readings.empty() ? "" : s.readings[0].source;
  }
  static std::vector<std::string> Rejected(const MeterGuard& g) {
    std::vector<std::string> out;
    for (const RejectedSource& r : g.rejected()) {
      out.push_back(
          absl::StrCat(r.source, ":", SourceRejectReasonName(r.reason)));
    }
    return out;
  }

  TempTree tree_;
  FakeClock clock_;
};

// The field defect: a perf power PMU whose only event, energy-psys, reads 0.
// It is rejected at its first interval, and the model supplies that very
// interval, so no energy is lost.
TEST_F(MeterGuardTest, DeadPsysOnlyPerfMeterIsRejectedAndTheModelTakesOver) {
  MeterGuard guard = Guard(DeadPerfPowerSourceForTest(clock_));
  EXPECT_EQ(guard.current()->name(), "perf-power");
  clock_.AdvanceNs(kInterval);
  absl::StatusOr<PowerSample> s = guard.Sample(Load(0));  // idle, even
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(SourceOf(*s), "model:ccf");
  EXPECT_GT(s->Totals()[Zone::kPackage].energy_uj, 0);
  EXPECT_THAT(Rejected(guard), ElementsAre("perf-power:stuck"));
  EXPECT_THAT(guard.rejected()[0].detail,
              HasSubstr("energy-psys (psys) did not advance over 500 ms"));
  EXPECT_EQ(guard.current()->name(), "model:ccf");
  EXPECT_FALSE(guard.measured());
  // It stays rejected: later intervals never ask it again.
  clock_.AdvanceNs(kInterval);
  ASSERT_TRUE(guard.Sample(Load(400)).ok());
  EXPECT_EQ(guard.rejected().size(), 1u);
}

TEST_F(MeterGuardTest, WorkingPsysOnlyMeterIsBelievedAsTheWholePlatform) {
  Pmu(tree_, {"energy-psys"});
  auto backend = std::make_shared<ScriptedPerfBackend>();
  backend->step[1] = static_cast<int64_t>(20 * 0.5 * kCountsPerJoule);  // 20 W
  MeterGuard guard =
      Guard(std::make_unique<PerfPowerSource>(tree_.fs(), clock_, backend));
  clock_.AdvanceNs(kInterval);
  absl::StatusOr<PowerSample> s = guard.Sample(Load(300));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "perf-power");
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].zone, Zone::kPsys);
  EXPECT_EQ(s->readings[0].energy_uj, 10'000'000);
  EXPECT_TRUE(IsWholePlatformZone(Zone::kPsys, false));
  EXPECT_TRUE(guard.measured());
  EXPECT_TRUE(guard.rejected().empty());
}

TEST_F(MeterGuardTest, StuckRaplPackageIsRejectedBusyOrNot) {
  Rapl(tree_, 5'000'000, 262'143'328'850);
  MeterGuard guard =
      Guard(std::make_unique<RaplPowercapSource>(tree_.fs(), clock_));
  clock_.AdvanceNs(kInterval);  // energy_uj unchanged
  absl::StatusOr<PowerSample> s = guard.Sample(Load(0));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "model:ccf");
  EXPECT_THAT(Rejected(guard), ElementsAre("rapl-powercap:stuck"));
}

// Cores may idle at next to nothing; while the CPUs are busy (by the CPU
// time the agent measured, not the wall clock) a core counter that stands
// still is dead.
TEST_F(MeterGuardTest, CoreCounterMustAdvanceOnlyWhileBusy) {
  Rapl(tree_, 5'000'000, 262'143'328'850, 1'000);
  MeterGuard guard =
      Guard(std::make_unique<RaplPowercapSource>(tree_.fs(), clock_));
  tree_.Write(absl::StrCat(kRapl, "/energy_uj"), "8000000\n");  // 6 W
  clock_.AdvanceNs(kInterval);
  ASSERT_TRUE(guard.Sample(Load(10)).ok());  // 2 % of one CPU: idle
  EXPECT_TRUE(guard.rejected().empty());
  EXPECT_TRUE(guard.measured());
  tree_.Write(absl::StrCat(kRapl, "/energy_uj"), "15000000\n");
  clock_.AdvanceNs(kInterval);
  absl::StatusOr<PowerSample> s = guard.Sample(Load(900));  // busy
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "model:ccf");
  EXPECT_THAT(Rejected(guard), ElementsAre("rapl-powercap:stuck"));
  EXPECT_THAT(guard.rejected()[0].detail, HasSubstr("with 900 ms on-CPU"));
}

// A RAPL counter that wraps (max_energy_range_uj) is a working meter.
TEST_F(MeterGuardTest, WrappingRaplCounterIsBelieved) {
  constexpr uint64_t kRange = 65'532'610'987;  // some AMD parts
  Rapl(tree_, kRange - 1'000'000, kRange);
  MeterGuard guard =
      Guard(std::make_unique<RaplPowercapSource>(tree_.fs(), clock_));
  tree_.Write(absl::StrCat(kRapl, "/energy_uj"), "4000000\n");  // wrapped
  clock_.AdvanceNs(kInterval);
  absl::StatusOr<PowerSample> s = guard.Sample(Load(500));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "rapl-powercap");
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].energy_uj, 5'000'000);  // 10 W across the wrap
  EXPECT_EQ(s->readings[0].wraps, 1u);
  EXPECT_TRUE(guard.rejected().empty());
}

// A counter that jumps far beyond what the node can draw: one interval is
// dropped (the model covers it), a second in a row rejects the meter.
TEST_F(MeterGuardTest, JumpingMeterIsRejectedAsImplausible) {
  Pmu(tree_, {"energy-pkg"});
  auto backend = std::make_shared<ScriptedPerfBackend>();
  // 600 W on a 2-CPU node: above max(500 W × 1 socket, 12 W × 2 CPUs).
  backend->step[1] = static_cast<int64_t>(600 * 0.5 * kCountsPerJoule);
  MeterGuard guard =
      Guard(std::make_unique<PerfPowerSource>(tree_.fs(), clock_, backend));
  clock_.AdvanceNs(kInterval);
  absl::StatusOr<PowerSample> first = guard.Sample(Load(500));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(SourceOf(*first), "model:ccf");  // dropped, covered
  EXPECT_TRUE(guard.rejected().empty());     // one glitch is tolerated
  clock_.AdvanceNs(kInterval);
  ASSERT_TRUE(guard.Sample(Load(500)).ok());
  EXPECT_THAT(Rejected(guard), ElementsAre("perf-power:implausible"));
  EXPECT_THAT(guard.rejected()[0].detail, HasSubstr("600.0 W"));
}

// A meter is used only once it passed a judged interval: a first interval
// too short to judge is covered by the model, even for a working meter.
TEST_F(MeterGuardTest, UnjudgedMeterIsNotUsedYet) {
  Rapl(tree_, 5'000'000, 262'143'328'850);
  MeterGuard guard =
      Guard(std::make_unique<RaplPowercapSource>(tree_.fs(), clock_));
  tree_.Write(absl::StrCat(kRapl, "/energy_uj"), "5000000\n");
  clock_.AdvanceNs(10'000'000);  // 10 ms, standing still: not judged
  absl::StatusOr<PowerSample> s = guard.Sample({10'000'000, 0});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "model:ccf");
  EXPECT_TRUE(guard.rejected().empty());
  tree_.Write(absl::StrCat(kRapl, "/energy_uj"), "8000000\n");
  clock_.AdvanceNs(kInterval);
  s = guard.Sample(Load(0));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "rapl-powercap");
  EXPECT_EQ(s->readings[0].energy_uj, 3'000'000);
  tree_.Write(absl::StrCat(kRapl, "/energy_uj"), "8100000\n");
  clock_.AdvanceNs(10'000'000);  // short again, but now verified
  s = guard.Sample({10'000'000, 0});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "rapl-powercap");
}

// Just under the ceiling is believed: the bound rejects the impossible only.
TEST_F(MeterGuardTest, PowerJustUnderTheCeilingIsBelieved) {
  Pmu(tree_, {"energy-pkg"});
  auto backend = std::make_shared<ScriptedPerfBackend>();
  backend->step[1] = static_cast<int64_t>(499 * 0.5 * kCountsPerJoule);
  MeterGuard guard =
      Guard(std::make_unique<PerfPowerSource>(tree_.fs(), clock_, backend));
  for (int i = 0; i < 3; ++i) {
    clock_.AdvanceNs(kInterval);
    absl::StatusOr<PowerSample> s = guard.Sample(Load(500));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(SourceOf(*s), "perf-power");
  }
  EXPECT_TRUE(guard.rejected().empty());
}

// A counter without wrap information that goes down: one dip is a glitch
// (the source restarts from it), dips in consecutive intervals reject it.
TEST_F(MeterGuardTest, CounterGoingBackwardsTwiceInARowIsRejected) {
  Pmu(tree_, {"energy-pkg"});
  auto backend = std::make_shared<ScriptedPerfBackend>();
  backend->value[1] = 1ull << 40;
  const int64_t up = static_cast<int64_t>(10 * 0.5 * kCountsPerJoule);
  backend->step[1] = up;
  MeterGuard guard =
      Guard(std::make_unique<PerfPowerSource>(tree_.fs(), clock_, backend));
  auto interval = [&](int64_t step) {
    backend->step[1] = step;
    clock_.AdvanceNs(kInterval);
    absl::StatusOr<PowerSample> s = guard.Sample(Load(500));
    EXPECT_TRUE(s.ok());
    return s.ok() ? SourceOf(*s) : "";
  };
  EXPECT_EQ(interval(up), "perf-power");
  EXPECT_EQ(interval(-up), "model:ccf");  // one dip: dropped, covered
  EXPECT_EQ(interval(up), "perf-power");  // and believed again
  EXPECT_TRUE(guard.rejected().empty());
  EXPECT_EQ(interval(-up), "model:ccf");
  EXPECT_EQ(interval(-up), "model:ccf");
  EXPECT_THAT(Rejected(guard), ElementsAre("perf-power:backwards"));
}

// Sources that failed to initialise are the guard's first rejects, with
// absent (no such hardware) told apart from unavailable.
TEST_F(MeterGuardTest, ProbeFailuresAreRejectsWithTheirReason) {
  Rapl(tree_, 5'000'000, 262'143'328'850);
  auto denying = std::make_shared<testing::DenyingFileSystem>(tree_.fs());
  denying->Deny("energy_uj");  // root-only since CVE-2020-8694
  ProbeDeps deps;
  deps.fs = denying;
  deps.clock = &clock_;
  deps.utilisation = std::make_shared<FixedUtilisation>();
  ProbeConfig config;
  config.probe_gpu = false;
  config.keep_fallbacks = true;
  ProbeResult probe = ProbePowerSources(deps, config);
  MeterGuard guard = GuardProbedSources(probe, MeterCheckConfig{});
  EXPECT_THAT(Rejected(guard),
              ElementsAre("rapl-powercap:unavailable", "perf-power:absent",
                          "hwmon:absent"));
  ASSERT_NE(guard.current(), nullptr);
  EXPECT_EQ(guard.current()->name(), "model:ccf");
}

// With the test-only dead perf meter forced on, it is probed first even
// where the configuration pins the model, and rejected at once.
TEST_F(MeterGuardTest, ForcedDeadPerfMeterIsProbedFirstAndRejected) {
  ProbeDeps deps;
  deps.fs = tree_.fs();
  deps.clock = &clock_;
  deps.utilisation = std::make_shared<FixedUtilisation>();
  deps.dead_perf_power_for_test = true;
  ProbeConfig config;
  config.probe_gpu = false;
  config.keep_fallbacks = true;
  config.order = {SourceKind::kModel};
  ProbeResult probe = ProbePowerSources(deps, config);
  MeterGuard guard = GuardProbedSources(probe, MeterCheckConfig{});
  EXPECT_EQ(guard.current()->name(), "perf-power");
  clock_.AdvanceNs(kInterval);
  absl::StatusOr<PowerSample> s = guard.Sample(Load(0));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(SourceOf(*s), "model:ccf");
  EXPECT_THAT(Rejected(guard), ElementsAre("perf-power:stuck"));
}

// Without fallbacks the probe keeps its old contract: it stops at the
// first source that works.
TEST_F(MeterGuardTest, WithoutFallbacksTheProbeStopsAtTheFirstSource) {
  Rapl(tree_, 5'000'000, 262'143'328'850);
  ProbeDeps deps;
  deps.fs = tree_.fs();
  deps.clock = &clock_;
  ProbeConfig config;
  config.probe_gpu = false;
  ProbeResult probe = ProbePowerSources(deps, config);
  ASSERT_NE(probe.cpu, nullptr);
  EXPECT_EQ(probe.cpu->name(), "rapl-powercap");
  EXPECT_TRUE(probe.fallbacks.empty());
  EXPECT_EQ(probe.attempts.size(), 1u);
}

TEST(MeterCheckTest, ShortIntervalsAreNotJudged) {
  PowerSample s;
  ZoneReading r;
  r.zone = Zone::kPackage;
  r.label = "package-0";
  r.energy_uj = 0;
  r.interval_ns = 10'000'000;  // 10 ms: RAPL may not have updated
  s.readings.push_back(r);
  MeterCheckConfig config;
  ReadingVerdict short_one =
      CheckReading(s, false, {10'000'000, 10'000'000}, config);
  EXPECT_TRUE(short_one.ok);
  EXPECT_FALSE(short_one.judged);
  s.readings[0].interval_ns = kInterval;
  EXPECT_FALSE(CheckReading(s, false, Load(0), config).ok);
  EXPECT_TRUE(CheckReading(s, /*from_model=*/true, Load(0), config).ok);
}

TEST(MeterCheckTest, CeilingFollowsSocketsAndCpus) {
  MeterCheckConfig config;
  config.cpus = 128;  // 12 W × 128 = 1536 W > 500 W × 2 sockets
  PowerSample s;
  for (int socket = 0; socket < 2; ++socket) {
    ZoneReading r;
    r.zone = Zone::kPackage;
    r.domain = socket;
    r.label = absl::StrCat("package-", socket);
    r.interval_ns = kInterval;
    r.energy_uj = 700'000'000 / 2;  // 700 W per socket, 1400 W in all
    s.readings.push_back(r);
  }
  EXPECT_TRUE(CheckReading(s, false, Load(500), config).ok);
  config.cpus = 64;  // 768 W < 1000 W: the sockets' bound, 1000 W
  ReadingVerdict v = CheckReading(s, false, Load(500), config);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.reason, SourceRejectReason::kImplausible);
}

}  // namespace
}  // namespace wattlens::power
