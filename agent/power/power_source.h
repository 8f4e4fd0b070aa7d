// SPDX-License-Identifier: Apache-2.0
// agent/power: node energy from meters (RAPL powercap, the perf power PMU,
// hwmon, NVML) or from a model when no meter exists, and its attribution to
// workloads with exact conservation. Depends on agent/common only; never on
// the BPF side, identity or export.
//
// Energy is carried in integer microjoules so that sums are exact. Every
// reading names the source that produced it. Sources are not thread-safe:
// one sampler thread owns them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::power {

// RAPL's domains plus what other meters report. Zones overlap (core and
// uncore are inside package; psys covers everything), so never sum zones.
enum class Zone { kPackage, kCore, kUncore, kDram, kPsys, kPlatform, kGpu };
inline constexpr std::array<Zone, 7> kAllZones = {
    Zone::kPackage, Zone::kCore,     Zone::kUncore, Zone::kDram,
    Zone::kPsys,    Zone::kPlatform, Zone::kGpu};
absl::string_view ZoneName(Zone zone);

enum class SourceHealth { kUnknown, kHealthy, kDegraded, kUnavailable };
absl::string_view HealthName(SourceHealth health);

// Why a reading was dropped; exported as the `reason` label of a counter.
enum class RejectReason {
  kUnreadable,   // the file or counter could not be read
  kUnparsable,   // contents were not a number
  kSentinel,     // a driver's "no data" value such as 0xFFFFFFFF
  kOutOfRange,   // above the counter's own max_energy_range_uj
  kImplausible,  // no wrap count gives a power within the zone's bounds
  kBackwards,    // a counter without wrap information went down
};
inline constexpr int kRejectReasonCount = 6;
absl::string_view RejectReasonName(RejectReason reason);

class RejectCounters {
 public:
  void Add(RejectReason reason) { ++counts_[static_cast<int>(reason)]; }
  uint64_t Get(RejectReason reason) const {
    return counts_[static_cast<int>(reason)];
  }
  uint64_t Total() const;

 private:
  std::array<uint64_t, kRejectReasonCount> counts_{};
};

// Energy of one zone of one domain over one interval.
struct ZoneReading {
  Zone zone = Zone::kPackage;
  // Socket for CPU zones, device index for GPUs, -1 for whole-node zones.
  int domain = -1;
  std::string label;   // what the meter calls it: "package-0", "Esocket0"
  std::string source;  // "rapl-powercap", "perf-power", "hwmon", "nvml", ...
  int64_t energy_uj = 0;
  int64_t interval_ns = 0;
  // The static part of energy_uj, when the source knows it (the model does).
  std::optional<int64_t> idle_uj;
  uint64_t wraps = 0;           // counter wrap-arounds resolved
  bool ambiguous_wrap = false;  // several wrap counts fitted the bounds
};

// SM utilisation reported by NVML for one process on one GPU.
struct GpuProcessShare {
  int device = 0;
  int32_t pid = 0;
  uint64_t sm_util = 0;  // summed percent over the interval's samples
};

struct ZoneTotal {
  int64_t energy_uj = 0;
  std::optional<int64_t> idle_uj;  // set only if every domain had one
  int domains = 0;
};

struct PowerSample {
  int64_t timestamp_ns = 0;  // monotonic, end of the interval
  std::vector<ZoneReading> readings;
  std::vector<GpuProcessShare> gpu_processes;

  // Per-zone sums over domains (sockets, devices).
  std::map<Zone, ZoneTotal> Totals() const;
};

// One meter. Init() discovers what is there and takes a first reading;
// Sample() returns the energy since the previous Sample() or Init(). Health
// is data: a failed source reports kUnavailable with a reason, and readings
// that fail checks are dropped and counted, never passed on.
class PowerSource {
 public:
  virtual ~PowerSource() = default;
  virtual absl::string_view name() const = 0;
  virtual absl::Status Init() = 0;
  virtual absl::StatusOr<PowerSample> Sample() = 0;
  // A model estimates; a meter measures. Only meters are judged by
  // MeterGuard (a model's reading cannot be stuck or implausible).
  virtual bool is_model() const { return false; }

  SourceHealth health() const { return health_; }
  const std::string& last_error() const { return last_error_; }
  const RejectCounters& rejected() const { return rejected_; }

 protected:
  void SetHealthy() { health_ = SourceHealth::kHealthy; }
  void SetDegraded(std::string reason);
  // Marks the source unavailable and returns `status` for convenience.
  absl::Status SetUnavailable(absl::Status status);
  // Healthy after an interval without rejects, degraded otherwise.
  void UpdateHealthAfterSample(uint64_t rejects_before,
                               absl::string_view last_reject);

  RejectCounters rejected_;

 private:
  SourceHealth health_ = SourceHealth::kUnknown;
  std::string last_error_;
};

}  // namespace wattlens::power
