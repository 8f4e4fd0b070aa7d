// SPDX-License-Identifier: Apache-2.0
// The collector's in-memory model: a registry of nodes, each with its own
// lock and its series (one per cgroup), turned from cumulative counters into
// time-bucketed deltas. Ingest locks only the reporting node, so thousands of
// agents can report concurrently; queries lock one node at a time.
//
// Exactness: per (node, epoch) a report with sequence <= the last applied one
// adds nothing; per series the growth past the last cumulative value is added
// field by field (a field that decreased restarted: its new value is its
// growth; a new cgroup id for the same path resets every field). A new epoch
// (agent restart) starts every series from zero.
//
// Epochs are agent start times on the agent's wall clock, which can step
// back: an epoch is new when it was never seen on the node and it is either
// higher, or younger by sequence, or the current one has gone silent; an
// epoch once replaced is never taken back (its late reports add nothing).
//
// Bounds: growth is capped by the time the report covers (its time past the
// node's previous report, or past the epoch's start for a series new in the
// epoch) times the node's capacity: CPU time by its CPUs, counts by
// generous per-CPU rates. Capped growth is counted, never wrapped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"
#include "collector/cost.h"
#include "collector/counters.h"
#include "collector/events.h"
#include "wattlens/v1/query.pb.h"
#include "wattlens/v1/report.pb.h"

namespace wattlens::collector {

struct ClusterOptions {
  int64_t resolution_ns = 10'000'000'000;        // bucket width
  int64_t retention_ns = 24 * 3600'000'000'000;  // history kept
  int64_t stale_ttl_ns = 30'000'000'000;         // silent -> STALE
  int64_t gone_ttl_ns = 300'000'000'000;         // silent -> GONE
  int64_t default_window_ns = 300'000'000'000;
  // An unseen epoch lower than the node's current one (the agent restarted
  // after its clock stepped back) replaces it once the current epoch has
  // been silent this long, or at once when its sequence is lower.
  int64_t epoch_silence_ns = 5'000'000'000;
  // A node's upload interval while neither its reports' upload_interval
  // nor their spacing says (agents before the field, or one report so far).
  int64_t default_upload_interval_ns = 10'000'000'000;
  // A query's window is partial for a node whose last report ends more than
  // this many upload intervals before the window does.
  int partial_after_intervals = 3;
};

// What a report changed, handed to the store in the node's apply order.
struct SeriesWrite {
  std::string cgroup_path;
  std::shared_ptr<const WorkloadLabels> labels;  // set when new or changed
  uint64_t epoch = 0;
  uint64_t cgroup_id = 0;
  Counters cumulative;
  int64_t bucket = 0;  // bucket index (start_ns / resolution)
  Counters delta;
  Counters bucket_total;  // the bucket's value after adding delta
};
struct NodeWrite {
  std::string node_name;
  uint64_t epoch = 0;
  uint64_t sequence = 0;
  uint64_t epochs_seen = 0;
  int64_t report_time_ns = 0;
  int64_t seen_realtime_ns = 0;
  std::string agent_version;
  // Serialized NodeSpec when it changed (empty: unchanged).
  std::string node_spec;
  std::vector<SeriesWrite> series;
};

struct ApplyResult {
  bool duplicate = false;
  bool stale_epoch = false;
  bool new_epoch = false;
  size_t series_changed = 0;
};

// Counters for /metrics; relaxed atomics.
struct IngestStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> stale_epoch{0};
  std::atomic<uint64_t> counter_resets{0};
  std::atomic<uint64_t> new_epochs{0};
  std::atomic<uint64_t> clamped_times{0};
  // Growth capped by the node's capacity over the time covered, by field
  // kind, and sums that saturated instead of wrapping.
  std::atomic<uint64_t> capped_cpu{0};
  std::atomic<uint64_t> capped_counts{0};
  std::atomic<uint64_t> saturated{0};
  // Series freed: no data left in retention and not reported for as long.
  std::atomic<uint64_t> series_freed{0};
};

