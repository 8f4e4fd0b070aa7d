// SPDX-License-Identifier: Apache-2.0
#include "agent/state/energy.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace wattlens {

namespace {

using u128 = unsigned __int128;

uint64_t Saturate(u128 v) {
  return v > ~uint64_t{0} ? ~uint64_t{0} : static_cast<uint64_t>(v);
}

}  // namespace

EnergyState::EnergyState(EnergyConfig config) : config_(std::move(config)) {}

absl::Status EnergyState::Update(const std::vector<ZoneEnergy>& zones,
                                 uint64_t khz, Snapshot* snapshot) {
  ObserveCpu(*snapshot);
  return Attribute(zones, khz, snapshot);
}

void EnergyState::SetCpuAllocation(CpuAllocation allocation) {
  allocation_ = std::move(allocation);
}

void EnergyState::ObserveOnCpu(const wl_sched_key& key, const uint64_t* per_cpu,
                               int ncpus) {
  if (ncpus <= 0) return;
  per_cpu_observed_ = true;
  PerCpu& last = last_per_cpu_[key];
  PerCpu now;
  PerCpu* delta = nullptr;
  size_t k = 0;  // walks `last`, sorted by cpu like `now`
  for (int cpu = 0; cpu < ncpus; ++cpu) {
    const uint64_t v = per_cpu[cpu];
    while (k < last.size() && last[k].first < static_cast<uint32_t>(cpu)) ++k;
    const uint64_t prev =
        k < last.size() && last[k].first == static_cast<uint32_t>(cpu)
            ? last[k].second
            : 0;
    if (!v) continue;
    now.emplace_back(cpu, v);
    // Below the last value: the kernel key started over.
    const uint64_t d = v >= prev ? v - prev : v;
    if (!d) continue;
    if (!delta) delta = &interval_per_cpu_[key];
    if (!delta->empty() && delta->back().first == static_cast<uint32_t>(cpu)) {
      delta->back().second += d;  // never: one reading per key and interval
    } else {
      delta->emplace_back(cpu, d);
    }
  }
  last.swap(now);
}

void EnergyState::ForgetOnCpu(const std::vector<wl_sched_key>& keys) {
  for (const wl_sched_key& k : keys) last_per_cpu_.erase(k);
}

uint64_t EnergyState::ObserveCpu(const Snapshot& s) {
  // CPU time per cgroup and per process in this interval. Cgroups and
  // processes no longer listed are forgotten (the aggregator exported them
  // one last time in an earlier snapshot).
  cgroup_delta_.clear();
  proc_delta_.clear();
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
    proc_delta_.push_back({&p, ns});
  }
  last_process_cpu_.swap(last_process);
  interval_cpu_ns_ = total;
  return total;
}

uint64_t EnergyState::LimitToCapacity(uint64_t capacity_ns, uint64_t lag_ns) {
  const u128 total = u128{interval_cpu_ns_} + deferred_ns_;
  const uint64_t used =
      Saturate(std::min<u128>(total, u128{capacity_ns} + lag_ns));
  deferred_ns_ = Saturate(total - used);
  defer_num_ = deferred_ns_;
  defer_den_ = Saturate(total);
  return used;
}

absl::Status EnergyState::Attribute(const std::vector<ZoneEnergy>& zones,
                                    uint64_t khz, Snapshot* snapshot) {
  return Attribute(zones, IntervalFrequency{khz, {}}, snapshot);
}

