// SPDX-License-Identifier: Apache-2.0
// The immutable per-interval view of the node. One writer (the aggregator)
// builds a Snapshot per interval and publishes it; readers (Prometheus
// scrape, live view, later the gRPC API and uploader) share it read-only, so
// they never lock the hot path or see a half-updated interval.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/state/drops.h"
#include "agent/state/source_health.h"

namespace wattlens {

// Traffic classes, indexed by enum wl_net_class (bpf/shared/wattlens_abi.h):
// node, cluster, private, internet, unknown.
inline constexpr size_t kNetClasses = 5;

struct NetStats {
  uint64_t tx_bytes = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_packets = 0;  // UDP: datagrams; TCP: send calls moving data
  uint64_t rx_packets = 0;
};

struct TcpStats {
  uint64_t connects = 0;
  uint64_t accepts = 0;
  uint64_t closes = 0;
  uint64_t retransmits = 0;
};

// Who runs in a cgroup (agent/identity, docs/identity.md). Empty strings
// where not applicable: host cgroups have no namespace or pod, pods the API
// has not (yet) described have only their UID and container id.
struct WorkloadLabels {
  std::string kind;  // identity::CgroupKindName: pod_container, pod, ...
  std::string systemd_unit;
  std::string namespace_name;
  std::string pod;
  std::string pod_uid;
  std::string container;
  std::string container_id;
  // The runtime that made the container (identity::ContainerRuntimeName:
  // containerd, cri-o, docker, podman; "unknown" when the path does not
  // say); empty for a cgroup that is not a container.
  std::string container_runtime;
  std::string workload_kind;
  std::string workload;
  std::string project;
  // The project of the pod as a whole (its first regular container's
  // image); equals `project` for host cgroups.
  std::string pod_project;
  bool pod_known = false;  // the pod's metadata was found
  // A host or container cgroup whose processes still run and whose project
  // is not decided yet (no exec seen, attempts left). Its labels will
  // change: /metrics holds its row back until they are final, so that the
  // row starts with everything the cgroup used instead of splitting it.
  bool project_pending = false;
};

// Requests, working set and OpenCost-style allocation of one cgroup
// (agent/state/resources.h). Allocations are cumulative, exact integers.
struct CgroupResources {
  uint64_t cpu_request_millicores = 0;
  uint64_t memory_request_bytes = 0;
  uint64_t memory_working_set_bytes = 0;
  uint64_t cpu_allocated_core_ns = 0;
  uint64_t memory_allocated_byte_seconds = 0;
};

// Kernel threads (PF_KTHREAD) are a workload of their own, `kernel`: the
// sched programs key their CPU time and lifecycle under this id
// (WL_CGROUP_KERNEL in bpf/shared/wattlens_abi.h), never under the root
// cgroup they sit in. Its CgroupStats has this path, is always resolved and
// never gone; identity gives it workload_kind = workload = "kernel" and
// project "linux" (docs/identity.md).
inline constexpr uint64_t kKernelCgroupId = 0xfffffffffffffffeULL;
inline constexpr char kKernelCgroupPath[] = "kernel";
inline constexpr char kKernelProject[] = "linux";
// Ids from here up never name a cgroup: the kernel workload above and the
// agent's own keys (energy buckets). Synthetic ids (cgroup v1 fallback)
// stay below.
inline constexpr uint64_t kFirstReservedCgroupId = ~uint64_t{0} - 15;

// Cumulative totals of one cgroup (the unit of attribution: a workload).
struct CgroupStats {
  uint64_t id = 0;
  // Relative to the cgroup v2 root, "/" for the root; kKernelCgroupPath for
  // the kernel threads.
  std::string path;
  uint64_t cpu_ns = 0;
  uint64_t syscalls = 0;
  uint64_t syscall_errors = 0;
  uint32_t live_processes = 0;
  bool gone = false;  // removed from the hierarchy; exported one last time
  std::array<NetStats, kNetClasses> net{};
  TcpStats tcp;
  WorkloadLabels identity;
  CgroupResources resources;
};

struct SyscallStats {
  uint32_t nr = 0;
  uint64_t calls = 0;
  uint64_t errors = 0;
};

// Cumulative totals of one process. (pid, start_ns) identifies it.
struct ProcessStats {
  uint32_t pid = 0;
  uint64_t start_ns = 0;  // ns since boot (the kernel's start_boottime)
  uint32_t ppid = 0;
  std::string comm;
  uint64_t cgroup_id = 0;
  uint64_t cpu_ns = 0;
  uint64_t syscalls = 0;
  uint64_t syscall_errors = 0;
  bool exited = false;  // exited in this interval: its last appearance
  int32_t exit_code = 0;
  std::vector<SyscallStats> by_syscall;  // sorted by nr
  std::array<NetStats, kNetClasses> net{};
  TcpStats tcp;
};

struct ProgramRunStats {
  std::string program;
  uint64_t run_count = 0;
  uint64_t run_time_ns = 0;
  uint32_t verified_insns = 0;
};

struct MapFillStats {
  std::string map;
  uint64_t entries = 0;
  uint64_t capacity = 0;
};

struct AgentSelfStats {
  // Cumulative. Losses: wattlens_agent_lost_events_total{reason}; the rest
  // wattlens_agent_anomalies_total{reason} (agent/state/drops.h).
  DropTable drops;
  std::vector<MapFillStats> maps;
  std::vector<ProgramRunStats> programs;  // empty unless BPF stats are on
  bool bpf_stats_enabled = false;
  std::vector<SourceHealth> sources;
  // How on-CPU time is read: "sampled" or "sched_switch" ("" without the
  // sched source).
  std::string cpu_time_source;
  uint64_t events_received = 0;
  uint64_t exits_inferred = 0;  // exit events missed, found via /proc
  uint64_t counter_resets = 0;  // kernel counters that went backwards
  uint64_t processes_tracked = 0;
  uint64_t cgroups_tracked = 0;
  double last_drain_seconds = 0;
  // Restarts (docs/deploy.md): per source, whether its BPF state was
  // adopted from a pinned set ("adopted", "fresh", "off", "unavailable") and
  // why; how this agent's counters began ("resumed": from the state the
  // last agent left; "fresh"; "state_unreadable"; "off"), and the state
  // written at each acknowledgement.
  std::map<std::string, std::pair<std::string, std::string>> bpf_pins;
  std::string restart;
  std::string restart_reason;
  double restart_carried_seconds = 0;
  uint64_t restart_state_writes = 0;
  uint64_t restart_state_write_errors = 0;
};

// Node energy per zone and its attribution to workloads, one interval at a
// time (agent/state/energy.h, docs/power.md). Integer microjoules; in every
// zone and interval the workloads plus __idle__ and __unattributed__ sum
// exactly to the node's energy.
struct NodeZoneEnergy {
  std::string zone;                // "package", "dram", "platform", "gpu", ...
  std::string source;              // "model:ccf", "rapl-powercap", ...
  std::string idle_method;         // "model", "low_load_minimum", "none", ...
  uint64_t energy_uj = 0;          // cumulative
  uint64_t idle_uj = 0;            // cumulative idle baseline
  int64_t interval_energy_uj = 0;  // this interval
  int64_t interval_idle_uj = 0;
  int64_t interval_ns = 0;
};

// Zones nest: psys (and a metered platform sensor) count the whole
// platform; package, core, uncore and dram are parts, core and uncore inside
// package. The node's total, and what the collector sums per workload, is
// the whole-platform zone where the node has one, else the parts that do not
// nest (package, dram and the model's static platform term); GPUs are added
// either way. A part is never added to the whole.
inline bool IsWholePlatformZone(std::string_view zone,
                                std::string_view source) {
  // The model's platform term is its static rest-of-server power: a part.
  return zone == "psys" ||
         (zone == "platform" && source.substr(0, 5) != "model");
}
inline bool CountsInNodeTotal(std::string_view zone, std::string_view source,
                              bool node_has_whole_zone) {
  if (zone == "gpu") return true;
  if (node_has_whole_zone) return IsWholePlatformZone(zone, source);
  return zone == "package" || zone == "dram" || zone == "platform";
}
inline bool HasWholePlatformZone(const std::vector<NodeZoneEnergy>& zones) {
  for (const NodeZoneEnergy& z : zones) {
    if (IsWholePlatformZone(z.zone, z.source)) return true;
  }
  return false;
}

struct WorkloadEnergy {
  uint64_t cgroup_id = 0;  // 0 for the __idle__/__unattributed__ buckets
  std::string workload;    // cgroup path, "__idle__" or "__unattributed__"
  std::string zone;
  uint64_t dynamic_uj = 0;          // cumulative
  uint64_t idle_uj = 0;             // cumulative, shared by the idle policy
  int64_t interval_dynamic_uj = 0;  // this interval
  int64_t interval_idle_uj = 0;
};

// Dynamic energy of one process (a part of its workload's); every tracked
// process that has had energy is listed, an exited one a last time.
struct ProcessEnergy {
  uint32_t pid = 0;
  uint64_t start_ns = 0;
  uint64_t cgroup_id = 0;
  std::string zone;
  uint64_t dynamic_uj = 0;  // cumulative
  int64_t interval_dynamic_uj = 0;
  bool exited = false;
};

struct EnergyStats {
  bool enabled = false;
  std::string idle_policy;           // configured: none | usage | request
  std::string idle_policy_in_force;  // differs when it cannot apply
  std::string idle_policy_reason;    // why; "" when they are the same
  // cpu-time | node-mean-frequency | per-cpu-frequency
  std::string weighting;
  std::string frequency_source;  // tracepoint | cpufreq-sysfs | ... | none
  std::string frequency_reason;  // why not (only) the tracepoint; "" if so
  uint64_t frequency_khz = 0;    // mean over CPUs in this interval
  bool idle_tracked = false;     // power:cpu_idle fired
  uint64_t cpu_idle_ns = 0;      // cumulative, summed over CPUs
  uint64_t cpu_idle_entries = 0;
  // The source and, for the model, every coefficient in force.
  std::vector<std::pair<std::string, std::string>> method;
  // Provenance: the CPU energy source in use, whether it measures (a meter)
  // or estimates (the model), and every source not believed, with why
  // (power::MeterGuard).
  std::string power_source;
  bool power_measured = false;
  struct RejectedPowerSource {
    std::string source, reason, detail;
  };
  std::vector<RejectedPowerSource> power_rejected;
  std::vector<NodeZoneEnergy> zones;      // sorted by zone
  std::vector<WorkloadEnergy> workloads;  // sorted by (zone, workload)
  // Per zone, the cumulative energy of removed cgroups ("__removed__",
  // cgroup_id 0, interval fields 0). With it, Σ workloads (cumulative) +
  // removed = the zone's cumulative energy at any time. Not sent to the
  // collector, which already received each cgroup's final totals.
  std::vector<WorkloadEnergy> removed;
  std::vector<ProcessEnergy> processes;
  // CPU time beyond the last interval's capacity (plus the accounting
  // lag), deferred with its workloads' weights to the next interval.
  uint64_t cpu_deferred_ns = 0;
  uint64_t intervals_attributed = 0;
  uint64_t intervals_unmetered = 0;  // the power source gave no reading
  uint64_t attribution_errors = 0;   // inputs rejected or not conserved
};

// What the node is, for cost and carbon (NodeReport.node).
struct NodeInfo {
  uint32_t cpus = 0;          // online
  uint64_t memory_bytes = 0;  // MemTotal
  uint32_t gpus = 0;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key
  std::string provider_id;
  std::string labels_source;  // "node-api", "flags" or ""
};

// One row of the wattlens_workload_* families: a cgroup, or a group of
// cgroups when the exposition aggregates to stay within its series budget
// (agent/export/workload_series.h). Counters are the row's own cumulative
// sums, so they never go backwards when a member cgroup goes away.
struct RowEnergy {
  std::string zone;
  uint64_t dynamic_uj = 0;
  uint64_t idle_uj = 0;
};

struct WorkloadRow {
  // __idle__ / __unattributed__: energy only, no CPU or network series.
  bool bucket = false;
  std::string cgroup;  // a cgroup path, a unit's path or "" when grouped
  std::string namespace_name, pod, container, workload_kind, workload, project;
  uint64_t cpu_ns = 0;
  uint64_t syscalls = 0;
  uint64_t syscall_errors = 0;
  uint32_t processes = 0;
  std::array<NetStats, kNetClasses> net{};
  TcpStats tcp;
  std::vector<RowEnergy> energy;  // sorted by zone
};

struct WorkloadRows {
  bool valid = false;  // false: render one row per cgroup
  std::string level;   // cgroup | pod | workload | namespace
  uint64_t budget = 0;
  uint64_t series = 0;       // wattlens_workload_* series the rows make
  uint64_t folded_rows = 0;  // rows folded into __other__ this interval
  uint64_t level_changes = 0;
  std::vector<WorkloadRow> rows;
};

// The identity stage's state (agent/identity, docs/identity.md).
struct IdentityHealth {
  std::string metadata_source;  // "api-server", "kubelet" or "" (paths only)
  bool synced = false;          // the pod list has been read at least once
  uint64_t pods_live = 0;
  uint64_t pods_deleted = 0;         // deleted, kept for their last samples
  uint64_t pod_cgroups = 0;          // cgroups of pods in this snapshot
  uint64_t pod_cgroups_unknown = 0;  // ... whose pod has no metadata yet
  uint64_t lists = 0;
  uint64_t watch_events = 0;
  uint64_t relists_gone = 0;
  uint64_t failures = 0;
};

// A peer range the network source classes as `cluster`, and its origin
// (agent/bpf/network_classes.h, DetectClusterCidrs).
struct ClusterCidrInfo {
  std::string cidr;
  std::string source;    // configured, node_spec or kubernetes_service
  std::string observed;  // what it was derived from
};

struct KernelBaselines;  // agent/state/restart_state.h

struct Snapshot {
  uint64_t sequence = 0;
  int64_t monotonic_ns = 0;
  int64_t realtime_ns = 0;
  int64_t interval_ns = 0;
  std::vector<CgroupStats> cgroups;     // sorted by id
  std::vector<ProcessStats> processes;  // live + exited this interval
  std::vector<SyscallStats> syscalls;   // node totals, sorted by nr
  AgentSelfStats self;
  EnergyStats energy;
  NodeInfo node;
  IdentityHealth identity;
  // The aggregator's per-key baselines after this interval, kept only when
  // restart state is written (agent/state/restart_state.h).
  std::shared_ptr<const KernelBaselines> kernel_baselines;
  // Wall time covered by this agent's intervals so far (since its start).
  uint64_t elapsed_ns = 0;
  WorkloadRows rows;
  std::vector<ClusterCidrInfo> cluster_cidrs;  // empty: none known
};

}  // namespace wattlens
