// SPDX-License-Identifier: Apache-2.0
// NVIDIA GPUs through NVML, loaded at run time with dlopen so that the agent
// has no build or package dependency on the driver. Energy comes from the
// device's total-energy counter (Volta and later) or, failing that, from
// power × Δt; per-process shares come from NVML process utilisation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

// The slice of the NVML C ABI used here (nvml.h, stable since NVML 5).
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceOpaque*;
inline constexpr NvmlReturn kNvmlSuccess = 0;
inline constexpr NvmlReturn kNvmlErrorNotSupported = 3;
inline constexpr NvmlReturn kNvmlErrorNotFound = 6;
inline constexpr NvmlReturn kNvmlErrorInsufficientSize = 7;

// nvmlProcessUtilizationSample_t.
struct NvmlProcessUtilizationSample {
  unsigned int pid;
  unsigned long long time_stamp;  // CPU time stamp, microseconds
  unsigned int sm_util;
  unsigned int mem_util;
  unsigned int enc_util;
  unsigned int dec_util;
};

// Function table; filled by dlsym, or by tests with fakes. Optional entries
// may be null.
struct NvmlApi {
  NvmlReturn (*init)() = nullptr;      // nvmlInit_v2
  NvmlReturn (*shutdown)() = nullptr;  // nvmlShutdown
  NvmlReturn (*device_get_count)(unsigned int*) = nullptr;
  NvmlReturn (*device_get_handle_by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*device_get_power_usage)(NvmlDevice, unsigned int* mw) = nullptr;
  // Optional.
  NvmlReturn (*device_get_total_energy_consumption)(
      NvmlDevice, unsigned long long* mj) = nullptr;
  NvmlReturn (*device_get_process_utilization)(
      NvmlDevice, NvmlProcessUtilizationSample*, unsigned int* count,
      unsigned long long last_seen_us) = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
};

// Owns the dlopen handle.
class NvmlLibrary {
 public:
  // Unavailable (with dlerror's text) when the library or a required
  // symbol is missing.
  static absl::StatusOr<std::unique_ptr<NvmlLibrary>> Load(
      const std::string& path = "libnvidia-ml.so.1");
  ~NvmlLibrary();
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;
  const NvmlApi& api() const { return api_; }

 private:
  NvmlLibrary() = default;
  void* handle_ = nullptr;
  NvmlApi api_;
};

struct NvmlConfig {
  std::string library_path = "libnvidia-ml.so.1";
  double max_power_w = 1500;  // per device
};

class NvmlGpuSource final : public PowerSource {
 public:
  NvmlGpuSource(const Clock& clock, NvmlConfig config = {});
  ~NvmlGpuSource() override;
  absl::string_view name() const override { return "nvml"; }
  absl::Status Init() override;
  absl::StatusOr<PowerSample> Sample() override;

  // Uses `api` (not owned) instead of loading the library.
  void UseApiForTest(const NvmlApi* api) { test_api_ = api; }
  int device_count() const { return static_cast<int>(devices_.size()); }
  bool uses_energy_counter(int device) const {
    return devices_[static_cast<size_t>(device)].has_energy_counter;
  }

 private:
  struct Device {
    NvmlDevice handle = nullptr;
    bool has_energy_counter = false;
    unsigned long long last_mj = 0;
    std::optional<unsigned int> last_mw;
    int64_t last_ns = 0;
    unsigned long long last_seen_us = 0;
  };
  std::string ErrorText(NvmlReturn ret) const;
  void ReadProcesses(int index, Device& d, PowerSample& sample);

  const Clock& clock_;
  NvmlConfig config_;
  std::unique_ptr<NvmlLibrary> library_;
  const NvmlApi* test_api_ = nullptr;
  const NvmlApi* api_ = nullptr;
  bool initialised_ = false;
  std::vector<Device> devices_;
};

}  // namespace wattlens::power