absl::Status EnergyState::Attribute(const std::vector<ZoneEnergy>& zones,
                                    const IntervalFrequency& frequency,
                                    Snapshot* snapshot) {
  Snapshot& s = *snapshot;
  absl::flat_hash_map<uint64_t, const std::string*> path_of;
  for (const CgroupStats& cg : s.cgroups) path_of[cg.id] = &cg.path;

  // Forget state of cgroups and processes that are no longer listed.
  for (auto it = workloads_.begin(); it != workloads_.end();) {
    const uint64_t id = it->first.second;
    if (id != kIdleKey && id != kUnattributedKey && !path_of.contains(id)) {
      // Exported one last time while listed as gone; from now on its
      // energy is part of __removed__, so sums over series stay whole.
      Split& r = removed_[it->first.first];
      r.dynamic_uj += it->second.dynamic_uj;
      r.idle_uj += it->second.idle_uj;
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
  // plain nanoseconds. With per-CPU readings, each cgroup's and process's
  // time is weighted by the frequencies of the CPUs it ran on (their
  // time-weighted mean); without, by the node's mean frequency.
  const uint64_t f = frequency.mean_khz ? frequency.mean_khz : 1'000'000;
  const bool per_cpu = frequency.mean_khz != 0 && !frequency.cpu_khz.empty() &&
                       per_cpu_observed_;
  per_cpu_observed_ = false;
  absl::flat_hash_map<uint64_t, Cycles> cg_cycles;
  absl::flat_hash_map<ProcessKey, Cycles> proc_cycles;
  // A process's time this interval per cgroup key it ran under (several
  // when it moved), with that key's cycles.
  struct KeyPart {
    uint64_t cgroup_id;
    Cycles c;
  };
  absl::flat_hash_map<ProcessKey, std::vector<KeyPart>> parts_of;
  for (const auto& [key, deltas] : interval_per_cpu_) {
    Cycles c;
    for (const auto& [cpu, ns] : deltas) {
      const uint64_t k =
          cpu < frequency.cpu_khz.size() && frequency.cpu_khz[cpu] != 0
              ? frequency.cpu_khz[cpu]
              : f;
      c.khz_ns += static_cast<u128>(ns) * k;
      c.ns += ns;
    }
    const ProcessKey pk{key.tgid, key.start_ns};
    parts_of[pk].push_back({key.cgroup_id, c});
    if (!per_cpu) continue;
    Cycles& g = cg_cycles[key.cgroup_id];
    g.khz_ns += c.khz_ns;
    g.ns += c.ns;
    Cycles& p = proc_cycles[pk];
    p.khz_ns += c.khz_ns;
    p.ns += c.ns;
  }
  interval_per_cpu_.clear();
  // `ns` of CPU time at the effective frequency of `c` (≈ cycles / 10^6);
  // the node mean where nothing was read per CPU.
  auto weigh = [f](uint64_t ns, const Cycles* c) -> uint64_t {
    if (c == nullptr || c->ns == 0) {
      return power::FrequencyWeightedCpuTime(ns, f, f);
    }
    return Saturate(static_cast<u128>(ns) * (c->khz_ns / c->ns) / 1'000'000 +
                    static_cast<u128>(ns) * (c->khz_ns % c->ns) / c->ns /
                        1'000'000);
  };
  auto cycles_of_cgroup = [&](uint64_t id) -> const Cycles* {
    auto it = cg_cycles.find(id);
    return it == cg_cycles.end() ? nullptr : &it->second;
  };
  auto cycles_of_process = [&](const ProcessStats& p) -> const Cycles* {
    auto it = proc_cycles.find(ProcessKey{p.pid, p.start_ns});
    return it != proc_cycles.end() ? &it->second
                                   : cycles_of_cgroup(p.cgroup_id);
  };

  // The request policy needs requests; without any it falls back to none.
  power::IdlePolicy policy = config_.idle_policy;
  idle_policy_reason_.clear();
  if (policy == power::IdlePolicy::kRequestShare &&
      allocation_.request_millicores.empty()) {
    policy = power::IdlePolicy::kNone;
    idle_policy_reason_ =
        "no CPU requests known (workload identity gives none): idle energy "
        "stays in __idle__";
  }
  int64_t interval_ns = 0;
  for (const ZoneEnergy& z : zones) {
    interval_ns = std::max(interval_ns, z.interval_ns);
  }

  power::AttributionInput in;
  in.idle_policy = policy;
  in.node_allocatable_millicores = allocation_.allocatable_millicores
                                       ? allocation_.allocatable_millicores
                                       : config_.node_allocatable_millicores;
  // Weights deferred by the last interval join this one's; the fraction
  // LimitToCapacity() deferred now waits for the next.
  const uint64_t num = defer_num_, den = defer_den_;
  defer_num_ = defer_den_ = 0;
  auto defer = [num, den](uint64_t w, uint64_t* deferred) {
    const uint64_t d =
        den ? Saturate(static_cast<u128>(w) * std::min(num, den) / den) : 0;
    *deferred = d;
    return w - d;
  };
  absl::flat_hash_map<uint64_t, uint64_t> deferred_before;
  deferred_before.swap(deferred_weight_);
  // Kernel threads are a workload (kKernelCgroupId) like the others:
  // nothing is weighed for __unattributed__ here.
  absl::flat_hash_map<uint64_t, uint64_t> weight_of;
  for (const CgroupStats& cg : s.cgroups) {
    const uint64_t ns = cgroup_delta_[cg.id];
    uint64_t w = weigh(ns, cycles_of_cgroup(cg.id));
    if (auto it = deferred_before.find(cg.id); it != deferred_before.end()) {
      w = Saturate(u128{w} + it->second);
    }
    uint64_t deferred = 0;
    w = defer(w, &deferred);
    if (deferred) deferred_weight_[cg.id] = deferred;
    uint64_t request = 0;
    if (policy == power::IdlePolicy::kRequestShare) {
      auto it = allocation_.request_millicores.find(cg.id);
      if (it != allocation_.request_millicores.end()) request = it->second;
    }
    // Usage in millicores: CPU time over the interval's length.
    const uint64_t usage =
        interval_ns > 0 ? Saturate(static_cast<u128>(ns) * 1000 / interval_ns)
                        : 0;
    if (!w && !request) continue;
    weight_of[cg.id] = w;
    in.workloads.push_back({absl::StrCat(cg.id), w, request, usage});
  }
  // Processes split their workload's share. A process that ran under
  // several cgroup keys this interval (it moved) is listed under each with
  // its time there (read per key), so it gets its exact share of each
  // cgroup's energy; without per-key readings, under its cgroup with all
  // of its time. Attribute() reads a workload weight of 0 as "the sum of
  // its processes", so processes are listed only under workloads with CPU
  // of their own.
  std::vector<const ProcessStats*> proc_at;
  auto list = [&](const ProcessStats* p, uint64_t cgroup_id, uint64_t w) {
    auto it = weight_of.find(cgroup_id);
    if (it == weight_of.end() || it->second == 0) return;
    // Attribute() identifies processes by an int32: their index here, since
    // a pid may appear twice (reused within one interval) and a process
    // once per cgroup it ran in.
    in.processes.push_back({static_cast<int32_t>(proc_at.size()),
                            absl::StrCat(cgroup_id), w, p->exited});
    proc_at.push_back(p);
  };
  for (const ProcDelta& d : proc_delta_) {
    auto parts = parts_of.find(ProcessKey{d.p->pid, d.p->start_ns});
    uint64_t parts_ns = 0;
    if (parts != parts_of.end()) {
      for (const KeyPart& k : parts->second) parts_ns += k.c.ns;
    }
    if (parts_ns != d.ns) {  // no per-key readings (or they disagree)
      list(d.p, d.p->cgroup_id, weigh(d.ns, cycles_of_process(*d.p)));
      continue;
    }
    for (const KeyPart& k : parts->second) {
      list(d.p, k.cgroup_id, weigh(k.c.ns, per_cpu ? &k.c : nullptr));
    }
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
  e.idle_policy_in_force = std::string(power::IdlePolicyName(policy));
  e.idle_policy_reason = idle_policy_reason_;
  e.weighting = !frequency.mean_khz ? "cpu-time"
                : per_cpu           ? "per-cpu-frequency"
                                    : "node-mean-frequency";
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
  e.removed.clear();
  for (const auto& [zone, r] : removed_) {
    WorkloadEnergy& out = e.removed.emplace_back();
    out.workload = std::string(kRemovedWorkload);
    out.zone = zone;
    out.dynamic_uj = r.dynamic_uj;
    out.idle_uj = r.idle_uj;
  }
  // Every tracked process with its cumulative energy; exited ones a last
  // time. Its cgroup is its current one (the snapshot's), also when it had
  // no CPU time this interval (e.g. its EXIT came a drain after its last
  // slice).
  e.processes.clear();
  absl::flat_hash_set<ProcessKey> exited;
  for (const ProcessStats& p : s.processes) {
    if (p.exited) exited.insert({p.pid, p.start_ns});
    auto it = processes_.find(ProcessKey{p.pid, p.start_ns});
    if (it != processes_.end()) it->second.cgroup_id = p.cgroup_id;
  }
  for (auto it = processes_.begin(); it != processes_.end();) {
    const bool gone = exited.contains(it->first);
    for (const auto& [zone, uj] : it->second.dynamic_uj) {
      auto in_interval = it->second.interval_uj.find(zone);
      const int64_t now =
          in_interval == it->second.interval_uj.end() ? 0 : in_interval->second;
      if (uj == 0) continue;  // e.g. a zone that is all idle (memory)
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
  e.cpu_deferred_ns = deferred_ns_;
  e.intervals_attributed = attributed_;
  e.intervals_unmetered = unmetered_;
  e.attribution_errors = errors_;
  return status;
}

}  // namespace wattlens
