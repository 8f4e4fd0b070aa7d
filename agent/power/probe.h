// Choosing the node's CPU energy source: RAPL powercap, then the perf power
// PMU, then hwmon, then the model, first that initialises wins. NVIDIA GPUs
// are probed separately and add to whichever CPU source was chosen.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/common/clock.h"
#include "agent/power/fs.h"
#include "agent/power/hwmon.h"
#include "agent/power/nvml.h"
#include "agent/power/perf_power.h"
#include "agent/power/power_model.h"
#include "agent/power/power_source.h"
#include "agent/power/rapl_powercap.h"

namespace wattlens::power {

enum class SourceKind { kRaplPowercap, kPerfPower, kHwmon, kModel };
absl::string_view SourceKindName(SourceKind kind);

struct ProbeConfig {
  std::vector<SourceKind> order = {SourceKind::kRaplPowercap,
                                   SourceKind::kPerfPower, SourceKind::kHwmon,
                                   SourceKind::kModel};
  RaplConfig rapl;
  PerfPowerConfig perf;
  HwmonConfig hwmon;
  ModelConfig model;
  bool probe_gpu = true;
  NvmlConfig nvml;
};

struct ProbeAttempt {
  std::string source;
  absl::Status status;  // OK for the chosen one
};

struct ProbeResult {
  std::unique_ptr<PowerSource> cpu;  // null only if even the model failed
  std::unique_ptr<PowerSource> gpu;  // null without a usable NVML
  std::vector<ProbeAttempt> attempts;
};

struct ProbeDeps {
  std::shared_ptr<const FileSystem> fs;
  const Clock* clock = nullptr;
  std::shared_ptr<PerfCounterBackend> perf;        // default: perf_event_open
  std::shared_ptr<UtilisationSource> utilisation;  // default: /proc/stat
  const NvmlApi* nvml_api_for_test = nullptr;
};

ProbeResult ProbePowerSources(const ProbeDeps& deps, const ProbeConfig& config);

}  // namespace wattlens::power
