#include "agent/state/energy.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wattlens {

bool IsKernelThread(const ProcessStats& p) { return p.pid == 2 || p.ppid == 2; }

EnergyState::EnergyState(EnergyConfig config) : config_(std::move(config)) {}

absl::Status EnergyState::Update(const std::vector<ZoneEnergy>& zones,
                                 uint64_t khz, Snapshot* snapshot) {
  ObserveCpu(*snapshot);
  return Attribute(zones, khz, snapshot);
}

uint64_t EnergyState::ObserveCpu(const Snapshot& s) {
  // CPU time per cgroup and per process in this interval. Cgroups and
  // processes no longer listed are forgotten (the aggregator exported them
  // one last time in an earlier snapshot).
  cgroup_delta_.clear();
  proc_delta_.clear();
  kernel_ns_ = 0;
  kernel_ns_by_cgroup_.clear();
  uint64_t total = 0;
  absl::flat_hash_map<uint64_t, uint64_t> last_cgroup;
  for (const CgroupStats& cg : s.cgroups) {
    auto it = last_cgroup_cpu_.find(cg.id);
    const uint64_t prev = it == last_cgroup_cpu_.end() ? 0 : it->second;
    // Below the last value: the aggregator started the id over.
    const uint64_t ns = cg.cpu_ns >= prev ? cg.cpu_ns - prev : cg.cpu_ns;
    cgroup_delta_[cg.id] = ns;
    total += ns;
    last_cgroup[cg.id] = cg.cpu_ns;
  }
  last_cgroup_cpu_.swap(last_cgroup);

  absl::flat_hash_map<ProcessKey, uint64_t> last_process;
  for (const ProcessStats& p : s.processes) {
    const ProcessKey key{p.pid, p.start_ns};
    auto it = last_process_cpu_.find(key);
    const uint64_t prev = it == last_process_cpu_.end() ? 0 : it->second;
    const uint64_t ns = p.cpu_ns >= prev ? p.cpu_ns - prev : p.cpu_ns;
    // An exited process appears for the last time: charge it, then forget.
    if (!p.exited) last_process[key] = p.cpu_ns;
    if (!ns) continue;
    if (IsKernelThread(p)) {
      kernel_ns_ += ns;
      kernel_ns_by_cgroup_[p.cgroup_id] += ns;
      continue;
    }
    proc_delta_.push_back({&p, ns});
  }
  last_process_cpu_.swap(last_process);
  return total;
}

