// SPDX-License-Identifier: Apache-2.0
#include "agent/export/prometheus_collectable.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "agent/bpf/network_classes.h"
#include "agent/common/prometheus_family.h"
#include "agent/common/syscall_names.h"
#include "agent/export/workload_series.h"
#include "prometheus/text_serializer.h"

namespace wattlens {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr double kNsPerSecond = 1e9;

using prom::Add;
using prom::Family;

using Labels = std::vector<ClientMetric::Label>;

// The identity labels every wattlens_workload_* series carries.
Labels RowLabels(const WorkloadRow& r) {
  return {{"cgroup", r.cgroup},
          {"namespace", r.namespace_name},
          {"pod", r.pod},
          {"container", r.container},
          {"workload_kind", r.workload_kind},
          {"workload", r.workload},
          {"project", r.project}};
}

Labels With(Labels l, std::initializer_list<ClientMetric::Label> more) {
  for (const auto& m : more) l.push_back(m);
  return l;
}

// Network series: classes with traffic only (a workload that never talked to
// the internet has no internet series), so at most 5 per workload.
void RenderNetwork(const std::vector<WorkloadRow>& rows,
                   std::vector<MetricFamily>& out) {
  auto tx = Family("wattlens_workload_network_transmit_bytes_total",
                   "Bytes sent over TCP and UDP by the workload, by traffic "
                   "class of the peer.",
                   MetricType::Counter);
  auto rx = Family("wattlens_workload_network_receive_bytes_total",
                   "Bytes received over TCP and UDP by the workload, by "
                   "traffic class of the peer.",
                   MetricType::Counter);
  auto txp = Family("wattlens_workload_network_transmit_packets_total",
                    "UDP datagrams and TCP send calls that moved data, by "
                    "traffic class.",
                    MetricType::Counter);
  auto rxp = Family("wattlens_workload_network_receive_packets_total",
                    "UDP datagrams and TCP receive calls that moved data, by "
                    "traffic class.",
                    MetricType::Counter);
  auto conns = Family("wattlens_workload_tcp_connections_total",
                      "TCP connections opened (connect), accepted and "
                      "closed.",
                      MetricType::Counter);
  auto retrans = Family("wattlens_workload_tcp_retransmits_total",
                        "TCP segments retransmitted on the workload's "
                        "sockets.",
                        MetricType::Counter);
  for (const WorkloadRow& r : rows) {
    if (r.bucket) continue;
    const Labels base = RowLabels(r);
    for (size_t k = 0; k < kNetClasses; ++k) {
      const NetStats& n = r.net[k];
      if (!n.tx_bytes && !n.rx_bytes && !n.tx_packets && !n.rx_packets) {
        continue;
      }
      Labels l = With(base, {{"class", NetClassName(k)}});
      Add(tx, l, n.tx_bytes);
      Add(rx, l, n.rx_bytes);
      Add(txp, l, n.tx_packets);
      Add(rxp, l, n.rx_packets);
    }
    const TcpStats& t = r.tcp;
    if (t.connects || t.accepts || t.closes || t.retransmits) {
      Add(conns, With(base, {{"event", "connect"}}), t.connects);
      Add(conns, With(base, {{"event", "accept"}}), t.accepts);
      Add(conns, With(base, {{"event", "close"}}), t.closes);
      Add(retrans, base, t.retransmits);
    }
  }
  for (auto* f : {&tx, &rx, &txp, &rxp, &conns, &retrans}) {
    out.push_back(std::move(*f));
  }
}

// Node energy and its attribution (docs/power.md). Workload series include
// the __idle__, __unattributed__ and __removed__ buckets, so a sum of
// wattlens_workload_energy_joules_total over cgroup and mode equals
// wattlens_node_energy_joules_total in each zone, also after workloads were
// removed (their series' energy is in __removed__, agent/export/
// workload_series.h).
void RenderEnergy(const Snapshot& s, const std::vector<WorkloadRow>& rows,
                  std::vector<MetricFamily>& out) {
  const EnergyStats& e = s.energy;
  if (!e.enabled) return;
  constexpr double kUjPerJoule = 1e6;
  auto node = Family("wattlens_node_energy_joules_total",
                     "Energy used by the node, by zone and the meter or model "
                     "that measured it.",
                     MetricType::Counter);
  auto power = Family("wattlens_node_power_watts",
                      "Average node power over the last interval, by zone.",
                      MetricType::Gauge);
  auto idle = Family("wattlens_node_idle_power_watts",
                     "Idle (static) baseline power over the last interval, by "
                     "zone and how it was obtained.",
                     MetricType::Gauge);
  for (const NodeZoneEnergy& z : e.zones) {
    std::vector<ClientMetric::Label> l = {{"zone", z.zone},
                                          {"source", z.source}};
    Add(node, l, z.energy_uj / kUjPerJoule);
    if (z.interval_ns > 0) {
      Add(power, l, z.interval_energy_uj * 1e3 / z.interval_ns);
      Add(idle,
          {{"zone", z.zone}, {"source", z.source}, {"method", z.idle_method}},
          z.interval_idle_uj * 1e3 / z.interval_ns);
    }
  }
  auto workload = Family("wattlens_workload_energy_joules_total",
                         "Node energy attributed to the workload: dynamic "
                         "(by frequency-weighted CPU time) and idle (shared "
                         "by the idle policy). __idle__, __unattributed__ "
                         "(energy no CPU time explains) and __removed__ "
                         "(cgroups that are gone) complete the node total; "
                         "kernel threads are the workload kernel.",
                         MetricType::Counter);
  for (const WorkloadRow& r : rows) {
    const Labels base = RowLabels(r);
    for (const RowEnergy& w : r.energy) {
      Add(workload, With(base, {{"zone", w.zone}, {"mode", "dynamic"}}),
          w.dynamic_uj / kUjPerJoule);
      Add(workload, With(base, {{"zone", w.zone}, {"mode", "idle"}}),
          w.idle_uj / kUjPerJoule);
    }
  }
  auto info = Family("wattlens_energy_attribution_info",
                     "How node energy is measured and attributed: source, "
                     "model coefficients, idle policy, CPU time weighting and "
                     "where CPU frequency comes from. Always 1.",
                     MetricType::Gauge);
  std::vector<ClientMetric::Label> labels;
  for (const auto& [k, v] : e.method) labels.push_back({k, v});
  labels.push_back({"idle_policy", e.idle_policy});
  if (e.idle_policy_in_force != e.idle_policy) {
    labels.push_back({"idle_policy_in_force", e.idle_policy_in_force});
  }
  labels.push_back({"weighting", e.weighting});
  labels.push_back({"frequency_source", e.frequency_source});
  Add(info, std::move(labels), 1);
  // Provenance: which source is believed, and every one that is not.
  auto in_use = Family("wattlens_agent_power_source_in_use",
                       "The CPU energy source in use; provenance is measured "
                       "(a meter) or modelled. Always 1.",
                       MetricType::Gauge);
  if (!e.power_source.empty()) {
    Add(in_use,
        {{"source", e.power_source},
         {"provenance", e.power_measured ? "measured" : "modelled"}},
        1);
  }
  auto rejected = Family("wattlens_agent_power_source_rejected",
                         "CPU energy sources not believed, by why: absent, "
                         "unavailable, stuck, backwards, implausible or "
                         "failed (docs/power.md). Always 1.",
                         MetricType::Gauge);
  for (const auto& r : e.power_rejected) {
    Add(rejected, {{"source", r.source}, {"reason", r.reason}}, 1);
  }
  for (auto* f : {&in_use, &rejected}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  auto freq = Family("wattlens_node_cpu_frequency_hertz",
                     "Mean CPU frequency over the last interval (busy-time "
                     "weighted where idle residency is known), by source.",
                     MetricType::Gauge);
  if (e.frequency_khz) {
    Add(freq, {{"source", e.frequency_source}}, e.frequency_khz * 1e3);
  }
  auto intervals = Family("wattlens_agent_energy_intervals_total",
                          "Intervals by outcome: attributed, unmetered (the "
                          "power source gave nothing) or error (attribution "
                          "rejected its inputs).",
                          MetricType::Counter);
  Add(intervals, {{"result", "attributed"}}, e.intervals_attributed);
  Add(intervals, {{"result", "unmetered"}}, e.intervals_unmetered);
  Add(intervals, {{"result", "error"}}, e.attribution_errors);
  for (auto* f : {&node, &power, &idle, &workload, &info, &freq, &intervals}) {
    out.push_back(std::move(*f));
  }
  if (e.idle_tracked) {
    auto idle_s = Family("wattlens_node_cpu_idle_seconds_total",
                         "Time CPUs spent in idle states (power:cpu_idle), "
                         "summed over CPUs.",
                         MetricType::Counter);
    Add(idle_s, {}, e.cpu_idle_ns / 1e9);
    auto entries = Family("wattlens_node_cpu_idle_transitions_total",
                          "Entries into CPU idle states (power:cpu_idle), "
                          "summed over CPUs.",
                          MetricType::Counter);
    Add(entries, {}, e.cpu_idle_entries);
    out.push_back(std::move(idle_s));
    out.push_back(std::move(entries));
  }
}

// The node's size and the labels cost and carbon look up.
void RenderResources(const Snapshot& s, std::vector<MetricFamily>& out) {
  const NodeInfo& n = s.node;
  if (n.cpus == 0 && n.memory_bytes == 0) return;
  auto cap = Family("wattlens_node_capacity",
                    "Online CPUs (resource=cpu) and physical memory in bytes "
                    "(resource=memory) of the node.",
                    MetricType::Gauge);
  Add(cap, {{"resource", "cpu"}}, n.cpus);
  Add(cap, {{"resource", "memory"}}, n.memory_bytes);
  out.push_back(std::move(cap));
  auto info = Family("wattlens_node_info",
                     "Where the node runs, from its Kubernetes labels or the "
                     "agent's flags. Always 1.",
                     MetricType::Gauge);
  auto label = [&](const char* key) {
    for (const auto& [k, v] : n.labels) {
      if (k == key) return v;
    }
    return std::string();
  };
  Add(info,
      {{"region", label("topology.kubernetes.io/region")},
       {"zone", label("topology.kubernetes.io/zone")},
       {"instance_type", label("node.kubernetes.io/instance-type")},
       {"provider_id", n.provider_id},
       {"source", n.labels_source}},
      1);
  out.push_back(std::move(info));
}

// One series per container cgroup naming its id and runtime (the
// kube-state-metrics convention: `<runtime>://<id>`), so that usage series,
// which carry the cgroup but not the id, can be joined to the runtime's own
// tools without an id label on every usage series.
void RenderContainers(const Snapshot& s, std::vector<MetricFamily>& out) {
  auto info = Family("wattlens_container_info",
                     "A container cgroup's id and the runtime that made it "
                     "(containerd, cri-o, docker, podman, unknown). Always 1.",
                     MetricType::Gauge);
  for (const CgroupStats& c : s.cgroups) {
    const WorkloadLabels& l = c.identity;
    if (l.container_id.empty()) continue;
    Add(info,
        {{"cgroup", c.path},
         {"container_id", absl::StrCat(l.container_runtime, "://",
                                       l.container_id)},
         {"runtime", l.container_runtime},
         {"namespace", l.namespace_name},
         {"pod", l.pod},
         {"container", l.container}},
        1);
  }
  out.push_back(std::move(info));
}

// Which peers are `cluster` traffic, and where the agent learned it: a
// wrong or missing range moves pod-to-pod bytes into private egress.
void RenderClusterCidrs(const Snapshot& s, std::vector<MetricFamily>& out) {
  auto info = Family("wattlens_agent_cluster_cidrs_info",
                     "Peer ranges classed as cluster traffic (pod and service "
                     "CIDRs) and their source: configured (--cluster_cidrs), "
                     "node_spec (the Node's spec.podCIDRs, widened to the "
                     "cluster's range), kubernetes_service (the service range "
                     "starting below the kubernetes Service's ClusterIP); "
                     "source=\"none\" when no range is known. Always 1.",
                     MetricType::Gauge);
  if (s.cluster_cidrs.empty()) {
    Add(info, {{"source", "none"}, {"cidr", ""}, {"observed", ""}}, 1);
  }
  for (const ClusterCidrInfo& c : s.cluster_cidrs) {
    Add(info,
        {{"source", c.source}, {"cidr", c.cidr}, {"observed", c.observed}}, 1);
  }
  out.push_back(std::move(info));
}

}  // namespace

std::vector<MetricFamily> RenderSnapshot(const Snapshot& s,
                                         const ExpositionOptions& options) {
  std::vector<MetricFamily> out;

  auto cpu = Family("wattlens_workload_cpu_seconds_total",
                    "On-CPU time of all processes of the workload (cgroup), "
                    "from the scheduler's runtime accounting.",
                    MetricType::Counter);
  auto sys = Family("wattlens_workload_syscalls_total",
                    "System calls made by processes of the workload.",
                    MetricType::Counter);
  auto syserr = Family("wattlens_workload_syscall_errors_total",
                       "System calls of the workload that returned an error.",
                       MetricType::Counter);
  auto procs = Family("wattlens_workload_processes",
                      "Live processes in the workload.", MetricType::Gauge);
  absl::flat_hash_map<uint64_t, const std::string*> path_of;
  for (const CgroupStats& c : s.cgroups) path_of[c.id] = &c.path;
  // A snapshot the agent published carries its rows; one built by hand (a
  // test, a tool) gets one row per cgroup.
  WorkloadRows fallback;
  if (!s.rows.valid) {
    Snapshot copy;
    copy.cgroups = s.cgroups;
    copy.energy.workloads = s.energy.workloads;
    // Statelessly, the energy engine's own __removed__ totals.
    for (const WorkloadEnergy& r : s.energy.removed) {
      copy.energy.workloads.push_back(r);
    }
    WorkloadSeries rows({SeriesLevel::kCgroup, UINT64_MAX});
    rows.Update(&copy);
    fallback = std::move(copy.rows);
  }
  const WorkloadRows& rows = s.rows.valid ? s.rows : fallback;
  for (const WorkloadRow& r : rows.rows) {
    if (r.bucket) continue;
    const Labels l = RowLabels(r);
    Add(cpu, l, r.cpu_ns / kNsPerSecond);
    Add(sys, l, r.syscalls);
    Add(syserr, l, r.syscall_errors);
    Add(procs, l, r.processes);
  }
  out.push_back(std::move(cpu));
  out.push_back(std::move(sys));
  out.push_back(std::move(syserr));
  out.push_back(std::move(procs));
  RenderNetwork(rows.rows, out);
  RenderEnergy(s, rows.rows, out);
  RenderResources(s, out);
  RenderClusterCidrs(s, out);
  RenderContainers(s, out);

  auto node_sys =
      Family("wattlens_node_syscalls_total",
             "System calls made on the node, by syscall.", MetricType::Counter);
  auto node_err = Family("wattlens_node_syscall_errors_total",
                         "System calls on the node that returned an error, by "
                         "syscall.",
                         MetricType::Counter);
  for (const SyscallStats& c : s.syscalls) {
    std::string name = SyscallName(c.nr);
    Add(node_sys, {{"syscall", name}}, c.calls);
    if (c.errors) Add(node_err, {{"syscall", name}}, c.errors);
  }
  out.push_back(std::move(node_sys));
  out.push_back(std::move(node_err));

  if (options.process_top_n > 0) {
    std::vector<const ProcessStats*> top;
    for (const ProcessStats& p : s.processes) top.push_back(&p);
    size_t n = std::min(options.process_top_n, top.size());
    std::partial_sort(top.begin(), top.begin() + n, top.end(),
                      [](const ProcessStats* a, const ProcessStats* b) {
                        return a->cpu_ns > b->cpu_ns;
                      });
    auto pcpu =
        Family("wattlens_process_cpu_seconds_total",
               "On-CPU time of the top processes by CPU.", MetricType::Counter);
    auto psys = Family("wattlens_process_syscalls_total",
                       "System calls of the top processes by CPU.",
                       MetricType::Counter);
    auto penergy = Family("wattlens_process_energy_joules_total",
                          "Dynamic energy of the top processes by CPU (their "
                          "part of their workload's), by zone.",
                          MetricType::Counter);
    absl::flat_hash_map<std::pair<uint32_t, uint64_t>,
                        std::vector<const ProcessEnergy*>>
        energy_of;
    if (s.energy.enabled) {
      for (const ProcessEnergy& pe : s.energy.processes) {
        energy_of[{pe.pid, pe.start_ns}].push_back(&pe);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const ProcessStats& p = *top[i];
      auto it = path_of.find(p.cgroup_id);
      std::vector<ClientMetric::Label> labels = {
          {"pid", std::to_string(p.pid)},
          {"comm", p.comm},
          {"cgroup", it == path_of.end() ? "" : *it->second}};
      Add(pcpu, labels, p.cpu_ns / kNsPerSecond);
      Add(psys, labels, p.syscalls);
      if (auto e = energy_of.find({p.pid, p.start_ns}); e != energy_of.end()) {
        for (const ProcessEnergy* pe : e->second) {
          std::vector<ClientMetric::Label> l = labels;
          l.push_back({"zone", pe->zone});
          Add(penergy, std::move(l), pe->dynamic_uj / 1e6);
        }
      }
    }
    out.push_back(std::move(pcpu));
    out.push_back(std::move(psys));
    if (s.energy.enabled) out.push_back(std::move(penergy));
  }

  // Self-metrics.
  auto lost = Family("wattlens_agent_lost_events_total",
                     "Events or samples the agent could not record, by "
                     "reason.",
                     MetricType::Counter);
  auto anomalies = Family(
      "wattlens_agent_anomalies_total",
      "Things the agent counted that lost no event (a sample deferred to the "
      "next interval, metadata read again later, a gauge missing), by "
      "reason.",
      MetricType::Counter);
  s.self.drops.ForEach([&](const DropReasonInfo& info, uint64_t n) {
    Add(info.lost ? lost : anomalies, {{"reason", std::string(info.name)}},
        n);
  });
  out.push_back(std::move(lost));
  out.push_back(std::move(anomalies));
  auto fill = Family("wattlens_agent_bpf_map_fill_ratio",
                     "Entries in a BPF map as a fraction of its capacity.",
                     MetricType::Gauge);
  for (const MapFillStats& m : s.self.maps) {
    Add(fill, {{"map", m.map}},
        m.capacity ? static_cast<double>(m.entries) / m.capacity : 0);
  }
  out.push_back(std::move(fill));
  if (s.self.bpf_stats_enabled) {
    auto runs = Family("wattlens_agent_bpf_program_runs_total",
                       "Times each BPF program ran (kernel.bpf_stats_enabled).",
                       MetricType::Counter);
    auto secs = Family("wattlens_agent_bpf_program_run_seconds_total",
                       "Time spent in each BPF program "
                       "(kernel.bpf_stats_enabled).",
                       MetricType::Counter);
    for (const ProgramRunStats& p : s.self.programs) {
      Add(runs, {{"program", p.program}}, p.run_count);
      Add(secs, {{"program", p.program}}, p.run_time_ns / kNsPerSecond);
    }
    out.push_back(std::move(runs));
    out.push_back(std::move(secs));
  }
  auto up = Family("wattlens_agent_source_up",
                   "1 when a data source is up, 0 when degraded or down.",
                   MetricType::Gauge);
  auto states = Family(
      "wattlens_agent_source_state",
      "1 for each data source's state (up, degraded, down) and reason code.",
      MetricType::Gauge);
  auto variants = Family(
      "wattlens_agent_source_variant",
      "1 for the design of each BPF source this kernel loads (chosen by "
      "feature probes; docs/kernels.md).",
      MetricType::Gauge);
  for (const SourceHealth& h : s.self.sources) {
    Add(up, {{"source", h.source}}, h.up() ? 1 : 0);
    Add(states,
        {{"source", h.source},
         {"state", std::string(SourceStateName(h.state))},
         {"reason", std::string(HealthReasonName(h.reason))}},
        1);
    if (!h.variant.empty()) {
      Add(variants, {{"source", h.source}, {"variant", h.variant}}, 1);
    }
  }
  out.push_back(std::move(up));
  out.push_back(std::move(states));
  out.push_back(std::move(variants));
  if (!s.self.cpu_time_source.empty()) {
    auto source = Family(
        "wattlens_agent_cpu_time_source_info",
        "How on-CPU time is read (sampled: scheduler runtime at each drain "
        "and after each thread's final switch; sched_switch: a program per "
        "context switch).",
        MetricType::Gauge);
    Add(source, {{"source", s.self.cpu_time_source}}, 1);
    out.push_back(std::move(source));
  }
  if (!s.self.bpf_pins.empty()) {
    auto pins = Family(
        "wattlens_agent_bpf_pins_info",
        "Per BPF source, whether its maps and links were adopted from an "
        "earlier agent's pinned set (adopted), pinned anew (fresh; reason "
        "none, layout_changed or incomplete), not pinned (off) or could not "
        "be pinned (unavailable).",
        MetricType::Gauge);
    for (const auto& [source, outcome] : s.self.bpf_pins) {
      Add(pins,
          {{"source", source},
           {"outcome", outcome.first},
           {"reason", outcome.second}},
          1);
    }
    out.push_back(std::move(pins));
  }
  if (!s.self.restart.empty()) {
    auto restart = Family(
        "wattlens_agent_restart_info",
        "How this agent's counters began: resumed (from what the previous "
        "agent's collector acknowledged), fresh, state_unreadable (adopted "
        "maps without usable state: usage since the last acknowledgement "
        "lost) or off.",
        MetricType::Gauge);
    Add(restart, {{"outcome", s.self.restart}}, 1);
    out.push_back(std::move(restart));
    auto carried = Family(
        "wattlens_agent_restart_carried_seconds",
        "Resumed: how long before this agent's start its epoch's counters "
        "begin (the previous agent's last acknowledged report).",
        MetricType::Gauge);
    Add(carried, {}, s.self.restart_carried_seconds);
    out.push_back(std::move(carried));
    auto writes = Family("wattlens_agent_restart_state_writes_total",
                         "Restart state written at acknowledgements, by "
                         "result.",
                         MetricType::Counter);
    Add(writes, {{"result", "ok"}}, s.self.restart_state_writes);
    Add(writes, {{"result", "error"}}, s.self.restart_state_write_errors);
    out.push_back(std::move(writes));
  }
  auto events = Family("wattlens_agent_lifecycle_events_total",
                       "Process lifecycle events received from the kernel.",
                       MetricType::Counter);
  Add(events, {}, s.self.events_received);
  out.push_back(std::move(events));
  auto inferred = Family("wattlens_agent_exits_inferred_total",
                         "Processes found gone in /proc whose exit event was "
                         "lost.",
                         MetricType::Counter);
  Add(inferred, {}, s.self.exits_inferred);
  out.push_back(std::move(inferred));
  auto resets = Family("wattlens_agent_map_value_resets_total",
                       "Kernel counters seen going backwards (handled as "
                       "resets).",
                       MetricType::Counter);
  Add(resets, {}, s.self.counter_resets);
  out.push_back(std::move(resets));
  auto tracked =
      Family("wattlens_agent_tracked",
             "Processes and cgroups the agent tracks.", MetricType::Gauge);
  Add(tracked, {{"kind", "process"}}, s.self.processes_tracked);
  Add(tracked, {{"kind", "cgroup"}}, s.self.cgroups_tracked);
  out.push_back(std::move(tracked));
  auto series = Family("wattlens_agent_workload_series",
                       "wattlens_workload_* series served, the bound they "
                       "are kept under, and the aggregation level in force "
                       "(docs/identity.md).",
                       MetricType::Gauge);
  Add(series, {{"level", rows.level}, {"kind", "served"}}, rows.series);
  Add(series, {{"level", rows.level}, {"kind", "budget"}}, rows.budget);
  Add(series, {{"level", rows.level}, {"kind", "folded_rows"}},
      rows.folded_rows);
  out.push_back(std::move(series));
  auto level_changes = Family("wattlens_agent_workload_level_changes_total",
                              "Times the automatic aggregation level of "
                              "the workload series changed.",
                              MetricType::Counter);
  Add(level_changes, {}, rows.level_changes);
  out.push_back(std::move(level_changes));
  const IdentityHealth& id = s.identity;
  auto pods = Family("wattlens_agent_pods",
                     "Pods the agent has metadata for, by state (deleted "
                     "pods are kept a while for their last samples).",
                     MetricType::Gauge);
  Add(pods, {{"state", "live"}}, id.pods_live);
  Add(pods, {{"state", "deleted"}}, id.pods_deleted);
  out.push_back(std::move(pods));
  auto pod_cgroups = Family("wattlens_agent_pod_cgroups",
                            "Pod cgroups in the last interval; unknown: "
                            "their pod has no metadata (yet).",
                            MetricType::Gauge);
  Add(pod_cgroups, {{"metadata", "known"}},
      id.pod_cgroups - std::min(id.pod_cgroups, id.pod_cgroups_unknown));
  Add(pod_cgroups, {{"metadata", "unknown"}}, id.pod_cgroups_unknown);
  out.push_back(std::move(pod_cgroups));
  auto requests = Family("wattlens_agent_pod_metadata_requests_total",
                         "Pod metadata requests by outcome: list, "
                         "watch_event, relist_gone, failure.",
                         MetricType::Counter);
  Add(requests, {{"kind", "list"}}, id.lists);
  Add(requests, {{"kind", "watch_event"}}, id.watch_events);
  Add(requests, {{"kind", "relist_gone"}}, id.relists_gone);
  Add(requests, {{"kind", "failure"}}, id.failures);
  out.push_back(std::move(requests));
  auto drain =
      Family("wattlens_agent_drain_duration_seconds",
             "Time the last interval's drain took.", MetricType::Gauge);
  Add(drain, {}, s.self.last_drain_seconds);
  out.push_back(std::move(drain));
  auto ts = Family("wattlens_agent_last_snapshot_timestamp_seconds",
                   "Wall-clock time of the snapshot being served.",
                   MetricType::Gauge);
  Add(ts, {}, s.realtime_ns / kNsPerSecond);
  out.push_back(std::move(ts));
  auto build =
      Family("wattlens_build_info", "Build of the running agent; always 1.",
             MetricType::Gauge);
  Add(build,
      {{"component", "agent"},
       {"version", options.version},
       {"revision", options.revision}},
      1);
  out.push_back(std::move(build));
  return out;
}

std::string RenderSnapshotText(const Snapshot& s,
                               const ExpositionOptions& options) {
  return prometheus::TextSerializer().Serialize(RenderSnapshot(s, options));
}

std::vector<MetricFamily> SnapshotCollectable::Collect() const {
  std::shared_ptr<const Snapshot> s = store_->Latest();
  if (!s) return {};
  return RenderSnapshot(*s, options_);
}

}  // namespace wattlens
