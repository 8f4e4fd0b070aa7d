// SPDX-License-Identifier: Apache-2.0
// Per-interval energy accounting: turns one interval's node energy per zone
// (from agent/power) and the snapshot's cumulative CPU time into cumulative
// joules per workload (cgroup), zone and mode (dynamic | idle), plus the
// __idle__ and __unattributed__ buckets, with exact conservation.
//
// Kernel threads are the workload `kernel` (kKernelCgroupId): the sched
// programs key their time there, so they get energy like any workload.
// __unattributed__ is dynamic energy that has no CPU time to follow: an
// interval in which no task ran at all (its energy is not idle baseline,
// yet nothing recorded a slice), and a GPU zone's utilisation by no known
// workload. Interrupt time is not in it: without IRQ_TIME_ACCOUNTING the
// scheduler charges it to the task it interrupted (in that task's
// sum_exec_runtime); with it, to no task, so its energy is shared by the
// workloads in proportion to their CPU time.
//
// CPU time per interval is the difference of consecutive snapshots'
// cumulative cpu_ns, kept here per cgroup and per process (pid, start):
//  - a process exported with `exited` carries its final total, so it is
//    charged for what it ran in its last interval and then forgotten;
//  - a cgroup's own delta is authoritative (it includes tasks that no
//    process entry covers); processes split their workload's share;
//  - with per-CPU readings (ObserveOnCpu) each CPU's time is weighted by
//    that CPU's frequency, else by the node's mean frequency;
//  - a cgroup that is no longer listed has its cumulative energy folded
//    into one __removed__ series per zone (EnergyStats::removed), so that
//    Σ workloads + __idle__ + __unattributed__ + __removed__ = node total
//    holds cumulatively, over time, not only per interval.
// Pure state, no I/O: unit tests drive it with hand-made snapshots.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "agent/bpf/abi.h"
#include "agent/power/attribution.h"
#include "agent/state/aggregator.h"
#include "agent/state/snapshot.h"

namespace wattlens {

struct EnergyConfig {
  power::IdlePolicy idle_policy = power::IdlePolicy::kNone;
  // kRequestShare: the node's allocatable CPU (A in idle × a_k / max(A, Σa))
  // when CpuAllocation does not give one; 0 means Σ a.
  uint64_t node_allocatable_millicores = 0;
};

// CPU requests for --power_idle_policy=request (from pod specs, #5).
struct CpuAllocation {
  // cgroup id -> CPU request in millicores. Empty: no requests are known,
  // and the request policy falls back to `none` (said in EnergyStats).
  absl::flat_hash_map<uint64_t, uint64_t> request_millicores;
  // The node's allocatable CPU; 0: EnergyConfig::node_allocatable_millicores.
  uint64_t allocatable_millicores = 0;
};

// Frequencies one interval's CPU time is weighted by.
struct IntervalFrequency {
  uint64_t mean_khz = 0;  // node mean; 0: unknown (plain CPU time)
  // Average per CPU, indexed like the per-CPU values of ObserveOnCpu(); a
  // 0 or missing entry means mean_khz.
  std::vector<uint64_t> cpu_khz;
};

// The bucket that removed cgroups' cumulative energy is folded into, so
// that sums over exported series keep equalling the node total.
inline constexpr absl::string_view kRemovedWorkload = "__removed__";

// One interval's node energy in one zone, from the power layer.
struct ZoneEnergy {
  std::string zone;
  std::string source;
  std::string idle_method;
  int64_t energy_uj = 0;
  int64_t idle_uj = 0;
  int64_t interval_ns = 0;
  // Per-workload weights for this zone instead of CPU time (GPU), keyed by
  // cgroup id in decimal; see power::ZoneEnergyInput.
  std::optional<std::map<std::string, uint64_t>> weight_override;
  uint64_t unattributed_weight = 0;
};

class EnergyState {
 public:
  explicit EnergyState(EnergyConfig config = {});

  // Applies one interval. `zones` empty means the power source gave nothing
  // this interval: CPU deltas are consumed, the interval counts as
  // unmetered. `khz` is the frequency CPU time is weighted by (0: unknown,
  // plain CPU time). Fills the zones, workloads, processes and counters of
  // snapshot->energy; the caller fills the descriptive fields.
  // InvalidArgument/Internal when attribution rejected its inputs or did not
  // conserve (counted, and the interval's energy is not accumulated).
  absl::Status Update(const std::vector<ZoneEnergy>& zones, uint64_t khz,
                      Snapshot* snapshot);

  // Update() in two steps, for callers that need the interval's CPU time
  // before they know its energy (a model driven by that CPU time):
  // ObserveCpu() takes the deltas and returns the interval's total on-CPU
  // time (all cgroups, the kernel threads' included); Attribute() must follow
  // with the same snapshot.
  uint64_t ObserveCpu(const Snapshot& snapshot);

  // For a model driven by measured CPU time, between ObserveCpu() and
  // Attribute(): the interval's CPU time (plus what earlier intervals
  // deferred) limited to `capacity_ns` (interval × CPUs) + `lag_ns`, which
  // is what the model may turn into energy. `lag_ns` is the accounting lag
  // one interval may measure beyond its capacity and the next as much
  // less (running slices are harvested as of each CPU's last tick); taken
  // as it is, each interval's energy stays exactly its CPU time's. The
  // rest (e.g. slices charged only at switch-out where harvesting is off)
  // is deferred to the next interval, and so is the same fraction of every
  // workload's weight: each is charged, over
  // time, for exactly its own CPU time. A cgroup removed while part of its
  // weight is deferred leaves that part to the others.
  uint64_t LimitToCapacity(uint64_t capacity_ns, uint64_t lag_ns = 0);
  absl::Status Attribute(const std::vector<ZoneEnergy>& zones, uint64_t khz,
                         Snapshot* snapshot);
  // With per-CPU frequencies: CPU time observed per CPU through
  // ObserveOnCpu() is weighted by its own CPU's frequency.
  absl::Status Attribute(const std::vector<ZoneEnergy>& zones,
                         const IntervalFrequency& frequency,
                         Snapshot* snapshot);

