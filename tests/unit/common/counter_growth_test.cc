// SPDX-License-Identifier: Apache-2.0
#include "common/counters/counter_growth.h"

#include <array>
#include <cstdint>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

constexpr uint64_t kMax = UINT64_MAX;

TEST(CounterGrowthTest, GrowthIsTheDifference) {
  EXPECT_EQ(CounterGrowth(100, 250), 150u);
  EXPECT_FALSE(CounterRestarted(100, 250));
  EXPECT_EQ(CounterGrowth(0, kMax), kMax);
}

TEST(CounterGrowthTest, EqualReadingsAreNoGrowth) {
  EXPECT_EQ(CounterGrowth(42, 42), 0u);
  EXPECT_EQ(CounterGrowth(kMax, kMax), 0u);
  EXPECT_FALSE(CounterRestarted(42, 42));
}

TEST(CounterGrowthTest, RestartCountsTheWholeNewReading) {
  EXPECT_TRUE(CounterRestarted(1000, 30));
  EXPECT_EQ(CounterGrowth(1000, 30), 30u);
  EXPECT_EQ(CounterGrowth(1000, 0), 0u);
}

TEST(CounterGrowthTest, WrapIsReadAsRestartNeverAsHugeGrowth) {
  EXPECT_TRUE(CounterRestarted(kMax - 1, 5));
  EXPECT_EQ(CounterGrowth(kMax - 1, 5), 5u);
}

TEST(CounterGrowthTest, FirstReadingFromZeroIsAllGrowth) {
  uint64_t last = 0;
  EXPECT_EQ(AdvanceCounter(last, 70), 70u);
  EXPECT_EQ(last, 70u);
  EXPECT_EQ(AdvanceCounter(last, 100), 30u);
  EXPECT_EQ(AdvanceCounter(last, 100), 0u);
  EXPECT_EQ(AdvanceCounter(last, 10), 10u);  // restarted
  EXPECT_EQ(last, 10u);
}

TEST(RecordGrowthTest, FieldsGrowByTheirDifferences) {
  const std::array<uint64_t, 3> prev{10, 20, 30}, cur{15, 20, 31};
  std::array<uint64_t, 3> out{};
  EXPECT_FALSE(RecordGrowth(prev, cur, out));
  EXPECT_EQ(out, (std::array<uint64_t, 3>{5, 0, 1}));
}

TEST(RecordGrowthTest, OneFieldBackRestartsTheWholeRecord) {
  const std::array<uint64_t, 3> prev{10, 20, 30}, cur{15, 3, 40};
  std::array<uint64_t, 3> out{};
  EXPECT_TRUE(RecordGrowth(prev, cur, out));
  EXPECT_EQ(out, (std::array<uint64_t, 3>{15, 3, 40}));
}

TEST(RecordGrowthTest, FirstReadingAgainstZerosIsAllGrowth) {
  const std::array<uint64_t, 2> prev{}, cur{7, kMax};
  std::array<uint64_t, 2> out{};
  EXPECT_FALSE(RecordGrowth(prev, cur, out));
  EXPECT_EQ(out, cur);
}

}  // namespace
}  // namespace wattlens
