// SPDX-License-Identifier: Apache-2.0
#include "agent/power/power_model.h"

#include <fstream>
#include <sstream>

#include "agent/common/clock.h"
#include "agent/power/cpu_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/power/fake_tree.h"

namespace wattlens::power {
namespace {

using ::testing::Contains;
using ::testing::Pair;
using testing::TempTree;

constexpr int64_t kSecond = 1'000'000'000;

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(WATTLENS_POWER_TESTDATA) + "/cpuinfo/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CpuInfo Parse(const std::string& fixture) {
  auto cpu = ParseCpuInfo(Fixture(fixture));
  EXPECT_TRUE(cpu.ok()) << fixture << ": " << cpu.status();
  return cpu.ok() ? *cpu : CpuInfo{};
}

TEST(CpuModelTest, MicroarchitectureFromCpuInfo) {
  CpuInfo cl = Parse("intel_cascadelake.txt");
  EXPECT_EQ(cl.logical_cpus, 4);
  EXPECT_EQ(cl.model_name, "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz");
  EXPECT_EQ(DetectMicroarchitecture(cl), "Cascade Lake");
  EXPECT_EQ(DetectMicroarchitecture(Parse("intel_broadwell.txt")), "Broadwell");
  EXPECT_EQ(DetectMicroarchitecture(Parse("amd_rome.txt")), "AMD EPYC 2nd Gen");
  CpuInfo arm = Parse("graviton2.txt");
  EXPECT_EQ(arm.logical_cpus, 2);
  EXPECT_EQ(DetectMicroarchitecture(arm), "AWS Graviton2");
  EXPECT_EQ(DetectMicroarchitecture(Parse("qemu_generic.txt")), "");
}

TEST(CpuModelTest, ModelNameFallbackWhenIdsAreMasked) {
  // Hypervisors sometimes pass the brand string but not family/model.
  CpuInfo cpu;
  cpu.logical_cpus = 1;
  cpu.model_name = "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz";
  EXPECT_EQ(DetectMicroarchitecture(cpu), "Skylake");
  cpu.model_name = "Intel(R) Xeon(R) CPU E5-2670 v3 @ 2.30GHz";
  EXPECT_EQ(DetectMicroarchitecture(cpu), "Haswell");
  cpu.model_name = "Intel(R) Xeon(R) CPU E5-2670 0 @ 2.60GHz";
  EXPECT_EQ(DetectMicroarchitecture(cpu), "Sandy Bridge");
  cpu.model_name = "AMD EPYC 7763 64-Core Processor";
  EXPECT_EQ(DetectMicroarchitecture(cpu), "AMD EPYC 3rd Gen");
  cpu.model_name = "AMD EPYC";
  EXPECT_EQ(DetectMicroarchitecture(cpu), "");
}

TEST(CpuModelTest, CcfTableAndFallback) {
  MicroarchWatts sky = LookupCcfWatts("Skylake");
  EXPECT_DOUBLE_EQ(sky.min_watts, 0.65);
  EXPECT_DOUBLE_EQ(sky.max_watts, 4.26);
  MicroarchWatts unknown = LookupCcfWatts("AMD EPYC 4th Gen");
  EXPECT_DOUBLE_EQ(unknown.min_watts, 0.74);
  EXPECT_DOUBLE_EQ(unknown.max_watts, 3.5);
  for (const MicroarchWatts& row : CcfMicroarchTable()) {
    EXPECT_LT(row.min_watts, row.max_watts) << row.name;
  }
}

TEST(CpuModelTest, BadCpuInfo) {
  EXPECT_FALSE(ParseCpuInfo("").ok());
  EXPECT_FALSE(ParseCpuInfo("garbage\n\x01\x02").ok());
}

TEST(PowerModelTest, CcfLinearPerVcpu) {
  ModelConfig config;  // kCcf
  auto c = ResolveModel(Parse("intel_cascadelake.txt"), 16, config);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->microarchitecture, "Cascade Lake");
  EXPECT_EQ(c->coefficient_source, "Cloud Carbon Footprint, Cascade Lake");
  ModelPower idle = EvaluateModel(*c, config, 0);
  ModelPower half = EvaluateModel(*c, config, 0.5);
  ModelPower full = EvaluateModel(*c, config, 1.0);
  EXPECT_DOUBLE_EQ(idle.cpu_watts, 4 * 0.64);
  EXPECT_DOUBLE_EQ(full.cpu_watts, 4 * 3.97);
  EXPECT_DOUBLE_EQ(half.cpu_watts, 4 * (0.64 + 0.5 * (3.97 - 0.64)));
  EXPECT_DOUBLE_EQ(half.cpu_idle_watts, 4 * 0.64);
  EXPECT_DOUBLE_EQ(half.memory_watts, 16 * 0.392);
  EXPECT_DOUBLE_EQ(half.memory_idle_watts, half.memory_watts);
  EXPECT_DOUBLE_EQ(EvaluateModel(*c, config, 7).cpu_watts, full.cpu_watts);
  EXPECT_THAT(c->Describe(), Contains(Pair("method", "ccf")));
  EXPECT_THAT(c->Describe(), Contains(Pair("idle_watts_per_vcpu", "0.64")));
}