// Restoring state from the store at start-up.
struct RestoredNode {
  std::string node_name;
  uint64_t epoch = 0;
  uint64_t sequence = 0;
  uint64_t epochs_seen = 0;
  int64_t report_time_ns = 0;
  int64_t seen_realtime_ns = 0;
  std::string agent_version;
  std::string spec;  // serialized NodeSpec
};
struct RestoredSeries {
  std::string node_name;
  WorkloadLabels labels;
  uint64_t epoch = 0;
  uint64_t cgroup_id = 0;
  Counters cumulative;
};

class ClusterState {
 public:
  ClusterState(const Clock& clock, ClusterOptions options);
  ~ClusterState();

  // Applies a validated report. `sink` (may be empty) runs under the node's
  // lock with what changed, so a store sees each node's writes in order.
  ApplyResult Apply(const wattlens::v1::NodeReport& report,
                    const std::function<void(NodeWrite&&)>& sink);

  absl::StatusOr<wattlens::v1::GetUsageResponse> GetUsage(
      const wattlens::v1::GetUsageRequest& request) const;
  wattlens::v1::ListNodesResponse ListNodes() const;

  // Moves nodes between CONNECTED, STALE and GONE by their silence, emits
  // events, drops buckets past retention and forgets nodes gone for longer
  // than retention. Call periodically (the server does, every second).
  void Tick();

  // Start-up only, before serving.
  void RestoreNode(const RestoredNode& node);
  void RestoreSeries(const RestoredSeries& series);
  void RestoreBucket(const std::string& node, const std::string& cgroup_path,
                     int64_t bucket, const Counters& delta);

  // Prices and carbon coefficients; without an engine, usage carries no
  // cost or carbon. Set before serving (tests may swap it).
  void SetCostEngine(std::shared_ptr<const CostEngine> engine) {
    absl::MutexLock lock(&engine_mu_);
    engine_ = std::move(engine);
  }
  std::shared_ptr<const CostEngine> cost_engine() const {
    absl::MutexLock lock(&engine_mu_);
    return engine_;
  }

  EventHub& events() { return events_; }
  const EventHub& events() const { return events_; }
  const IngestStats& stats() const { return stats_; }
  const ClusterOptions& options() const { return options_; }

  struct StateCounts {
    uint32_t connected = 0, stale = 0, gone = 0;
    uint64_t series = 0, buckets = 0;
  };
  StateCounts CountStates() const;
  // Cumulative growth accepted since start, by namespace ("" = host), for
  // bounded cluster aggregates on /metrics. At most max_keys entries; the
  // rest are folded into "__other__".
  std::vector<std::pair<std::string, Counters>> NamespaceTotals(
      size_t max_keys) const;
  // Cumulative cost and carbon since start by workload (namespace, kind,
  // name), the top max_keys by cost, the rest folded into "__other__".
  std::vector<std::pair<wattlens::v1::UsageKey, Impact>> WorkloadImpactTotals(
      size_t max_keys) const;
  struct NodeCarbonInfo {
    std::string node, provider, region, zone, source;
    double grams_per_kwh = 0, pue = 0, hourly_cost = 0;
  };
  // Current intensity, PUE and price of every node with rates.
  std::vector<NodeCarbonInfo> NodeCarbon() const;
  // Node power by node, for /metrics (bounded by the node count).
  std::vector<std::pair<std::string, double>> NodeWatts() const;

