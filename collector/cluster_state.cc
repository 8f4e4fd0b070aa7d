// SPDX-License-Identifier: Apache-2.0
#include "collector/cluster_state.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace wattlens::collector {
namespace {

using google::protobuf::util::TimeUtil;
using wattlens::v1::GetUsageRequest;
using wattlens::v1::GetUsageResponse;
using wattlens::v1::NodeReport;
using wattlens::v1::NodeState;

// Saturating: validation admits times up to year 9999, beyond int64 ns.
int64_t ToNs(const google::protobuf::Timestamp& t) {
  constexpr int64_t kMaxSeconds =
      std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  const int64_t sec =
      std::clamp<int64_t>(t.seconds(), -kMaxSeconds, kMaxSeconds);
  return sec * 1'000'000'000 + t.nanos();
}
int64_t ToNs(const google::protobuf::Duration& d) {
  return d.seconds() * 1'000'000'000 + d.nanos();
}
google::protobuf::Timestamp TsFromNs(int64_t ns) {
  return TimeUtil::NanosecondsToTimestamp(ns);
}

// Floor division for possibly negative values.
int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// A report's clock may run ahead of the collector's by this much before its
// time stops buying growth budget.
constexpr int64_t kMaxClockSkewNs = 600'000'000'000;
// What the first report of an epoch may say it covers at most: the agent's
// uptime when the collector first hears of it (a collector that starts
// late meets agents that ran for weeks).
constexpr uint64_t kMaxFirstCoverNs = 31 * 86400'000'000'000;
// Snapshot timing: counters read a little after the report's time.
constexpr int64_t kGrowthSlackNs = 2'000'000'000;
// A node that does not say how many CPUs it has: the validation limit.
constexpr uint32_t kUnknownCpus = 1u << 20;
constexpr size_t kRetiredEpochs = 16;

uint64_t SatMul(uint64_t a, uint64_t b) {
  uint64_t out;
  return __builtin_mul_overflow(a, b, &out) ? UINT64_MAX : out;
}

// The most a workload can grow in `span_ns` on a node: CPU time by its CPUs;
// counts by rates no real workload reaches (10 ns per syscall, 50 GB/s,
// 10 kW and 10^7 accepts/s per CPU, 10 kW per GPU); allocation, which
// requests may overcommit, only so that sums cannot wrap.
Counters GrowthCap(int64_t span_ns, uint32_t cpus,
                   const wattlens::v1::NodeSpec& spec) {
  const uint64_t span = static_cast<uint64_t>(std::max<int64_t>(span_ns, 0));
  Counters c;
  c.cpu_ns = SatMul(span, cpus);
  c.syscalls = SatMul(span / 10, cpus);
  c.syscall_errors = c.syscalls;
  c.net_tx_bytes = c.net_rx_bytes = SatMul(span, SatMul(50, cpus));
  c.tx_node = c.tx_cluster = c.tx_private = c.tx_internet = c.tx_unknown =
      c.net_tx_bytes;
  // 1 W for 1 ns is 10^-3 µJ.
  c.energy_uj = SatMul(span, SatMul(10, uint64_t{cpus} + spec.gpus()));
  c.tcp_accepted = SatMul(span / 100, cpus);
  c.cpu_alloc_core_ns = SatMul(span, kUnknownCpus);
  c.mem_alloc_byte_s = SatMul(span / 1'000'000'000 + 1, uint64_t{1} << 50);
  c.elapsed_ns = span;
  return c;
}

void FillUsage(const Counters& c, double seconds, wattlens::v1::Usage* u) {
  u->set_cpu_nanoseconds(c.cpu_ns);
  u->set_cpu_seconds(static_cast<double>(c.cpu_ns) / 1e9);
  u->set_syscalls(c.syscalls);
  u->set_syscall_errors(c.syscall_errors);
  u->set_network_transmit_bytes(c.net_tx_bytes);
  u->set_network_receive_bytes(c.net_rx_bytes);
  u->set_energy_microjoules(c.energy_uj);
  u->set_energy_joules(static_cast<double>(c.energy_uj) / 1e6);
  if (seconds > 0) {
    u->set_cpu_cores(u->cpu_seconds() / seconds);
    u->set_syscalls_per_second(static_cast<double>(c.syscalls) / seconds);
    u->set_network_bytes_per_second(
        static_cast<double>(c.net_tx_bytes + c.net_rx_bytes) / seconds);
    u->set_watts(u->energy_joules() / seconds);
  }
}


// The row a series belongs to under `group`: (hash key, key message).
std::pair<std::string, wattlens::v1::UsageKey> RowKey(
    wattlens::v1::GroupBy group, const std::string& node_name,
    const WorkloadLabels& l) {
  const bool host = l.pod.empty();
  const std::string host_name = host ? HostWorkloadName(l) : "";
  // __idle__ and __unattributed__ are rows of their own in every grouping
  // that would otherwise fold them into the host namespace or no project.
  const bool bucket = IsEnergyBucketPath(l.cgroup_path);
  std::string key;
  wattlens::v1::UsageKey k;
  switch (group) {
    case wattlens::v1::GROUP_BY_NODE:
      k.set_node_name(node_name);
      key = node_name;
      break;
    case wattlens::v1::GROUP_BY_NAMESPACE:
      k.set_namespace_(bucket ? l.cgroup_path : l.ns);
      key = k.namespace_();
      break;
    case wattlens::v1::GROUP_BY_POD:
      k.set_namespace_(l.ns);
      k.set_pod(host ? host_name : l.pod);
      key = absl::StrCat(l.ns, "\x1f", k.pod());
      break;
    case wattlens::v1::GROUP_BY_CONTAINER:
      k.set_namespace_(l.ns);
      k.set_pod(host ? host_name : l.pod);
      k.set_container(host ? host_name : l.container);
      key = absl::StrCat(l.ns, "\x1f", k.pod(), "\x1f", k.container());
      break;
    case wattlens::v1::GROUP_BY_PROJECT:
      k.set_project(bucket ? l.cgroup_path : l.project);
      key = k.project();
      break;
    case wattlens::v1::GROUP_BY_CGROUP:
      k.set_node_name(node_name);
      k.set_cgroup_path(l.cgroup_path);
      k.set_namespace_(l.ns);
      k.set_pod(l.pod);
      k.set_container(l.container);
      k.set_workload_kind(l.workload_kind);
      k.set_workload(l.workload.empty() && host ? host_name : l.workload);
      k.set_project(l.project);
      key = absl::StrCat(node_name, "\x1f", l.cgroup_path);
      break;
    default: {  // GROUP_BY_WORKLOAD
      k.set_namespace_(l.ns);
      if (!l.workload.empty()) {
        k.set_workload_kind(l.workload_kind);
        k.set_workload(l.workload);
      } else if (!host) {
        k.set_workload_kind("Pod");
        k.set_workload(l.pod);
      } else {
        k.set_workload(host_name);
      }
      key = absl::StrCat(l.ns, "\x1f", k.workload_kind(), "\x1f",
                         k.workload());
      break;
    }
  }
  return {std::move(key), std::move(k)};
}

// What the collector keeps of a node's provenance: a few sources and
// rejects with bounded strings, so a peer cannot grow every usage row.
wattlens::v1::EnergyProvenance BoundedProvenance(
    const wattlens::v1::EnergyProvenance& in) {
  constexpr int kMaxEntries = 16;
  constexpr size_t kMaxChars = 256;
  auto cut = [](const std::string& s) { return s.substr(0, kMaxChars); };
  wattlens::v1::EnergyProvenance out;
  out.set_basis(in.basis());
  for (int i = 0; i < in.sources_size() && i < kMaxEntries; ++i) {
    out.add_sources(cut(in.sources(i)));
  }
  for (int i = 0; i < in.rejected_size() && i < kMaxEntries; ++i) {
    auto* r = out.add_rejected();
    r->set_source(cut(in.rejected(i).source()));
    r->set_reason(cut(in.rejected(i).reason()));
    r->set_detail(cut(in.rejected(i).detail()));
  }
  return out;
}

// A row's provenance from the nodes it sums: measured or modelled when they
// all agree, else mixed; the nodes' sources; and their rejected sources
// other than absent ones, one entry per (source, reason) naming the node,
// or how many nodes when several, so a row stays small on a large cluster.
// Nodes from before provenance was reported add nothing.
void FillProvenance(
    const absl::btree_set<std::string>& nodes,
    const absl::flat_hash_map<std::string, wattlens::v1::EnergyProvenance>&
        by_node,
    wattlens::v1::EnergyProvenance* out) {
  absl::btree_set<std::string> sources;
  absl::btree_map<std::pair<std::string, std::string>,
                  std::pair<wattlens::v1::RejectedPowerSource, int>>
      rejected;
  wattlens::v1::EnergyBasis basis = wattlens::v1::ENERGY_BASIS_UNSPECIFIED;
  for (const std::string& name : nodes) {
    auto it = by_node.find(name);
    if (it == by_node.end()) continue;
    const wattlens::v1::EnergyProvenance& p = it->second;
    if (p.basis() != wattlens::v1::ENERGY_BASIS_UNSPECIFIED) {
      basis =
          basis == wattlens::v1::ENERGY_BASIS_UNSPECIFIED || basis == p.basis()
              ? p.basis()
              : wattlens::v1::ENERGY_BASIS_MIXED;
    }
    sources.insert(p.sources().begin(), p.sources().end());
    for (const auto& r : p.rejected()) {
      if (r.reason() == "absent") continue;
      auto [slot, fresh] =
          rejected.try_emplace(std::make_pair(r.source(), r.reason()), r, 0);
      if (fresh) slot->second.first.set_node_name(name);
      ++slot->second.second;
    }
  }
  out->set_basis(basis);
  for (const std::string& s : sources) out->add_sources(s);
  for (auto& [_, r] : rejected) {
    if (r.second > 1) {
      r.first.clear_node_name();
      r.first.set_detail(absl::StrCat("on ", r.second, " nodes"));
    }
    *out->add_rejected() = std::move(r.first);
  }
}

}  // namespace

Counters CountersFrom(const wattlens::v1::WorkloadCounters& w) {
  Counters c;
  c.cpu_ns = w.cpu_nanoseconds();
  c.syscalls = w.syscalls();
  c.syscall_errors = w.syscall_errors();
  for (const auto& n : w.network()) {
    c.net_tx_bytes += n.transmit_bytes();
    c.net_rx_bytes += n.receive_bytes();
    switch (n.network_class()) {
      case wattlens::v1::NETWORK_CLASS_NODE:
        c.tx_node += n.transmit_bytes();
        break;
      case wattlens::v1::NETWORK_CLASS_CLUSTER:
        c.tx_cluster += n.transmit_bytes();
        break;
      case wattlens::v1::NETWORK_CLASS_PRIVATE:
        c.tx_private += n.transmit_bytes();
        break;
      case wattlens::v1::NETWORK_CLASS_INTERNET:
        c.tx_internet += n.transmit_bytes();
        break;
      default:
        c.tx_unknown += n.transmit_bytes();
        break;
    }
  }
  for (const auto& e : w.energy()) c.energy_uj += e.microjoules();
  c.tcp_accepted = w.tcp_accepted();
  c.cpu_alloc_core_ns = w.cpu_allocated_core_nanoseconds();
  c.mem_alloc_byte_s = w.memory_allocated_byte_seconds();
  return c;
}

WorkloadLabels LabelsFrom(const wattlens::v1::WorkloadIdentity& id) {
  return {id.cgroup_path(), id.systemd_unit(),  id.namespace_(), id.pod(),
          id.container(),   id.workload_kind(), id.workload(),   id.project()};
}

std::string HostWorkloadName(const WorkloadLabels& l) {
  return l.systemd_unit.empty() ? l.cgroup_path : l.systemd_unit;
}

ClusterState::ClusterState(const Clock& clock, ClusterOptions options)
    : clock_(clock), options_(options) {}

ClusterState::~ClusterState() = default;

std::shared_ptr<ClusterState::Node> ClusterState::Find(
    const std::string& name) const {
  absl::ReaderMutexLock lock(&nodes_mu_);
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : it->second;
}

std::shared_ptr<ClusterState::Node> ClusterState::FindOrCreate(
    const std::string& name) {
  if (auto n = Find(name)) return n;
  absl::MutexLock lock(&nodes_mu_);
  auto& slot = nodes_[name];
  if (!slot) slot = std::make_shared<Node>(name);
  return slot;
}

std::vector<std::shared_ptr<ClusterState::Node>> ClusterState::AllNodes()
    const {
  absl::ReaderMutexLock lock(&nodes_mu_);
  std::vector<std::shared_ptr<Node>> out;
  out.reserve(nodes_.size());
  for (const auto& [_, n] : nodes_) out.push_back(n);
  return out;
}

NodeState ClusterState::StateFor(int64_t silent_ns) const {
  if (silent_ns > options_.gone_ttl_ns) return wattlens::v1::NODE_STATE_GONE;
  if (silent_ns > options_.stale_ttl_ns) {
    return wattlens::v1::NODE_STATE_STALE;
  }
  return wattlens::v1::NODE_STATE_CONNECTED;
}

void ClusterState::PublishState(const Node& node, NodeState prev, NodeState now,
                                uint64_t epoch, const std::string& message) {
  wattlens::v1::WatchResponse ev;
  *ev.mutable_time() = TsFromNs(clock_.RealtimeNs());
  auto* s = ev.mutable_node_status();
  s->set_node_name(node.name);
  s->set_state(now);
  s->set_previous_state(prev);
  s->set_epoch(epoch);
  s->set_message(message);
  events_.Publish(ev, /*is_report=*/false);
}

ApplyResult ClusterState::Apply(const NodeReport& r,
                                const std::function<void(NodeWrite&&)>& sink) {
  std::shared_ptr<Node> node = FindOrCreate(r.node_name());
  const int64_t now_mono = clock_.MonotonicNs();
  const int64_t now_real = clock_.RealtimeNs();
  ApplyResult res;
  NodeState prev_state = wattlens::v1::NODE_STATE_UNSPECIFIED;
  bool became_connected = false;
  {
    absl::MutexLock lock(&node->mu);
    const bool known_epoch =
        r.epoch() == node->epoch ||
        std::find(node->retired_epochs.begin(), node->retired_epochs.end(),
                  r.epoch()) != node->retired_epochs.end();
    // An epoch is an agent's start on its own wall clock, which may have
    // stepped back: an unseen lower epoch is a restarted agent when the
    // current one has gone silent or has sent more reports.
    const bool fresh_epoch =
        !known_epoch &&
        (node->epoch == 0 || r.epoch() > node->epoch ||
         now_mono - node->last_seen_mono_ns >= options_.epoch_silence_ns ||
         r.sequence() < node->last_sequence);
    if (r.epoch() != node->epoch && !fresh_epoch) {
      // A report of an earlier (or a concurrent, older) agent instance:
      // everything it could add belongs to an epoch whose counters were
      // superseded.
      res.duplicate = res.stale_epoch = true;
      ++node->duplicates;
      stats_.duplicates.fetch_add(1, std::memory_order_relaxed);
      stats_.stale_epoch.fetch_add(1, std::memory_order_relaxed);
      return res;
    }
    if (r.epoch() == node->epoch && r.sequence() <= node->last_sequence) {
      res.duplicate = true;
      ++node->duplicates;
      node->last_seen_mono_ns = now_mono;
      stats_.duplicates.fetch_add(1, std::memory_order_relaxed);
      return res;
    }
    // The agent's clock, bounded by the collector's (a report far from the
    // present must not buy itself a large growth budget).
    const int64_t t_agent =
        std::clamp<int64_t>(ToNs(r.time()), now_real - options_.retention_ns,
                            now_real + kMaxClockSkewNs);
    if (r.epoch() != node->epoch) {
      res.new_epoch = node->epoch != 0;
      if (res.new_epoch) {
        stats_.new_epochs.fetch_add(1, std::memory_order_relaxed);
        node->retired_epochs.push_back(node->epoch);
        if (node->retired_epochs.size() > kRetiredEpochs) {
          node->retired_epochs.erase(node->retired_epochs.begin());
        }
      }
      // What the epoch's first report covers: the agent's uptime, which
      // for a restart cannot exceed the previous instance's silence.
      uint64_t covered = std::max<uint64_t>(
          r.elapsed_nanoseconds(), static_cast<uint64_t>(ToNs(r.interval())));
      // A node the collector never heard of may have run for long (the
      // collector may be new): its first epoch is trusted up to the limit.
      covered = node->epoch == 0 ? kMaxFirstCoverNs
                                 : std::min(covered, kMaxFirstCoverNs);
      if (node->epoch != 0) {
        covered = std::min<uint64_t>(
            covered, static_cast<uint64_t>(std::max<int64_t>(
                         0, now_mono - node->last_seen_mono_ns)) +
                         static_cast<uint64_t>(ToNs(r.interval())));
      }
      node->epoch = r.epoch();
      node->last_sequence = 0;
      ++node->epochs_seen;
      node->epoch_origin_ns = t_agent - static_cast<int64_t>(covered);
      node->time_high_water_ns = t_agent;
    }
    // Growth budgets: a series seen before in this epoch may have grown for
    // the time since the node's latest report; one new in the epoch, since
    // the epoch started. Slack covers snapshot timing.
    const uint32_t cpus = r.node().cpus() > 0 ? r.node().cpus() : kUnknownCpus;
    const int64_t cont_span =
        std::max<int64_t>(0, t_agent - node->time_high_water_ns) +
        kGrowthSlackNs;
    const int64_t fresh_span =
        std::max<int64_t>(0, t_agent - node->epoch_origin_ns) + kGrowthSlackNs;
    node->time_high_water_ns = std::max(node->time_high_water_ns, t_agent);
    // Buckets follow the agent's clock, clamped to the collector's present
    // and retention, and never move backwards for a node.
    int64_t t = ToNs(r.time());
    if (t > now_real ||
        t < now_real - options_.retention_ns + options_.resolution_ns) {
      t = now_real;
      stats_.clamped_times.fetch_add(1, std::memory_order_relaxed);
    }
    // A report's time ends the interval it covers: [t - interval, t).
    int64_t bucket = FloorDiv(t - 1, options_.resolution_ns);
    if (bucket < node->last_bucket) bucket = node->last_bucket;
    node->last_bucket = bucket;

    NodeWrite write;
    if (sink) {
      write.node_name = node->name;
      write.series.reserve(r.workloads_size());
    }
    // One series: the growth past its last cumulative value goes into the
    // bucket (and to the store).
    auto apply_series =
        [&](WorkloadLabels labels, uint64_t cgroup_id, const Counters& cur)
            ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                node->mu) -> std::pair<Series*, Counters> {
      auto [it, inserted] = node->series.try_emplace(labels.cgroup_path);
      Series& s = it->second;
      const bool labels_changed = inserted || !(*s.labels == labels);
      if (labels_changed) {
        s.labels = std::make_shared<const WorkloadLabels>(std::move(labels));
      }
      Counters delta;
      const bool new_in_epoch = inserted || s.epoch != r.epoch();
      if (new_in_epoch) {
        delta = cur;  // counters of a new epoch or series start at zero
      } else if (s.cgroup_id != cgroup_id) {
        delta = cur;  // the cgroup was recreated
        stats_.counter_resets.fetch_add(1, std::memory_order_relaxed);
      } else {
        bool reset = false;
        delta = cur.GrowthSince(s.cumulative, &reset);
        if (reset)
          stats_.counter_resets.fetch_add(1, std::memory_order_relaxed);
      }
      const Counters cap =
          GrowthCap(new_in_epoch ? fresh_span : cont_span, cpus, r.node());
      if (delta.cpu_ns > cap.cpu_ns) {
        stats_.capped_cpu.fetch_add(1, std::memory_order_relaxed);
      }
      const uint64_t cpu_before = delta.cpu_ns;
      if (delta.CapAt(cap) && delta.cpu_ns == cpu_before) {
        stats_.capped_counts.fetch_add(1, std::memory_order_relaxed);
      }
      s.last_seen_bucket = bucket;
      const bool state_changed = inserted || s.epoch != r.epoch() ||
                                 s.cgroup_id != cgroup_id ||
                                 !(s.cumulative == cur);
      s.epoch = r.epoch();
      s.cgroup_id = cgroup_id;
      s.cumulative = cur;
      if (!delta.IsZero()) {
        bool saturated = false;
        if (!s.buckets.empty() && s.buckets.back().index == bucket) {
          saturated = s.buckets.back().delta.Add(delta);
        } else {
          s.buckets.push_back({bucket, delta});
        }
        if (s.labels->cgroup_path != kNodeSeriesPath) {
          saturated |= node->ns_totals[s.labels->ns].Add(delta);
        }
        if (saturated) stats_.saturated.fetch_add(1, std::memory_order_relaxed);
        ++res.series_changed;
      }
      if (sink && (labels_changed || state_changed)) {
        SeriesWrite sw;
        sw.cgroup_path = s.labels->cgroup_path;
        if (labels_changed) sw.labels = s.labels;
        sw.epoch = s.epoch;
        sw.cgroup_id = s.cgroup_id;
        sw.cumulative = cur;
        sw.bucket = bucket;
        sw.delta = delta;
        if (!delta.IsZero()) sw.bucket_total = s.buckets.back().delta;
        write.series.push_back(std::move(sw));
      }
      return {&s, delta};
    };
    if (r.has_node()) {
      std::string spec_bytes;
      r.node().SerializeToString(&spec_bytes);
      if (spec_bytes != node->spec_bytes) {
        node->spec = r.node();
        node->spec_bytes = spec_bytes;
        if (sink) write.node_spec = std::move(spec_bytes);
      }
    }
    // Cost and carbon of this report's growth, for the bounded cumulative
    // totals on /metrics (queries recompute from buckets).
    std::shared_ptr<const CostEngine> engine = cost_engine();
    std::shared_ptr<const pricing::NodeRates> rates;
    double grams_per_kwh = 0;
    if (engine) {
      rates = engine->RatesFor(node->name, node->spec, node->spec_bytes);
      node->intensity = engine->model().IntensityFor(*rates, t);
      grams_per_kwh = node->intensity.grams_per_kwh;
      node->rates = rates;
    }
    Impact allocated;
    auto apply_workload =
        [&](WorkloadLabels labels, uint64_t cgroup_id, const Counters& cur)
            ABSL_EXCLUSIVE_LOCKS_REQUIRED(node->mu) {
              auto [series, delta] =
                  apply_series(std::move(labels), cgroup_id, cur);
              if (!rates || delta.IsZero()) return;
              const Impact i = WorkloadImpact(delta, *rates, grams_per_kwh);
              allocated.Add(AllocationPart(i));
              series->impact_total.Add(i);
            };
    for (const auto& w : r.workloads()) {
      apply_workload(LabelsFrom(w.identity()), w.identity().cgroup_id(),
                     CountersFrom(w));
    }
    // The energy buckets are series of their own, queried like workloads.
    for (const auto& b : r.energy_buckets()) {
      WorkloadLabels labels;
      labels.cgroup_path = std::string(EnergyBucketPath(b.bucket()));
      if (labels.cgroup_path.empty()) continue;  // validation refuses these
      Counters energy;
      for (const auto& e : b.energy()) energy.energy_uj += e.microjoules();
      apply_workload(std::move(labels), 0, energy);
    }
    // The node's covered time rides in a pseudo-series next to its
    // workloads, so it is bucketed, stored and reset exactly like them.
    if (r.elapsed_nanoseconds() > 0) {
      Counters elapsed;
      elapsed.elapsed_ns = r.elapsed_nanoseconds();
      WorkloadLabels labels;
      labels.cgroup_path = kNodeSeriesPath;
      auto [_, delta] = apply_series(std::move(labels), 0, elapsed);
      if (rates && delta.elapsed_ns > 0) {
        // Idle: capacity minus allocation. A Prometheus counter cannot go
        // down, so an overcommitted interval adds 0 here (queries keep the
        // signed value, so their sums stay exact).
        Impact idle = NodeCapacityImpact(delta.elapsed_ns, *rates);
        idle.Add(allocated, -1.0);
        node->idle_total.cpu_cost += std::max(0.0, idle.cpu_cost);
        node->idle_total.ram_cost += std::max(0.0, idle.ram_cost);
        node->idle_total.gpu_cost += std::max(0.0, idle.gpu_cost);
        node->idle_total.carbon_embodied_g +=
            std::max(0.0, idle.carbon_embodied_g);
      }
    }
    node->last_sequence = r.sequence();
    const int64_t report_ns = ToNs(r.time());
    if (r.has_upload_interval() && ToNs(r.upload_interval()) > 0) {
      node->upload_interval_ns = ToNs(r.upload_interval());
    } else if (!res.new_epoch && node->last_report_time_ns > 0 &&
               report_ns > node->last_report_time_ns) {
      // Reports are taken once per upload interval, also those a
      // reconnecting agent sends in a burst from its outbox.
      node->upload_interval_ns = report_ns - node->last_report_time_ns;
    }
    node->last_report_time_ns = report_ns;
    node->last_seen_mono_ns = now_mono;
    if (node->agent_version != r.agent_version()) {
      node->agent_version = r.agent_version();
    }
    node->power = r.power();
    node->provenance = BoundedProvenance(r.energy_provenance());
    node->health = r.health();
    ++node->accepted;
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
    if (node->state != wattlens::v1::NODE_STATE_CONNECTED) {
      prev_state = node->state;
      node->state = wattlens::v1::NODE_STATE_CONNECTED;
      became_connected = true;
    }
    if (node->accepted == 1 && node->epochs_seen == 1) {
      became_connected = true;  // first report ever: announce the node
    }
    if (sink) {
      write.epoch = node->epoch;
      write.sequence = node->last_sequence;
      write.epochs_seen = node->epochs_seen;
      write.report_time_ns = node->last_report_time_ns;
      write.seen_realtime_ns = now_real;
      write.agent_version = node->agent_version;
      sink(std::move(write));
    }
  }
  if (became_connected || res.new_epoch) {
    PublishState(*node, prev_state, wattlens::v1::NODE_STATE_CONNECTED,
                 r.epoch(),
                 res.new_epoch ? "agent restarted (new epoch)" : "reporting");
  }
  if (events_.HasReportSubscribers()) {
    wattlens::v1::WatchResponse ev;
    *ev.mutable_time() = TsFromNs(now_real);
    auto* re = ev.mutable_report();
    re->set_node_name(r.node_name());
    re->set_epoch(r.epoch());
    re->set_sequence(r.sequence());
    re->set_workloads(r.workloads_size());
    events_.Publish(ev, /*is_report=*/true);
  }
  return res;
}

