// SPDX-License-Identifier: Apache-2.0
#include "agent/export/workload_series.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/counters/counter_growth.h"

namespace wattlens {
namespace {

constexpr char kSep = '\x1f';
constexpr double kFinerFraction = 0.8;

struct Labels {
  std::string cgroup, ns, pod, container, wk, w, project;
  std::string Key() const {
    return absl::StrCat(cgroup, std::string(1, kSep), ns, std::string(1, kSep),
                        pod, std::string(1, kSep), container,
                        std::string(1, kSep), wk, std::string(1, kSep), w,
                        std::string(1, kSep), project);
  }
};

bool InPod(const WorkloadLabels& id) {
  return id.kind == "pod_container" || id.kind == "pod";
}

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string UnitCgroupPath(const std::string& path, const std::string& unit) {
  if (unit.empty()) return path;
  const std::string needle = "/" + unit;
  size_t pos = 0;
  size_t found = std::string::npos;
  while ((pos = path.find(needle, pos)) != std::string::npos) {
    size_t end = pos + needle.size();
    if (end == path.size() || path[end] == '/') found = end;
    pos = end;
  }
  return found == std::string::npos ? path : path.substr(0, found);
}

namespace {

std::string TopLevel(const std::string& path) {
  size_t slash = path.find('/', 1);
  return slash == std::string::npos ? path : path.substr(0, slash);
}

Labels LabelsAt(const CgroupStats& c, SeriesLevel level) {
  const WorkloadLabels& id = c.identity;
  const std::string path = c.path.empty() ? "/" : c.path;
  Labels l;
  // The kernel threads are one workload at every level.
  if (level == SeriesLevel::kCgroup || id.kind == "kernel") {
    l.cgroup = path;
    l.ns = id.namespace_name;
    l.pod = id.pod;
    l.container = id.container;
    l.wk = id.workload_kind;
    l.w = id.workload;
    l.project = id.kind == "pod" ? id.pod_project : id.project;
    return l;
  }
  if (InPod(id)) {
    l.ns = id.namespace_name;
    l.project = id.pod_project;
    l.wk = id.workload_kind;
    l.w = id.workload;
    // Pods without a known owner stay pods at every level: they cannot be
    // grouped with anything, and their pod cgroup keeps them apart.
    const bool owned = id.pod_known && !id.workload.empty();
    if (level == SeriesLevel::kPod || !owned) {
      l.cgroup = id.kind == "pod" ? path : ParentDir(path);
      l.pod = id.pod;
      return l;
    }
    if (level == SeriesLevel::kNamespace) {
      l.wk.clear();
      l.w.clear();
    }
    return l;
  }
  if (level == SeriesLevel::kNamespace) {
    l.cgroup = TopLevel(path);
    return l;
  }
  l.cgroup = UnitCgroupPath(path, id.systemd_unit);
  l.project = id.project;
  return l;
}

// What a row will look like, for counting series before building it.
struct Shape {
  uint32_t classes = 0;  // bit per traffic class with traffic
  bool tcp = false;
  std::set<std::string> zones;
  uint64_t cpu_ns = 0;
  uint64_t Series() const {
    return 4 + 4 * static_cast<uint64_t>(__builtin_popcount(classes)) +
           (tcp ? 4 : 0) + 2 * zones.size();
  }
};

bool HasTraffic(const NetStats& n) {
  return n.tx_bytes || n.rx_bytes || n.tx_packets || n.rx_packets;
}

bool HasTcp(const TcpStats& t) {
  return t.connects || t.accepts || t.closes || t.retransmits;
}

}  // namespace

absl::string_view SeriesLevelName(SeriesLevel level) {
  switch (level) {
    case SeriesLevel::kCgroup:
      return "cgroup";
    case SeriesLevel::kPod:
      return "pod";
    case SeriesLevel::kWorkload:
      return "workload";
    case SeriesLevel::kNamespace:
      return "namespace";
  }
  return "cgroup";
}

absl::StatusOr<std::optional<SeriesLevel>> ParseSeriesLevel(
    absl::string_view text) {
  if (text == "auto") return std::optional<SeriesLevel>();
  for (SeriesLevel l : {SeriesLevel::kCgroup, SeriesLevel::kPod,
                        SeriesLevel::kWorkload, SeriesLevel::kNamespace}) {
    if (text == SeriesLevelName(l)) return std::optional<SeriesLevel>(l);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("series level must be auto, cgroup, pod, workload or "
                   "namespace, not \"",
                   text.substr(0, 32), "\""));
}

uint64_t SeriesOfRow(const WorkloadRow& row) {
  uint64_t n = 2 * row.energy.size();
  if (row.bucket) return n;
  n += 4;
  for (const NetStats& c : row.net) n += HasTraffic(c) ? 4 : 0;
  if (HasTcp(row.tcp)) n += 4;
  return n;
}

WorkloadSeries::WorkloadSeries(WorkloadSeriesOptions options)
    : options_(options) {
  if (options_.fixed_level) level_ = *options_.fixed_level;
}

void WorkloadSeries::Update(Snapshot* s) {
  // Energy per cgroup id and for the buckets, cumulative per zone.
  absl::flat_hash_map<uint64_t, std::vector<const WorkloadEnergy*>> energy_of;
  std::vector<const WorkloadEnergy*> buckets;
  for (const WorkloadEnergy& we : s->energy.workloads) {
    if (we.cgroup_id != 0) {
      energy_of[we.cgroup_id].push_back(&we);
    } else {
      buckets.push_back(&we);
    }
  }
  std::set<std::string> bucket_zones;
  std::set<std::string> bucket_names;
  for (const WorkloadEnergy* we : buckets) {
    bucket_zones.insert(we->zone);
    bucket_names.insert(we->workload);
  }
  // The buckets, and __removed__ at its largest (every zone).
  std::set<std::string> removed_zones = bucket_zones;
  for (const auto& [zone, e] : removed_) removed_zones.insert(zone);
  for (const auto& [id, list] : energy_of) {
    for (const WorkloadEnergy* we : list) removed_zones.insert(we->zone);
  }
  const uint64_t bucket_series =
      2 * buckets.size() + 2 * removed_zones.size();

  // Series each level would make.
  constexpr int kLevels = 4;
  std::array<absl::flat_hash_map<std::string, Shape>, kLevels> shapes;
  auto levels_to_count = [&]() -> std::vector<SeriesLevel> {
    if (options_.fixed_level) return {*options_.fixed_level};
    return {SeriesLevel::kCgroup, SeriesLevel::kPod, SeriesLevel::kWorkload,
            SeriesLevel::kNamespace};
  }();
  std::array<uint64_t, kLevels> count{};
  for (SeriesLevel level : levels_to_count) {
    auto& m = shapes[static_cast<int>(level)];
    for (const CgroupStats& c : s->cgroups) {
      Shape& sh = m[LabelsAt(c, level).Key()];
      for (size_t k = 0; k < kNetClasses; ++k) {
        if (HasTraffic(c.net[k])) sh.classes |= 1u << k;
      }
      sh.tcp |= HasTcp(c.tcp);
      sh.cpu_ns += c.cpu_ns;
      if (auto it = energy_of.find(c.id); it != energy_of.end()) {
        for (const WorkloadEnergy* we : it->second) sh.zones.insert(we->zone);
      }
    }
    uint64_t n = bucket_series;
    for (const auto& [key, sh] : m) n += sh.Series();
    count[static_cast<int>(level)] = n;
  }

  // The level.
  const SeriesLevel before = level_;
  const uint64_t budget = options_.max_series;
  if (options_.fixed_level) {
    level_ = *options_.fixed_level;
  } else {
    auto finest_fitting = [&](int from, uint64_t limit) -> std::optional<int> {
      for (int l = from; l < kLevels; ++l) {
        if (count[l] <= limit) return l;
      }
      return std::nullopt;
    };
    int cur = static_cast<int>(level_);
    if (!level_chosen_) {
      cur = finest_fitting(0, budget).value_or(kLevels - 1);
    } else if (count[cur] > budget) {
      cur = finest_fitting(cur + 1, budget).value_or(kLevels - 1);
    } else {
      const auto limit = static_cast<uint64_t>(budget * kFinerFraction);
      if (auto finer = finest_fitting(0, limit); finer && *finer < cur) {
        cur = *finer;
      }
    }
    level_ = static_cast<SeriesLevel>(cur);
  }
  auto retire = [this](const RowState& st) {
    for (const auto& [zone, e] : st.energy) {
      RowEnergy& r = removed_[zone];
      r.zone = zone;
      r.dynamic_uj += e.dynamic_uj;
      r.idle_uj += e.idle_uj;
    }
  };
  if (level_chosen_ && level_ != before) {
    ++level_changes_;
    // New label sets: the old series end here, their energy to __removed__.
    for (const auto& [key, st] : rows_) retire(st);
    rows_.clear();
  }
  level_chosen_ = true;

  // Over budget even here: the rows with the least CPU share one row.
  auto& level_shapes = shapes[static_cast<int>(level_)];
  absl::flat_hash_map<std::string, bool> folded;
  uint64_t folded_rows = 0;
  if (count[static_cast<int>(level_)] > budget) {
    std::vector<std::pair<const std::string*, const Shape*>> order;
    for (const auto& [key, sh] : level_shapes) order.push_back({&key, &sh});
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      if (a.second->cpu_ns != b.second->cpu_ns) {
        return a.second->cpu_ns > b.second->cpu_ns;
      }
      return *a.first < *b.first;
    });
    std::set<std::string> all_zones = bucket_zones;
    for (const auto& [key, sh] : level_shapes) {
      all_zones.insert(sh.zones.begin(), sh.zones.end());
    }
    // Room for the __other__ row at its largest.
    const uint64_t other = 4 + 4 * kNetClasses + 4 + 2 * all_zones.size();
    uint64_t used = bucket_series + other;
    bool full = false;
    for (const auto& [key, sh] : order) {
      const uint64_t n = sh->Series();
      if (!full && used + n <= budget) {
        used += n;
      } else {
        full = true;  // keep the order stable: nothing smaller jumps in
        folded[*key] = true;
        ++folded_rows;
      }
    }
  }

