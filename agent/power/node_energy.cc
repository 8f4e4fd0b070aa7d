// SPDX-License-Identifier: Apache-2.0
#include "agent/power/node_energy.h"

#include <algorithm>
#include <map>

namespace wattlens::power {

std::vector<NodeZone> NodeZoneInputs(
    const PowerSample& sample, double utilisation,
    IdleBaselineEstimator& baseline,
    const std::function<std::optional<std::string>(int32_t pid)>&
        workload_of_pid) {
  std::map<Zone, int64_t> interval;
  for (const ZoneReading& r : sample.readings) {
    interval[r.zone] = std::max(interval[r.zone], r.interval_ns);
  }
  std::vector<NodeZone> out;
  for (const auto& [zone, total] : sample.Totals()) {
    NodeZone z;
    z.input.zone = std::string(ZoneName(zone));
    z.input.energy_uj = total.energy_uj;
    if (total.idle_uj) {
      z.input.idle_uj = std::min(*total.idle_uj, total.energy_uj);
      z.idle_method = "model";
    } else {
      const int64_t ns = interval[zone];
      if (ns > 0) {
        baseline.Observe(z.input.zone,
                         static_cast<double>(total.energy_uj) * 1000.0 /
                             static_cast<double>(ns),
                         utilisation);
      }
      z.input.idle_uj =
          baseline.IdleMicrojoules(z.input.zone, ns, total.energy_uj);
      z.idle_method =
          std::string(BaselineKindName(baseline.Get(z.input.zone).kind));
    }
    if (zone == Zone::kGpu && workload_of_pid) {
      std::map<std::string, uint64_t> weights;
      uint64_t unmapped = 0;
      for (const GpuProcessShare& p : sample.gpu_processes) {
        if (std::optional<std::string> w = workload_of_pid(p.pid)) {
          weights[*w] += p.sm_util;
        } else {
          unmapped += p.sm_util;
        }
      }
      if (!weights.empty()) {
        z.input.weight_override = std::move(weights);
        z.input.unattributed_weight = unmapped;
      }
    }
    out.push_back(std::move(z));
  }
  return out;
}

}  // namespace wattlens::power
