// SPDX-License-Identifier: Apache-2.0
#include "collector/metrics.h"

#include <limits>
#include <string>

#include "agent/common/prometheus_family.h"

namespace wattlens::collector {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using prom::Add;
using prom::Family;

// The remote-write queue's health: what was sent, retried and dropped (by
// reason) and how far the receiver has got.
void AddRemoteWrite(const remote_write::RemoteWriter& w,
                    std::vector<MetricFamily>& out) {
  namespace rw = remote_write;
  const rw::QueueStats& st = w.stats();
  auto sent = Family("wattlens_collector_remote_write_sent_samples_total",
                     "Samples a remote-write receiver acknowledged (2xx).",
                     MetricType::Counter);
  Add(sent, {}, st.sent_samples.load());
  out.push_back(std::move(sent));
  auto dropped =
      Family("wattlens_collector_remote_write_dropped_samples_total",
             "Samples never delivered, by reason: queue_full (evicted by "
             "newer snapshots while the receiver lagged), rejected (4xx "
             "other than 429), shutdown (queued at stop).",
             MetricType::Counter);
  for (int r = 0; r < static_cast<int>(rw::DropReason::kCount); ++r) {
    Add(dropped,
        {{"reason", rw::DropReasonName(static_cast<rw::DropReason>(r))}},
        st.dropped_samples[r].load());
  }
  out.push_back(std::move(dropped));
  auto retries = Family("wattlens_collector_remote_write_retries_total",
                        "Requests sent again after a backoff, by reason: "
                        "server_error (5xx), too_many_requests (429), network "
                        "(no response).",
                        MetricType::Counter);
  for (int r = 0; r < static_cast<int>(rw::RetryReason::kCount); ++r) {
    Add(retries,
        {{"reason", rw::RetryReasonName(static_cast<rw::RetryReason>(r))}},
        st.retries[r].load());
  }
  out.push_back(std::move(retries));
  auto queued = Family("wattlens_collector_remote_write_queue_samples",
                       "Samples queued or in flight.", MetricType::Gauge);
  Add(queued, {}, st.queued_samples.load());
  out.push_back(std::move(queued));
  auto errors = Family("wattlens_collector_remote_write_snapshot_errors_total",
                       "Snapshots not written because the query failed.",
                       MetricType::Counter);
  Add(errors, {}, w.snapshot_errors());
  out.push_back(std::move(errors));
  auto last =
      Family("wattlens_collector_remote_write_last_sent_timestamp_seconds",
             "Newest sample timestamp a receiver acknowledged (0: none yet).",
             MetricType::Gauge);
  Add(last, {}, st.last_sent_timestamp_ms.load() / 1e3);
  out.push_back(std::move(last));
  auto anchor =
      Family("wattlens_collector_remote_write_window_start_timestamp_seconds",
             "Start of the window the written totals are currently summed over "
             "(they continue the values written before it moved).",
             MetricType::Gauge);
  Add(anchor, {}, w.anchor_ns() / 1e9);
  out.push_back(std::move(anchor));
  auto workloads =
      Family("wattlens_collector_remote_write_workloads",
             "Workloads with series of their own (the rest are __other__).",
             MetricType::Gauge);
  Add(workloads, {}, w.admitted_workloads());
  out.push_back(std::move(workloads));
}

}  // namespace