TEST(PowerModelTest, EveryCoefficientOverridable) {
  ModelConfig config;
  config.vcpus = 8;
  config.memory_gb = 32;
  config.min_watts_per_vcpu = 1.0;
  config.max_watts_per_vcpu = 3.0;
  config.memory_watts_per_gb = 0.25;
  auto c = ResolveModel(Parse("qemu_generic.txt"), 1, config);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->coefficient_source, "config");
  ModelPower p = EvaluateModel(*c, config, 0.25);
  EXPECT_DOUBLE_EQ(p.cpu_watts, 8 * 1.5);
  EXPECT_DOUBLE_EQ(p.memory_watts, 8.0);
  config.microarchitecture = "Haswell";
  config.min_watts_per_vcpu.reset();
  config.max_watts_per_vcpu.reset();
  c = ResolveModel(Parse("qemu_generic.txt"), 1, config);
  ASSERT_TRUE(c.ok());
  EXPECT_DOUBLE_EQ(c->idle_watts_per_vcpu, 1.00);
  EXPECT_DOUBLE_EQ(c->max_watts_per_vcpu, 4.74);
}

TEST(PowerModelTest, UnknownCpuUsesCcfAverage) {
  ModelConfig config;
  auto c = ResolveModel(Parse("qemu_generic.txt"), 0, config);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->microarchitecture, "");
  EXPECT_DOUBLE_EQ(c->idle_watts_per_vcpu, 0.74);
  EXPECT_THAT(c->coefficient_source, ::testing::HasSubstr("average"));
}

TEST(PowerModelTest, TdpCurve) {
  ModelConfig config;
  config.method = ModelMethod::kTdpCurve;
  auto c = ResolveModel(Parse("intel_cascadelake.txt"), 16, config);
  ASSERT_TRUE(c.ok());
  // 4 vCPUs × 5 W × curve + 16 GB × RAM curve + 4 × 1 W platform.
  ModelPower idle = EvaluateModel(*c, config, 0);
  EXPECT_NEAR(idle.total(), 4 * 5 * 0.12 + 16 * 0.20 + 4, 1e-9);
  EXPECT_NEAR(idle.idle(), idle.total(), 1e-9);
  ModelPower p10 = EvaluateModel(*c, config, 0.10);
  EXPECT_NEAR(p10.cpu_watts, 4 * 5 * 0.32, 1e-9);
  ModelPower p30 = EvaluateModel(*c, config, 0.30);
  EXPECT_NEAR(p30.cpu_watts, 4 * 5 * (0.32 + 0.5 * (0.75 - 0.32)), 1e-9);
  EXPECT_NEAR(p30.memory_watts, 16 * 0.35, 1e-9);
  EXPECT_NEAR(p30.idle(), idle.total(), 1e-9);
}

