// SPDX-License-Identifier: Apache-2.0
// What CPU the node has, from /proc/cpuinfo, and the per-vCPU watts that
// Cloud Carbon Footprint publishes for its microarchitecture.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/power/fs.h"

namespace wattlens::power {

struct CpuInfo {
  std::string vendor;      // "GenuineIntel", "AuthenticAMD", "" on Arm
  std::string model_name;  // "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"
  int family = -1;
  int model = -1;
  int stepping = -1;
  int logical_cpus = 0;  // "processor" entries: online vCPUs
};

absl::StatusOr<CpuInfo> ParseCpuInfo(absl::string_view text);
absl::StatusOr<CpuInfo> ReadCpuInfo(const FileSystem& fs);

// Memory in GB (10^9 bytes) from /proc/meminfo MemTotal.
absl::StatusOr<double> ReadMemoryGb(const FileSystem& fs);

// Minimum (active idle) and maximum (100%) whole-server watts per hardware
// thread, from SPECpower_ssj2008 results, as published by Cloud Carbon
// Footprint (Apache-2.0): packages/{aws,gcp}/src/domain/
// *FootprintEstimationConstants.ts, MIN_/MAX_WATTS_BY_COMPUTE_PROCESSOR.
struct MicroarchWatts {
  absl::string_view name;
  double min_watts;
  double max_watts;
};
const std::vector<MicroarchWatts>& CcfMicroarchTable();
// CCF's AWS average over its table (MIN_WATTS_AVG / MAX_WATTS_AVG), used
// when the microarchitecture is unknown.
inline constexpr MicroarchWatts kCcfFallback = {"unknown (CCF AWS average)",
                                                0.74, 3.5};

// Microarchitecture name for this CPU (a name in CcfMicroarchTable() or
// another descriptive name such as "AMD EPYC 4th Gen"), or "" if unknown.
// Uses vendor/family/model first, the model-name string second.
std::string DetectMicroarchitecture(const CpuInfo& cpu);

// The CCF row for `microarch`, or kCcfFallback.
MicroarchWatts LookupCcfWatts(absl::string_view microarch);

}  // namespace wattlens::power
