// SPDX-License-Identifier: Apache-2.0
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
#include "agent/power/meter_guard.h"
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
  // Initialise every source in `order`, not only up to the first that
  // works: MeterGuard needs the ones behind it to take over.
  bool keep_fallbacks = false;
};

struct ProbeAttempt {
  std::string source;
  absl::Status status;  // OK for the chosen one
};

struct ProbeResult {
  std::unique_ptr<PowerSource> cpu;  // null only if even the model failed
  // With keep_fallbacks: the sources after `cpu` that initialised, in order.
  std::vector<std::unique_ptr<PowerSource>> fallbacks;
  std::unique_ptr<PowerSource> gpu;  // null without a usable NVML
  std::vector<ProbeAttempt> attempts;
};

struct ProbeDeps {
  std::shared_ptr<const FileSystem> fs;
  const Clock* clock = nullptr;
  std::shared_ptr<PerfCounterBackend> perf;        // default: perf_event_open
  std::shared_ptr<UtilisationSource> utilisation;  // default: /proc/stat
  const NvmlApi* nvml_api_for_test = nullptr;
  // Tests only: a perf power PMU whose one event, energy-psys, always reads
  // 0 (what some cloud VMs expose) replaces the real PMU and is probed
  // first. The agent sets it when WATTLENS_TEST_DEAD_PERF_POWER=1.
  bool dead_perf_power_for_test = false;
};

ProbeResult ProbePowerSources(const ProbeDeps& deps, const ProbeConfig& config);

// The guard over a probe's CPU sources (cpu, then fallbacks); the sources
// that failed to initialise are its first rejects (absent: NotFound).
MeterGuard GuardProbedSources(ProbeResult& probe, MeterCheckConfig config);

// The dead perf power PMU of ProbeDeps::dead_perf_power_for_test.
std::unique_ptr<PowerSource> DeadPerfPowerSourceForTest(const Clock& clock);

}  // namespace wattlens::power