TEST(PowerModelTest, UtilisationAboveOneOnlyWhereAllowed) {
  // Measured CPU time can exceed an interval's capacity by the accounting
  // lag; the agent allows up to max_utilisation and the line (or the
  // curves' last segment) is extended, so no energy is clamped away.
  ModelConfig config;
  auto c = ResolveModel(Parse("intel_cascadelake.txt"), 16, config);
  ASSERT_TRUE(c.ok());
  const double full = EvaluateModel(*c, config, 1.0).cpu_watts;
  EXPECT_DOUBLE_EQ(EvaluateModel(*c, config, 1.02).cpu_watts, full);
  config.max_utilisation = 1.5;
  ASSERT_TRUE(ResolveModel(Parse("intel_cascadelake.txt"), 16, config).ok());
  EXPECT_DOUBLE_EQ(EvaluateModel(*c, config, 1.02).cpu_watts,
                   4 * (0.64 + 1.02 * (3.97 - 0.64)));
  EXPECT_DOUBLE_EQ(EvaluateModel(*c, config, 7).cpu_watts,
                   4 * (0.64 + 1.5 * (3.97 - 0.64)));
  config.method = ModelMethod::kTdpCurve;
  c = ResolveModel(Parse("intel_cascadelake.txt"), 16, config);
  ASSERT_TRUE(c.ok());
  // Last segment (0.5, 0.75) to (1, 1.02): slope 0.54 per unit.
  EXPECT_NEAR(EvaluateModel(*c, config, 1.1).cpu_watts,
              4 * 5 * (1.02 + 0.1 * 0.54), 1e-9);
  config.max_utilisation = 2.5;
  EXPECT_FALSE(ResolveModel(Parse("intel_cascadelake.txt"), 16, config).ok());
  config.max_utilisation = 0.9;
  EXPECT_FALSE(ResolveModel(Parse("intel_cascadelake.txt"), 16, config).ok());
}

TEST(PowerModelTest, BadOverridesAreErrors) {
  ModelConfig config;
  config.min_watts_per_vcpu = 5;
  config.max_watts_per_vcpu = 1;
  EXPECT_FALSE(ResolveModel(Parse("amd_rome.txt"), 1, config).ok());
  config = ModelConfig{};
  config.vcpus = 0;
  EXPECT_FALSE(ResolveModel(Parse("amd_rome.txt"), 1, config).ok());
  config = ModelConfig{};
  config.method = ModelMethod::kTdpCurve;
  config.cpu_curve = {{0.5, 1}, {0.2, 2}};
  EXPECT_FALSE(ResolveModel(Parse("amd_rome.txt"), 1, config).ok());
  config.cpu_curve = {{0, -1}};
  EXPECT_FALSE(ResolveModel(Parse("amd_rome.txt"), 1, config).ok());
}

class FixedUtilisation final : public UtilisationSource {
 public:
  absl::StatusOr<double> Next() override { return value; }
  double value = 0;
};

TEST(ModelSourceTest, ReadingsCarryIdleAndSource) {
  TempTree tree;
  tree.Write("/proc/cpuinfo", Fixture("amd_rome.txt"));
  tree.Write("/proc/meminfo", "MemTotal:       10000000 kB\n");
  auto util = std::make_shared<FixedUtilisation>();
  util->value = 0.5;
  FakeClock clock;
  ModelSource source(tree.fs(), clock, util);
  ASSERT_TRUE(source.Init().ok());
  EXPECT_EQ(source.name(), "model:ccf");
  EXPECT_NEAR(source.coefficients().memory_gb, 10.24, 1e-9);
  clock.AdvanceNs(2 * kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  auto totals = s->Totals();
  // 2 vCPUs × (0.47 + 0.5 × 1.22) W × 2 s.
  EXPECT_EQ(totals[Zone::kPackage].energy_uj, 4'320'000);
  EXPECT_EQ(totals[Zone::kPackage].idle_uj, 1'880'000);
  EXPECT_EQ(totals[Zone::kDram].energy_uj, *totals[Zone::kDram].idle_uj);
  for (const ZoneReading& r : s->readings) {
    EXPECT_EQ(r.source, "model:ccf");
    EXPECT_EQ(r.interval_ns, 2 * kSecond);
  }
}

// A utilisation source that knows the interval its value covers sets the
// model's interval: energy over exactly the CPU time it was measured on.
class TimedUtilisation final : public UtilisationSource {
 public:
  absl::StatusOr<double> Next() override { return 0.5; }
  std::optional<int64_t> interval_ns() const override { return 2'000'000'000; }
};

TEST(ModelSourceTest, UtilisationSourceMaySetTheInterval) {
  TempTree tree;
  tree.Write("/proc/cpuinfo", Fixture("intel_cascadelake.txt"));
  tree.Write("/proc/meminfo", "MemTotal:       10000000 kB\n");
  FakeClock clock;
  ModelConfig config;
  config.memory_gb = 0;
  ModelSource source(tree.fs(), clock, std::make_shared<TimedUtilisation>(),
                     config);
  ASSERT_TRUE(source.Init().ok());
  clock.AdvanceNs(1'000'000);  // its own clock says 1 ms
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_FALSE(s->readings.empty());
  EXPECT_EQ(s->readings[0].interval_ns, 2'000'000'000);
  // 4 vCPUs × (0.64 + 0.5 × (3.97 − 0.64)) W × 2 s.
  EXPECT_NEAR(s->readings[0].energy_uj, 4 * (0.64 + 0.5 * (3.97 - 0.64)) * 2e6,
              1);
}

TEST(ModelSourceTest, ProcStatDeltasAndGarbage) {
  TempTree tree;
  tree.Write("/proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n");
  ProcStatUtilisation u(tree.fs());
  ASSERT_TRUE(u.Init().ok());
  // +300 busy (user 200, irq 50, steal 50), +100 idle: 75% busy.
  tree.Write("/proc/stat", "cpu  300 0 100 880 20 50 0 50 0 0\n");
  auto v = u.Next();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_DOUBLE_EQ(*v, 0.75);
  tree.Write("/proc/stat", "cpu  abc\n");
  EXPECT_TRUE(absl::IsInvalidArgument(u.Next().status()));
  tree.Write("/proc/stat", "cpu  1 0 1 1 0 0 0 0\n");
  EXPECT_TRUE(absl::IsDataLoss(u.Next().status()));
}

TEST(ModelSourceTest, MissingUtilisationDegradesWithoutGuessing) {
  TempTree tree;
  tree.Write("/proc/cpuinfo", Fixture("amd_rome.txt"));
  tree.Write("/proc/meminfo", "MemTotal:       1000000 kB\n");
  tree.Write("/proc/stat", "cpu  1 0 1 1 0 0 0 0\n");
  FakeClock clock;
  auto fs = tree.fs();
  ModelSource source(fs, clock, std::make_shared<ProcStatUtilisation>(fs));
  ASSERT_TRUE(source.Init().ok());
  tree.Remove("/proc/stat");
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->readings.empty());
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnreadable), 1u);
}

