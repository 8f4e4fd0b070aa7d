// SPDX-License-Identifier: Apache-2.0
#include "agent/power/attribution.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::power {
namespace {

using ::testing::ElementsAre;

const std::string kIdle(kIdleWorkload);
const std::string kUnattributed(kUnattributedWorkload);

TEST(ApportionTest, ExactAndFair) {
  EXPECT_THAT(Apportion(10, {1, 1, 1}), ElementsAre(4, 3, 3));
  EXPECT_THAT(Apportion(100, {1, 2, 0, 1}), ElementsAre(25, 50, 0, 25));
  EXPECT_THAT(Apportion(7, {0, 0}), ElementsAre(0, 0));
  EXPECT_THAT(Apportion(0, {5, 5}), ElementsAre(0, 0));
  // Largest remainders win the leftover units: 2/3 beats 1/3.
  EXPECT_THAT(Apportion(2, {1, 2}), ElementsAre(1, 1));
  EXPECT_THAT(Apportion(1, {1, 2}), ElementsAre(0, 1));
  // Weights near 2^64 do not overflow.
  const uint64_t big = ~uint64_t{0};
  EXPECT_THAT(Apportion(3, {big, big, big}), ElementsAre(1, 1, 1));
}

TEST(FrequencyWeightTest, CyclesFromTimeAndFrequency) {
  // 1 ms at 3 GHz = 3 M cycles; unknown frequency uses the fallback.
  EXPECT_EQ(FrequencyWeightedCpuTime(1'000'000, 3'000'000, 0), 3'000'000u);
  EXPECT_EQ(FrequencyWeightedCpuTime(1'000'000, 0, 2'000'000), 2'000'000u);
  // The same time at a higher clock weighs more.
  EXPECT_GT(FrequencyWeightedCpuTime(10, 3'500'000, 0),
            FrequencyWeightedCpuTime(10, 1'200'000, 0));
}

AttributionInput TwoPods() {
  AttributionInput in;
  in.zones = {{"package", 10'000'000, 4'000'000, {}}};
  in.workloads = {{"default/web", 0, 500}, {"default/db", 0, 1500}};
  in.processes = {{10, "default/web", 300, false},
                  {11, "default/web", 100, true},  // exited mid-interval
                  {20, "default/db", 200, false}};
  in.kernel_weight = 0;
  return in;
}

TEST(AttributionTest, DynamicByCpuTimeIdleStaysInIdleBucket) {
  auto r = Attribute(TwoPods());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->zones.size(), 1u);
  const ZoneAttribution& z = r->zones[0];
  EXPECT_EQ(z.dynamic_uj, 6'000'000);
  EXPECT_EQ(z.workloads.at("default/web").dynamic_uj, 4'000'000);
  EXPECT_EQ(z.workloads.at("default/db").dynamic_uj, 2'000'000);
  EXPECT_EQ(z.workloads.at("default/web").idle_uj, 0);
  EXPECT_EQ(z.workloads.at(kIdle).idle_uj, 4'000'000);
  EXPECT_EQ(z.workloads.at(kUnattributed).total_uj(), 0);
  // The exited process keeps its share of its pod.
  EXPECT_EQ(z.process_dynamic_uj.at(10), 3'000'000);
  EXPECT_EQ(z.process_dynamic_uj.at(11), 1'000'000);
  EXPECT_EQ(z.process_dynamic_uj.at(20), 2'000'000);
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, IdleIsABaselineNotTheUtilisationResidual) {
  // At full load the baseline stays; a (1 − u) × total split would put 0
  // into idle here.
  AttributionInput in = TwoPods();
  in.zones = {{"package", 100'000'000, 30'000'000, {}}};
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at(kIdle).idle_uj, 30'000'000);
  // A baseline above the interval's energy is capped, never negative.
  in.zones = {{"package", 1'000, 5'000, {}}};
  r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].idle_uj, 1'000);
  EXPECT_EQ(r->zones[0].dynamic_uj, 0);
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, KernelThreadsAreUnattributed) {
  AttributionInput in = TwoPods();
  in.kernel_weight = 600;  // as much as both pods together
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at(kUnattributed).dynamic_uj, 3'000'000);
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, NoActivityPutsDynamicInUnattributed) {
  AttributionInput in;
  in.zones = {{"package", 5'000, 1'000, {}}};
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at(kUnattributed).dynamic_uj, 4'000);
  EXPECT_EQ(r->zones[0].workloads.at(kIdle).idle_uj, 1'000);
}

TEST(AttributionTest, UsageSharePolicy) {
  AttributionInput in = TwoPods();
  in.idle_policy = IdlePolicy::kUsageShare;
  in.kernel_weight = 200;
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  const ZoneAttribution& z = r->zones[0];
  // Weights 400 : 200 : 200 (kernel) over 4 J of idle.
  EXPECT_EQ(z.workloads.at("default/web").idle_uj, 2'000'000);
  EXPECT_EQ(z.workloads.at("default/db").idle_uj, 1'000'000);
  EXPECT_EQ(z.workloads.at(kUnattributed).idle_uj, 1'000'000);
  EXPECT_EQ(z.workloads.at(kIdle).idle_uj, 0);
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, RequestSharePolicyLeavesUnrequestedCapacityIdle) {
  AttributionInput in = TwoPods();
  in.idle_policy = IdlePolicy::kRequestShare;
  in.node_allocatable_millicores = 4000;  // 2000 requested
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  const ZoneAttribution& z = r->zones[0];
  EXPECT_EQ(z.workloads.at("default/web").idle_uj, 500'000);
  EXPECT_EQ(z.workloads.at("default/db").idle_uj, 1'500'000);
  EXPECT_EQ(z.workloads.at(kIdle).idle_uj, 2'000'000);
  EXPECT_TRUE(CheckConservation(*r).ok());
  // Overcommitted: requests above allocatable share all of it.
  in.node_allocatable_millicores = 1000;
  r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at(kIdle).idle_uj, 0);
  EXPECT_EQ(r->zones[0].workloads.at("default/db").idle_uj, 3'000'000);
}

TEST(AttributionTest, RequestSharePolicyAllocatesMaxOfRequestAndUsage) {
  // OpenCost: a workload's allocation is max(request, usage).
  AttributionInput in = TwoPods();
  in.idle_policy = IdlePolicy::kRequestShare;
  in.node_allocatable_millicores = 4000;
  in.workloads[0].cpu_usage_millicores = 1500;  // web: request 500, uses 1.5
  in.workloads[1].cpu_usage_millicores = 100;   // db: request 1500, uses 0.1
  in.workloads.push_back({"default/batch", 0, 0, 500});  // no request
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const ZoneAttribution& z = r->zones[0];
  // a = 1500, 1500, 500 of A = 4000: 4 J × a / 4000.
  EXPECT_EQ(z.workloads.at("default/web").idle_uj, 1'500'000);
  EXPECT_EQ(z.workloads.at("default/db").idle_uj, 1'500'000);
  EXPECT_EQ(z.workloads.at("default/batch").idle_uj, 500'000);
  EXPECT_EQ(z.workloads.at(kIdle).idle_uj, 500'000);
  EXPECT_EQ(z.workloads.at(kUnattributed).idle_uj, 0);
  EXPECT_TRUE(CheckConservation(*r).ok());
  // Usage above allocatable (bursting past requests): Σ a = 5000 > 4000
  // shares all of it, nothing stays idle.
  in.workloads[2].cpu_usage_millicores = 2000;
  r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at("default/web").idle_uj, 1'200'000);
  EXPECT_EQ(r->zones[0].workloads.at("default/batch").idle_uj, 1'600'000);
  EXPECT_EQ(r->zones[0].workloads.at(kIdle).idle_uj, 0);
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, CgroupWeightCoversUnlistedTasks) {
  AttributionInput in;
  in.zones = {{"package", 1'000'000, 0, {}}};
  // The cgroup ran 1000 units; only 250 are known per process.
  in.workloads = {{"ns/pod", 1000, 0}, {"ns/other", 1000, 0}};
  in.processes = {{7, "ns/pod", 250, false}};
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at("ns/pod").dynamic_uj, 500'000);
  EXPECT_EQ(r->zones[0].process_dynamic_uj.at(7), 125'000);
}

TEST(AttributionTest, ProcessesWithoutWorkloadEntryCreateOne) {
  AttributionInput in;
  in.zones = {{"package", 900, 0, {}}};
  in.processes = {{1, "a", 1, false}, {2, "b", 2, false}};
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->zones[0].workloads.at("a").dynamic_uj, 300);
  EXPECT_EQ(r->zones[0].workloads.at("b").dynamic_uj, 600);
}

TEST(AttributionTest, GpuZoneUsesItsOwnWeights) {
  AttributionInput in = TwoPods();
  in.kernel_weight = 1'000;
  in.zones.push_back({"gpu/0", 3'000, 1'000,
                      std::map<std::string, uint64_t>{{"default/db", 90}}});
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok());
  const ZoneAttribution& gpu = r->zones[1];
  EXPECT_EQ(gpu.workloads.at("default/db").dynamic_uj, 2'000);
  EXPECT_EQ(gpu.workloads.at("default/web").dynamic_uj, 0);
  EXPECT_EQ(gpu.workloads.at(kUnattributed).dynamic_uj, 0);
  EXPECT_TRUE(gpu.process_dynamic_uj.empty());
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, GpuOnlyWorkloadAndUnmappedGpuProcesses) {
  AttributionInput in = TwoPods();
  ZoneEnergyInput gpu{
      "gpu", 4'000, 0,
      std::map<std::string, uint64_t>{{"ml/job", 30}, {"default/db", 10}}};
  gpu.unattributed_weight = 40;
  in.zones.push_back(gpu);
  auto r = Attribute(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->zones[1].workloads.at("ml/job").dynamic_uj, 1'500);
  EXPECT_EQ(r->zones[1].workloads.at("default/db").dynamic_uj, 500);
  EXPECT_EQ(r->zones[1].workloads.at(kUnattributed).dynamic_uj, 2'000);
  // The new workload exists, with nothing, in the CPU zone too.
  EXPECT_EQ(r->zones[0].workloads.at("ml/job").total_uj(), 0);
  EXPECT_TRUE(CheckConservation(*r).ok());
}

TEST(AttributionTest, BadInputIsAClearError) {
  AttributionInput in = TwoPods();
  in.zones[0].energy_uj = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(Attribute(in).status()));
  in = TwoPods();
  in.workloads.push_back({"default/web", 0, 0});
  EXPECT_TRUE(absl::IsInvalidArgument(Attribute(in).status()));
  in = TwoPods();
  in.workloads.push_back({kIdle, 0, 0});
  EXPECT_TRUE(absl::IsInvalidArgument(Attribute(in).status()));
  in = TwoPods();
  in.processes.push_back({10, "default/db", 1, false});
  EXPECT_TRUE(absl::IsInvalidArgument(Attribute(in).status()));
  in = TwoPods();
  in.zones[0].weight_override =
      std::map<std::string, uint64_t>{{std::string(kIdleWorkload), 1}};
  EXPECT_TRUE(absl::IsInvalidArgument(Attribute(in).status()));
}

TEST(AttributionTest, CheckConservationCatchesALeak) {
  auto r = Attribute(TwoPods());
  ASSERT_TRUE(r.ok());
  r->zones[0].workloads["default/web"].dynamic_uj += 1;
  EXPECT_TRUE(absl::IsInternal(CheckConservation(*r)));
}

}  // namespace
}  // namespace wattlens::power
