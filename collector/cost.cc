// SPDX-License-Identifier: Apache-2.0
#include "collector/cost.h"

#include <utility>

namespace wattlens::collector {

void Impact::Add(const Impact& o, double sign) {
  cpu_cost += sign * o.cpu_cost;
  ram_cost += sign * o.ram_cost;
  gpu_cost += sign * o.gpu_cost;
  network_cost += sign * o.network_cost;
  energy_cost += sign * o.energy_cost;
  cpu_alloc_core_hours += sign * o.cpu_alloc_core_hours;
  mem_alloc_gib_hours += sign * o.mem_alloc_gib_hours;
  energy_kwh += sign * o.energy_kwh;
  facility_kwh += sign * o.facility_kwh;
  carbon_operational_g += sign * o.carbon_operational_g;
  carbon_embodied_g += sign * o.carbon_embodied_g;
}

Impact WorkloadImpact(const Counters& c, const pricing::NodeRates& r,
                      double grams_per_kwh) {
  Impact i;
  i.cpu_alloc_core_hours = static_cast<double>(c.cpu_alloc_core_ns) / kNsPerHour;
  i.mem_alloc_gib_hours =
      static_cast<double>(c.mem_alloc_byte_s) / (3600.0 * kBytesPerGib);
  i.cpu_cost = i.cpu_alloc_core_hours * r.cpu_per_core_hour;
  i.ram_cost = i.mem_alloc_gib_hours * r.ram_per_gib_hour;
  // GPUs are not allocated to workloads yet: a node's GPU cost is idle.
  const auto tx = c.TxByClass();
  for (size_t k = 0; k < tx.size(); ++k) {
    i.network_cost +=
        static_cast<double>(tx[k]) / kBytesPerGib * r.egress_per_gb[k];
  }
  i.energy_kwh = static_cast<double>(c.energy_uj) / kUjPerKwh;
  i.facility_kwh = i.energy_kwh * r.pue;
  i.energy_cost = i.facility_kwh * r.energy_per_kwh;
  i.carbon_operational_g = i.facility_kwh * grams_per_kwh;
  if (r.cpus > 0) {
    i.carbon_embodied_g =
        r.embodied_grams_per_hour / r.cpus * i.cpu_alloc_core_hours;
  }
  return i;
}

Impact NodeCapacityImpact(uint64_t elapsed_ns, const pricing::NodeRates& r) {
  Impact i;
  const double h = static_cast<double>(elapsed_ns) / kNsPerHour;
  i.cpu_alloc_core_hours = r.cpus * h;
  i.mem_alloc_gib_hours = r.memory_gib * h;
  i.cpu_cost = i.cpu_alloc_core_hours * r.cpu_per_core_hour;
  i.ram_cost = i.mem_alloc_gib_hours * r.ram_per_gib_hour;
  i.gpu_cost = r.gpus * h * r.gpu_per_gpu_hour;
  i.carbon_embodied_g = r.embodied_grams_per_hour * h;
  return i;
}

Impact AllocationPart(const Impact& i) {
  Impact a;
  a.cpu_cost = i.cpu_cost;
  a.ram_cost = i.ram_cost;
  a.gpu_cost = i.gpu_cost;
  a.cpu_alloc_core_hours = i.cpu_alloc_core_hours;
  a.mem_alloc_gib_hours = i.mem_alloc_gib_hours;
  a.carbon_embodied_g = i.carbon_embodied_g;
  return a;
}

void FillCost(const Impact& i, wattlens::v1::Cost* out) {
  out->set_cpu(i.cpu_cost);
  out->set_ram(i.ram_cost);
  out->set_gpu(i.gpu_cost);
  out->set_network(i.network_cost);
  out->set_energy(i.energy_cost);
  out->set_total(i.total_cost());
}

void FillCarbon(const Impact& i, uint64_t accepted, double window_hours,
                wattlens::v1::Carbon* out) {
  out->set_operational_grams(i.carbon_operational_g);
  out->set_embodied_grams(i.carbon_embodied_g);
  out->set_total_grams(i.carbon_g());
  if (accepted > 0) {
    out->set_sci_grams(i.carbon_g() / static_cast<double>(accepted));
    out->set_sci_unit("connection");
  } else if (window_hours > 0) {
    out->set_sci_grams(i.carbon_g() / window_hours);
    out->set_sci_unit("hour");
  }
}

pricing::NodeAttributes AttributesFrom(const std::string& node_name,
                                       const wattlens::v1::NodeSpec& spec) {
  pricing::NodeAttributes a;
  a.name = node_name;
  for (const auto& [k, v] : spec.labels()) a.labels[k] = v;
  a.provider_id = spec.provider_id();
  a.cpus = spec.cpus();
  a.memory_bytes = spec.memory_bytes();
  a.gpus = spec.gpus();
  return a;
}

std::shared_ptr<const pricing::NodeRates> CostEngine::RatesFor(
    const std::string& node_name, const wattlens::v1::NodeSpec& spec,
    const std::string& spec_bytes) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(node_name);
    if (it != cache_.end() && it->second.spec_bytes == spec_bytes) {
      return it->second.rates;
    }
  }
  auto rates = std::make_shared<const pricing::NodeRates>(
      model_.RatesFor(AttributesFrom(node_name, spec)));
  absl::MutexLock lock(&mu_);
  cache_[node_name] = {spec_bytes, rates};
  return rates;
}

}  // namespace wattlens::collector