void ClusterState::AddIfPartial(const Node& node, int64_t since, int64_t end,
                                GetUsageResponse* resp) const {
  // A node with no report yet has nothing in any window; one gone before the
  // window began is not expected to have reported in it.
  if (node.accepted == 0 && node.last_report_time_ns == 0) return;
  if (node.state == wattlens::v1::NODE_STATE_GONE &&
      node.last_report_time_ns < since) {
    return;
  }
  const int64_t interval = node.upload_interval_ns > 0
                               ? node.upload_interval_ns
                               : options_.default_upload_interval_ns;
  const int64_t behind = end - node.last_report_time_ns;
  if (behind <= options_.partial_after_intervals * interval) return;
  wattlens::v1::PartialNode* p = resp->add_partial_nodes();
  p->set_node_name(node.name);
  p->set_reason(node.state == wattlens::v1::NODE_STATE_CONNECTED
                    ? wattlens::v1::PARTIAL_REASON_CATCHING_UP
                    : wattlens::v1::PARTIAL_REASON_NOT_REPORTING);
  *p->mutable_reported_until() = TsFromNs(node.last_report_time_ns);
  *p->mutable_behind() = TimeUtil::NanosecondsToDuration(behind);
  *p->mutable_upload_interval() = TimeUtil::NanosecondsToDuration(interval);
}