  // Per-CPU on-CPU time, for per-CPU frequency weighting (optional; without
  // it CPU time is weighted by the node's mean frequency). `per_cpu` holds
  // one key's cumulative nanoseconds on each of `ncpus` CPUs, as read from
  // the sched oncpu map; call once per key and read, before ObserveCpu().
  // The deltas since the previous read only decide each cgroup's and
  // process's effective frequency; their CPU time stays the snapshot's.
  void ObserveOnCpu(const wl_sched_key& key, const uint64_t* per_cpu,
                    int ncpus);
  // Keys deleted from the kernel map start over from zero.
  void ForgetOnCpu(const std::vector<wl_sched_key>& keys);

  // CPU requests for the request idle policy; replaces the previous ones.
  void SetCpuAllocation(CpuAllocation allocation);

 private:
  struct Split {
    uint64_t dynamic_uj = 0;
    uint64_t idle_uj = 0;
    int64_t interval_dynamic_uj = 0;
    int64_t interval_idle_uj = 0;
  };
  struct ProcEnergy {
    uint64_t cgroup_id = 0;
    std::map<std::string, uint64_t> dynamic_uj;  // by zone
    std::map<std::string, int64_t> interval_uj;
  };
  struct NodeZone {
    std::string idle_method;
    uint64_t energy_uj = 0;
    uint64_t idle_uj = 0;
    int64_t interval_energy_uj = 0;
    int64_t interval_idle_uj = 0;
    int64_t interval_ns = 0;
  };
  // Keys of the __idle__ and __unattributed__ buckets in workloads_:
  // reserved ids that are no cgroup's (kKernelCgroupId is a workload).
  static constexpr uint64_t kIdleKey = ~uint64_t{0};
  static constexpr uint64_t kUnattributedKey = ~uint64_t{0} - 2;
  static_assert(kUnattributedKey >= kFirstReservedCgroupId &&
                kUnattributedKey != kKernelCgroupId &&
                kIdleKey != kKernelCgroupId);

  struct ProcDelta {
    const ProcessStats* p;
    uint64_t ns;
  };
  // Frequency-weighted time of one interval: Σ ns × kHz over CPUs.
  struct Cycles {
    unsigned __int128 khz_ns = 0;
    uint64_t ns = 0;
  };
  struct SchedKeyHash {
    size_t operator()(const wl_sched_key& k) const {
      return absl::HashOf(k.tgid, k.start_ns, k.cgroup_id);
    }
  };
  struct SchedKeyEq {
    bool operator()(const wl_sched_key& a, const wl_sched_key& b) const {
      return a.tgid == b.tgid && a.start_ns == b.start_ns &&
             a.cgroup_id == b.cgroup_id;
    }
  };
  // Sparse per-CPU values: (cpu, ns) for the CPUs a key ran on, by cpu (a
  // task runs on few of a large node's CPUs).
  using PerCpu = std::vector<std::pair<uint32_t, uint64_t>>;
  using SchedKeyMap =
      absl::flat_hash_map<wl_sched_key, PerCpu, SchedKeyHash, SchedKeyEq>;

  EnergyConfig config_;
  CpuAllocation allocation_;
  // Per-CPU oncpu readings: the last cumulative values, and this interval's
  // deltas (from ObserveOnCpu() to Attribute()).
  SchedKeyMap last_per_cpu_;
  SchedKeyMap interval_per_cpu_;
  bool per_cpu_observed_ = false;
  // LimitToCapacity(): this interval's CPU time, the CPU time deferred so
  // far, and the fraction of weights to defer now (num / den).
  uint64_t interval_cpu_ns_ = 0;
  uint64_t deferred_ns_ = 0;
  uint64_t defer_num_ = 0;
  uint64_t defer_den_ = 0;
  // Weights deferred from the last interval, by cgroup id.
  absl::flat_hash_map<uint64_t, uint64_t> deferred_weight_;
  // This interval's deltas, from ObserveCpu() to Attribute().
  absl::flat_hash_map<uint64_t, uint64_t> cgroup_delta_;
  std::vector<ProcDelta> proc_delta_;
  std::string idle_policy_reason_;
  absl::flat_hash_map<uint64_t, uint64_t> last_cgroup_cpu_;
  absl::flat_hash_map<ProcessKey, uint64_t> last_process_cpu_;
  // (zone, cgroup id or bucket key) -> cumulative split.
  std::map<std::pair<std::string, uint64_t>, Split> workloads_;
  // zone -> cumulative energy of cgroups that were removed (__removed__).
  std::map<std::string, Split> removed_;
  absl::flat_hash_map<ProcessKey, ProcEnergy> processes_;
  // (zone, source) -> cumulative node energy.
  std::map<std::pair<std::string, std::string>, NodeZone> node_;
  uint64_t attributed_ = 0;
  uint64_t unmetered_ = 0;
  uint64_t errors_ = 0;
};

}  // namespace wattlens