  // Feed the rows with this interval's growth.
  ++generation_;
  for (auto& [key, st] : rows_) st.row.processes = 0;
  Labels other_labels;
  other_labels.cgroup = "__other__";
  const std::string other_key = other_labels.Key();
  for (const CgroupStats& c : s->cgroups) {
    // Its row would be replaced within a few intervals, taking only what it
    // uses from then on; held back, its first row gets all of it.
    if (c.identity.project_pending) continue;
    Labels l = LabelsAt(c, level_);
    std::string key = l.Key();
    if (!folded.empty() && folded.contains(key)) {
      l = other_labels;
      key = other_key;
    }
    auto [it, fresh] = rows_.try_emplace(key);
    RowState& st = it->second;
    if (fresh) {
      st.row.cgroup = l.cgroup;
      st.row.namespace_name = l.ns;
      st.row.pod = l.pod;
      st.row.container = l.container;
      st.row.workload_kind = l.wk;
      st.row.workload = l.w;
      st.row.project = l.project;
    }
    st.seen = generation_;
    Contribution& last = by_cgroup_[c.id];
    last.seen = generation_;
    WorkloadRow& r = st.row;
    r.cpu_ns += AdvanceCounter(last.cpu_ns, c.cpu_ns);
    r.syscalls += AdvanceCounter(last.syscalls, c.syscalls);
    r.syscall_errors += AdvanceCounter(last.errors, c.syscall_errors);
    r.processes += c.live_processes;
    for (size_t k = 0; k < kNetClasses; ++k) {
      r.net[k].tx_bytes +=
          AdvanceCounter(last.net[k].tx_bytes, c.net[k].tx_bytes);
      r.net[k].rx_bytes +=
          AdvanceCounter(last.net[k].rx_bytes, c.net[k].rx_bytes);
      r.net[k].tx_packets +=
          AdvanceCounter(last.net[k].tx_packets, c.net[k].tx_packets);
      r.net[k].rx_packets +=
          AdvanceCounter(last.net[k].rx_packets, c.net[k].rx_packets);
    }
    r.tcp.connects += AdvanceCounter(last.tcp.connects, c.tcp.connects);
    r.tcp.accepts += AdvanceCounter(last.tcp.accepts, c.tcp.accepts);
    r.tcp.closes += AdvanceCounter(last.tcp.closes, c.tcp.closes);
    r.tcp.retransmits +=
        AdvanceCounter(last.tcp.retransmits, c.tcp.retransmits);
    if (auto e = energy_of.find(c.id); e != energy_of.end()) {
      for (const WorkloadEnergy* we : e->second) {
        auto& [ld, li] = last.energy[we->zone];
        RowEnergy& re = st.energy[we->zone];
        re.zone = we->zone;
        re.dynamic_uj += AdvanceCounter(ld, we->dynamic_uj);
        re.idle_uj += AdvanceCounter(li, we->idle_uj);
      }
    }
  }
  for (const WorkloadEnergy* we : buckets) {
    Labels l;
    l.cgroup = we->workload;
    const std::string key = absl::StrCat("\x1e", l.Key());
    auto [it, fresh] = rows_.try_emplace(key);
    RowState& st = it->second;
    if (fresh) {
      st.row.bucket = true;
      st.row.cgroup = we->workload;
    }
    st.seen = generation_;
    Contribution& last = by_bucket_[we->workload];
    last.seen = generation_;
    auto& [ld, li] = last.energy[we->zone];
    RowEnergy& re = st.energy[we->zone];
    re.zone = we->zone;
    re.dynamic_uj += AdvanceCounter(ld, we->dynamic_uj);
    re.idle_uj += AdvanceCounter(li, we->idle_uj);
  }

