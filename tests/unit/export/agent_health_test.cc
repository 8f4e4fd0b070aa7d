// SPDX-License-Identifier: Apache-2.0
// Which source states make the agent ready.
#include "agent/export/agent_health.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

SourceHealth In(const char* source, SourceState state,
                HealthReason reason = HealthReason::kLoadFailed) {
  if (state == SourceState::kUp) return SourceHealth::Up(source);
  return {source, state, reason, "free text that is not asserted"};
}

std::vector<SourceHealth> Sources(SourceState syscalls, SourceState sched,
                                  SourceState network) {
  return {In("syscalls", syscalls), In("sched", sched),
          In("network", network), In("power", SourceState::kDown),
          In("kubernetes", SourceState::kDown)};
}

constexpr SourceState kUp = SourceState::kUp;
constexpr SourceState kDegraded = SourceState::kDegraded;
constexpr SourceState kDown = SourceState::kDown;

TEST(SourcesReadyTest, SyscallsUpAndSchedCountingWhateverNetwork) {
  EXPECT_TRUE(SourcesReady(Sources(kUp, kUp, kUp)).ok());
  EXPECT_TRUE(SourcesReady(Sources(kUp, kDegraded, kDegraded)).ok());
  EXPECT_TRUE(SourcesReady(Sources(kUp, kUp, kDown)).ok());
}

TEST(SourcesReadyTest, EveryCombination) {
  const SourceState all[] = {kUp, kDegraded, kDown};
  for (SourceState sys : all) {
    for (SourceState sched : all) {
      for (SourceState net : all) {
        const bool want = sys == kUp && sched != kDown;
        absl::Status st = SourcesReady(Sources(sys, sched, net));
        EXPECT_EQ(st.ok(), want)
            << SourceStateName(sys) << " " << SourceStateName(sched) << " "
            << SourceStateName(net) << ": " << st;
        if (!want) {
          EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
        }
      }
    }
  }
}

TEST(SourcesReadyTest, AMissingRequiredSourceIsNotReady) {
  std::vector<SourceHealth> s = Sources(kUp, kUp, kUp);
  s.erase(s.begin() + 2);  // network: optional
  EXPECT_TRUE(SourcesReady(s).ok());
  s.erase(s.begin() + 1);  // sched
  EXPECT_FALSE(SourcesReady(s).ok());
  EXPECT_FALSE(SourcesReady({}).ok());
}

TEST(SourceHealthTest, NamesCoverEveryStateAndReason) {
  EXPECT_EQ(SourceStateName(kUp), "up");
  EXPECT_EQ(SourceStateName(kDegraded), "degraded");
  EXPECT_EQ(SourceStateName(kDown), "down");
  for (size_t i = 0; i < kHealthReasons; ++i) {
    EXPECT_FALSE(HealthReasonName(static_cast<HealthReason>(i)).empty()) << i;
  }
  EXPECT_EQ(HealthReasonName(HealthReason::kNetworkBytesOff),
            "network_bytes_off");
}

}  // namespace
}  // namespace wattlens
