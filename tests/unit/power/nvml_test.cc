// SPDX-License-Identifier: Apache-2.0
#include "agent/power/nvml.h"

#include <vector>

#include "agent/common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::power {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(NvmlLoaderTest, AbsentLibraryIsUnavailableNotACrash) {
  auto lib = NvmlLibrary::Load("libnvidia-ml-definitely-absent.so.1");
  EXPECT_TRUE(absl::IsUnavailable(lib.status())) << lib.status();
  EXPECT_THAT(std::string(lib.status().message()),
              ::testing::HasSubstr("libnvidia-ml-definitely-absent.so.1"));

  FakeClock clock;
  NvmlConfig config;
  config.library_path = "libnvidia-ml-absent.so.1";
  NvmlGpuSource source(clock, config);
  EXPECT_FALSE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("cannot load"));
  EXPECT_FALSE(source.Sample().ok());
}

TEST(NvmlLoaderTest, DefaultLibraryOnThisMachine) {
  // Whatever this machine has, Init() answers with a health state.
  FakeClock clock;
  NvmlGpuSource source(clock);
  absl::Status s = source.Init();
  if (!s.ok()) {
    EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
    EXPECT_FALSE(source.last_error().empty());
  } else {
    EXPECT_NE(source.health(), SourceHealth::kUnavailable);
  }
}

TEST(NvmlLoaderTest, LibraryWithoutNvmlSymbolsIsUnavailable) {
  auto lib = NvmlLibrary::Load("libm.so.6");
  EXPECT_TRUE(absl::IsUnavailable(lib.status())) << lib.status();
  EXPECT_THAT(std::string(lib.status().message()),
              ::testing::HasSubstr("lacks the NVML symbol"));
}

// A two-GPU fake: GPU 0 has an energy counter, GPU 1 only power.
struct FakeNvml {
  bool init_fails = false;
  unsigned long long energy_mj = 1'000;
  NvmlReturn energy_ret = kNvmlSuccess;
  unsigned int power_mw = 50'000;
  std::vector<NvmlProcessUtilizationSample> processes;
};
FakeNvml* fake = nullptr;
int dev0 = 0;
int dev1 = 1;

NvmlDevice Handle(int* p) { return reinterpret_cast<NvmlDevice>(p); }
bool IsDev0(NvmlDevice d) { return d == Handle(&dev0); }

NvmlReturn FakeInit() { return fake->init_fails ? 999 : kNvmlSuccess; }
NvmlReturn FakeShutdown() { return kNvmlSuccess; }
NvmlReturn FakeCount(unsigned int* n) {
  *n = 2;
  return kNvmlSuccess;
}
NvmlReturn FakeHandle(unsigned int i, NvmlDevice* d) {
  *d = Handle(i == 0 ? &dev0 : &dev1);
  return kNvmlSuccess;
}
NvmlReturn FakePower(NvmlDevice, unsigned int* mw) {
  *mw = fake->power_mw;
  return kNvmlSuccess;
}
NvmlReturn FakeEnergy(NvmlDevice d, unsigned long long* mj) {
  if (!IsDev0(d)) return kNvmlErrorNotSupported;
  if (fake->energy_ret != kNvmlSuccess) return fake->energy_ret;
  *mj = fake->energy_mj;
  return kNvmlSuccess;
}
NvmlReturn FakeProcesses(NvmlDevice d, NvmlProcessUtilizationSample* out,
                         unsigned int* count, unsigned long long) {
  if (!IsDev0(d) || fake->processes.empty()) return kNvmlErrorNotFound;
  if (out == nullptr || *count < fake->processes.size()) {
    *count = static_cast<unsigned int>(fake->processes.size());
    return kNvmlErrorInsufficientSize;
  }
  for (size_t i = 0; i < fake->processes.size(); ++i) {
    out[i] = fake->processes[i];
  }
  *count = static_cast<unsigned int>(fake->processes.size());
  return kNvmlSuccess;
}
const char* FakeErrorString(NvmlReturn) { return "fake NVML error"; }

