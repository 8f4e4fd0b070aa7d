// Per-interval energy accounting: turns one interval's node energy per zone
// (from agent/power) and the snapshot's cumulative CPU time into cumulative
// joules per workload (cgroup), zone and mode (dynamic | idle), plus the
// __idle__ and __unattributed__ buckets, with exact conservation.
//
// CPU time per interval is the difference of consecutive snapshots'
// cumulative cpu_ns, kept here per cgroup and per process (pid, start):
//  - a process exported with `exited` carries its final total, so it is
//    charged for what it ran in its last interval and then forgotten;
//  - kernel threads (pid 2, kthreadd, and its children, ppid 2) go to
//    __unattributed__, and their time is taken out of their cgroup's;
//  - a cgroup's own delta is authoritative (it includes tasks that no
//    process entry covers); processes split their workload's share.
// Pure state, no I/O: unit tests drive it with hand-made snapshots.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "agent/power/attribution.h"
#include "agent/state/aggregator.h"
#include "agent/state/snapshot.h"

namespace wattlens {

struct EnergyConfig {
  power::IdlePolicy idle_policy = power::IdlePolicy::kNone;
  // kRequestShare: idle × request / max(allocatable, Σ requests).
  uint64_t node_allocatable_millicores = 0;
  // cgroup id -> CPU request (millicores) for kRequestShare; null when no
  // requests are known (then idle energy stays in __idle__).
  std::function<uint64_t(uint64_t cgroup_id)> cpu_request_millicores;
};

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

// pid 2 (kthreadd) and its children.
bool IsKernelThread(const ProcessStats& p);

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
  // time (all cgroups, kernel threads included); Attribute() must follow
  // with the same snapshot.
  uint64_t ObserveCpu(const Snapshot& snapshot);
  absl::Status Attribute(const std::vector<ZoneEnergy>& zones, uint64_t khz,
                         Snapshot* snapshot);

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
  // Keys of the __idle__ and __unattributed__ buckets in workloads_.
  static constexpr uint64_t kIdleKey = ~uint64_t{0};
  static constexpr uint64_t kUnattributedKey = ~uint64_t{0} - 1;

  struct ProcDelta {
    const ProcessStats* p;
    uint64_t ns;
  };

  EnergyConfig config_;
  // This interval's deltas, from ObserveCpu() to Attribute().
  absl::flat_hash_map<uint64_t, uint64_t> cgroup_delta_;
  std::vector<ProcDelta> proc_delta_;
  uint64_t kernel_ns_ = 0;
  absl::flat_hash_map<uint64_t, uint64_t> kernel_ns_by_cgroup_;
  absl::flat_hash_map<uint64_t, uint64_t> last_cgroup_cpu_;
  absl::flat_hash_map<ProcessKey, uint64_t> last_process_cpu_;
  // (zone, cgroup id or bucket key) -> cumulative split.
  std::map<std::pair<std::string, uint64_t>, Split> workloads_;
  absl::flat_hash_map<ProcessKey, ProcEnergy> processes_;
  // (zone, source) -> cumulative node energy.
  std::map<std::pair<std::string, std::string>, NodeZone> node_;
  uint64_t attributed_ = 0;
  uint64_t unmetered_ = 0;
  uint64_t errors_ = 0;
};

}  // namespace wattlens
