// SPDX-License-Identifier: Apache-2.0
// The agent: loads the BPF sources, drains them every interval into the
// aggregator, publishes a Snapshot, and serves it on /metrics.
//
// Threads: the event reader polls the lifecycle ring buffer and only moves
// records into a bounded lock-free SPSC ring (overflow counted, never
// blocks); the drain thread (Run) pops them, reads the counter maps, updates
// the aggregator and publishes; civetweb's threads serve scrapes from the
// published snapshot.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/bpf/kernel_features.h"
#include "agent/bpf/libbpf_log.h"
#include "agent/bpf/network_program.h"
#include "agent/bpf/power_program.h"
#include "agent/bpf/sched_program.h"
#include "agent/bpf/syscalls_program.h"
#include "agent/common/clock.h"
#include "agent/common/health_http.h"
#include "agent/common/spsc_ring.h"
#include "agent/export/prometheus_collectable.h"
#include "agent/export/workload_series.h"
#include "agent/identity/cgroup_resolver.h"
#include "agent/identity/cgroup_v1.h"
#include "agent/identity/dpkg_index.h"
#include "agent/identity/exe_table.h"
#include "agent/identity/kube_config.h"
#include "agent/identity/pod_cache.h"
#include "agent/identity/pod_watcher.h"
#include "agent/identity/project_map.h"
#include "agent/identity/workload_identity.h"
#include "agent/power/baseline.h"
#include "agent/power/probe.h"
#include "agent/state/aggregator.h"
#include "agent/state/energy.h"
#include "agent/state/resources.h"
#include "agent/state/restart_state.h"
#include "agent/state/snapshot_store.h"

namespace prometheus {
class Exposer;
}

namespace wattlens {

// Node power and its attribution (docs/power.md).
struct PowerAgentConfig {
  bool enabled = true;
  // Root under which the power sources and the frequency fallback read
  // /sys and /proc ("/" in production).
  std::string fs_root = "/";
  // Where their /proc paths are read instead when set (the agent's
  // --proc_root, so a host sysfs mounted under /host pairs with the host
  // procfs that hostPID gives the pod at /proc).
  std::string proc_root;
  power::ProbeConfig probe;
  power::BaselineConfig baseline;
  EnergyConfig attribution;
  PowerProgramConfig program;  // program.{fs,proc}_root are set from these
};

// Workload identity and the per-workload resources (docs/identity.md).
struct IdentityAgentConfig {
  // This node's name: the watch's field selector and the Node object.
  std::string node_name;
  // Pod metadata from the API server through this kubeconfig; else the
  // in-cluster configuration when KUBERNETES_SERVICE_HOST is set; else none
  // (identity from cgroup paths only: pod UID, container id, unit).
  std::string kubeconfig;
  // Opt-in: poll this kubelet's /pods instead of watching the API server
  // (e.g. https://127.0.0.1:10250 or the read-only http://127.0.0.1:10255).
  // The service-account token is sent when there is one.
  std::string kubelet_url;
  std::string kubelet_ca_file;
  bool kubelet_insecure_skip_tls_verify = false;
  bool watch_pods = true;  // false: paths only, even in a cluster
  identity::PodWatcherOptions watcher;
  // User project maps layered over the shipped one.
  std::vector<std::string> project_map_files;
  // Where the host's dpkg database is (/var/lib/dpkg under it); empty: no
  // package lookup for host executables.
  std::string dpkg_root = "/";
  // NodeSpec labels when the Node object cannot be read (or to add to it).
  std::vector<std::pair<std::string, std::string>> node_labels;
  std::string node_provider_id;
  WorkloadSeriesOptions series;
  // cgroup v1 hosts: processes left in the v2 root are attributed to their
  // v1 path from /proc/<pid>/cgroup (agent/identity/cgroup_v1.h). Auto: on
  // when there is no cgroup2 mount at all.
  enum class V1Fallback { kAuto, kOn, kOff };
  V1Fallback cgroup_v1_fallback = V1Fallback::kAuto;
  // Environment (injectable for tests).
  identity::EnvLookup env;
  std::string service_account_dir = identity::kServiceAccountDir;
};

// Restarts and upgrades (docs/deploy.md): the BPF objects stay loaded and
// counting between agents, and each agent leaves what the collector has
// acknowledged for the next.
struct RestartConfig {
  PinConfig pin;
  // Where the state written at each acknowledgement lives (must outlive the
  // pod: a hostPath); empty: none, and an adopting agent counts from the
  // maps as it finds them.
  std::string state_dir;
};

struct AgentConfig {
  absl::Duration interval = absl::Seconds(1);
  // host:port for /metrics; port 0 picks a free one; empty disables.
  std::string metrics_address = "0.0.0.0:9810";
  SyscallsProgramConfig syscalls;
  SchedProgramConfig sched;
  NetworkProgramConfig network;
  // The variant of each source: automatic picks the best this kernel
  // accepts (by probe) and overrides sched.cpu_time_source and
  // network.bytes_source; an explicit one that cannot load here is an error.
  VariantRequest<CpuTimeSource> cpu_time_request;
  VariantRequest<NetworkBytesSource> network_bytes_request;
  // Node addresses are re-read (interfaces change) every N intervals.
  uint32_t network_refresh_every = 30;
  size_t event_queue_capacity = 65536;
  // Processes whose executable is kept for host project identity.
  size_t exe_table_entries = 65536;
  int event_poll_ms = 50;
  std::string btf_path = "/sys/kernel/btf/vmlinux";
  std::string proc_root = "/proc";
  std::string cgroup_root;  // empty: found in mountinfo
  bool enable_bpf_stats = false;
  // Once everything is loaded, keep only CAP_DAC_READ_SEARCH (cgroup paths
  // by file handle) and drop the rest: nothing after start-up needs
  // CAP_BPF, CAP_PERFMON or CAP_SYS_ADMIN.
  bool drop_capabilities = true;
  ExpositionOptions exposition;
  AggregatorOptions aggregator;
  PowerAgentConfig power;
  IdentityAgentConfig identity;
  RestartConfig restart;
};

class Agent {
 public:
  using SnapshotFn =
      std::function<void(const Snapshot* prev, const Snapshot& cur)>;

