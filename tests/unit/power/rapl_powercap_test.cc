// SPDX-License-Identifier: Apache-2.0
#include "agent/power/rapl_powercap.h"

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

constexpr int64_t kSecond = 1'000'000'000;
constexpr char kPowercap[] = "/sys/class/powercap/";

void AddZone(const TempTree& tree, const std::string& dir,
             const std::string& name, uint64_t energy, uint64_t range) {
  const std::string base = kPowercap + dir;
  tree.Write(base + "/name", name + "\n");
  tree.Write(base + "/energy_uj", std::to_string(energy) + "\n");
  tree.Write(base + "/max_energy_range_uj", std::to_string(range) + "\n");
}

void SetEnergy(const TempTree& tree, const std::string& dir, uint64_t energy) {
  tree.Write(kPowercap + dir + "/energy_uj", std::to_string(energy) + "\n");
}

// Two sockets, each with core and dram subzones, plus psys; the control
// type directory and the mmio duplicate that must be ignored.
void TwoSocketTree(const TempTree& tree, uint64_t range) {
  tree.Write("/sys/class/powercap/intel-rapl/enabled", "1\n");
  AddZone(tree, "intel-rapl:0", "package-0", 1'000'000, range);
  AddZone(tree, "intel-rapl:0:0", "core", 500'000, range);
  AddZone(tree, "intel-rapl:0:1", "dram", 200'000, range);
  AddZone(tree, "intel-rapl:1", "package-1", 2'000'000, range);
  AddZone(tree, "intel-rapl:1:0", "core", 700'000, range);
  AddZone(tree, "intel-rapl:1:1", "dram", 300'000, range);
  AddZone(tree, "intel-rapl:2", "psys", 9'000'000, range);
  AddZone(tree, "intel-rapl-mmio:0", "package-0", 1'000'000, range);
}

TEST(RaplPowercapTest, TwoSocketsPerSocketAndSummed) {
  TempTree tree;
  TwoSocketTree(tree, 262'143'328'850);
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kHealthy);
  ASSERT_EQ(source.zones().size(), 7u);

  SetEnergy(tree, "intel-rapl:0", 1'000'000 + 40'000'000);  // 40 W
  SetEnergy(tree, "intel-rapl:1", 2'000'000 + 60'000'000);  // 60 W
  SetEnergy(tree, "intel-rapl:0:0", 500'000 + 30'000'000);
  SetEnergy(tree, "intel-rapl:1:0", 700'000 + 45'000'000);
  SetEnergy(tree, "intel-rapl:0:1", 200'000 + 5'000'000);
  SetEnergy(tree, "intel-rapl:1:1", 300'000 + 6'000'000);
  SetEnergy(tree, "intel-rapl:2", 9'000'000 + 150'000'000);
  clock.AdvanceNs(kSecond);
  auto sample = source.Sample();
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_EQ(source.health(), SourceHealth::kHealthy);

  std::vector<std::pair<int, int64_t>> packages;
  for (const ZoneReading& r : sample->readings) {
    EXPECT_EQ(r.source, "rapl-powercap");
    EXPECT_EQ(r.interval_ns, kSecond);
    if (r.zone == Zone::kPackage) packages.emplace_back(r.domain, r.energy_uj);
  }
  EXPECT_THAT(packages,
              ElementsAre(std::pair(0, 40'000'000), std::pair(1, 60'000'000)));
  auto totals = sample->Totals();
  EXPECT_EQ(totals[Zone::kPackage].energy_uj, 100'000'000);
  EXPECT_EQ(totals[Zone::kPackage].domains, 2);
  EXPECT_EQ(totals[Zone::kCore].energy_uj, 75'000'000);
  EXPECT_EQ(totals[Zone::kDram].energy_uj, 11'000'000);
  EXPECT_EQ(totals[Zone::kPsys].energy_uj, 150'000'000);
  EXPECT_EQ(totals[Zone::kPsys].domains, 1);
}

TEST(RaplPowercapTest, SubzonesInheritTheirPackageSocket) {
  TempTree tree;
  TwoSocketTree(tree, 1'000'000'000);
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  std::vector<std::pair<Zone, int>> seen;
  for (const auto& z : source.zones()) seen.emplace_back(z.zone, z.socket);
  EXPECT_THAT(
      seen, ElementsAre(std::pair(Zone::kPackage, 0),
                        std::pair(Zone::kPackage, 1), std::pair(Zone::kCore, 0),
                        std::pair(Zone::kCore, 1), std::pair(Zone::kDram, 0),
                        std::pair(Zone::kDram, 1), std::pair(Zone::kPsys, -1)));
}

TEST(RaplPowercapTest, OneWrap) {
  TempTree tree;
  const uint64_t range = 100'000'000;  // 100 J
  AddZone(tree, "intel-rapl:0", "package-0", 95'000'000, range);
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  SetEnergy(tree, "intel-rapl:0", 15'000'000);
  clock.AdvanceNs(kSecond);
  auto sample = source.Sample();
  ASSERT_TRUE(sample.ok());
  ASSERT_EQ(sample->readings.size(), 1u);
  EXPECT_EQ(sample->readings[0].energy_uj, 20'000'000);
  EXPECT_EQ(sample->readings[0].wraps, 1u);
}

TEST(RaplPowercapTest, SeveralWrapsAfterAStall) {
  TempTree tree;
  const uint64_t range = 10'000'000;  // 10 J: wraps every 0.4 s at 25 W
  AddZone(tree, "intel-rapl:0", "package-0", 0, range);
  FakeClock clock;
  RaplConfig config;
  config.max_power_w = 30;
  RaplPowercapSource source(tree.fs(), clock, config);
  ASSERT_TRUE(source.Init().ok());
  // A steady 25 W, sampled every 0.2 s: 5 J per interval, no ambiguity.
  uint64_t counter = 0;
  for (int i = 0; i < 5; ++i) {
    counter = (counter + 5'000'000) % range;
    SetEnergy(tree, "intel-rapl:0", counter);
    clock.AdvanceNs(kSecond / 5);
    auto s = source.Sample();
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(s->readings.size(), 1u);
    EXPECT_EQ(s->readings[0].energy_uj, 5'000'000);
  }
  // The sampler stalls for 1.2 s: 30 J, three wraps, same raw position.
  counter = (counter + 30'000'000) % range;
  SetEnergy(tree, "intel-rapl:0", counter);
  clock.AdvanceNs(kSecond * 6 / 5);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].energy_uj, 30'000'000);
  EXPECT_EQ(s->readings[0].wraps, 3u);
  EXPECT_TRUE(s->readings[0].ambiguous_wrap);
}

TEST(RaplPowercapTest, ImpossibleReadingsRejectedAndCounted) {
  TempTree tree;
  AddZone(tree, "intel-rapl:0", "package-0", 0, 1'000'000'000'000);
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  // 5 kJ in one second is above the 1 kW default ceiling.
  SetEnergy(tree, "intel-rapl:0", 5'000'000'000);
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->readings.empty());
  EXPECT_EQ(source.rejected().Get(RejectReason::kImplausible), 1u);
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("intel-rapl:0"));
  // Above the counter's own range.
  SetEnergy(tree, "intel-rapl:0", 2'000'000'000'000);
  clock.AdvanceNs(kSecond);
  ASSERT_TRUE(source.Sample().ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kOutOfRange), 1u);
  // The source recovers from the next sane value.
  SetEnergy(tree, "intel-rapl:0", 10'000'000);
  clock.AdvanceNs(kSecond);
  ASSERT_TRUE(source.Sample().ok());
  SetEnergy(tree, "intel-rapl:0", 60'000'000);
  clock.AdvanceNs(kSecond);
  s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->readings.size(), 1u);
  EXPECT_EQ(s->readings[0].energy_uj, 50'000'000);
  EXPECT_EQ(source.health(), SourceHealth::kHealthy);
}

TEST(RaplPowercapTest, GarbageAndEmptyContentsCountedNotCrashing) {
  TempTree tree;
  AddZone(tree, "intel-rapl:0", "package-0", 1'000, 1'000'000'000);
  AddZone(tree, "intel-rapl:1", "package-1", 1'000, 1'000'000'000);
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  tree.Write("/sys/class/powercap/intel-rapl:0/energy_uj", "12abc\n");
  tree.Write("/sys/class/powercap/intel-rapl:1/energy_uj", "");
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->readings.empty());
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnparsable), 2u);
  // The last good value is kept: the next reading covers both intervals.
  SetEnergy(tree, "intel-rapl:0", 2'001'000);
  SetEnergy(tree, "intel-rapl:1", 4'001'000);
  clock.AdvanceNs(kSecond);
  s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->readings.size(), 2u);
  EXPECT_EQ(s->readings[0].energy_uj, 2'000'000);
  EXPECT_EQ(s->readings[0].interval_ns, 2 * kSecond);
  EXPECT_EQ(s->readings[1].energy_uj, 4'000'000);
}

