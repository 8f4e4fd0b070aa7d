// SPDX-License-Identifier: Apache-2.0
#include "agent/power/baseline.h"

#include <cmath>

#include "agent/common/clock.h"
#include "gtest/gtest.h"

namespace wattlens::power {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(BaselineTest, NothingKnownMeansNoBaseline) {
  FakeClock clock;
  IdleBaselineEstimator est(clock);
  EXPECT_EQ(est.Get("package").kind, BaselineKind::kNone);
  EXPECT_EQ(est.IdleMicrojoules("package", kSecond, 5'000'000), 0);
}

TEST(BaselineTest, RollingMinimumAtLowLoad) {
  FakeClock clock;
  BaselineConfig config;
  config.window_ns = 100 * kSecond;
  IdleBaselineEstimator est(clock, config);
  est.Observe("package", 50, 0.05);
  clock.AdvanceNs(10 * kSecond);
  est.Observe("package", 42, 0.08);
  clock.AdvanceNs(10 * kSecond);
  est.Observe("package", 30, 0.9);  // busy: not idle evidence
  clock.AdvanceNs(10 * kSecond);
  est.Observe("package", 45, 0.02);
  Baseline b = est.Get("package");
  EXPECT_EQ(b.kind, BaselineKind::kLowLoadMinimum);
  EXPECT_DOUBLE_EQ(b.watts, 42);
  EXPECT_EQ(est.IdleMicrojoules("package", 2 * kSecond, 1'000'000'000),
            84'000'000);
  // Never more than the interval's energy.
  EXPECT_EQ(est.IdleMicrojoules("package", 2 * kSecond, 1'000), 1'000);
  // 42 W ages out of the window; 45 W is the minimum left.
  clock.AdvanceNs(85 * kSecond);
  EXPECT_DOUBLE_EQ(est.Get("package").watts, 45);
  // Zones are independent.
  EXPECT_EQ(est.Get("dram").kind, BaselineKind::kNone);
}

TEST(BaselineTest, RegressionInterceptBeforeAnyIdleInterval) {
  FakeClock clock;
  IdleBaselineEstimator est(clock);
  // P = 20 + 80 u, never below 30% load.
  for (int i = 0; i < 20; ++i) {
    const double u = 0.3 + 0.03 * i;
    est.Observe("package", 20 + 80 * u, u);
    clock.AdvanceNs(kSecond);
  }
  Baseline b = est.Get("package");
  EXPECT_EQ(b.kind, BaselineKind::kRegression);
  EXPECT_NEAR(b.watts, 20, 1e-6);
  // Steady load gives no slope to extrapolate from.
  IdleBaselineEstimator steady(clock);
  for (int i = 0; i < 20; ++i) steady.Observe("package", 70, 0.6);
  EXPECT_EQ(steady.Get("package").kind, BaselineKind::kNone);
}

TEST(BaselineTest, RegressionNeverAboveLowestSeenOrBelowZero) {
  FakeClock clock;
  IdleBaselineEstimator est(clock);
  // Power falling with load (nonsense): the intercept is clamped.
  for (int i = 0; i < 20; ++i) {
    const double u = 0.3 + 0.03 * i;
    est.Observe("package", 100 - 80 * u, u);
  }
  Baseline b = est.Get("package");
  EXPECT_EQ(b.kind, BaselineKind::kRegression);
  EXPECT_LE(b.watts, 100 - 80 * (0.3 + 0.03 * 19) + 1e-9);
}

TEST(BaselineTest, ConfiguredValueWins) {
  FakeClock clock;
  BaselineConfig config;
  config.configured_watts["package"] = 12.5;
  IdleBaselineEstimator est(clock, config);
  est.Observe("package", 40, 0.01);
  EXPECT_EQ(est.Get("package").kind, BaselineKind::kConfigured);
  EXPECT_DOUBLE_EQ(est.Get("package").watts, 12.5);
}

TEST(BaselineTest, BadSamplesIgnored) {
  FakeClock clock;
  IdleBaselineEstimator est(clock);
  est.Observe("package", -5, 0.0);
  est.Observe("package", std::nan(""), 0.0);
  est.Observe("package", 10, std::nan(""));
  EXPECT_EQ(est.Get("package").kind, BaselineKind::kNone);
}

}  // namespace
}  // namespace wattlens::power