  static absl::StatusOr<std::unique_ptr<Agent>> Create(
      AgentConfig config, const Clock& clock = RealClock::Get());
  ~Agent();

  // Drains every interval until Stop(). `on_snapshot` runs on this thread
  // after each publish.
  absl::Status Run(const SnapshotFn& on_snapshot = nullptr);
  void Stop();

  // One drain now (Run calls it each interval; tests may call it directly
  // instead of Run).
  absl::Status DrainOnce();

  const SnapshotStore& store() const { return store_; }
  int metrics_port() const;
  // /healthz and /readyz on the metrics port; callers may add checks.
  HealthChecks& health() { return health_; }
  // Pod metadata as the agent sees it (tests, the node API).
  const identity::PodCache& pods() const { return *pods_; }
  // "api-server", "kubelet" or "" when identity comes from paths only.
  const std::string& metadata_source() const { return metadata_source_; }
  // Writes the restart state at each acknowledgement (null: not kept).
  RestartLedger* restart_ledger() const { return ledger_.get(); }
  // How long before this agent's start its first report's counters begin
  // (the last acknowledged report of the agent whose maps it adopted).
  uint64_t carried_ns() const { return carried_ns_; }

 private:
  Agent(AgentConfig config, const Clock& clock);
  void EventLoop();
  AgentSelfStats CollectSelfStats(size_t syscall_entries, size_t oncpu_entries,
                                  size_t net_entries);
  void CreatePower();
  // Fills exe_table_ with the executables of the processes running now.
  // Before capabilities are dropped: the /proc half needs them.
  void SeedExecutables();
  // The executables exec'd, forked and exited since the last drain.
  void ApplyExecutables(const std::vector<LifecycleEvent>& events);
  // energy_method_ for the CPU source the guard uses now.
  void DescribeEnergyMethod();
  absl::Status CreateIdentity();
  // cidrs_ from cidr_inputs_, logged.
  void DetectClusterCidrs();
  // Seeds the aggregator for the pinned maps this agent adopted.
  void Restore();
  // Identity, requests, working set and allocation of every cgroup.
  void Identify(Snapshot* snapshot);
  // Reads this interval's node energy per zone (empty when unmetered).
  std::vector<ZoneEnergy> SamplePower(PowerInterval* frequency);
  // Attributes it with the CPU deltas of `snapshot` and fills its energy.
  absl::Status AttributeEnergy(const std::vector<ZoneEnergy>& zones,
                               const PowerInterval& frequency,
                               Snapshot* snapshot);