  // Publish, and forget what left.
  WorkloadRows& out = s->rows;
  out = WorkloadRows();
  out.valid = true;
  out.level = std::string(SeriesLevelName(level_));
  out.budget = budget;
  out.folded_rows = folded_rows;
  out.level_changes = level_changes_;
  std::vector<const std::string*> keys;
  for (auto it = rows_.begin(); it != rows_.end();) {
    if (it->second.seen != generation_) {
      retire(it->second);
      rows_.erase(it++);
      continue;
    }
    keys.push_back(&it->first);
    ++it;
  }
  std::sort(keys.begin(), keys.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  out.rows.reserve(keys.size());
  for (const std::string* k : keys) {
    RowState& st = rows_[*k];
    WorkloadRow row = st.row;
    for (const auto& [zone, e] : st.energy) row.energy.push_back(e);
    out.series += SeriesOfRow(row);
    out.rows.push_back(std::move(row));
  }
  if (!removed_.empty()) {
    WorkloadRow row;
    row.bucket = true;
    row.cgroup = "__removed__";
    for (const auto& [zone, e] : removed_) row.energy.push_back(e);
    out.series += SeriesOfRow(row);
    out.rows.push_back(std::move(row));
  }
  for (auto it = by_cgroup_.begin(); it != by_cgroup_.end();) {
    if (it->second.seen != generation_) {
      by_cgroup_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = by_bucket_.begin(); it != by_bucket_.end();) {
    if (it->second.seen != generation_) {
      by_bucket_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace wattlens