absl::StatusOr<GetUsageResponse> ClusterState::GetUsage(
    const GetUsageRequest& req) const {
  const int64_t now_real = clock_.RealtimeNs();
  const int64_t now_mono = clock_.MonotonicNs();
  const int64_t until = req.has_until() ? ToNs(req.until()) : now_real;
  int64_t since;
  if (req.has_since()) {
    since = ToNs(req.since());
  } else {
    const int64_t window =
        req.has_window() ? ToNs(req.window()) : options_.default_window_ns;
    if (window <= 0) return absl::InvalidArgumentError("window must be > 0");
    since = until - window;
  }
  if (since >= until) {
    return absl::InvalidArgumentError("since must be before until");
  }
  const int64_t res_ns = options_.resolution_ns;
  const int64_t first_bucket = FloorDiv(since, res_ns);
  const int64_t end_bucket = FloorDiv(until + res_ns - 1, res_ns);
  const double seconds = static_cast<double>(until - since) / 1e9;
  const wattlens::v1::GroupBy group =
      req.group_by() == wattlens::v1::GROUP_BY_UNSPECIFIED
          ? wattlens::v1::GROUP_BY_WORKLOAD
          : req.group_by();
  const bool host_only = req.namespace_() == "-";
  std::shared_ptr<const CostEngine> engine = cost_engine();
  const bool share_idle =
      req.share_idle() || (engine && engine->model().share_idle());
  auto passes = [&](const WorkloadLabels& l) {
    if (host_only ? !l.ns.empty()
                  : (!req.namespace_().empty() && req.namespace_() != l.ns &&
                     !(IsEnergyBucketPath(l.cgroup_path) &&
                       req.namespace_() == l.cgroup_path))) {
      return false;
    }
    return req.project().empty() || req.project() == l.project ||
           (IsEnergyBucketPath(l.cgroup_path) && req.project() == l.cgroup_path);
  };

  struct Row {
    wattlens::v1::UsageKey key;
    Counters sum;
    Impact impact;
    uint32_t series = 0;
    // The nodes this row sums, for its energy provenance.
    absl::btree_set<std::string> nodes;
  };
  // Node-based: idle sharing keeps pointers to rows while more are added.
  absl::node_hash_map<std::string, Row> rows;
  absl::btree_set<std::string> warnings;
  std::vector<double> intensity;
  const int64_t cache_lo = std::max(
      first_bucket, FloorDiv(now_real - options_.retention_ns, res_ns) - 1);
  const int64_t cache_hi =
      std::max(cache_lo, std::min(end_bucket, FloorDiv(now_real, res_ns) + 2));
  GetUsageResponse resp;
  // Each node's provenance, copied under its lock for the rows built below.
  absl::flat_hash_map<std::string, wattlens::v1::EnergyProvenance> provenance;
  for (const auto& node : AllNodes()) {
    if (!req.node_name().empty() && req.node_name() != node->name) continue;
    absl::ReaderMutexLock lock(&node->mu);
    provenance.emplace(node->name, node->provenance);
    const int64_t silent = now_mono - node->last_seen_mono_ns;
    switch (node->state) {
      case wattlens::v1::NODE_STATE_CONNECTED:
        resp.set_connected_nodes(resp.connected_nodes() + 1);
        break;
      case wattlens::v1::NODE_STATE_STALE:
        resp.set_stale_nodes(resp.stale_nodes() + 1);
        break;
      default:
        resp.set_gone_nodes(resp.gone_nodes() + 1);
        break;
    }
    if (node->state != wattlens::v1::NODE_STATE_CONNECTED &&
        now_real - silent >= since) {
      resp.add_missing_nodes(node->name);
    }
    AddIfPartial(*node, since, std::min(until, now_real), &resp);
    std::shared_ptr<const pricing::NodeRates> rates;
    if (engine) {
      rates = engine->RatesFor(node->name, node->spec, node->spec_bytes);
    }
    // Intensity per bucket start, computed once per node and bucket (an
    // array over the window's buckets: this runs for every bucket of every
    // series).
    // Buckets only exist within retention and not after now, so the array
    // stays small whatever window a client asks for.
    intensity.assign(static_cast<size_t>(cache_hi - cache_lo), -1.0);
    auto grams_per_kwh = [&](int64_t b) {
      if (b < cache_lo || b >= cache_hi) {
        return engine->GramsPerKwh(*rates, b * res_ns);
      }
      double& v = intensity[static_cast<size_t>(b - cache_lo)];
      if (v < 0) v = engine->GramsPerKwh(*rates, b * res_ns);
      return v;
    };
    // Allocation of every workload on the node (filters aside): idle is the
    // node's capacity minus this.
    Impact node_alloc;
    uint64_t node_elapsed_ns = 0;
    bool node_has_data = false;
    // Rows of this node's workloads and their allocation on this node, for
    // sharing idle.
    std::vector<std::pair<Row*, Impact>> node_rows;
    for (const auto& [path, s] : node->series) {
      const WorkloadLabels& l = *s.labels;
      // Buckets are ascending: find the window by binary search.
      auto lo = std::lower_bound(
          s.buckets.begin(), s.buckets.end(), first_bucket,
          [](const Bucket& b, int64_t v) { return b.index < v; });
      Counters sum;
      double energy_grams_weight = 0;  // Σ energy_uj x intensity
      bool any = false;
      for (auto it = lo; it != s.buckets.end() && it->index < end_bucket;
           ++it) {
        sum.Add(it->delta);
        if (rates && it->delta.energy_uj) {
          energy_grams_weight += static_cast<double>(it->delta.energy_uj) *
                                 grams_per_kwh(it->index);
        }
        any = true;
      }
      if (!any) continue;
      node_has_data = true;
      if (path == kNodeSeriesPath) {
        node_elapsed_ns += sum.elapsed_ns;
        continue;
      }
      Impact impact;
      if (rates) {
        const double mean_intensity =
            sum.energy_uj ? energy_grams_weight /
                                static_cast<double>(sum.energy_uj)
                          : 0.0;
        impact = WorkloadImpact(sum, *rates, mean_intensity);
        node_alloc.Add(AllocationPart(impact));
      }
      if (!passes(l)) continue;
      auto [key, k] = RowKey(group, node->name, l);
      auto [rit, inserted] = rows.try_emplace(std::move(key));
      if (inserted) rit->second.key = std::move(k);
      rit->second.sum.Add(sum);
      rit->second.impact.Add(impact);
      rit->second.nodes.insert(node->name);
      ++rit->second.series;
      if (share_idle && !IsEnergyBucketPath(path)) {
        node_rows.emplace_back(&rit->second, impact);
      }
    }
    if (!rates || !node_has_data) continue;
    // Rate warnings name their node already.
    for (const std::string& w : rates->warnings) warnings.insert(w);
    // The node's idle: capacity x time minus what its workloads were
    // allocated (negative when requests overcommit the node).
    Impact idle = NodeCapacityImpact(node_elapsed_ns, *rates);
    idle.Add(node_alloc, -1.0);
    if (share_idle) {
      // OpenCost weighted sharing, per resource and per node.
      double cpu = 0, ram = 0, gpu = 0;
      for (const auto& [_, a] : node_rows) {
        cpu += a.cpu_cost;
        ram += a.ram_cost;
        gpu += a.gpu_cost;
      }
      for (auto& [row, a] : node_rows) {
        if (cpu > 0) row->impact.cpu_cost += idle.cpu_cost * a.cpu_cost / cpu;
        if (ram > 0) row->impact.ram_cost += idle.ram_cost * a.ram_cost / ram;
        if (gpu > 0) row->impact.gpu_cost += idle.gpu_cost * a.gpu_cost / gpu;
      }
      if (cpu > 0) idle.cpu_cost = 0;
      if (ram > 0) idle.ram_cost = 0;
      if (gpu > 0) idle.gpu_cost = 0;
    }
    WorkloadLabels idle_labels;
    idle_labels.cgroup_path = kIdlePath;
    const bool idle_nonzero = idle.cpu_cost != 0 || idle.ram_cost != 0 ||
                              idle.gpu_cost != 0 ||
                              idle.carbon_embodied_g != 0 ||
                              idle.cpu_alloc_core_hours != 0 ||
                              idle.mem_alloc_gib_hours != 0;
    if (idle_nonzero && passes(idle_labels)) {
      auto [key, k] = RowKey(group, node->name, idle_labels);
      auto [rit, inserted] = rows.try_emplace(std::move(key));
      if (inserted) rit->second.key = std::move(k);
      rit->second.impact.Add(idle);
      rit->second.nodes.insert(node->name);
    }
  }
  std::sort(resp.mutable_missing_nodes()->begin(),
            resp.mutable_missing_nodes()->end());
  std::sort(resp.mutable_partial_nodes()->begin(),
            resp.mutable_partial_nodes()->end(),
            [](const wattlens::v1::PartialNode& a,
               const wattlens::v1::PartialNode& b) {
              return a.node_name() < b.node_name();
            });
  resp.set_partial(resp.missing_nodes_size() > 0 ||
                   resp.partial_nodes_size() > 0);

  std::vector<Row*> sorted;
  sorted.reserve(rows.size());
  Counters total;
  Impact total_impact;
  for (auto& [_, row] : rows) {
    sorted.push_back(&row);
    total.Add(row.sum);
    total_impact.Add(row.impact);
  }
  auto name_of = [](const Row* r) {
    const auto& k = r->key;
    return std::tie(k.node_name(), k.namespace_(), k.workload_kind(),
                    k.workload(), k.pod(), k.container(), k.project(),
                    k.cgroup_path());
  };
  auto metric = [&](const Row* r) -> double {
    switch (req.sort_by()) {
      case wattlens::v1::SORT_BY_ENERGY:
        return static_cast<double>(r->sum.energy_uj);
      case wattlens::v1::SORT_BY_NETWORK:
        return static_cast<double>(r->sum.net_tx_bytes + r->sum.net_rx_bytes);
      case wattlens::v1::SORT_BY_SYSCALLS:
        return static_cast<double>(r->sum.syscalls);
      case wattlens::v1::SORT_BY_COST:
        return r->impact.total_cost();
      case wattlens::v1::SORT_BY_CARBON:
        return r->impact.carbon_g();
      default:
        return static_cast<double>(r->sum.cpu_ns);
    }
  };
  const bool by_name = req.sort_by() == wattlens::v1::SORT_BY_NAME;
  std::sort(sorted.begin(), sorted.end(), [&](const Row* a, const Row* b) {
    if (!by_name) {
      const double ma = metric(a), mb = metric(b);
      if (ma != mb) return req.reverse() ? ma < mb : ma > mb;
      return name_of(a) < name_of(b);
    }
    return req.reverse() ? name_of(b) < name_of(a) : name_of(a) < name_of(b);
  });
  const double hours = seconds / 3600.0;
  const double total_cost = total_impact.total_cost();
  auto fill_provenance = [&](const absl::btree_set<std::string>& nodes,
                             wattlens::v1::Usage* u) {
    FillProvenance(nodes, provenance, u->mutable_energy_provenance());
  };
  auto fill = [&](const Counters& c, const Impact& i, wattlens::v1::Usage* u) {
    FillUsage(c, seconds, u);
    u->set_tcp_accepted(c.tcp_accepted);
    u->set_cpu_allocated_core_hours(i.cpu_alloc_core_hours);
    u->set_memory_allocated_gib_hours(i.mem_alloc_gib_hours);
    u->set_energy_kwh(static_cast<double>(c.energy_uj) / kUjPerKwh);
    u->set_facility_energy_kwh(i.facility_kwh);
    if (engine) {
      FillCost(i, u->mutable_cost());
      FillCarbon(i, c.tcp_accepted, hours, u->mutable_carbon());
      u->set_cost_share(total_cost > 0 ? i.total_cost() / total_cost : 0.0);
    }
  };
  resp.set_total_rows(sorted.size());
  size_t n = sorted.size();
  if (req.limit() > 0 && req.limit() < n) n = req.limit();
  for (size_t i = 0; i < n; ++i) {
    auto* row = resp.add_rows();
    *row->mutable_key() = sorted[i]->key;
    fill(sorted[i]->sum, sorted[i]->impact, row->mutable_usage());
    fill_provenance(sorted[i]->nodes, row->mutable_usage());
    row->set_series(sorted[i]->series);
  }
  fill(total, total_impact, resp.mutable_total());
  absl::btree_set<std::string> all_rows_nodes;
  for (const Row* r : sorted) {
    all_rows_nodes.insert(r->nodes.begin(), r->nodes.end());
  }
  fill_provenance(all_rows_nodes, resp.mutable_total());
  if (engine) {
    resp.set_currency(engine->model().currency());
    for (const std::string& w : engine->model().warnings()) {
      warnings.insert(w);
    }
  }
  for (const std::string& w : warnings) resp.add_warnings(w);
  *resp.mutable_since() = TsFromNs(since);
  *resp.mutable_until() = TsFromNs(until);
  *resp.mutable_resolution() = TimeUtil::NanosecondsToDuration(res_ns);
  return resp;
}

