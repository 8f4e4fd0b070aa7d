// SPDX-License-Identifier: Apache-2.0
#include "agent/state/drops.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

TEST(DropReasonTest, EveryReasonHasOneDistinctName) {
  std::set<std::string> names;
  for (size_t i = 0; i < kDropReasons; ++i) {
    const auto r = static_cast<DropReason>(i);
    const std::string name(DropReasonName(r));
    EXPECT_FALSE(name.empty()) << i;
    EXPECT_NE(name, "unknown") << i;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(names.size(), kDropReasons);
}

TEST(DropReasonTest, KernelReasonsKeepTheAbiValues) {
  EXPECT_EQ(kKernelDropReasons, static_cast<size_t>(WL_DROP_MAX));
  EXPECT_EQ(static_cast<int>(DropReason::kRingbufFull),
            WL_DROP_RINGBUF_RESERVE);
  EXPECT_EQ(static_cast<int>(DropReason::kCasRetryDeferred),
            WL_DROP_CAS_RETRY_DEFERRED);
  // The last kernel slot is the one that used to render as "unknown".
  EXPECT_EQ(DropReasonName(static_cast<DropReason>(WL_DROP_MAX - 1)),
            "cas_retry_deferred");
}

TEST(DropReasonTest, NonLossesAreNotLosses) {
  EXPECT_FALSE(IsLoss(DropReason::kCasRetryDeferred));
  EXPECT_FALSE(IsLoss(DropReason::kPodsEvictedLive));
  EXPECT_FALSE(IsLoss(DropReason::kWorkingSetUnreadable));
  EXPECT_TRUE(IsLoss(DropReason::kTaskStorageFull));
  EXPECT_TRUE(IsLoss(DropReason::kShortRecord));
  EXPECT_TRUE(IsLoss(DropReason::kRingbufFull));
}

TEST(DropTableTest, CountsByReasonAndTotalsOnlyLosses) {
  DropTable t;
  t[DropReason::kRingbufFull] = 2;
  t[DropReason::kShortRecord] += 1;
  t[DropReason::kCasRetryDeferred] = 40;
  EXPECT_EQ(t[DropReason::kRingbufFull], 2u);
  EXPECT_EQ(t.TotalLost(), 3u);
  size_t seen = 0;
  uint64_t sum = 0;
  t.ForEach([&](const DropReasonInfo& info, uint64_t n) {
    EXPECT_EQ(static_cast<size_t>(info.reason), seen);
    ++seen;
    sum += n;
  });
  EXPECT_EQ(seen, kDropReasons);
  EXPECT_EQ(sum, 43u);
}

}  // namespace
}  // namespace wattlens