TEST(RaplPowercapTest, NegativeAndSignedValuesAreGarbage) {
  TempTree tree;
  AddZone(tree, "intel-rapl:0", "package-0", 1'000, 1'000'000'000);
  tree.Write("/sys/class/powercap/intel-rapl:0/energy_uj", "-5\n");
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  absl::Status s = source.Init();
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnparsable), 1u);
}

TEST(RaplPowercapTest, MissingPermissionsMakeTheSourceUnavailable) {
  TempTree tree;
  TwoSocketTree(tree, 1'000'000'000);
  auto fs = std::make_shared<DenyingFileSystem>(tree.fs());
  fs->Deny("energy_uj");
  FakeClock clock;
  RaplPowercapSource source(fs, clock);
  absl::Status s = source.Init();
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("Permission denied"));
  EXPECT_FALSE(source.Sample().ok());
}

TEST(RaplPowercapTest, SomeZonesDeniedDegrades) {
  TempTree tree;
  TwoSocketTree(tree, 1'000'000'000);
  auto fs = std::make_shared<DenyingFileSystem>(tree.fs());
  fs->Deny("intel-rapl:2/energy_uj");
  FakeClock clock;
  RaplPowercapSource source(fs, clock);
  ASSERT_TRUE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  EXPECT_EQ(source.zones().size(), 6u);
  // Permission lost after start: counted as unreadable, no crash.
  fs->Deny("intel-rapl:0/energy_uj");
  clock.AdvanceNs(kSecond);
  auto sample = source.Sample();
  ASSERT_TRUE(sample.ok());
  EXPECT_EQ(sample->readings.size(), 5u);
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnreadable), 2u);
}