wattlens::v1::ListNodesResponse ClusterState::ListNodes() const {
  const int64_t now_real = clock_.RealtimeNs();
  const int64_t now_mono = clock_.MonotonicNs();
  wattlens::v1::ListNodesResponse resp;
  for (const auto& node : AllNodes()) {
    absl::ReaderMutexLock lock(&node->mu);
    auto* n = resp.add_nodes();
    n->set_node_name(node->name);
    n->set_state(node->state);
    n->set_epoch(node->epoch);
    n->set_last_sequence(node->last_sequence);
    *n->mutable_last_report_time() = TsFromNs(node->last_report_time_ns);
    *n->mutable_last_seen_time() =
        TsFromNs(now_real - (now_mono - node->last_seen_mono_ns));
    n->set_workloads(node->series.size() -
                     node->series.count(kNodeSeriesPath));
    n->set_agent_version(node->agent_version);
    n->set_reports_accepted(node->accepted);
    n->set_reports_duplicate(node->duplicates);
    n->set_epochs_seen(node->epochs_seen);
    *n->mutable_power() = node->power;
    *n->mutable_energy_provenance() = node->provenance;
    *n->mutable_health() = node->health;
    *n->mutable_spec() = node->spec;
  }
  std::sort(resp.mutable_nodes()->begin(), resp.mutable_nodes()->end(),
            [](const auto& a, const auto& b) {
              return a.node_name() < b.node_name();
            });
  return resp;
}

