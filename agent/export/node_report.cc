// SPDX-License-Identifier: Apache-2.0
#include "agent/export/node_report.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/common/report_limits.h"
#include "agent/export/workload_series.h"
#include "agent/identity/workload_identity.h"
#include "agent/power/attribution.h"
#include "common/counters/counter_growth.h"
#include "google/protobuf/util/time_util.h"

namespace wattlens {
namespace {

using google::protobuf::util::TimeUtil;

// Snapshot traffic classes (enum wl_net_class order) -> API classes.
constexpr wattlens::v1::NetworkClass kNetClassToProto[kNetClasses] = {
    wattlens::v1::NETWORK_CLASS_NODE, wattlens::v1::NETWORK_CLASS_CLUSTER,
    wattlens::v1::NETWORK_CLASS_PRIVATE, wattlens::v1::NETWORK_CLASS_INTERNET,
    wattlens::v1::NETWORK_CLASS_UNKNOWN};

struct Sums {
  uint64_t cpu_ns = 0, syscalls = 0, errors = 0, tx = 0, rx = 0;
};

Sums SumsOf(const CgroupStats& c) {
  Sums s{c.cpu_ns, c.syscalls, c.syscall_errors, 0, 0};
  for (const NetStats& n : c.net) {
    s.tx += n.tx_bytes;
    s.rx += n.rx_bytes;
  }
  return s;
}

void FillUsage(const Sums& total, const Sums& interval, double seconds,
               wattlens::v1::Usage* u) {
  u->set_cpu_nanoseconds(total.cpu_ns);
  u->set_cpu_seconds(static_cast<double>(total.cpu_ns) / 1e9);
  u->set_syscalls(total.syscalls);
  u->set_syscall_errors(total.errors);
  u->set_network_transmit_bytes(total.tx);
  u->set_network_receive_bytes(total.rx);
  if (seconds > 0) {
    u->set_cpu_cores(static_cast<double>(interval.cpu_ns) / 1e9 / seconds);
    u->set_syscalls_per_second(static_cast<double>(interval.syscalls) /
                               seconds);
    u->set_network_bytes_per_second(
        static_cast<double>(interval.tx + interval.rx) / seconds);
  }
}

wattlens::v1::EnergyZone ZoneToProto(const std::string& zone) {
  if (zone == "package") return wattlens::v1::ENERGY_ZONE_PACKAGE;
  if (zone == "core") return wattlens::v1::ENERGY_ZONE_CORE;
  if (zone == "uncore") return wattlens::v1::ENERGY_ZONE_UNCORE;
  if (zone == "dram") return wattlens::v1::ENERGY_ZONE_DRAM;
  if (zone == "gpu") return wattlens::v1::ENERGY_ZONE_GPU;
  if (zone == "platform" || zone == "psys")
    return wattlens::v1::ENERGY_ZONE_PLATFORM;
  return wattlens::v1::ENERGY_ZONE_UNSPECIFIED;
}

wattlens::v1::PowerSource SourceToProto(const std::string& source) {
  auto starts = [&](const char* p) { return source.rfind(p, 0) == 0; };
  if (starts("model")) return wattlens::v1::POWER_SOURCE_MODEL;
  if (starts("rapl")) return wattlens::v1::POWER_SOURCE_RAPL;
  if (starts("perf")) return wattlens::v1::POWER_SOURCE_PERF;
  if (starts("hwmon")) return wattlens::v1::POWER_SOURCE_HWMON;
  if (starts("nvml")) return wattlens::v1::POWER_SOURCE_NVML;
  return wattlens::v1::POWER_SOURCE_NONE;
}

void AddEnergy(
    google::protobuf::RepeatedPtrField<wattlens::v1::EnergyCounter>* out,
    wattlens::v1::EnergyZone zone, uint64_t dynamic_uj, uint64_t idle_uj) {
  auto* d = out->Add();
  d->set_zone(zone);
  d->set_mode(wattlens::v1::ENERGY_MODE_DYNAMIC);
  d->set_microjoules(dynamic_uj);
  auto* i = out->Add();
  i->set_zone(zone);
  i->set_mode(wattlens::v1::ENERGY_MODE_IDLE);
  i->set_microjoules(idle_uj);
}

wattlens::v1::EnergyBucket BucketOf(absl::string_view workload) {
  if (workload == power::kIdleWorkload) return wattlens::v1::ENERGY_BUCKET_IDLE;
  if (workload == power::kUnattributedWorkload) {
    return wattlens::v1::ENERGY_BUCKET_UNATTRIBUTED;
  }
  return wattlens::v1::ENERGY_BUCKET_UNSPECIFIED;
}

// Workload energy (cumulative µJ) and node power from the snapshot's energy
// section; zones the API does not name are left out.
void FillEnergy(const Snapshot& s, wattlens::v1::NodeReport& r) {
  const EnergyStats& e = s.energy;
  auto* power = r.mutable_power();
  power->set_source(wattlens::v1::POWER_SOURCE_NONE);
  if (!e.enabled) return;
  absl::flat_hash_map<uint64_t, wattlens::v1::WorkloadCounters*> by_id;
  for (auto& w : *r.mutable_workloads()) by_id[w.identity().cgroup_id()] = &w;
  absl::flat_hash_map<wattlens::v1::EnergyBucket,
                      wattlens::v1::EnergyBucketCounters*>
      buckets;
  // The collector sums a workload's zones: send only those whose sum is the
  // node's total, never a part beside its whole (CountsInNodeTotal).
  const bool whole = HasWholePlatformZone(e.zones);
  absl::flat_hash_map<std::string, std::string> source_of;
  for (const NodeZoneEnergy& z : e.zones) source_of[z.zone] = z.source;
  for (const WorkloadEnergy& we : e.workloads) {
    const auto zone = ZoneToProto(we.zone);
    if (zone == wattlens::v1::ENERGY_ZONE_UNSPECIFIED ||
        !CountsInNodeTotal(we.zone, source_of[we.zone], whole)) {
      continue;
    }
    // Cgroup id 0 is also the row of a full cgroup table: only the two
    // energy buckets are not workloads.
    const wattlens::v1::EnergyBucket bucket =
        we.cgroup_id == 0 ? BucketOf(we.workload)
                          : wattlens::v1::ENERGY_BUCKET_UNSPECIFIED;
    if (bucket == wattlens::v1::ENERGY_BUCKET_UNSPECIFIED) {
      auto it = by_id.find(we.cgroup_id);
      if (it != by_id.end()) {
        AddEnergy(it->second->mutable_energy(), zone, we.dynamic_uj,
                  we.idle_uj);
      }
      continue;
    }
    auto [it, fresh] = buckets.try_emplace(bucket, nullptr);
    if (fresh) {
      it->second = r.add_energy_buckets();
      it->second->set_bucket(bucket);
    }
    AddEnergy(it->second->mutable_energy(), zone, we.dynamic_uj, we.idle_uj);
  }
  double watts = 0;
  for (const NodeZoneEnergy& z : e.zones) {
    const auto zone = ZoneToProto(z.zone);
    if (zone == wattlens::v1::ENERGY_ZONE_UNSPECIFIED) continue;
    AddEnergy(power->mutable_energy(), zone, z.energy_uj - z.idle_uj,
              z.idle_uj);
    if (power->source() == wattlens::v1::POWER_SOURCE_NONE) {
      power->set_source(SourceToProto(z.source));
    }
    if (CountsInNodeTotal(z.zone, z.source, whole) && z.interval_ns > 0) {
      watts += z.interval_energy_uj / 1e6 / (z.interval_ns / 1e9);
    }
  }
  power->set_watts(watts);
  auto* p = r.mutable_energy_provenance();
  if (!e.power_source.empty()) {
    p->set_basis(e.power_measured ? wattlens::v1::ENERGY_BASIS_MEASURED
                                  : wattlens::v1::ENERGY_BASIS_MODELLED);
    p->add_sources(e.power_source);
  }
  for (const auto& rej : e.power_rejected) {
    auto* out = p->add_rejected();
    out->set_source(rej.source);
    out->set_reason(rej.reason);
    out->set_detail(rej.detail);
  }
}

// A cgroup's path as the collector accepts it: under / (or the kernel row),
// printable, bounded, and unique in the report. Two paths that only differ
// once sanitised keep apart by the cgroup id.
std::string ReportPath(const std::string& raw, uint64_t id,
                       absl::flat_hash_set<std::string>& used) {
  namespace rl = report_limits;
  const std::string base = raw.empty() ? std::string("/")
                           : raw == kKernelCgroupPath || raw[0] == '/'
                               ? raw
                               : absl::StrCat("/", raw);
  std::string path = rl::Sanitize(base, rl::kMaxCgroupPathBytes);
  if (!used.insert(path).second) {
    const std::string suffix = absl::StrCat("#", id);
    path = rl::Sanitize(base, rl::kMaxCgroupPathBytes - suffix.size()) + suffix;
    used.insert(path);
  }
  return path;
}

std::string Label(const std::string& s,
                  size_t max = report_limits::kMaxLabelBytes) {
  return report_limits::Sanitize(s, max);
}

// A row's name for sorting: its key fields in order.
std::string RowName(const wattlens::v1::UsageKey& k) {
  return absl::StrCat(k.namespace_(), "/", k.workload_kind(), "/", k.workload(),
                      "/", k.pod(), "/", k.container(), "/", k.project(), "/",
                      k.cgroup_path());
}

}  // namespace

WorkloadLabels LabelsOf(const CgroupStats& c) {
  if (!c.identity.kind.empty()) return c.identity;
  // A snapshot that did not pass the identity stage (built by hand): what
  // the path alone says.
  static const identity::ProjectMap kNoRules;
  return identity::ResolveCgroup(c.path.empty() ? "/" : c.path, nullptr,
                                 kNoRules, identity::HintForCgroup(c.id))
      .labels;
}

wattlens::v1::NodeReport BuildNodeReport(const Snapshot& s,
                                         const NodeReportOptions& o) {
  wattlens::v1::NodeReport r;
  r.set_node_name(o.node_name);
  r.set_epoch(o.epoch);
  r.set_sequence(s.sequence);
  *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(s.realtime_ns);
  *r.mutable_interval() = TimeUtil::NanosecondsToDuration(s.interval_ns);
  if (o.upload_interval_ns > 0) {
    *r.mutable_upload_interval() =
        TimeUtil::NanosecondsToDuration(o.upload_interval_ns);
  }
  r.set_agent_version(Label(o.agent_version));
  r.mutable_workloads()->Reserve(static_cast<int>(s.cgroups.size()));
  // Names come from the kernel and the API server, and a user with a
  // delegated cgroup subtree chooses them: everything is sanitised to the
  // collector's limits, so one odd name cannot get the report refused.
  absl::flat_hash_set<std::string> used_paths;
  used_paths.reserve(s.cgroups.size());
  for (const CgroupStats& c : s.cgroups) {
    auto* w = r.add_workloads();
    auto* id = w->mutable_identity();
    id->set_cgroup_path(ReportPath(c.path, c.id, used_paths));
    id->set_cgroup_id(c.id);
    const WorkloadLabels l = LabelsOf(c);
    id->set_systemd_unit(Label(l.systemd_unit));
    id->set_namespace_(Label(l.namespace_name));
    id->set_pod(Label(l.pod));
    id->set_pod_uid(Label(l.pod_uid));
    id->set_container(Label(l.container));
    id->set_container_id(Label(l.container_id));
    id->set_container_runtime(Label(l.container_runtime));
    id->set_workload_kind(Label(l.workload_kind));
    id->set_workload(Label(l.workload));
    id->set_project(Label(l.kind == "pod" ? l.pod_project : l.project));
    const CgroupResources& res = c.resources;
    w->set_tcp_accepted(c.tcp.accepts);
    w->set_cpu_request_cores(static_cast<double>(res.cpu_request_millicores) /
                             1000.0);
    w->set_memory_request_bytes(res.memory_request_bytes);
    w->set_memory_working_set_bytes(res.memory_working_set_bytes);
    w->set_cpu_allocated_core_nanoseconds(res.cpu_allocated_core_ns);
    w->set_memory_allocated_byte_seconds(res.memory_allocated_byte_seconds);
    w->set_cpu_nanoseconds(c.cpu_ns);
    w->set_syscalls(c.syscalls);
    w->set_syscall_errors(std::min(c.syscall_errors, c.syscalls));
    for (size_t k = 0; k < kNetClasses; ++k) {
      const NetStats& n = c.net[k];
      if (n.tx_bytes == 0 && n.rx_bytes == 0) continue;
      auto* nc = w->add_network();
      nc->set_network_class(kNetClassToProto[k]);
      nc->set_transmit_bytes(n.tx_bytes);
      nc->set_receive_bytes(n.rx_bytes);
    }
    w->set_processes(c.live_processes);
    w->set_gone(c.gone);
  }
  FillEnergy(s, r);
  auto* node = r.mutable_node();
  node->set_cpus(s.node.cpus);
  node->set_memory_bytes(s.node.memory_bytes);
  node->set_gpus(s.node.gpus);
  for (const auto& [k, v] : s.node.labels) {
    if (node->labels_size() >=
        static_cast<int>(report_limits::kMaxHealthEntries)) {
      break;
    }
    std::string key = Label(k);
    if (!key.empty()) (*node->mutable_labels())[std::move(key)] = Label(v);
  }
  node->set_provider_id(Label(s.node.provider_id));
  r.set_elapsed_nanoseconds(s.elapsed_ns + o.carried_ns);
  auto* h = r.mutable_health();
  for (const SourceHealth& src : s.self.sources) {
    if (h->sources_size() >=
        static_cast<int>(report_limits::kMaxHealthEntries)) {
      break;
    }
    auto* hs = h->add_sources();
    hs->set_source(Label(src.source, report_limits::kMaxHealthNameBytes));
    hs->set_healthy(src.up());
    hs->set_last_error(Label(src.detail, report_limits::kMaxHealthErrorBytes));
    hs->set_variant(Label(src.variant, report_limits::kMaxHealthNameBytes));
  }
  s.self.drops.ForEach([&](const DropReasonInfo& info, uint64_t count) {
    if (h->drops_size() >= static_cast<int>(report_limits::kMaxHealthEntries)) {
      return;
    }
    auto* d = h->add_drops();
    d->set_reason(Label(std::string(info.name), report_limits::kMaxHealthNameBytes));
    d->set_count(count);
  });
  h->set_processes_tracked(s.self.processes_tracked);
  h->set_cgroups_tracked(s.self.cgroups_tracked);
  return r;
}

void NodeApiService::Update(const Snapshot& cur) {
  auto copy = std::make_shared<const Snapshot>(cur);
  absl::MutexLock lock(&mu_);
  prev_ = std::move(cur_);
  cur_ = std::move(copy);
}

grpc::Status NodeApiService::GetNodeUsage(
    grpc::ServerContext*, const wattlens::v1::GetNodeUsageRequest* req,
    wattlens::v1::GetNodeUsageResponse* resp) {
  std::shared_ptr<const Snapshot> cur, prev;
  {
    absl::MutexLock lock(&mu_);
    cur = cur_;
    prev = prev_;
  }
  if (!cur) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "no snapshot yet (first interval not complete)");
  }
  resp->set_node_name(options_.node_name);
  resp->set_epoch(options_.epoch);
  resp->set_sequence(cur->sequence);
  *resp->mutable_time() = TimeUtil::NanosecondsToTimestamp(cur->realtime_ns);
  *resp->mutable_interval() = TimeUtil::NanosecondsToDuration(cur->interval_ns);
  const double seconds =
      prev ? static_cast<double>(cur->monotonic_ns - prev->monotonic_ns) / 1e9
           : 0;
  absl::flat_hash_map<uint64_t, Sums> before;
  if (prev) {
    for (const CgroupStats& c : prev->cgroups) before[c.id] = SumsOf(c);
  }
  const bool one_row = req->group_by() == wattlens::v1::GROUP_BY_NODE;
  struct Row {
    wattlens::v1::UsageKey key;
    Sums total, interval;
    uint32_t series = 0;
  };
  std::vector<Row> rows;
  absl::flat_hash_map<std::string, size_t> row_of;
  Sums all_total, all_interval;
  for (const CgroupStats& c : cur->cgroups) {
    const WorkloadLabels l = LabelsOf(c);
    const bool host = l.kind != "pod_container" && l.kind != "pod";
    // "-" selects host workloads; a pod without metadata has no namespace
    // but is not a host workload.
    if (!req->namespace_().empty() &&
        (req->namespace_() == "-" ? !host
                                  : l.namespace_name != req->namespace_())) {
      continue;
    }
    const Sums t = SumsOf(c);
    Sums d;
    if (auto it = before.find(c.id); it != before.end()) {
      const Sums& p = it->second;
      d = {CounterGrowth(p.cpu_ns, t.cpu_ns),
           CounterGrowth(p.syscalls, t.syscalls),
           CounterGrowth(p.errors, t.errors), CounterGrowth(p.tx, t.tx),
           CounterGrowth(p.rx, t.rx)};
    }
    for (auto [acc, v] : {std::pair{&all_total, &t}, {&all_interval, &d}}) {
      acc->cpu_ns += v->cpu_ns;
      acc->syscalls += v->syscalls;
      acc->errors += v->errors;
      acc->tx += v->tx;
      acc->rx += v->rx;
    }
    if (one_row) continue;
    const std::string path = c.path.empty() ? "/" : c.path;
    const std::string host_name =
        l.systemd_unit.empty() ? path : l.systemd_unit;
    const std::string pod = l.pod.empty() ? l.pod_uid : l.pod;
    const std::string project = l.kind == "pod" ? l.pod_project : l.project;
    wattlens::v1::UsageKey k;
    k.set_node_name(options_.node_name);
    switch (req->group_by()) {
      case wattlens::v1::GROUP_BY_NAMESPACE:
        k.set_namespace_(l.namespace_name);
        break;
      case wattlens::v1::GROUP_BY_POD:
        k.set_namespace_(l.namespace_name);
        k.set_pod(host ? host_name : pod);
        break;
      case wattlens::v1::GROUP_BY_CONTAINER:
        k.set_namespace_(l.namespace_name);
        k.set_pod(host ? host_name : pod);
        k.set_container(host ? host_name : l.container);
        break;
      case wattlens::v1::GROUP_BY_PROJECT:
        k.set_project(project);
        break;
      case wattlens::v1::GROUP_BY_CGROUP:
        k.set_cgroup_path(path);
        k.set_namespace_(l.namespace_name);
        k.set_pod(l.pod);
        k.set_container(l.container);
        k.set_workload_kind(l.workload_kind);
        k.set_workload(l.workload.empty() && host ? host_name : l.workload);
        k.set_project(project);
        break;
      default:  // GROUP_BY_WORKLOAD
        k.set_namespace_(l.namespace_name);
        if (!l.workload.empty()) {
          k.set_workload_kind(l.workload_kind);
          k.set_workload(l.workload);
        } else if (!host) {
          k.set_workload_kind("Pod");
          k.set_workload(pod);
        } else {
          k.set_workload(host_name);
          k.set_cgroup_path(UnitCgroupPath(path, l.systemd_unit));
        }
        k.set_project(project);
        break;
    }
    const std::string key = k.SerializeAsString();
    auto [it, fresh] = row_of.try_emplace(key, rows.size());
    if (fresh) {
      rows.push_back(Row{k, {}, {}});
    }
    Row& row = rows[it->second];
    for (auto [acc, v] : {std::pair{&row.total, &t}, {&row.interval, &d}}) {
      acc->cpu_ns += v->cpu_ns;
      acc->syscalls += v->syscalls;
      acc->errors += v->errors;
      acc->tx += v->tx;
      acc->rx += v->rx;
    }
    ++row.series;
  }
  if (one_row) {
    Row row;
    row.key.set_node_name(options_.node_name);
    row.total = all_total;
    row.interval = all_interval;
    row.series = cur->cgroups.size();
    rows.push_back(std::move(row));
  }
  auto metric = [&](const Row& r) -> uint64_t {
    switch (req->sort_by()) {
      case wattlens::v1::SORT_BY_NETWORK:
        return r.interval.tx + r.interval.rx;
      case wattlens::v1::SORT_BY_SYSCALLS:
        return r.interval.syscalls;
      default:
        return r.interval.cpu_ns;
    }
  };
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    const std::string na = RowName(a.key), nb = RowName(b.key);
    if (req->sort_by() == wattlens::v1::SORT_BY_NAME) {
      return req->reverse() ? na > nb : na < nb;
    }
    const uint64_t ma = metric(a), mb = metric(b);
    if (ma != mb) return req->reverse() ? ma < mb : ma > mb;
    return na < nb;
  });
  const size_t n = req->limit() > 0
                       ? std::min<size_t>(req->limit(), rows.size())
                       : rows.size();
  for (size_t i = 0; i < n; ++i) {
    auto* out = resp->add_rows();
    *out->mutable_key() = rows[i].key;
    FillUsage(rows[i].total, rows[i].interval, seconds, out->mutable_usage());
    out->set_series(rows[i].series);
  }
  FillUsage(all_total, all_interval, seconds, resp->mutable_total());
  return grpc::Status::OK;
}