absl::Status EnergyState::Attribute(const std::vector<ZoneEnergy>& zones,
                                    uint64_t khz, Snapshot* snapshot) {
  Snapshot& s = *snapshot;
  absl::flat_hash_map<uint64_t, const std::string*> path_of;
  for (const CgroupStats& cg : s.cgroups) path_of[cg.id] = &cg.path;

  // Forget state of cgroups and processes that are no longer listed.
  for (auto it = workloads_.begin(); it != workloads_.end();) {
    const uint64_t id = it->first.second;
    if (id != kIdleKey && id != kUnattributedKey && !path_of.contains(id)) {
      it = workloads_.erase(it);
    } else {
      it->second.interval_dynamic_uj = it->second.interval_idle_uj = 0;
      ++it;
    }
  }
  {
    absl::flat_hash_set<ProcessKey> listed;
    for (const ProcessStats& p : s.processes)
      listed.insert({p.pid, p.start_ns});
    for (auto it = processes_.begin(); it != processes_.end();) {
      if (!listed.contains(it->first)) {
        processes_.erase(it++);
      } else {
        it->second.interval_uj.clear();
        ++it;
      }
    }
  }
  for (auto& [key, z] : node_) {
    z.interval_energy_uj = z.interval_idle_uj = z.interval_ns = 0;
  }

  // Weights: CPU time × frequency (≈ cycles); unknown frequency weighs
  // plain nanoseconds.
  const uint64_t f = khz ? khz : 1'000'000;
  auto weigh = [f](uint64_t ns) {
    return power::FrequencyWeightedCpuTime(ns, f, f);
  };
  power::AttributionInput in;
  in.idle_policy = config_.idle_policy;
  in.node_allocatable_millicores = config_.node_allocatable_millicores;
  in.kernel_weight = weigh(kernel_ns_);
  absl::flat_hash_map<uint64_t, uint64_t> weight_of;
  for (const CgroupStats& cg : s.cgroups) {
    uint64_t ns = cgroup_delta_[cg.id];
    const uint64_t kernel = kernel_ns_by_cgroup_[cg.id];
    ns = ns > kernel ? ns - kernel : 0;
    const uint64_t request = config_.cpu_request_millicores
                                 ? config_.cpu_request_millicores(cg.id)
                                 : 0;
    const uint64_t w = weigh(ns);
    if (!w && !request) continue;
    weight_of[cg.id] = w;
    in.workloads.push_back({absl::StrCat(cg.id), w, request});
  }
  // Processes split their workload's share. Attribute() reads a workload
  // weight of 0 as "the sum of its processes", so processes are listed only
  // under workloads with CPU of their own (a process whose time went to
  // another cgroup key this interval is covered there).
  std::vector<const ProcessStats*> proc_at;
  for (const ProcDelta& d : proc_delta_) {
    auto it = weight_of.find(d.p->cgroup_id);
    if (it == weight_of.end() || it->second == 0) continue;
    // Attribute() identifies processes by an int32: their index here, since
    // a pid may appear twice (reused within one interval).
    in.processes.push_back({static_cast<int32_t>(proc_at.size()),
                            absl::StrCat(d.p->cgroup_id), weigh(d.ns),
                            d.p->exited});
    proc_at.push_back(d.p);
  }
  for (const ZoneEnergy& z : zones) {
    power::ZoneEnergyInput zin;
    zin.zone = z.zone;
    zin.energy_uj = z.energy_uj;
    zin.idle_uj = z.idle_uj;
    zin.weight_override = z.weight_override;
    zin.unattributed_weight = z.unattributed_weight;
    in.zones.push_back(std::move(zin));
  }

  absl::Status status;
  if (zones.empty()) {
    ++unmetered_;
  } else {
    absl::StatusOr<power::AttributionResult> r = power::Attribute(in);
    if (r.ok()) status = power::CheckConservation(*r);
    if (!r.ok()) status = r.status();
    if (!status.ok()) {
      ++errors_;
    } else {
      ++attributed_;
      for (size_t i = 0; i < r->zones.size(); ++i) {
        const power::ZoneAttribution& za = r->zones[i];
        const ZoneEnergy& ze = zones[i];
        NodeZone& nz = node_[{ze.zone, ze.source}];
        nz.idle_method = ze.idle_method;
        nz.energy_uj += za.energy_uj;
        nz.idle_uj += za.idle_uj;
        nz.interval_energy_uj += za.energy_uj;
        nz.interval_idle_uj += za.idle_uj;
        nz.interval_ns = std::max(nz.interval_ns, ze.interval_ns);
        for (const auto& [key, split] : za.workloads) {
          uint64_t id = 0;
          if (key == power::kIdleWorkload) {
            id = kIdleKey;
          } else if (key == power::kUnattributedWorkload) {
            id = kUnattributedKey;
          } else if (!absl::SimpleAtoi(key, &id)) {
            continue;  // never: keys are the cgroup ids given above
          }
          const bool bucket = id == kIdleKey || id == kUnattributedKey;
          if (!bucket && split.total_uj() == 0 &&
              !workloads_.contains({za.zone, id})) {
            continue;  // no series for workloads that never had energy
          }
          Split& w = workloads_[{za.zone, id}];
          w.dynamic_uj += split.dynamic_uj;
          w.idle_uj += split.idle_uj;
          w.interval_dynamic_uj += split.dynamic_uj;
          w.interval_idle_uj += split.idle_uj;
        }
        for (const auto& [index, uj] : za.process_dynamic_uj) {
          const ProcessStats& p = *proc_at[index];
          ProcEnergy& pe = processes_[ProcessKey{p.pid, p.start_ns}];
          pe.cgroup_id = p.cgroup_id;
          pe.dynamic_uj[za.zone] += uj;
          pe.interval_uj[za.zone] += uj;
        }
      }
    }
  }

  // Publish.
  EnergyStats& e = s.energy;
  e.enabled = true;
  e.idle_policy = std::string(power::IdlePolicyName(config_.idle_policy));
  e.zones.clear();
  for (const auto& [key, z] : node_) {
    NodeZoneEnergy& out = e.zones.emplace_back();
    out.zone = key.first;
    out.source = key.second;
    out.idle_method = z.idle_method;
    out.energy_uj = z.energy_uj;
    out.idle_uj = z.idle_uj;
    out.interval_energy_uj = z.interval_energy_uj;
    out.interval_idle_uj = z.interval_idle_uj;
    out.interval_ns = z.interval_ns;
  }
  e.workloads.clear();
  e.workloads.reserve(workloads_.size());
  for (const auto& [key, w] : workloads_) {
    WorkloadEnergy& out = e.workloads.emplace_back();
    out.zone = key.first;
    const uint64_t id = key.second;
    if (id == kIdleKey) {
      out.workload = std::string(power::kIdleWorkload);
    } else if (id == kUnattributedKey) {
      out.workload = std::string(power::kUnattributedWorkload);
    } else {
      out.cgroup_id = id;
      auto it = path_of.find(id);
      out.workload =
          it != path_of.end() ? *it->second : absl::StrCat("<unknown>/", id);
    }
    out.dynamic_uj = w.dynamic_uj;
    out.idle_uj = w.idle_uj;
    out.interval_dynamic_uj = w.interval_dynamic_uj;
    out.interval_idle_uj = w.interval_idle_uj;
  }
  std::sort(e.workloads.begin(), e.workloads.end(),
            [](const WorkloadEnergy& a, const WorkloadEnergy& b) {
              return std::tie(a.zone, a.workload, a.cgroup_id) <
                     std::tie(b.zone, b.workload, b.cgroup_id);
            });
  e.processes.clear();
  absl::flat_hash_set<ProcessKey> exited;
  for (const ProcessStats& p : s.processes) {
    if (p.exited) exited.insert({p.pid, p.start_ns});
  }
  for (auto it = processes_.begin(); it != processes_.end();) {
    const bool gone = exited.contains(it->first);
    for (const auto& [zone, uj] : it->second.dynamic_uj) {
      auto in_interval = it->second.interval_uj.find(zone);
      const int64_t now =
          in_interval == it->second.interval_uj.end() ? 0 : in_interval->second;
      if (!now && !gone) continue;
      ProcessEnergy& out = e.processes.emplace_back();
      out.pid = it->first.tgid;
      out.start_ns = it->first.start_ns;
      out.cgroup_id = it->second.cgroup_id;
      out.zone = zone;
      out.dynamic_uj = uj;
      out.interval_dynamic_uj = now;
      out.exited = gone;
    }
    if (gone) {
      processes_.erase(it++);
    } else {
      ++it;
    }
  }
  std::sort(e.processes.begin(), e.processes.end(),
            [](const ProcessEnergy& a, const ProcessEnergy& b) {
              return std::tie(a.zone, a.pid, a.start_ns) <
                     std::tie(b.zone, b.pid, b.start_ns);
            });
  e.intervals_attributed = attributed_;
  e.intervals_unmetered = unmetered_;
  e.attribution_errors = errors_;
  return status;
}

}  // namespace wattlens
