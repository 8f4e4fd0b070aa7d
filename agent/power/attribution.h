// SPDX-License-Identifier: Apache-2.0
// Splitting one interval's node energy among workloads, exactly.
//
// Per zone: idle (static) energy is a baseline supplied by the caller (the
// model's idle term, or the measured low-load minimum from
// IdleBaselineEstimator), never (1 − utilisation) × total. Dynamic energy =
// total − idle is split among workloads by frequency-weighted CPU time, and
// within a workload among its processes; the share of time no workload
// holds (`kernel_weight`) goes to `__unattributed__`, and so does all of it
// when nothing ran. Idle energy stays in `__idle__` or is shared by policy.
// All amounts are integer microjoules apportioned by largest remainder, so
//   Σ workloads + __idle__ + __unattributed__ = node energy
// holds exactly in every zone and every interval.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::power {

inline constexpr absl::string_view kIdleWorkload = "__idle__";
inline constexpr absl::string_view kUnattributedWorkload = "__unattributed__";

enum class IdlePolicy {
  kNone,        // idle energy stays in __idle__ (default)
  kUsageShare,  // shared by the same weights as dynamic energy
  // Shared by CPU allocation, OpenCost's max(request, usage), over
  // max(node allocatable, Σ allocations); the rest stays in __idle__.
  kRequestShare,
};
absl::string_view IdlePolicyName(IdlePolicy policy);

// Splits `total` into parts proportional to `weights`, each part within 1 of
// its exact share and summing to exactly `total` (largest remainder,
// ties to the lower index). All parts are 0 if every weight is 0.
std::vector<int64_t> Apportion(int64_t total,
                               const std::vector<uint64_t>& weights);

// CPU nanoseconds weighted by the average frequency over them: roughly
// cycles (ns × kHz / 10^6). `khz` 0 means unknown: `fallback_khz` is used.
uint64_t FrequencyWeightedCpuTime(uint64_t cpu_ns, uint64_t khz,
                                  uint64_t fallback_khz);

struct WorkloadUsage {
  std::string key;  // workload name, or cgroup id as a string
  // Frequency-weighted CPU time over the interval. 0 means "sum of this
  // workload's processes" (cgroup-level accounting, when present, is
  // authoritative because it also covers tasks that were never listed).
  uint64_t weight = 0;
  // For IdlePolicy::kRequestShare: the workload's CPU allocation is
  // max(request, usage), both in millicores (usage = CPU time over the
  // interval's length).
  uint64_t cpu_request_millicores = 0;
  uint64_t cpu_usage_millicores = 0;
};

struct ProcessUsage {
  int32_t pid = 0;
  std::string workload;  // WorkloadUsage::key; added if missing
  uint64_t weight = 0;
  // Exited during the interval: still charged for the time it ran.
  bool exited = false;
};

struct ZoneEnergyInput {
  std::string zone;       // "package", "package/0", "gpu/1", ...
  int64_t energy_uj = 0;  // node energy in the interval
  int64_t idle_uj = 0;    // static baseline for the interval
  // Per-workload weights for this zone instead of CPU time (e.g. GPU SM
  // utilisation); workloads named only here are added. Processes are not
  // split for such zones, and unattributed_weight replaces kernel_weight.
  std::optional<std::map<std::string, uint64_t>> weight_override;
  uint64_t unattributed_weight = 0;
};

struct AttributionInput {
  std::vector<ZoneEnergyInput> zones;
  std::vector<WorkloadUsage> workloads;
  std::vector<ProcessUsage> processes;
  // Time no workload holds: __unattributed__. The agent's EnergyState gives
  // none (kernel threads are the `kernel` workload, agent/state/energy.h).
  uint64_t kernel_weight = 0;
  IdlePolicy idle_policy = IdlePolicy::kNone;
  // kRequestShare: E_idle_k = E_idle × a_k / max(A, Σ a), with
  // a_k = max(request_k, usage_k) and A the node's allocatable CPU; the
  // rest (unallocated capacity) stays in __idle__. A = 0 means Σ a.
  // __unattributed__ has no allocation.
  uint64_t node_allocatable_millicores = 0;
};

struct EnergySplit {
  int64_t dynamic_uj = 0;
  int64_t idle_uj = 0;
  int64_t total_uj() const { return dynamic_uj + idle_uj; }
};

struct ZoneAttribution {
  std::string zone;
  int64_t energy_uj = 0;
  int64_t idle_uj = 0;  // the baseline, capped at energy_uj
  int64_t dynamic_uj = 0;
  // Every workload, plus __idle__ and __unattributed__.
  std::map<std::string, EnergySplit> workloads;
  // Dynamic energy per process (a part of its workload's).
  std::map<int32_t, int64_t> process_dynamic_uj;
};

struct AttributionResult {
  std::vector<ZoneAttribution> zones;
};

// InvalidArgument for negative energy, duplicate keys or pids, or a
// workload named like a reserved bucket.
absl::StatusOr<AttributionResult> Attribute(const AttributionInput& input);

// Internal if any zone's buckets do not sum exactly to its energy or any
// share is negative. Cheap enough to run on every interval.
absl::Status CheckConservation(const AttributionResult& result);

}  // namespace wattlens::power