void ClusterState::Tick() {
  const int64_t now_mono = clock_.MonotonicNs();
  const int64_t now_real = clock_.RealtimeNs();
  const int64_t cutoff =
      FloorDiv(now_real - options_.retention_ns, options_.resolution_ns);
  // Trimming is O(series): once a minute is enough for hour-long retention.
  const bool trim = now_mono - last_trim_mono_ns_ >= 60'000'000'000;
  if (trim) last_trim_mono_ns_ = now_mono;
  std::vector<std::string> forget;
  for (const auto& node : AllNodes()) {
    NodeState prev, now;
    uint64_t epoch;
    {
      absl::MutexLock lock(&node->mu);
      const int64_t silent = now_mono - node->last_seen_mono_ns;
      prev = node->state;
      now = StateFor(silent);
      node->state = now;
      epoch = node->epoch;
      if (trim) {
        for (auto it = node->series.begin(); it != node->series.end();) {
          Series& s = it->second;
          auto& b = s.buckets;
          auto keep = std::lower_bound(
              b.begin(), b.end(), cutoff,
              [](const Bucket& x, int64_t v) { return x.index < v; });
          b.erase(b.begin(), keep);
          // No data left and not reported for the whole retention: its
          // cgroup is gone (an agent reports every cgroup it tracks each
          // time), so its last cumulative value is no longer needed.
          if (b.empty() && s.last_seen_bucket < cutoff &&
              it->first != kNodeSeriesPath) {
            FoldFreedImpactLocked(*node, s);
            node->series.erase(it++);
            stats_.series_freed.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          ++it;
        }
      }
      if (now == wattlens::v1::NODE_STATE_GONE &&
          silent > options_.retention_ns) {
        forget.push_back(node->name);
      }
    }
    if (prev != now) {
      PublishState(*node, prev, now, epoch,
                   now == wattlens::v1::NODE_STATE_STALE
                       ? "no report within the stale TTL"
                   : now == wattlens::v1::NODE_STATE_GONE
                       ? "no report within the gone TTL"
                       : "reporting");
    }
  }
  if (!forget.empty()) {
    absl::MutexLock lock(&nodes_mu_);
    for (const auto& n : forget) nodes_.erase(n);
  }
}

void ClusterState::FoldFreedImpactLocked(Node& node, const Series& s) {
  if (s.impact_total.total_cost() == 0 && s.impact_total.carbon_g() == 0 &&
      s.impact_total.energy_kwh == 0) {
    return;
  }
  auto [key, k] = RowKey(wattlens::v1::GROUP_BY_WORKLOAD, node.name, *s.labels);
  absl::StrAppend(&key, "\x1f", s.labels->project);
  k.set_project(s.labels->project);
  // Churned host cgroups are workloads of their own: bounded, the rest go
  // to the node's __other__ row.
  constexpr size_t kMaxFreedRows = 1024;
  if (!node.freed_impact.contains(key) &&
      node.freed_impact.size() >= kMaxFreedRows) {
    key = "__other__";
    k = wattlens::v1::UsageKey();
    k.set_workload("__other__");
  }
  auto& slot = node.freed_impact[key];
  if (slot.first.workload().empty()) slot.first = std::move(k);
  slot.second.Add(s.impact_total);
}

void ClusterState::RestoreNode(const RestoredNode& r) {
  auto node = FindOrCreate(r.node_name);
  const int64_t now_mono = clock_.MonotonicNs();
  const int64_t now_real = clock_.RealtimeNs();
  absl::MutexLock lock(&node->mu);
  node->epoch = r.epoch;
  node->last_sequence = r.sequence;
  node->epochs_seen = r.epochs_seen;
  node->last_report_time_ns = r.report_time_ns;
  node->last_seen_mono_ns = now_mono - (now_real - r.seen_realtime_ns);
  node->agent_version = r.agent_version;
  if (!r.spec.empty() && node->spec.ParseFromString(r.spec)) {
    node->spec_bytes = r.spec;
  }
  node->state = StateFor(now_mono - node->last_seen_mono_ns);
  node->time_high_water_ns = r.report_time_ns;
  node->epoch_origin_ns =
      r.report_time_ns - static_cast<int64_t>(kMaxFirstCoverNs);
  // Same rule as Apply: a report's time ends its interval.
  node->last_bucket = FloorDiv(std::min(r.report_time_ns, now_real) - 1,
                               options_.resolution_ns);
}

void ClusterState::RestoreSeries(const RestoredSeries& r) {
  auto node = Find(r.node_name);
  if (!node) return;  // the node expired: so did its series
  absl::MutexLock lock(&node->mu);
  Series& s = node->series[r.labels.cgroup_path];
  s.labels = std::make_shared<const WorkloadLabels>(r.labels);
  s.epoch = r.epoch;
  s.cgroup_id = r.cgroup_id;
  s.cumulative = r.cumulative;
  // Reported as recently as its node, as far as anyone knows: it stays until
  // it has been silent for the retention.
  s.last_seen_bucket = node->last_bucket;
}

void ClusterState::RestoreBucket(const std::string& node_name,
                                 const std::string& cgroup_path, int64_t bucket,
                                 const Counters& delta) {
  auto node = Find(node_name);
  if (!node) return;
  absl::MutexLock lock(&node->mu);
  auto it = node->series.find(cgroup_path);
  if (it == node->series.end()) return;
  auto& b = it->second.buckets;
  auto pos =
      std::lower_bound(b.begin(), b.end(), bucket,
                       [](const Bucket& x, int64_t v) { return x.index < v; });
  if (pos != b.end() && pos->index == bucket) {
    pos->delta.Add(delta);
  } else {
    b.insert(pos, {bucket, delta});
  }
  node->last_bucket = std::max(node->last_bucket, bucket);
}

ClusterState::StateCounts ClusterState::CountStates() const {
  StateCounts c;
  for (const auto& node : AllNodes()) {
    absl::ReaderMutexLock lock(&node->mu);
    switch (node->state) {
      case wattlens::v1::NODE_STATE_CONNECTED:
        ++c.connected;
        break;
      case wattlens::v1::NODE_STATE_STALE:
        ++c.stale;
        break;
      default:
        ++c.gone;
    }
    c.series += node->series.size() - node->series.count(kNodeSeriesPath);
    for (const auto& [_, s] : node->series) c.buckets += s.buckets.size();
  }
  return c;
}

std::vector<std::pair<std::string, Counters>> ClusterState::NamespaceTotals(
    size_t max_keys) const {
  absl::flat_hash_map<std::string, Counters> sum;
  for (const auto& node : AllNodes()) {
    absl::ReaderMutexLock lock(&node->mu);
    for (const auto& [ns, c] : node->ns_totals) sum[ns].Add(c);
  }
  std::vector<std::pair<std::string, Counters>> out(sum.begin(), sum.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second.cpu_ns != b.second.cpu_ns
               ? a.second.cpu_ns > b.second.cpu_ns
               : a.first < b.first;
  });
  if (out.size() > max_keys) {
    Counters other;
    for (size_t i = max_keys; i < out.size(); ++i) other.Add(out[i].second);
    out.resize(max_keys);
    out.emplace_back("__other__", other);
  }
  return out;
}

