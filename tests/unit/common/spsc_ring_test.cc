// SPDX-License-Identifier: Apache-2.0
#include "agent/common/spsc_ring.h"

#include <cstdint>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

TEST(SpscRingTest, RoundsCapacityUpToPowerOfTwo) {
  EXPECT_EQ(SpscRing<int>(0).capacity(), 2u);
  EXPECT_EQ(SpscRing<int>(5).capacity(), 8u);
  EXPECT_EQ(SpscRing<int>(1024).capacity(), 1024u);
}

TEST(SpscRingTest, FifoOrderAndEmpty) {
  SpscRing<int> r(4);
  EXPECT_FALSE(r.TryPop().has_value());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.TryPush(i));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.TryPop(), i);
  EXPECT_FALSE(r.TryPop().has_value());
}

TEST(SpscRingTest, FullRingRefusesAndCountsDrops) {
  SpscRing<int> r(2);
  EXPECT_TRUE(r.TryPush(1));
  EXPECT_TRUE(r.TryPush(2));
  EXPECT_FALSE(r.TryPush(3));
  EXPECT_FALSE(r.TryPush(4));
  EXPECT_EQ(r.dropped(), 2u);
  EXPECT_EQ(r.TryPop(), 1);
  EXPECT_TRUE(r.TryPush(5));  // room again after a pop
  EXPECT_EQ(r.TryPop(), 2);
  EXPECT_EQ(r.TryPop(), 5);
  EXPECT_EQ(r.dropped(), 2u);
}

TEST(SpscRingTest, WrapsAroundManyTimes) {
  SpscRing<uint64_t> r(8);
  uint64_t next_pop = 0;
  for (uint64_t i = 0; i < 10'000; ++i) {
    ASSERT_TRUE(r.TryPush(i));
    if (i % 3 == 2) {
      while (auto v = r.TryPop()) ASSERT_EQ(*v, next_pop++);
    }
  }
  while (auto v = r.TryPop()) ASSERT_EQ(*v, next_pop++);
  EXPECT_EQ(next_pop, 10'000u);
  EXPECT_EQ(r.SizeApprox(), 0u);
}

TEST(SpscRingTest, MovesNonTrivialValues) {
  SpscRing<std::string> r(4);
  std::string big(1000, 'x');
  EXPECT_TRUE(r.TryPush(big));
  EXPECT_EQ(r.TryPop(), big);
}

TEST(SpscRingTest, DrainHonoursMax) {
  SpscRing<int> r(16);
  for (int i = 0; i < 10; ++i) r.TryPush(i);
  int sum = 0;
  EXPECT_EQ(r.Drain([&](int v) { sum += v; }, 4), 4u);
  EXPECT_EQ(sum, 0 + 1 + 2 + 3);
  EXPECT_EQ(r.Drain([&](int v) { sum += v; }), 6u);
  EXPECT_EQ(sum, 45);
}

// Producer and consumer on two threads: every value arrives once, in order,
// or is counted as dropped. Run under ThreadSanitizer too (label tsan).
TEST(SpscRingTest, ConcurrentProducerConsumerLosesNothingUncounted) {
  constexpr uint64_t kItems = 2'000'000;
  SpscRing<uint64_t> r(1024);
  uint64_t pushed = 0;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kItems; ++i) {
      if (r.TryPush(i)) ++pushed;
    }
  });
  uint64_t received = 0, last = 0;
  bool ordered = true;
  // Every item ends up either popped here or counted as dropped.
  while (received + r.dropped() < kItems) {
    while (auto v = r.TryPop()) {
      if (received && *v <= last) ordered = false;
      last = *v;
      ++received;
    }
  }
  producer.join();
  EXPECT_TRUE(ordered);
  EXPECT_EQ(received, pushed);
  EXPECT_EQ(received + r.dropped(), kItems);
}

// A bounded consumer that never drops: producer retries when full.
TEST(SpscRingTest, ConcurrentRetryingProducerDeliversAll) {
  constexpr uint64_t kItems = 500'000;
  SpscRing<uint64_t> r(64);
  std::thread producer([&] {
    for (uint64_t i = 0; i < kItems;) {
      if (r.TryPush(i)) ++i;
    }
  });
  uint64_t expect = 0;
  while (expect < kItems) {
    if (auto v = r.TryPop()) {
      ASSERT_EQ(*v, expect);
      ++expect;
    }
  }
  producer.join();
  EXPECT_FALSE(r.TryPop().has_value());
}

}  // namespace
}  // namespace wattlens