TEST(ModelSourceTest, MissingCpuInfoIsUnavailable) {
  TempTree tree;
  FakeClock clock;
  auto fs = tree.fs();
  ModelSource source(fs, clock, std::make_shared<ProcStatUtilisation>(fs));
  EXPECT_FALSE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
}

// The model over a fake /proc in which two of four CPUs were busy for a
// second: utilisation is exactly 0.5 and node power is the model's at 0.5,
// above its idle power. The host's own CPU count and load play no part.
TEST(ModelProcStatTest, TwoOfFourBusyCpusDrawMoreThanIdle) {
  TempTree tree;
  std::string cpuinfo;
  for (int cpu = 0; cpu < 4; ++cpu) {
    cpuinfo += "processor\t: " + std::to_string(cpu) +
               "\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: "
               "85\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ "
               "2.50GHz\nstepping\t: 7\n\n";
  }
  tree.Write("/proc/cpuinfo", cpuinfo);
  tree.Write("/proc/meminfo", "MemTotal:        8000000 kB\n");
  tree.Write("/proc/stat", "cpu  1000 0 0 9000 0 0 0 0 0 0\n");
  FakeClock clock;
  auto fs = tree.fs();
  ModelSource source(fs, clock, std::make_shared<ProcStatUtilisation>(fs));
  ASSERT_TRUE(source.Init().ok()) << source.last_error();
  EXPECT_EQ(source.coefficients().microarchitecture, "Cascade Lake");
  // One second of four CPUs at USER_HZ 100: 200 ticks busy, 200 idle.
  tree.Write("/proc/stat", "cpu  1150 0 50 9200 0 0 0 0 0 0\n");
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(source.last_utilisation(), 0.5);
  auto totals = s->Totals();
  ASSERT_TRUE(totals.count(Zone::kPackage));
  const ZoneTotal& pkg = totals[Zone::kPackage];
  ASSERT_TRUE(pkg.idle_uj.has_value());
  EXPECT_GT(pkg.energy_uj, *pkg.idle_uj);
  const ModelPower idle =
      EvaluateModel(source.coefficients(), ModelConfig{}, 0);
  const ModelPower half =
      EvaluateModel(source.coefficients(), ModelConfig{}, 0.5);
  int64_t node_uj = 0;
  for (const auto& [zone, t] : totals) node_uj += t.energy_uj;
  EXPECT_NEAR(static_cast<double>(node_uj), half.total() * 1e6, 3);
  EXPECT_GT(static_cast<double>(node_uj) / 1e6, idle.total());
}

}  // namespace
}  // namespace wattlens::power
