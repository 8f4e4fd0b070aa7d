// SPDX-License-Identifier: Apache-2.0
#include "agent/power/perf_power.h"

#include <map>

#include "agent/common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/power/fake_tree.h"

namespace wattlens::power {
namespace {

using testing::TempTree;

constexpr int64_t kSecond = 1'000'000'000;
constexpr char kPmu[] = "/sys/bus/event_source/devices/power";
// 2^-32 J per count, as on Intel server parts.
constexpr char kScale[] = "2.3283064365386962890625e-10\n";
constexpr double kCountsPerJoule = 4294967296.0;

void PowerPmu(const TempTree& tree, const std::string& cpumask) {
  tree.Write(std::string(kPmu) + "/type", "23\n");
  tree.Write(std::string(kPmu) + "/cpumask", cpumask + "\n");
  tree.Write(std::string(kPmu) + "/format/event", "config:0-7\n");
  for (auto [name, event] :
       {std::pair{"energy-pkg", "0x02"}, std::pair{"energy-ram", "0x03"}}) {
    const std::string base = std::string(kPmu) + "/events/" + name;
    tree.Write(base, std::string("event=") + event + "\n");
    tree.Write(base + ".scale", kScale);
    tree.Write(base + ".unit", "Joules\n");
  }
}

// Counters keyed by (config, cpu); tests set their values.
class FakePerfBackend final : public PerfCounterBackend {
 public:
  absl::StatusOr<int> Open(uint32_t type, uint64_t config, int cpu) override {
    if (!open_error.ok()) return open_error;
    type_seen = type;
    int h = next_++;
    handles_[h] = {config, cpu};
    return h;
  }
  absl::StatusOr<uint64_t> Read(int handle) override {
    if (!read_error.ok()) return read_error;
    return values[handles_.at(handle)];
  }
  void Close(int handle) override {
    handles_.erase(handle);
    ++closed;
  }

  std::map<std::pair<uint64_t, int>, uint64_t> values;
  absl::Status open_error;
  absl::Status read_error;
  uint32_t type_seen = 0;
  int closed = 0;

 private:
  int next_ = 3;
  std::map<int, std::pair<uint64_t, int>> handles_;
};

TEST(PerfPowerTest, DiscoversEventsScaleAndPackages) {
  TempTree tree;
  PowerPmu(tree, "0,28");
  auto fs = tree.fs();
  auto pmu = DiscoverPerfPowerPmu(*fs);
  ASSERT_TRUE(pmu.ok()) << pmu.status();
  EXPECT_EQ(pmu->type, 23u);
  EXPECT_THAT(pmu->cpus, ::testing::ElementsAre(0, 28));
  ASSERT_EQ(pmu->events.size(), 2u);
  EXPECT_EQ(pmu->events[0].name, "energy-pkg");
  EXPECT_EQ(pmu->events[0].config, 2u);
  EXPECT_DOUBLE_EQ(pmu->events[0].scale_joules, 1.0 / kCountsPerJoule);
  EXPECT_EQ(pmu->events[1].zone, Zone::kDram);
}

TEST(PerfPowerTest, NoPmuIsNotFound) {
  TempTree tree;
  auto fs = tree.fs();
  EXPECT_TRUE(absl::IsNotFound(DiscoverPerfPowerPmu(*fs).status()));
}

TEST(PerfPowerTest, EventsWithBadScaleOrUnitAreSkipped) {
  TempTree tree;
  PowerPmu(tree, "0");
  tree.Write(std::string(kPmu) + "/events/energy-pkg.scale", "lots\n");
  tree.Write(std::string(kPmu) + "/events/energy-ram.unit", "mJ\n");
  auto fs = tree.fs();
  EXPECT_TRUE(absl::IsNotFound(DiscoverPerfPowerPmu(*fs).status()));
}

TEST(PerfPowerTest, CpuLists) {
  EXPECT_THAT(*ParseCpuList("0-2,8\n"), ::testing::ElementsAre(0, 1, 2, 8));
  EXPECT_FALSE(ParseCpuList("").ok());
  EXPECT_FALSE(ParseCpuList("3-1").ok());
  EXPECT_FALSE(ParseCpuList("x").ok());
}

TEST(PerfPowerTest, EnergyPerPackageWithoutDrift) {
  TempTree tree;
  PowerPmu(tree, "0,28");
  auto backend = std::make_shared<FakePerfBackend>();
  FakeClock clock;
  PerfPowerSource source(tree.fs(), clock, backend);
  ASSERT_TRUE(source.Init().ok());
  EXPECT_EQ(backend->type_seen, 23u);
  EXPECT_EQ(source.health(), SourceHealth::kHealthy);

  // 1.5 µJ per interval on socket 0's package: fractions carry over.
  int64_t total_uj = 0;
  uint64_t counts = 0;
  for (int i = 0; i < 10; ++i) {
    counts += static_cast<uint64_t>(1.5e-6 * kCountsPerJoule);
    backend->values[{2, 0}] = counts;
    backend->values[{2, 28}] += static_cast<uint64_t>(30 * kCountsPerJoule);
    clock.AdvanceNs(kSecond);
    auto s = source.Sample();
    ASSERT_TRUE(s.ok());
    ASSERT_EQ(s->readings.size(), 4u);
    EXPECT_EQ(s->readings[0].domain, 0);
    EXPECT_EQ(s->readings[0].source, "perf-power");
    total_uj += s->readings[0].energy_uj;
    EXPECT_EQ(s->readings[1].domain, 1);
    EXPECT_NEAR(s->readings[1].energy_uj, 30'000'000, 1);
    EXPECT_EQ(s->Totals()[Zone::kDram].energy_uj, 0);
  }
  EXPECT_NEAR(total_uj, 15, 1);
}

TEST(PerfPowerTest, PermissionDeniedIsUnavailable) {
  TempTree tree;
  PowerPmu(tree, "0");
  auto backend = std::make_shared<FakePerfBackend>();
  backend->open_error = absl::PermissionDeniedError(
      "perf_event_open: Permission denied (needs CAP_PERFMON)");
  FakeClock clock;
  PerfPowerSource source(tree.fs(), clock, backend);
  EXPECT_TRUE(absl::IsPermissionDenied(source.Init()));
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("CAP_PERFMON"));
}

TEST(PerfPowerTest, BackwardsAndImplausibleCounted) {
  TempTree tree;
  PowerPmu(tree, "0");
  auto backend = std::make_shared<FakePerfBackend>();
  backend->values[{2, 0}] = 1'000'000;
  FakeClock clock;
  PerfPowerSource source(tree.fs(), clock, backend);
  ASSERT_TRUE(source.Init().ok());
  backend->values[{2, 0}] = 10;
  clock.AdvanceNs(kSecond);
  ASSERT_TRUE(source.Sample().ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kBackwards), 1u);
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  backend->values[{2, 0}] = 10 + static_cast<uint64_t>(5000 * kCountsPerJoule);
  clock.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kImplausible), 1u);
  backend->read_error = absl::UnavailableError("read failed");
  clock.AdvanceNs(kSecond);
  ASSERT_TRUE(source.Sample().ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnreadable), 2u);
}

TEST(PerfPowerTest, ClosesCountersOnDestruction) {
  TempTree tree;
  PowerPmu(tree, "0,1");
  auto backend = std::make_shared<FakePerfBackend>();
  {
    FakeClock clock;
    PerfPowerSource source(tree.fs(), clock, backend);
    ASSERT_TRUE(source.Init().ok());
  }
  EXPECT_EQ(backend->closed, 4);
}

}  // namespace
}  // namespace wattlens::power