std::vector<MetricFamily> CollectorMetrics::Collect() const {
  std::vector<MetricFamily> out;
  const ClusterState::StateCounts counts = state_.CountStates();
  auto nodes =
      Family("wattlens_collector_nodes",
             "Nodes known to the collector, by state.", MetricType::Gauge);
  Add(nodes, {{"state", "connected"}}, counts.connected);
  Add(nodes, {{"state", "stale"}}, counts.stale);
  Add(nodes, {{"state", "gone"}}, counts.gone);
  out.push_back(std::move(nodes));
  // One series per node that is not gone: what a stale-node alert needs
  // (time() - this), bounded by the cluster's node count.
  auto last = Family("wattlens_collector_node_last_report_timestamp_seconds",
                     "Collector time of the last report accepted from each "
                     "node that is not gone.",
                     MetricType::Gauge);
  const wattlens::v1::ListNodesResponse listed = state_.ListNodes();
  for (const auto& n : listed.nodes()) {
    if (n.state() == wattlens::v1::NODE_STATE_GONE) continue;
    Add(last, {{"node", n.node_name()}},
        n.last_seen_time().seconds() + n.last_seen_time().nanos() / 1e9);
  }
  out.push_back(std::move(last));
  auto series = Family("wattlens_collector_series",
                       "Workload series (node, cgroup) held in memory.",
                       MetricType::Gauge);
  Add(series, {}, counts.series);
  out.push_back(std::move(series));
  auto buckets = Family("wattlens_collector_buckets",
                        "Non-empty (series, time bucket) cells in memory.",
                        MetricType::Gauge);
  Add(buckets, {}, counts.buckets);
  out.push_back(std::move(buckets));

  const IngestStats& st = state_.stats();
  auto reports = Family("wattlens_collector_reports_total",
                        "Valid reports received, by result: accepted (added "
                        "growth), duplicate (sequence already applied), "
                        "stale_epoch (from an earlier agent instance).",
                        MetricType::Counter);
  Add(reports, {{"result", "accepted"}}, st.accepted.load());
  Add(reports, {{"result", "duplicate"}},
      st.duplicates.load() - st.stale_epoch.load());
  Add(reports, {{"result", "stale_epoch"}}, st.stale_epoch.load());
  out.push_back(std::move(reports));
  auto rejected =
      Family("wattlens_collector_rejected_reports_total",
             "Reports or streams refused, by reason.", MetricType::Counter);
  for (int r = 0; r < static_cast<int>(RejectReason::kCount); ++r) {
    Add(rejected,
        {{"reason",
          std::string(RejectReasonName(static_cast<RejectReason>(r)))}},
        ingest_.rejected.Get(static_cast<RejectReason>(r)));
  }
  out.push_back(std::move(rejected));
  auto refused = Family("wattlens_collector_refused_workloads_total",
                        "Workloads left out of accepted reports, by reason.",
                        MetricType::Counter);
  for (int r = 0; r < static_cast<int>(WorkloadRefusal::kCount); ++r) {
    Add(refused,
        {{"reason",
          std::string(WorkloadRefusalName(static_cast<WorkloadRefusal>(r)))}},
        ingest_.refused_workloads.Get(static_cast<WorkloadRefusal>(r)));
  }
  out.push_back(std::move(refused));
  auto capped = Family("wattlens_collector_capped_values_total",
                       "Workload growth refused beyond what the node could "
                       "do in the time covered (cpu_growth: CPU time over "
                       "time x CPUs; count_growth: another counter over its "
                       "rate cap), and sums held at their maximum "
                       "(saturated) instead of wrapping.",
                       MetricType::Counter);
  Add(capped, {{"reason", "cpu_growth"}}, st.capped_cpu.load());
  Add(capped, {{"reason", "count_growth"}}, st.capped_counts.load());
  Add(capped, {{"reason", "saturated"}}, st.saturated.load());
  out.push_back(std::move(capped));
  auto freed = Family("wattlens_collector_series_freed_total",
                      "Series dropped from memory: no data left in "
                      "retention and not reported for as long.",
                      MetricType::Counter);
  Add(freed, {}, st.series_freed.load());
  out.push_back(std::move(freed));
  auto resets = Family("wattlens_collector_value_resets_total",
                       "Workload counters that went backwards within an "
                       "epoch (cgroup recreated); the new value was counted "
                       "as growth.",
                       MetricType::Counter);
  Add(resets, {}, st.counter_resets.load());
  out.push_back(std::move(resets));
  auto restarts =
      Family("wattlens_collector_agent_restarts_total",
             "New agent epochs seen for known nodes.", MetricType::Counter);
  Add(restarts, {}, st.new_epochs.load());
  out.push_back(std::move(restarts));
  auto clamped = Family("wattlens_collector_report_time_clamped_total",
                        "Reports whose time was in the future or beyond "
                        "retention and was replaced by the collector's.",
                        MetricType::Counter);
  Add(clamped, {}, st.clamped_times.load());
  out.push_back(std::move(clamped));
  auto streams = Family("wattlens_collector_ingest_streams",
                        "Open agent streams.", MetricType::Gauge);
  Add(streams, {}, ingest_.active_streams.load());
  out.push_back(std::move(streams));

  MetricFamily lag = Family("wattlens_collector_ingest_lag_seconds",
                            "Collector time at acknowledgement minus the "
                            "report's own time.",
                            MetricType::Histogram);
  ClientMetric lm;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= LagHistogram::kBounds.size(); ++i) {
    cumulative += ingest_.lag.Count(i);
    ClientMetric::Bucket b;
    b.cumulative_count = cumulative;
    b.upper_bound = i < LagHistogram::kBounds.size()
                        ? LagHistogram::kBounds[i]
                        : std::numeric_limits<double>::infinity();
    lm.histogram.bucket.push_back(b);
  }
  lm.histogram.sample_count = cumulative;
  lm.histogram.sample_sum = ingest_.lag.SumSeconds();
  lag.metric.push_back(std::move(lm));
  out.push_back(std::move(lag));

  auto lost = Family("wattlens_collector_watch_lost_events_total",
                     "Watch events dropped because a watcher read too "
                     "slowly.",
                     MetricType::Counter);
  Add(lost, {}, state_.events().TotalLost());
  out.push_back(std::move(lost));

  if (store_ != nullptr) {
    const StoreStats& ss = store_->stats();
    auto commits = Family("wattlens_collector_store_commits_total",
                          "Store transactions committed.", MetricType::Counter);
    Add(commits, {}, ss.commits.load());
    out.push_back(std::move(commits));
    auto failures = Family("wattlens_collector_store_failed_reports_total",
                           "Reports whose store transaction failed (not "
                           "acknowledged; the agent resends).",
                           MetricType::Counter);
    Add(failures, {}, ss.failures.load());
    out.push_back(std::move(failures));
    auto queued =
        Family("wattlens_collector_store_queue_reports",
               "Reports applied in memory awaiting commit.", MetricType::Gauge);
    Add(queued, {}, ss.queued.load());
    out.push_back(std::move(queued));
  }

  if (remote_writer_ != nullptr) AddRemoteWrite(*remote_writer_, out);

  // Cluster aggregates by namespace: bounded to the busiest namespaces.
  auto cpu = Family("wattlens_cluster_cpu_seconds_total",
                    "On-CPU time accepted since the collector started, by "
                    "namespace (\"\" = host workloads, __other__ = beyond "
                    "the exported number).",
                    MetricType::Counter);
  auto sys = Family("wattlens_cluster_syscalls_total",
                    "System calls accepted since the collector started, by "
                    "namespace.",
                    MetricType::Counter);
  auto tx = Family("wattlens_cluster_network_transmit_bytes_total",
                   "Bytes sent, by namespace.", MetricType::Counter);
  auto rx = Family("wattlens_cluster_network_receive_bytes_total",
                   "Bytes received, by namespace.", MetricType::Counter);
  auto energy = Family("wattlens_cluster_energy_joules_total",
                       "Energy attributed to workloads, by namespace.",
                       MetricType::Counter);
  for (const auto& [ns, c] : state_.NamespaceTotals(max_namespaces_)) {
    std::vector<ClientMetric::Label> l = {{"namespace", ns}};
    Add(cpu, l, static_cast<double>(c.cpu_ns) / 1e9);
    Add(sys, l, c.syscalls);
    Add(tx, l, c.net_tx_bytes);
    Add(rx, l, c.net_rx_bytes);
    Add(energy, l, static_cast<double>(c.energy_uj) / 1e6);
  }
  for (auto* f : {&cpu, &sys, &tx, &rx, &energy}) out.push_back(std::move(*f));

  // Cost and carbon by workload (issue #7): bounded to the costliest
  // max_workloads_ workloads plus __other__, cumulative since start.
  auto cost = Family("wattlens_workload_cost_total",
                     "Cost charged to workloads since the collector started, "
                     "by resource: cpu, ram and gpu are allocation costs "
                     "(max(request, usage) x price; __idle__ = unallocated "
                     "capacity), network is egress by class, energy is "
                     "facility energy x energy price.",
                     MetricType::Counter);
  auto carbon = Family("wattlens_workload_carbon_grams_total",
                       "Greenhouse gas emissions (g CO2e) by scope: "
                       "operational = facility energy x grid intensity, "
                       "embodied = server embodied share by allocated CPU.",
                       MetricType::Counter);
  auto wenergy = Family("wattlens_workload_energy_joules_total",
                        "IT energy attributed to workloads (before PUE).",
                        MetricType::Counter);
  std::shared_ptr<const CostEngine> engine = state_.cost_engine();
  if (engine) {
    const std::string& currency = engine->model().currency();
    for (const auto& [k, i] : state_.WorkloadImpactTotals(max_workloads_)) {
      auto labels = [&](std::vector<ClientMetric::Label> extra) {
        std::vector<ClientMetric::Label> l = {
            {"namespace", k.namespace_()},
            {"workload_kind", k.workload_kind()},
            {"workload", k.workload()},
            {"project", k.project()}};
        l.insert(l.end(), extra.begin(), extra.end());
        return l;
      };
      const std::pair<const char*, double> by_resource[] = {
          {"cpu", i.cpu_cost},
          {"ram", i.ram_cost},
          {"gpu", i.gpu_cost},
          {"network", i.network_cost},
          {"energy", i.energy_cost}};
      for (const auto& [res, v] : by_resource) {
        Add(cost, labels({{"resource", res}, {"currency", currency}}), v);
      }
      Add(carbon, labels({{"scope", "operational"}}), i.carbon_operational_g);
      Add(carbon, labels({{"scope", "embodied"}}), i.carbon_embodied_g);
      Add(wenergy, labels({}), i.energy_kwh * 3.6e6);
    }
  }
  auto intensity = Family("wattlens_grid_intensity_grams_per_kwh",
                          "Grid carbon intensity applied to each node's "
                          "energy at its last report, and where it came "
                          "from.",
                          MetricType::Gauge);
  auto pue = Family("wattlens_node_pue",
                    "Power usage effectiveness applied to each node.",
                    MetricType::Gauge);
  auto hourly = Family("wattlens_node_hourly_cost",
                       "Each node's price per hour (capacity x component "
                       "prices).",
                       MetricType::Gauge);
  for (const auto& n : state_.NodeCarbon()) {
    Add(intensity,
        {{"node", n.node},
         {"provider", n.provider},
         {"region", n.region},
         {"zone", n.zone},
         {"source", n.source}},
        n.grams_per_kwh);
    Add(pue, {{"node", n.node}}, n.pue);
    Add(hourly,
        {{"node", n.node},
         {"currency", engine ? engine->model().currency() : ""}},
        n.hourly_cost);
  }
  for (auto* f : {&cost, &carbon, &wenergy, &intensity, &pue, &hourly}) {
    out.push_back(std::move(*f));
  }

  double watts = 0;
  for (const auto& [_, w] : state_.NodeWatts()) watts += w;
  auto power =
      Family("wattlens_cluster_power_watts",
             "Sum of the nodes' last reported power.", MetricType::Gauge);
  Add(power, {}, watts);
  out.push_back(std::move(power));
  return out;
}

}  // namespace wattlens::collector