  AgentConfig config_;
  const Clock& clock_;
  KernelFeatures features_;
  std::unique_ptr<CgroupResolver> cgroups_;
  std::unique_ptr<SyscallsProgram> syscalls_;
  std::unique_ptr<SchedProgram> sched_;
  std::unique_ptr<NetworkProgram> network_;
  std::string syscalls_error_, sched_error_, network_error_;
  // Why sched or network is down when it did not load.
  HealthReason sched_down_reason_ = HealthReason::kLoadFailed;
  HealthReason network_down_reason_ = HealthReason::kLoadFailed;
  // Source name -> the variant loaded (or tried), for logs and metrics.
  std::map<std::string, std::string> source_variants_;
  // The `cluster` ranges and what they were detected from (drain thread).
  ClusterCidrInputs cidr_inputs_;
  ClusterCidrDetection cidrs_;
  // Power: the BPF frequency/idle program (or its fallback), the meters,
  // the idle baseline for metered zones and the attribution state; all
  // used by the drain thread only.
  std::unique_ptr<PowerProgram> power_program_;
  std::string power_error_;           // the BPF program's
  std::string power_meter_error_;     // no CPU energy source at all
  power::ProbeResult power_sources_;  // the GPU; CPU sources are the guard's
  // The CPU sources, believed only while they behave (docs/power.md).
  std::unique_ptr<power::MeterGuard> power_guard_;
  power::IntervalLoad power_load_;  // CPU time measured in this interval
  const power::PowerSource* energy_method_of_ = nullptr;
  class MeasuredUtilisation;
  std::shared_ptr<MeasuredUtilisation> power_utilisation_;
  int64_t power_last_ns_ = 0;
  std::unique_ptr<power::IdleBaselineEstimator> power_baseline_;
  std::unique_ptr<EnergyState> energy_;
  std::vector<std::pair<std::string, std::string>> energy_method_;
  uint64_t drains_ = 0;
  int stats_fd_ = -1;

  SpscRing<wl_event> events_;
  // Executables from EXEC records, for exe_table_ (drain thread only).
  SpscRing<identity::ExeUpdate> exe_updates_;
  identity::ExeTable exe_table_;
  std::atomic<uint64_t> events_received_{0};
  std::atomic<uint64_t> events_malformed_{0};
  std::atomic<bool> stopping_{false};
  std::thread event_thread_;
  absl::Notification stop_;

  // Identity: the pod cache is written by the watch thread and read by the
  // drain thread; everything else here belongs to the drain thread.
  std::unique_ptr<identity::PodCache> pods_;
  std::unique_ptr<identity::PodWatcher> watcher_;
  std::string metadata_source_;
  std::thread watch_thread_;
  absl::Notification watch_stop_;
  identity::ProjectMap projects_;
  std::unique_ptr<identity::DpkgIndex> dpkg_;
  std::unique_ptr<identity::WorkloadIdentifier> identifier_;
  std::unique_ptr<identity::V1Attribution> v1_;
  std::unique_ptr<ResourceAccounting> resources_;
  std::unique_ptr<WorkloadSeries> series_;
  NodeInfo node_info_;

  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<RestartLedger> ledger_;
  std::string restart_ = "off", restart_reason_;
  uint64_t carried_ns_ = 0;
  SnapshotStore store_;
  std::shared_ptr<const Snapshot> prev_;
  double last_drain_seconds_ = 0;
  HealthChecks health_;  // outlives exposer_, whose handlers read it
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<SnapshotCollectable> collectable_;
};

}  // namespace wattlens
