// SPDX-License-Identifier: Apache-2.0
#include "agent/power/attribution.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace wattlens::power {
namespace {

using u128 = unsigned __int128;

}  // namespace

absl::string_view IdlePolicyName(IdlePolicy policy) {
  switch (policy) {
    case IdlePolicy::kNone:
      return "none";
    case IdlePolicy::kUsageShare:
      return "usage";
    case IdlePolicy::kRequestShare:
      return "request";
  }
  return "none";
}

std::vector<int64_t> Apportion(int64_t total,
                               const std::vector<uint64_t>& weights) {
  std::vector<int64_t> parts(weights.size(), 0);
  u128 sum = 0;
  for (uint64_t w : weights) sum += w;
  if (sum == 0 || total <= 0) return parts;
  // total < 2^63 and w < 2^64, so total × w fits in 128 bits exactly.
  std::vector<u128> remainders(weights.size());
  int64_t assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const u128 product = static_cast<u128>(total) * weights[i];
    parts[i] = static_cast<int64_t>(product / sum);
    remainders[i] = product % sum;
    assigned += parts[i];
  }
  int64_t left = total - assigned;  // < number of non-zero weights
  if (left > 0) {
    std::vector<size_t> order(weights.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return remainders[a] > remainders[b];
    });
    for (size_t i = 0; left > 0 && i < order.size(); ++i) {
      if (weights[order[i]] == 0) continue;
      ++parts[order[i]];
      --left;
    }
  }
  return parts;
}

uint64_t FrequencyWeightedCpuTime(uint64_t cpu_ns, uint64_t khz,
                                  uint64_t fallback_khz) {
  const uint64_t f = khz != 0 ? khz : fallback_khz;
  const u128 cycles = static_cast<u128>(cpu_ns) * f / 1'000'000;
  return cycles > std::numeric_limits<uint64_t>::max()
             ? std::numeric_limits<uint64_t>::max()
             : static_cast<uint64_t>(cycles);
}

