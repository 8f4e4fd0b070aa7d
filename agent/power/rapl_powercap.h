// SPDX-License-Identifier: Apache-2.0
// RAPL through the powercap class in sysfs (Intel, and AMD since 5.11):
// /sys/class/powercap/intel-rapl:<socket>[:<subzone>]/{name,energy_uj,
// max_energy_range_uj,constraint_*_max_power_uw}. The files are root-only
// since CVE-2020-8694.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/power/fs.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

struct RaplConfig {
  // Upper bound on any one zone's power; bounds how many wraps one interval
  // can hold. Generous on purpose: a bound that is too low drops real data.
  double max_power_w = 1000;
  std::map<Zone, double> max_power_w_by_zone;  // overrides max_power_w
  // Lower bound (e.g. a known idle floor); 0 accepts any energy.
  double min_power_w = 0;
};

class RaplPowercapSource final : public PowerSource {
 public:
  RaplPowercapSource(std::shared_ptr<const FileSystem> fs, const Clock& clock,
                     RaplConfig config = {});
  absl::string_view name() const override { return "rapl-powercap"; }
  absl::Status Init() override;
  absl::StatusOr<PowerSample> Sample() override;

  struct ZoneInfo {
    std::string dir;  // "intel-rapl:0:1"
    std::string label;
    Zone zone = Zone::kPackage;
    int socket = -1;
    uint64_t range_uj = 0;
    double max_power_w = 0;
  };
  std::vector<ZoneInfo> zones() const;

 private:
  struct ZoneState {
    ZoneInfo info;
    uint64_t last_uj = 0;
    int64_t last_ns = 0;
    std::optional<double> last_power_w;
  };
  std::shared_ptr<const FileSystem> fs_;
  const Clock& clock_;
  RaplConfig config_;
  std::vector<ZoneState> zones_;
};

}  // namespace wattlens::power
