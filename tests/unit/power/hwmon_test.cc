// SPDX-License-Identifier: Apache-2.0
#include "agent/power/hwmon.h"

#include "agent/common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/power/fake_tree.h"

namespace wattlens::power {
namespace {

using testing::DenyingFileSystem;
using testing::TempTree;

constexpr int64_t kSecond = 1'000'000'000;

// amd_energy-style chip: cumulative µJ per socket and per core.
void EnergyChip(const TempTree& tree) {
  tree.Write("/sys/class/hwmon/hwmon0/name", "amd_energy\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy1_input", "1000000\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy1_label", "Esocket0\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy2_input", "500000\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy2_label", "Ecore000\n");
  // A power file on the same chip is ignored: the counters are better.
  tree.Write("/sys/class/hwmon/hwmon0/power1_average", "99000000\n");
}

// ACPI power meter: power only, in µW.
void PowerChip(const TempTree& tree, const std::string& value) {
  tree.Write("/sys/class/hwmon/hwmon1/name", "power_meter\n");
  tree.Write("/sys/class/hwmon/hwmon1/power1_average", value + "\n");
  tree.Write("/sys/class/hwmon/hwmon1/power1_input", "1\n");  // shadowed
}

TEST(HwmonTest, EnergyCountersDifferenced) {
  TempTree tree;
  EnergyChip(tree);
  tree.Write("/sys/class/hwmon/hwmon2/name", "k10temp\n");  // no sensors
  tree.Write("/sys/class/hwmon/hwmon2/temp1_input", "45000\n");
  FakeClock clock;
  HwmonSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  ASSERT_EQ(source.sensors().size(), 2u);
  EXPECT_EQ(source.sensors()[0].label, "amd_energy/Esocket0");
  EXPECT_EQ(source.sensors()[0].zone, Zone::kPackage);
  EXPECT_EQ(source.sensors()[0].domain, 0);
  EXPECT_EQ(source.sensors()[1].zone, Zone::kCore);

  tree.Write("/sys/class/hwmon/hwmon0/energy1_input", "81000000\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy2_input", "3500000\n");
  clock.AdvanceNs(2 * kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->readings.size(), 2u);
  EXPECT_EQ(s->readings[0].energy_uj, 80'000'000);
  EXPECT_EQ(s->readings[0].source, "hwmon");
  EXPECT_EQ(s->readings[1].energy_uj, 3'000'000);
  EXPECT_EQ(source.health(), SourceHealth::kHealthy);
}

TEST(HwmonTest, PowerIntegratedOverTime) {
  TempTree tree;
  PowerChip(tree, "100000000");  // 100 W
  FakeClock clock;
  HwmonSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  ASSERT_EQ(source.sensors().size(), 1u);
  EXPECT_EQ(source.sensors()[0].zone, Zone::kPlatform);
  EXPECT_FALSE(source.sensors()[0].is_energy);

  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].energy_uj, 100'000'000);
  // 100 W -> 200 W over 2 s: trapezoid gives 300 J.
  tree.Write("/sys/class/hwmon/hwmon1/power1_average", "200000000\n");
  clock.AdvanceNs(2 * kSecond);
  s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->readings[0].energy_uj, 300'000'000);
}

TEST(HwmonTest, PowerInputUsedWhenNoAverage) {
  TempTree tree;
  tree.Write("/sys/class/hwmon/hwmon3/name", "xgene\n");
  tree.Write("/sys/class/hwmon/hwmon3/power1_input", "7000000\n");
  tree.Write("/sys/class/hwmon/hwmon3/power1_label", "CPU power\n");
  FakeClock clock;
  HwmonSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  ASSERT_EQ(source.sensors().size(), 1u);
  EXPECT_EQ(source.sensors()[0].zone, Zone::kPackage);
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->readings[0].energy_uj, 7'000'000);
}

TEST(HwmonTest, SentinelsRejectedAndCounted) {
  TempTree tree;
  EnergyChip(tree);
  PowerChip(tree, "4294967295");  // 0xFFFFFFFF: firmware has no value
  FakeClock clock;
  HwmonSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  EXPECT_EQ(source.rejected().Get(RejectReason::kSentinel), 1u);

  tree.Write("/sys/class/hwmon/hwmon0/energy1_input", "18446744073709551615\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy2_input", "1500000\n");
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  // Only the core counter produced energy; the two sentinels are counted.
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].energy_uj, 1'000'000);
  EXPECT_EQ(source.rejected().Get(RejectReason::kSentinel), 3u);
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("sentinel"));

  // Recovery: the socket counter resumes from its last good value.
  tree.Write("/sys/class/hwmon/hwmon0/energy1_input", "3000000\n");
  tree.Write("/sys/class/hwmon/hwmon1/power1_average", "50000000\n");
  clock.AdvanceNs(kSecond);
  s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->readings.size(), 3u);
  EXPECT_EQ(s->readings[0].energy_uj, 2'000'000);
  EXPECT_EQ(s->readings[0].interval_ns, 2 * kSecond);
  EXPECT_EQ(s->readings[2].energy_uj, 50'000'000);  // held across the gap
}

TEST(HwmonTest, GarbageImplausibleAndBackwards) {
  TempTree tree;
  EnergyChip(tree);
  PowerChip(tree, "100000000");
  FakeClock clock;
  HwmonSource source(tree.fs(), clock, HwmonConfig{.max_power_w = 500});
  ASSERT_TRUE(source.Init().ok());
  tree.Write("/sys/class/hwmon/hwmon0/energy1_input", "garbage\n");
  tree.Write("/sys/class/hwmon/hwmon0/energy2_input", "1\n");  // went down
  tree.Write("/sys/class/hwmon/hwmon1/power1_average", "900000000\n");
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnparsable), 1u);
  EXPECT_EQ(source.rejected().Get(RejectReason::kBackwards), 1u);
  EXPECT_EQ(source.rejected().Get(RejectReason::kImplausible), 1u);
  // The power meter held its previous 100 W for the interval.
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].energy_uj, 100'000'000);
}

TEST(HwmonTest, UnreadableSensorsMakeItUnavailable) {
  TempTree tree;
  EnergyChip(tree);
  auto fs = std::make_shared<DenyingFileSystem>(tree.fs());
  fs->Deny("_input");
  FakeClock clock;
  HwmonSource source(fs, clock);
  EXPECT_FALSE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("Permission denied"));
}

TEST(HwmonTest, NoSensorsIsNotFound) {
  TempTree tree;
  tree.Write("/sys/class/hwmon/hwmon0/name", "k10temp\n");
  FakeClock clock;
  HwmonSource source(tree.fs(), clock);
  EXPECT_TRUE(absl::IsNotFound(source.Init()));
  TempTree empty;
  HwmonSource none(empty.fs(), clock);
  EXPECT_TRUE(absl::IsNotFound(none.Init()));
}

}  // namespace
}  // namespace wattlens::power
