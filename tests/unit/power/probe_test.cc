// SPDX-License-Identifier: Apache-2.0
#include "agent/power/probe.h"

#include "agent/common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/power/fake_tree.h"

namespace wattlens::power {
namespace {

using testing::DenyingFileSystem;
using ::testing::ElementsAre;
using ::testing::Field;
using testing::TempTree;

std::vector<std::string> Attempted(const ProbeResult& r) {
  std::vector<std::string> out;
  for (const ProbeAttempt& a : r.attempts) out.push_back(a.source);
  return out;
}

void Proc(const TempTree& tree) {
  tree.Write("/proc/cpuinfo",
             "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
             "model\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL "
             "CPU @ 2.50GHz\nstepping\t: 7\n\nprocessor\t: 1\n");
  tree.Write("/proc/meminfo", "MemTotal:        8000000 kB\n");
  tree.Write("/proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\n");
}

ProbeDeps Deps(std::shared_ptr<const FileSystem> fs, const Clock& clock) {
  ProbeDeps deps;
  deps.fs = std::move(fs);
  deps.clock = &clock;
  return deps;
}

ProbeConfig NoGpu() {
  ProbeConfig c;
  c.probe_gpu = false;
  return c;
}

TEST(ProbeTest, RaplWinsWhenPresent) {
  TempTree tree;
  Proc(tree);
  tree.Write("/sys/class/powercap/intel-rapl:0/name", "package-0\n");
  tree.Write("/sys/class/powercap/intel-rapl:0/energy_uj", "5\n");
  FakeClock clock;
  ProbeResult r = ProbePowerSources(Deps(tree.fs(), clock), NoGpu());
  ASSERT_NE(r.cpu, nullptr);
  EXPECT_EQ(r.cpu->name(), "rapl-powercap");
  EXPECT_THAT(Attempted(r), ElementsAre("rapl-powercap"));
}

TEST(ProbeTest, DeniedRaplFallsThroughToHwmon) {
  TempTree tree;
  Proc(tree);
  tree.Write("/sys/class/powercap/intel-rapl:0/name", "package-0\n");
  tree.Write("/sys/class/powercap/intel-rapl:0/energy_uj", "5\n");
  tree.Write("/sys/class/hwmon/hwmon0/name", "power_meter\n");
  tree.Write("/sys/class/hwmon/hwmon0/power1_average", "80000000\n");
  auto fs = std::make_shared<DenyingFileSystem>(tree.fs());
  fs->Deny("energy_uj");
  FakeClock clock;
  ProbeResult r = ProbePowerSources(Deps(fs, clock), NoGpu());
  ASSERT_NE(r.cpu, nullptr);
  EXPECT_EQ(r.cpu->name(), "hwmon");
  EXPECT_THAT(Attempted(r),
              ElementsAre("rapl-powercap", "perf-power", "hwmon"));
  EXPECT_TRUE(absl::IsPermissionDenied(r.attempts[0].status));
  EXPECT_TRUE(absl::IsNotFound(r.attempts[1].status));
}

TEST(ProbeTest, NoMeterMeansTheModel) {
  TempTree tree;
  Proc(tree);
  FakeClock clock;
  ProbeResult r = ProbePowerSources(Deps(tree.fs(), clock), NoGpu());
  ASSERT_NE(r.cpu, nullptr);
  EXPECT_EQ(r.cpu->name(), "model:ccf");
  EXPECT_EQ(r.cpu->health(), SourceHealth::kHealthy);
  EXPECT_EQ(r.attempts.size(), 4u);
}

TEST(ProbeTest, AbsentNvmlIsRecordedNotFatal) {
  TempTree tree;
  Proc(tree);
  FakeClock clock;
  ProbeConfig config;
  config.nvml.library_path = "libnvidia-ml-absent.so.1";
  ProbeResult r = ProbePowerSources(Deps(tree.fs(), clock), config);
  EXPECT_NE(r.cpu, nullptr);
  EXPECT_EQ(r.gpu, nullptr);
  ASSERT_EQ(r.attempts.back().source, "nvml");
  EXPECT_TRUE(absl::IsUnavailable(r.attempts.back().status));
}

TEST(ProbeTest, NothingAtAllLeavesNoSource) {
  TempTree tree;
  FakeClock clock;
  ProbeResult r = ProbePowerSources(Deps(tree.fs(), clock), NoGpu());
  EXPECT_EQ(r.cpu, nullptr);
  EXPECT_EQ(r.attempts.size(), 4u);
}

}  // namespace
}  // namespace wattlens::power