absl::StatusOr<AttributionResult> Attribute(const AttributionInput& input) {
  // Workloads in input order, then those only named by processes.
  std::vector<WorkloadUsage> workloads = input.workloads;
  absl::flat_hash_map<std::string, size_t> index;
  for (size_t i = 0; i < workloads.size(); ++i) {
    const std::string& key = workloads[i].key;
    if (key == kIdleWorkload || key == kUnattributedWorkload) {
      return absl::InvalidArgumentError(
          absl::StrCat("workload key ", key, " is reserved"));
    }
    if (!index.emplace(key, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate workload ", key));
    }
  }
  absl::flat_hash_set<int32_t> pids;
  std::vector<std::vector<size_t>> procs_of(workloads.size());
  std::vector<u128> proc_sum(workloads.size(), 0);
  for (size_t p = 0; p < input.processes.size(); ++p) {
    const ProcessUsage& proc = input.processes[p];
    if (!pids.insert(proc.pid).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate pid ", proc.pid));
    }
    if (proc.workload == kIdleWorkload ||
        proc.workload == kUnattributedWorkload) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pid ", proc.pid, " in reserved workload ", proc.workload));
    }
    auto [it, inserted] = index.emplace(proc.workload, workloads.size());
    if (inserted) {
      workloads.push_back(WorkloadUsage{proc.workload, 0, 0, 0});
      procs_of.emplace_back();
      proc_sum.push_back(0);
    }
    procs_of[it->second].push_back(p);
    proc_sum[it->second] += proc.weight;
  }
  // Workloads named only by a zone's own weights (e.g. GPU-only work).
  for (const ZoneEnergyInput& zin : input.zones) {
    if (!zin.weight_override) continue;
    for (const auto& [key, w] : *zin.weight_override) {
      if (key == kIdleWorkload || key == kUnattributedWorkload) {
        return absl::InvalidArgumentError(absl::StrCat(
            "zone ", zin.zone, ": weight for reserved workload ", key));
      }
      if (index.emplace(key, workloads.size()).second) {
        workloads.push_back(WorkloadUsage{key, 0, 0, 0});
        procs_of.emplace_back();
        proc_sum.push_back(0);
      }
    }
  }
  // A workload's weight: its own if given, else its processes' sum.
  std::vector<uint64_t> cpu_weight(workloads.size());
  for (size_t i = 0; i < workloads.size(); ++i) {
    const u128 w =
        workloads[i].weight != 0 ? u128{workloads[i].weight} : proc_sum[i];
    cpu_weight[i] = w > std::numeric_limits<uint64_t>::max()
                        ? std::numeric_limits<uint64_t>::max()
                        : static_cast<uint64_t>(w);
  }

  AttributionResult result;
  for (const ZoneEnergyInput& zin : input.zones) {
    if (zin.energy_uj < 0 || zin.idle_uj < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("zone ", zin.zone, ": negative energy"));
    }
    ZoneAttribution z;
    z.zone = zin.zone;
    z.energy_uj = zin.energy_uj;
    z.idle_uj = std::min(zin.idle_uj, zin.energy_uj);
    z.dynamic_uj = z.energy_uj - z.idle_uj;

    // Dynamic: workloads..., then the weight no workload holds.
    std::vector<uint64_t> weights = cpu_weight;
    if (zin.weight_override) {
      for (size_t i = 0; i < workloads.size(); ++i) {
        auto it = zin.weight_override->find(workloads[i].key);
        weights[i] = it != zin.weight_override->end() ? it->second : 0;
      }
    }
    weights.push_back(zin.weight_override ? zin.unattributed_weight
                                          : input.kernel_weight);
    std::vector<int64_t> dyn = Apportion(z.dynamic_uj, weights);
    const int64_t dyn_assigned =
        std::accumulate(dyn.begin(), dyn.end(), int64_t{0});
    // With no recorded activity at all, dynamic energy cannot be placed.
    dyn.back() += z.dynamic_uj - dyn_assigned;

    // Idle: by policy; whatever is not shared stays in __idle__.
    std::vector<int64_t> idle(workloads.size() + 1, 0);  // + unattributed
    int64_t idle_left = z.idle_uj;
    if (input.idle_policy == IdlePolicy::kUsageShare) {
      idle = Apportion(z.idle_uj, weights);
    } else if (input.idle_policy == IdlePolicy::kRequestShare) {
      std::vector<uint64_t> req(workloads.size() + 1, 0);
      u128 requested = 0;
      for (size_t i = 0; i < workloads.size(); ++i) {
        req[i] = std::max(workloads[i].cpu_request_millicores,
                          workloads[i].cpu_usage_millicores);
        requested += req[i];
      }
      // The last slot stands for unallocated capacity and stays idle.
      if (input.node_allocatable_millicores > requested) {
        req.back() = static_cast<uint64_t>(input.node_allocatable_millicores -
                                           requested);
      }
      idle = Apportion(z.idle_uj, req);
      idle.back() = 0;
    }
    for (int64_t v : idle) idle_left -= v;

    for (size_t i = 0; i < workloads.size(); ++i) {
      z.workloads[workloads[i].key] = EnergySplit{dyn[i], idle[i]};
    }
    z.workloads[std::string(kUnattributedWorkload)] =
        EnergySplit{dyn.back(), idle.back()};
    z.workloads[std::string(kIdleWorkload)] = EnergySplit{0, idle_left};

    // Processes share their workload's dynamic energy; the part for tasks
    // the cgroup saw but no process entry covers stays with the workload.
    if (!zin.weight_override) {
      for (size_t i = 0; i < workloads.size(); ++i) {
        if (procs_of[i].empty()) continue;
        std::vector<uint64_t> pw;
        for (size_t p : procs_of[i]) pw.push_back(input.processes[p].weight);
        const u128 untracked =
            cpu_weight[i] > proc_sum[i] ? u128{cpu_weight[i]} - proc_sum[i] : 0;
        pw.push_back(static_cast<uint64_t>(untracked));
        std::vector<int64_t> parts = Apportion(dyn[i], pw);
        for (size_t k = 0; k < procs_of[i].size(); ++k) {
          z.process_dynamic_uj[input.processes[procs_of[i][k]].pid] = parts[k];
        }
      }
    }
    result.zones.push_back(std::move(z));
  }
  return result;
}

absl::Status CheckConservation(const AttributionResult& result) {
  for (const ZoneAttribution& z : result.zones) {
    int64_t sum = 0;
    for (const auto& [key, split] : z.workloads) {
      if (split.dynamic_uj < 0 || split.idle_uj < 0) {
        return absl::InternalError(
            absl::StrCat(z.zone, ": negative share for ", key));
      }
      sum += split.total_uj();
    }
    if (sum != z.energy_uj) {
      return absl::InternalError(absl::StrCat(z.zone, ": buckets sum to ", sum,
                                              " uJ, node energy is ",
                                              z.energy_uj, " uJ"));
    }
  }
  return absl::OkStatus();
}

}  // namespace wattlens::power
