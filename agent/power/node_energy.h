// SPDX-License-Identifier: Apache-2.0
// Glue between sources and attribution: one interval's PowerSample becomes
// per-zone attribution inputs, each with its idle baseline, so callers do
// not re-derive the idle rules.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/power/attribution.h"
#include "agent/power/baseline.h"
#include "agent/power/power_source.h"

namespace wattlens::power {

struct NodeZone {
  ZoneEnergyInput input;
  // "model" when the source supplied its idle term, else the estimator's.
  std::string idle_method;
};

// Per zone (summed over sockets/devices): the model's idle_uj when every
// reading of the zone has one; otherwise the zone's average power is fed to
// `baseline` at `utilisation` and its baseline is used (0 without one).
// GPU zones get weights from NVML process utilisation when `workload_of_pid`
// maps the pids (unmapped pids' share goes to __unattributed__); without any
// mapped pid the GPU zone uses CPU weights.
std::vector<NodeZone> NodeZoneInputs(
    const PowerSample& sample, double utilisation,
    IdleBaselineEstimator& baseline,
    const std::function<std::optional<std::string>(int32_t pid)>&
        workload_of_pid = nullptr);

}  // namespace wattlens::power
