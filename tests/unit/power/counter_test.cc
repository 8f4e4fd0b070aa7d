// SPDX-License-Identifier: Apache-2.0
#include "agent/power/counter.h"

#include "gtest/gtest.h"

namespace wattlens::power {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(CounterTest, PlainDelta) {
  auto d = ResolveCounterDelta(1'000, 6'000, 1'000'000, {kSecond, 0, 100, {}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->energy_uj, 5'000u);
  EXPECT_EQ(d->wraps, 0u);
}

TEST(CounterTest, OneWrap) {
  // 262 kJ range, as on real packages; 20 J used across the wrap point.
  const uint64_t range = 262'143'328'850;
  auto d = ResolveCounterDelta(range - 15'000'000, 5'000'000, range,
                               {kSecond, 0, 1000, {}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->energy_uj, 20'000'000u);
  EXPECT_EQ(d->wraps, 1u);
  EXPECT_FALSE(d->ambiguous);
}

TEST(CounterTest, SeveralWrapsPickedByExpectedPower) {
  // 10 J range, 25 W for 1 s = 2 wraps + 5 J. Up to 30 W, 5, 15 and 25 J all
  // fit; the recent power picks 25 J.
  const uint64_t range = 10'000'000;
  auto d =
      ResolveCounterDelta(1'000'000, 6'000'000, range, {kSecond, 0, 30, 24.0});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->energy_uj, 25'000'000u);
  EXPECT_EQ(d->wraps, 2u);
  EXPECT_TRUE(d->ambiguous);
}

TEST(CounterTest, SeveralWrapsPinnedByBounds) {
  // Counter below its previous value: at least one wrap. A 20 W floor and a
  // 30 W ceiling leave only 3 wraps (28 J).
  const uint64_t range = 10'000'000;
  auto d =
      ResolveCounterDelta(4'000'000, 2'000'000, range, {kSecond, 20, 30, {}});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->energy_uj, 28'000'000u);
  EXPECT_EQ(d->wraps, 3u);
  EXPECT_FALSE(d->ambiguous);
}

TEST(CounterTest, WithoutHintTheSmallestFittingCountWins) {
  auto d = ResolveCounterDelta(1'000'000, 6'000'000, 10'000'000,
                               {kSecond, 0, 30, {}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->energy_uj, 5'000'000u);
  EXPECT_TRUE(d->ambiguous);
}

TEST(CounterTest, ImpossibleDeltaRejected) {
  // 50 J in one second against a 30 W ceiling: no wrap count helps.
  auto d =
      ResolveCounterDelta(0, 50'000'000, 100'000'000, {kSecond, 0, 30, {}});
  EXPECT_TRUE(absl::IsUnavailable(d.status())) << d.status();
  // A floor above anything the wraps can reach is impossible too.
  d = ResolveCounterDelta(0, 1'000'000, 100'000'000, {kSecond, 5, 30, {}});
  EXPECT_TRUE(absl::IsUnavailable(d.status())) << d.status();
}

TEST(CounterTest, ReadingAboveRangeRejected) {
  auto d = ResolveCounterDelta(0, 11, 10, {kSecond, 0, 30, {}});
  EXPECT_TRUE(absl::IsOutOfRange(d.status())) << d.status();
}

TEST(CounterTest, BackwardsWithoutRangeRejected) {
  auto d = ResolveCounterDelta(10, 5, 0, {kSecond, 0, 30, {}});
  EXPECT_TRUE(absl::IsFailedPrecondition(d.status())) << d.status();
}

TEST(CounterTest, HugeIntervalsDoNotOverflow) {
  // A day-long stall at up to 1 kW over a tiny range: many candidates, no
  // overflow, and the expected power selects the right one.
  const int64_t day = 86'400 * kSecond;
  auto d = ResolveCounterDelta(0, 1, 1'000, {day, 0, 1000, 500.0});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NEAR(static_cast<double>(d->energy_uj), 500.0 * 86'400 * 1e6, 1'000);
}

TEST(CounterTest, PowerToMicrojoules) {
  EXPECT_EQ(PowerToMicrojoules(2.5, kSecond), 2'500'000);
  EXPECT_EQ(PowerToMicrojoules(-1, kSecond), 0);
  EXPECT_EQ(PowerToMicrojoules(1e30, kSecond),
            std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace wattlens::power
