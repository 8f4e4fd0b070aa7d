// SPDX-License-Identifier: Apache-2.0
// The CPU frequency fallback for nodes where power:cpu_frequency never
// fires, on fake sysfs/procfs trees; and PowerProgram without BPF.
#include <string>

#include "agent/bpf/power_program.h"
#include "gtest/gtest.h"
#include "tests/unit/power/fake_tree.h"

namespace wattlens {
namespace {

using power::testing::TempTree;

constexpr char kCpuinfo[] =
    "processor\t: 0\n"
    "vendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\n"
    "cpu MHz\t\t: 3100.512\n"
    "\n"
    "processor\t: 1\n"
    "vendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\n"
    "cpu MHz\t\t: 2499.998\n"
    "\n";

TEST(FrequencyFallbackTest, CpuinfoMhzPerProcessor) {
  auto f = ParseCpuinfoFrequencies(kCpuinfo, 2);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].khz, 3'100'512u);
  EXPECT_EQ(f[0].source, FrequencySource::kCpuinfoMhz);
  EXPECT_EQ(f[1].khz, 2'499'998u);
}

TEST(FrequencyFallbackTest, NominalFromModelNameWithoutMhz) {
  auto f = ParseCpuinfoFrequencies(
      "processor : 0\nmodel name : Intel(R) Xeon(R) CPU E5-2686 v4 @ "
      "2.30GHz\n\nprocessor : 1\nmodel name : AMD EPYC\n",
      3);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].khz, 2'300'000u);
  EXPECT_EQ(f[0].source, FrequencySource::kNominal);
  EXPECT_EQ(f[1].khz, 0u);  // no MHz, no "@": unknown
  EXPECT_EQ(f[1].source, FrequencySource::kNone);
  EXPECT_EQ(f[2].source, FrequencySource::kNone);  // not listed (offline)
}

TEST(FrequencyFallbackTest, CpufreqSysfsFirstThenMaxThenCpuinfo) {
  TempTree t;
  t.Write("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1800000\n");
  t.Write("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3500000\n");
  t.Write("/sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "junk\n");
  t.Write("/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq", "3500000\n");
  t.Write("/proc/cpuinfo",
          std::string(kCpuinfo) + "processor\t: 2\ncpu MHz\t\t: 1000.000\n");
  auto f = ReadFallbackFrequencies(*t.fs(), 3);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].khz, 1'800'000u);
  EXPECT_EQ(f[0].source, FrequencySource::kCpufreqCur);
  EXPECT_EQ(f[1].khz, 3'500'000u);
  EXPECT_EQ(f[1].source, FrequencySource::kCpufreqMax);
  EXPECT_EQ(f[2].khz, 1'000'000u);
  EXPECT_EQ(f[2].source, FrequencySource::kCpuinfoMhz);
}

TEST(FrequencyFallbackTest, CpuinfoIsCachedUntilCleared) {
  TempTree t;
  t.Write("/proc/cpuinfo", kCpuinfo);
  std::vector<CpuFrequency> cache;
  EXPECT_EQ(ReadFallbackFrequencies(*t.fs(), 2, &cache)[0].khz, 3'100'512u);
  t.Write("/proc/cpuinfo", "processor : 0\ncpu MHz : 800.0\n");
  EXPECT_EQ(ReadFallbackFrequencies(*t.fs(), 2, &cache)[0].khz, 3'100'512u);
  cache.clear();
  EXPECT_EQ(ReadFallbackFrequencies(*t.fs(), 2, &cache)[0].khz, 800'000u);
}

TEST(FrequencyFallbackTest, NothingReadableIsNoneNotZeroSilently) {
  TempTree t;
  auto f = ReadFallbackFrequencies(*t.fs(), 2);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].source, FrequencySource::kNone);
  EXPECT_EQ(FrequencySourceName(f[0].source), "none");
}

TEST(PowerProgramFallbackTest, SaysWhereTheFrequencyComesFrom) {
  TempTree t;
  t.Write("/proc/cpuinfo", kCpuinfo);
  FakeClock clock;
  PowerProgramConfig c;
  c.fs_root = t.root();
  c.load_bpf = false;
  auto p = PowerProgram::Create(c, 2, clock);
  ASSERT_TRUE(p.ok()) << p.status();
  clock.AdvanceNs(1'000'000'000);
  PowerInterval i = (*p)->Sample();
  EXPECT_EQ(i.interval_ns, 1'000'000'000);
  EXPECT_EQ(i.source, FrequencySource::kCpuinfoMhz);
  ASSERT_EQ(i.cpus.size(), 2u);
  EXPECT_EQ(i.cpus[0].khz, 3'100'512u);
  EXPECT_EQ(i.mean_khz, (3'100'512u + 2'499'998u) / 2);
  EXPECT_FALSE(i.uniform);  // 24 % apart
  EXPECT_FALSE(i.idle_tracked);
  EXPECT_FALSE((*p)->bpf_loaded());
  EXPECT_EQ((*p)->degraded_reason(),
            "power BPF not loaded; power:cpu_frequency has not fired on 2 of "
            "2 CPUs (no cpufreq driver, e.g. a VM): frequency from "
            "cpuinfo-mhz");
}

}  // namespace
}  // namespace wattlens
