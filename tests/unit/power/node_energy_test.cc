// SPDX-License-Identifier: Apache-2.0
#include "agent/power/node_energy.h"

#include "agent/common/clock.h"
#include "gtest/gtest.h"

namespace wattlens::power {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

ZoneReading Reading(Zone zone, int domain, int64_t uj,
                    std::optional<int64_t> idle = std::nullopt) {
  ZoneReading r;
  r.zone = zone;
  r.domain = domain;
  r.energy_uj = uj;
  r.interval_ns = kSecond;
  r.idle_uj = idle;
  return r;
}

TEST(NodeEnergyTest, ModelIdleTermIsTheBaseline) {
  FakeClock clock;
  IdleBaselineEstimator baseline(clock);
  PowerSample s;
  s.readings = {Reading(Zone::kPackage, -1, 5'000'000, 2'000'000)};
  auto zones = NodeZoneInputs(s, 0.9, baseline);
  ASSERT_EQ(zones.size(), 1u);
  EXPECT_EQ(zones[0].input.zone, "package");
  EXPECT_EQ(zones[0].input.idle_uj, 2'000'000);
  EXPECT_EQ(zones[0].idle_method, "model");
}

TEST(NodeEnergyTest, MeteredZonesUseTheEstimatorAndSumSockets) {
  FakeClock clock;
  IdleBaselineEstimator baseline(clock);
  PowerSample quiet;
  quiet.readings = {Reading(Zone::kPackage, 0, 20'000'000),
                    Reading(Zone::kPackage, 1, 20'000'000)};
  auto zones = NodeZoneInputs(quiet, 0.02, baseline);
  ASSERT_EQ(zones.size(), 1u);
  EXPECT_EQ(zones[0].input.energy_uj, 40'000'000);
  EXPECT_EQ(zones[0].input.idle_uj, 40'000'000);  // all idle when quiet
  EXPECT_EQ(zones[0].idle_method, "low_load_minimum");

  clock.AdvanceNs(kSecond);
  PowerSample busy;
  busy.readings = {Reading(Zone::kPackage, 0, 90'000'000),
                   Reading(Zone::kPackage, 1, 110'000'000)};
  zones = NodeZoneInputs(busy, 0.95, baseline);
  EXPECT_EQ(zones[0].input.energy_uj, 200'000'000);
  EXPECT_EQ(zones[0].input.idle_uj, 40'000'000);  // the baseline stays
}

TEST(NodeEnergyTest, GpuWeightsFromProcessUtilisation) {
  FakeClock clock;
  IdleBaselineEstimator baseline(clock);
  PowerSample s;
  s.readings = {Reading(Zone::kGpu, 0, 3'000'000)};
  s.gpu_processes = {{0, 10, 60}, {0, 11, 20}, {0, 99, 20}};
  auto zones = NodeZoneInputs(s, 0.5, baseline,
                              [](int32_t pid) -> std::optional<std::string> {
                                if (pid == 10 || pid == 11)
                                  return std::string("ml/trainer");
                                return std::nullopt;
                              });
  ASSERT_EQ(zones.size(), 1u);
  ASSERT_TRUE(zones[0].input.weight_override.has_value());
  EXPECT_EQ(zones[0].input.weight_override->at("ml/trainer"), 80u);
  EXPECT_EQ(zones[0].input.weight_override->size(), 1u);
  EXPECT_EQ(zones[0].input.unattributed_weight, 20u);
}

}  // namespace
}  // namespace wattlens::power
