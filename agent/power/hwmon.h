// SPDX-License-Identifier: Apache-2.0
// hwmon energy and power sensors: /sys/class/hwmon/hwmon*/energy<N>_input
// (cumulative µJ, e.g. amd_energy) and power<N>_average / power<N>_input (µW,
// e.g. ACPI power meters, Ampere SoCs), the latter integrated over time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/power/fs.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

struct HwmonConfig {
  // Per sensor; also the ceiling above which power readings are rejected.
  double max_power_w = 2000;
};

class HwmonSource final : public PowerSource {
 public:
  HwmonSource(std::shared_ptr<const FileSystem> fs, const Clock& clock,
              HwmonConfig config = {});
  absl::string_view name() const override { return "hwmon"; }
  absl::Status Init() override;
  absl::StatusOr<PowerSample> Sample() override;

  struct SensorInfo {
    std::string path;   // "/sys/class/hwmon/hwmon2/energy1_input"
    std::string label;  // "amd_energy/Esocket0"
    Zone zone = Zone::kPlatform;
    int domain = -1;
    bool is_energy = true;  // false: power in µW, integrated
  };
  std::vector<SensorInfo> sensors() const;

 private:
  struct Sensor {
    SensorInfo info;
    std::optional<uint64_t> last_value;  // µJ counter or µW power
    int64_t last_ns = 0;
  };
  // Reads one value, counting what is wrong with it.
  std::optional<uint64_t> ReadValue(const Sensor& s, std::string* why);

  std::shared_ptr<const FileSystem> fs_;
  const Clock& clock_;
  HwmonConfig config_;
  std::vector<Sensor> sensors_;
};

}  // namespace wattlens::power