NvmlApi FakeApi() {
  NvmlApi api;
  api.init = FakeInit;
  api.shutdown = FakeShutdown;
  api.device_get_count = FakeCount;
  api.device_get_handle_by_index = FakeHandle;
  api.device_get_power_usage = FakePower;
  api.device_get_total_energy_consumption = FakeEnergy;
  api.device_get_process_utilization = FakeProcesses;
  api.error_string = FakeErrorString;
  return api;
}

class NvmlSourceTest : public ::testing::Test {
 protected:
  void SetUp() override { fake = &state_; }
  void TearDown() override { fake = nullptr; }
  FakeNvml state_;
  NvmlApi api_ = FakeApi();
  FakeClock clock_;
};

TEST_F(NvmlSourceTest, EnergyCounterElsePowerTimesTime) {
  NvmlGpuSource source(clock_);
  source.UseApiForTest(&api_);
  ASSERT_TRUE(source.Init().ok());
  ASSERT_EQ(source.device_count(), 2);
  EXPECT_TRUE(source.uses_energy_counter(0));
  EXPECT_FALSE(source.uses_energy_counter(1));

  state_.energy_mj += 120'000;  // 120 J over 2 s
  state_.power_mw = 70'000;     // 50 W -> 70 W
  clock_.AdvanceNs(2 * kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->readings.size(), 2u);
  EXPECT_EQ(s->readings[0].zone, Zone::kGpu);
  EXPECT_EQ(s->readings[0].source, "nvml-energy");
  EXPECT_EQ(s->readings[0].energy_uj, 120'000'000);
  EXPECT_EQ(s->readings[1].source, "nvml-power");
  EXPECT_EQ(s->readings[1].domain, 1);
  EXPECT_EQ(s->readings[1].energy_uj, 120'000'000);  // 60 W mean × 2 s
  EXPECT_EQ(s->Totals()[Zone::kGpu].energy_uj, 240'000'000);
}

TEST_F(NvmlSourceTest, ProcessSharesFromUtilisation) {
  state_.processes = {{100, 1, 30, 0, 0, 0},
                      {200, 2, 10, 0, 0, 0},
                      {100, 3, 20, 0, 0, 0},
                      {300, 4, 250, 0, 0, 0}};  // not a percentage
  NvmlGpuSource source(clock_);
  source.UseApiForTest(&api_);
  ASSERT_TRUE(source.Init().ok());
  clock_.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->gpu_processes.size(), 2u);
  EXPECT_EQ(s->gpu_processes[0].pid, 100);
  EXPECT_EQ(s->gpu_processes[0].sm_util, 50u);
  EXPECT_EQ(s->gpu_processes[1].pid, 200);
  EXPECT_EQ(s->gpu_processes[1].sm_util, 10u);
}

TEST_F(NvmlSourceTest, ErrorsDegradeAndCount) {
  NvmlGpuSource source(clock_);
  source.UseApiForTest(&api_);
  ASSERT_TRUE(source.Init().ok());
  state_.energy_ret = 15;       // e.g. NVML_ERROR_GPU_IS_LOST
  state_.power_mw = 5'000'000;  // 5 kW: implausible
  clock_.AdvanceNs(kSecond);
  auto s = source.Sample();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->readings.empty());
  EXPECT_EQ(source.health(), SourceHealth::kDegraded);
  EXPECT_EQ(source.rejected().Get(RejectReason::kUnreadable), 1u);
  EXPECT_EQ(source.rejected().Get(RejectReason::kImplausible), 1u);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("mW"));
  // The counter going backwards (driver reload) is counted too.
  state_.energy_ret = kNvmlSuccess;
  state_.energy_mj = 10;
  state_.power_mw = 40'000;
  clock_.AdvanceNs(kSecond);
  ASSERT_TRUE(source.Sample().ok());
  EXPECT_EQ(source.rejected().Get(RejectReason::kBackwards), 1u);
}

TEST_F(NvmlSourceTest, InitFailureIsUnavailable) {
  state_.init_fails = true;
  NvmlGpuSource source(clock_);
  source.UseApiForTest(&api_);
  EXPECT_FALSE(source.Init().ok());
  EXPECT_EQ(source.health(), SourceHealth::kUnavailable);
  EXPECT_THAT(source.last_error(), ::testing::HasSubstr("fake NVML error"));
}

}  // namespace
}  // namespace wattlens::power