std::vector<std::pair<wattlens::v1::UsageKey, Impact>>
ClusterState::WorkloadImpactTotals(size_t max_keys) const {
  absl::flat_hash_map<std::string, std::pair<wattlens::v1::UsageKey, Impact>>
      sum;
  // Per-series totals are summed into workload rows at scrape time (a
  // scrape every 30 s, not a string key per series per report).
  auto add = [&](const std::string& node_name, const WorkloadLabels& l,
                 const Impact& i) {
    auto [key, k] = RowKey(wattlens::v1::GROUP_BY_WORKLOAD, node_name, l);
    absl::StrAppend(&key, "\x1f", l.project);
    auto& slot = sum[key];
    if (slot.first.workload().empty()) {
      slot.first = std::move(k);
      slot.first.set_project(l.project);
    }
    slot.second.Add(i);
  };
  WorkloadLabels idle_labels;
  idle_labels.cgroup_path = kIdlePath;
  for (const auto& node : AllNodes()) {
    absl::ReaderMutexLock lock(&node->mu);
    for (const auto& [path, s] : node->series) {
      if (path == kNodeSeriesPath) continue;
      if (s.impact_total.total_cost() == 0 && s.impact_total.carbon_g() == 0 &&
          s.impact_total.energy_kwh == 0) {
        continue;
      }
      add(node->name, *s.labels, s.impact_total);
    }
    if (node->rates) add(node->name, idle_labels, node->idle_total);
    for (const auto& [key, v] : node->freed_impact) {
      auto& slot = sum[key];
      if (slot.first.workload().empty()) slot.first = v.first;
      slot.second.Add(v.second);
    }
  }
  std::vector<std::pair<wattlens::v1::UsageKey, Impact>> out;
  out.reserve(sum.size());
  for (auto& [_, v] : sum) out.push_back(std::move(v));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const double ca = a.second.total_cost(), cb = b.second.total_cost();
    if (ca != cb) return ca > cb;
    return std::tie(a.first.namespace_(), a.first.workload_kind(),
                    a.first.workload(), a.first.project()) <
           std::tie(b.first.namespace_(), b.first.workload_kind(),
                    b.first.workload(), b.first.project());
  });
  if (out.size() > max_keys) {
    std::pair<wattlens::v1::UsageKey, Impact> other;
    other.first.set_workload("__other__");
    for (size_t i = max_keys; i < out.size(); ++i) {
      other.second.Add(out[i].second);
    }
    out.resize(max_keys);
    out.push_back(std::move(other));
  }
  return out;
}

std::vector<ClusterState::NodeCarbonInfo> ClusterState::NodeCarbon() const {
  std::vector<NodeCarbonInfo> out;
  for (const auto& node : AllNodes()) {
    absl::ReaderMutexLock lock(&node->mu);
    if (!node->rates) continue;
    NodeCarbonInfo i;
    i.node = node->name;
    i.provider = node->rates->provider;
    i.region = node->rates->region;
    i.zone = node->rates->zone;
    i.source = node->intensity.source;
    i.grams_per_kwh = node->intensity.grams_per_kwh;
    i.pue = node->rates->pue;
    i.hourly_cost = node->rates->hourly_cost();
    out.push_back(std::move(i));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.node < b.node; });
  return out;
}

std::vector<std::pair<std::string, double>> ClusterState::NodeWatts() const {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& node : AllNodes()) {
    absl::ReaderMutexLock lock(&node->mu);
    out.emplace_back(node->name, node->power.watts());
  }
  return out;
}

}  // namespace wattlens::collector
