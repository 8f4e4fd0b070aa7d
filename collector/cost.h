// SPDX-License-Identifier: Apache-2.0
// Cost and carbon of counters (issue #7): the arithmetic that joins a node's
// rates (collector/pricing) with what its workloads used.
//
// Allocation costs follow OpenCost: a workload pays max(request, usage) x
// price per resource (the agent accumulates that allocation exactly), the
// node pays capacity x price x time, and the difference is the node's
// __idle__ cost. Carbon follows SCI: operational = facility energy (IT x PUE)
// x grid intensity; embodied = node embodied per hour / vCPUs x allocated
// core-hours, so a node's embodied total is Σ workloads + idle as well.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "collector/counters.h"
#include "collector/pricing/pricing.h"
#include "wattlens/v1/query.pb.h"
#include "wattlens/v1/report.pb.h"

namespace wattlens::collector {

// What a set of counters costs and emits. Doubles: money and grams are
// derived quantities; the exact integers stay in Counters.
struct Impact {
  double cpu_cost = 0, ram_cost = 0, gpu_cost = 0;
  double network_cost = 0, energy_cost = 0;
  double cpu_alloc_core_hours = 0, mem_alloc_gib_hours = 0;
  double energy_kwh = 0, facility_kwh = 0;
  double carbon_operational_g = 0, carbon_embodied_g = 0;

  double total_cost() const {
    return cpu_cost + ram_cost + gpu_cost + network_cost + energy_cost;
  }
  double carbon_g() const { return carbon_operational_g + carbon_embodied_g; }
  void Add(const Impact& o, double sign = 1.0);
};

inline constexpr double kNsPerHour = 3.6e12;
inline constexpr double kUjPerKwh = 3.6e12;
inline constexpr double kBytesPerGib = 1073741824.0;

// A workload's impact from its counters. `grams_per_kwh` is the intensity
// that applies to its energy (an energy-weighted mean over buckets).
Impact WorkloadImpact(const Counters& c, const pricing::NodeRates& rates,
                      double grams_per_kwh);
// The node's capacity over `elapsed_ns`: what its workloads' allocation
// costs and embodied shares are subtracted from to give idle. Usage-billed
// resources (network, energy) and operational carbon have no capacity.
Impact NodeCapacityImpact(uint64_t elapsed_ns, const pricing::NodeRates& rates);
// The allocation part of an impact (cpu/ram/gpu cost, allocated hours,
// embodied carbon): the part idle is the residual of.
Impact AllocationPart(const Impact& i);

void FillCost(const Impact& i, wattlens::v1::Cost* out);
// Fills carbon, with the SCI functional unit: per accepted connection when
// `accepted` > 0, else per hour of `window_hours`.
void FillCarbon(const Impact& i, uint64_t accepted, double window_hours,
                wattlens::v1::Carbon* out);

pricing::NodeAttributes AttributesFrom(const std::string& node_name,
                                       const wattlens::v1::NodeSpec& spec);

// The cost model plus a per-node cache of its rates (keyed by the node's
// serialized spec, so a relabelled or resized node is re-resolved).
class CostEngine {
 public:
  explicit CostEngine(pricing::CostModel model) : model_(std::move(model)) {}

  const pricing::CostModel& model() const { return model_; }
  std::shared_ptr<const pricing::NodeRates> RatesFor(
      const std::string& node_name, const wattlens::v1::NodeSpec& spec,
      const std::string& spec_bytes) const;
  double GramsPerKwh(const pricing::NodeRates& rates, int64_t unix_ns) const {
    return model_.IntensityFor(rates, unix_ns).grams_per_kwh;
  }

 private:
  const pricing::CostModel model_;
  struct Cached {
    std::string spec_bytes;
    std::shared_ptr<const pricing::NodeRates> rates;
  };
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wattlens::collector