TEST(RaplPowercapTest, NoPowercapIsNotFound) {
  TempTree tree;
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  EXPECT_TRUE(absl::IsNotFound(source.Init()));
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  tree.MakeDir("/sys/class/powercap/intel-rapl");
  EXPECT_TRUE(absl::IsNotFound(source.Init()));
}

TEST(RaplPowercapTest, MissingRangeRejectsBackwardsCounter) {
  TempTree tree;
  AddZone(tree, "intel-rapl:0", "package-0", 5'000'000, 1);
  tree.Remove("/sys/class/powercap/intel-rapl:0/max_energy_range_uj");
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  SetEnergy(tree, "intel-rapl:0", 1'000);
  clock.AdvanceNs(kSecond);
  ASSERT_TRUE(source.Sample().ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kBackwards), 1u);
}

TEST(RaplPowercapTest, AmdZonesUnderTheSameClass) {
  // AMD RAPL (kernel >= 5.11) shows package and core zones via intel_rapl.
  TempTree tree;
  AddZone(tree, "intel-rapl:0", "package-0", 0, 65'532'610'987);
  AddZone(tree, "intel-rapl:0:0", "core", 0, 65'532'610'987);
  FakeClock clock;
  RaplPowercapSource source(tree.fs(), clock);
  ASSERT_TRUE(source.Init().ok());
  EXPECT_THAT(
      source.zones(),
      ElementsAre(Field(&RaplPowercapSource::ZoneInfo::zone, Zone::kPackage),
                  Field(&RaplPowercapSource::ZoneInfo::zone, Zone::kCore)));
}

}  // namespace
}  // namespace wattlens::power