 private:
  struct Bucket {
    int64_t index;
    Counters delta;
  };
  struct Series {
    std::shared_ptr<const WorkloadLabels> labels;
    uint64_t epoch = 0;
    uint64_t cgroup_id = 0;
    Counters cumulative;
    std::vector<Bucket> buckets;  // ascending index, sparse
    // Cost and carbon accepted since the collector started, for /metrics.
    Impact impact_total;
    // Bucket index of the last report that carried the series.
    int64_t last_seen_bucket = 0;
  };
  struct Node {
    explicit Node(std::string n) : name(std::move(n)) {}
    const std::string name;
    mutable absl::Mutex mu;
    uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
    uint64_t last_sequence ABSL_GUARDED_BY(mu) = 0;
    uint64_t epochs_seen ABSL_GUARDED_BY(mu) = 0;
    // Epochs this node replaced, newest last (bounded): never taken back.
    std::vector<uint64_t> retired_epochs ABSL_GUARDED_BY(mu);
    // Growth bounds: the current epoch's start (report time minus the time
    // its first report covered) and the latest report time seen in it.
    int64_t epoch_origin_ns ABSL_GUARDED_BY(mu) = 0;
    int64_t time_high_water_ns ABSL_GUARDED_BY(mu) = 0;
    int64_t last_report_time_ns ABSL_GUARDED_BY(mu) = 0;
    // As the agent states it, else the spacing of its last two reports;
    // 0: not known yet.
    int64_t upload_interval_ns ABSL_GUARDED_BY(mu) = 0;
    int64_t last_seen_mono_ns ABSL_GUARDED_BY(mu) = 0;
    int64_t last_bucket ABSL_GUARDED_BY(mu) = 0;
    wattlens::v1::NodeState state ABSL_GUARDED_BY(mu) =
        wattlens::v1::NODE_STATE_CONNECTED;
    std::string agent_version ABSL_GUARDED_BY(mu);
    wattlens::v1::NodePower power ABSL_GUARDED_BY(mu);
    // At the last report; passed into every usage row of this node.
    wattlens::v1::EnergyProvenance provenance ABSL_GUARDED_BY(mu);
    wattlens::v1::AgentHealth health ABSL_GUARDED_BY(mu);
    wattlens::v1::NodeSpec spec ABSL_GUARDED_BY(mu);
    std::string spec_bytes ABSL_GUARDED_BY(mu);  // spec, serialized
    std::shared_ptr<const pricing::NodeRates> rates ABSL_GUARDED_BY(mu);
    pricing::Intensity intensity ABSL_GUARDED_BY(mu);  // at the last report
    // Cumulative positive idle cost and embodied carbon since start, for
    // /metrics.
    Impact idle_total ABSL_GUARDED_BY(mu);
    uint64_t accepted ABSL_GUARDED_BY(mu) = 0;
    uint64_t duplicates ABSL_GUARDED_BY(mu) = 0;
    absl::flat_hash_map<std::string, Series> series ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, Counters> ns_totals ABSL_GUARDED_BY(mu);
    // impact_total of freed series, by workload row (bounded), so that the
    // cumulative /metrics totals never go down.
    absl::flat_hash_map<std::string, std::pair<wattlens::v1::UsageKey, Impact>>
        freed_impact ABSL_GUARDED_BY(mu);
  };

  // Adds `node` to resp->partial_nodes if its reports end more than
  // partial_after_intervals upload intervals before `end`.
  void AddIfPartial(const Node& node, int64_t since, int64_t end,
                    wattlens::v1::GetUsageResponse* resp) const
      ABSL_SHARED_LOCKS_REQUIRED(node.mu);
  std::shared_ptr<Node> FindOrCreate(const std::string& name);
  std::shared_ptr<Node> Find(const std::string& name) const;
  std::vector<std::shared_ptr<Node>> AllNodes() const;
  void PublishState(const Node& node, wattlens::v1::NodeState prev,
                    wattlens::v1::NodeState now, uint64_t epoch,
                    const std::string& message);
  wattlens::v1::NodeState StateFor(int64_t silent_ns) const;
  void FoldFreedImpactLocked(Node& node, const Series& s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(node.mu);

  const Clock& clock_;
  const ClusterOptions options_;
  IngestStats stats_;
  EventHub events_;

  std::atomic<int64_t> last_trim_mono_ns_{0};
  mutable absl::Mutex engine_mu_;
  std::shared_ptr<const CostEngine> engine_ ABSL_GUARDED_BY(engine_mu_);
  mutable absl::Mutex nodes_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Node>> nodes_
      ABSL_GUARDED_BY(nodes_mu_);
};

// Report counters -> Counters (sums network classes and energy zones).
Counters CountersFrom(const wattlens::v1::WorkloadCounters& w);
WorkloadLabels LabelsFrom(const wattlens::v1::WorkloadIdentity& id);
// The name a workload goes by when no Kubernetes owner is known: systemd unit,
// else cgroup path.
std::string HostWorkloadName(const WorkloadLabels& labels);

}  // namespace wattlens::collector