grpc::Status NodeApiService::ListProcesses(
    grpc::ServerContext*, const wattlens::v1::ListProcessesRequest* req,
    wattlens::v1::ListProcessesResponse* resp) {
  std::shared_ptr<const Snapshot> cur, prev;
  {
    absl::MutexLock lock(&mu_);
    cur = cur_;
    prev = prev_;
  }
  if (!cur) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no snapshot yet");
  }
  *resp->mutable_time() = TimeUtil::NanosecondsToTimestamp(cur->realtime_ns);
  absl::flat_hash_map<uint64_t, const std::string*> paths;
  for (const CgroupStats& c : cur->cgroups) paths[c.id] = &c.path;
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, uint64_t> cpu_before;
  if (prev) {
    for (const ProcessStats& p : prev->processes) {
      cpu_before[{p.pid, p.start_ns}] = p.cpu_ns;
    }
  }
  const double seconds =
      prev ? static_cast<double>(cur->monotonic_ns - prev->monotonic_ns) / 1e9
           : 0;
  std::vector<wattlens::v1::ProcessUsage> out;
  for (const ProcessStats& p : cur->processes) {
    auto pit = paths.find(p.cgroup_id);
    const std::string path = pit == paths.end() ? "" : *pit->second;
    if (!req->cgroup_path().empty() && req->cgroup_path() != path) continue;
    wattlens::v1::ProcessUsage u;
    u.set_pid(p.pid);
    u.set_start_time_nanoseconds(p.start_ns);
    u.set_ppid(p.ppid);
    u.set_comm(p.comm);
    u.set_cgroup_path(path);
    u.set_cpu_nanoseconds(p.cpu_ns);
    u.set_syscalls(p.syscalls);
    u.set_syscall_errors(p.syscall_errors);
    u.set_exited(p.exited);
    u.set_exit_code(p.exit_code);
    if (seconds > 0) {
      auto it = cpu_before.find({p.pid, p.start_ns});
      const uint64_t before_ns = it == cpu_before.end() ? 0 : it->second;
      u.set_cpu_cores(static_cast<double>(CounterGrowth(before_ns, p.cpu_ns)) /
                      1e9 / seconds);
    }
    out.push_back(std::move(u));
  }
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) {
    if (req->sort_by() == wattlens::v1::SORT_BY_SYSCALLS &&
        a.syscalls() != b.syscalls()) {
      return a.syscalls() > b.syscalls();
    }
    if (req->sort_by() == wattlens::v1::SORT_BY_NAME) {
      return a.comm() != b.comm() ? a.comm() < b.comm() : a.pid() < b.pid();
    }
    if (a.cpu_cores() != b.cpu_cores()) return a.cpu_cores() > b.cpu_cores();
    return a.cpu_nanoseconds() > b.cpu_nanoseconds();
  });
  const size_t n = req->limit() > 0 ? std::min<size_t>(req->limit(), out.size())
                                    : out.size();
  for (size_t i = 0; i < n; ++i) *resp->add_processes() = std::move(out[i]);
  return grpc::Status::OK;
}

}  // namespace wattlens
