// SPDX-License-Identifier: Apache-2.0
#include "collector/remote_write/series.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace wattlens::collector::remote_write {
namespace {

using wattlens::remotewrite::v1::TimeSeries;
using wattlens::v1::Usage;

std::string KeyOf(const std::string& ns, const std::string& kind,
                  const std::string& workload) {
  return absl::StrCat(ns, "\x1f", kind, "\x1f", workload);
}

}  // namespace

const std::array<MetricSpec, kMetricCount>& Metrics() {
  // Counts go out as the integers they are (exact in a double below 2^53);
  // seconds, joules, money and grams as the answer computed them.
  static const std::array<MetricSpec, kMetricCount> kMetrics = {{
      {"wattlens_cluster_workload_cpu_seconds_total", "", "",
       [](const Usage& u) { return u.cpu_seconds(); }, false, false},
      {"wattlens_cluster_workload_syscalls_total", "", "",
       [](const Usage& u) { return static_cast<double>(u.syscalls()); }, false,
       false},
      {"wattlens_cluster_workload_network_transmit_bytes_total", "", "",
       [](const Usage& u) {
         return static_cast<double>(u.network_transmit_bytes());
       },
       false, false},
      {"wattlens_cluster_workload_network_receive_bytes_total", "", "",
       [](const Usage& u) {
         return static_cast<double>(u.network_receive_bytes());
       },
       false, false},
      {"wattlens_cluster_workload_energy_joules_total", "", "",
       [](const Usage& u) { return u.energy_joules(); }, false, false},
      {"wattlens_cluster_workload_cost_total", "resource", "cpu",
       [](const Usage& u) { return u.cost().cpu(); }, true, true},
      {"wattlens_cluster_workload_cost_total", "resource", "ram",
       [](const Usage& u) { return u.cost().ram(); }, true, true},
      {"wattlens_cluster_workload_cost_total", "resource", "gpu",
       [](const Usage& u) { return u.cost().gpu(); }, true, true},
      {"wattlens_cluster_workload_cost_total", "resource", "network",
       [](const Usage& u) { return u.cost().network(); }, true, true},
      {"wattlens_cluster_workload_cost_total", "resource", "energy",
       [](const Usage& u) { return u.cost().energy(); }, true, true},
      {"wattlens_cluster_workload_carbon_grams_total", "scope", "operational",
       [](const Usage& u) { return u.carbon().operational_grams(); }, true,
       false},
      {"wattlens_cluster_workload_carbon_grams_total", "scope", "embodied",
       [](const Usage& u) { return u.carbon().embodied_grams(); }, true, false},
  }};
  return kMetrics;
}

SeriesBuilder::SeriesBuilder(SeriesOptions options)
    : options_(std::move(options)) {
  other_.workload = kOtherWorkload;
}

std::vector<TimeSeries> SeriesBuilder::Build(
    const wattlens::v1::GetUsageResponse& usage, int64_t timestamp_ms) {
  const auto& metrics = Metrics();
  for (auto& [_, slot] : admitted_) slot.last = slot.base;
  Values other = other_.base;
  folded_ = 0;
  for (const auto& row : usage.rows()) {
    const auto& k = row.key();
    std::string key = KeyOf(k.namespace_(), k.workload_kind(), k.workload());
    auto it = admitted_.find(key);
    if (it == admitted_.end() && admitted_.size() < options_.max_workloads) {
      Slot slot;
      slot.ns = k.namespace_();
      slot.kind = k.workload_kind();
      slot.workload = k.workload();
      it = admitted_.emplace(std::move(key), std::move(slot)).first;
    }
    Values& into = it == admitted_.end() ? other : it->second.last;
    if (it == admitted_.end()) ++folded_;
    for (size_t m = 0; m < kMetricCount; ++m) {
      into[m] += metrics[m].value(row.usage());
    }
  }
  if (folded_ > 0 || other != other_.base) other_written_ = true;
  other_.last = other;

  std::vector<const std::pair<const std::string, Slot>*> sorted;
  sorted.reserve(admitted_.size());
  for (const auto& entry : admitted_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  const bool priced = !usage.currency().empty();
  std::vector<TimeSeries> out;
  out.reserve((sorted.size() + 1) * kMetricCount);
  for (const auto* entry : sorted) {
    Emit(entry->second, usage.currency(), priced, timestamp_ms, &out);
  }
  if (other_written_)
    Emit(other_, usage.currency(), priced, timestamp_ms, &out);
  return out;
}

void SeriesBuilder::Emit(const Slot& slot, const std::string& currency,
                         bool priced, int64_t timestamp_ms,
                         std::vector<TimeSeries>* out) const {
  const auto& metrics = Metrics();
  const std::string ns = SanitizeUtf8(slot.ns);
  const std::string kind = SanitizeUtf8(slot.kind);
  const std::string workload = SanitizeUtf8(slot.workload);
  const std::string cur = SanitizeUtf8(currency);
  for (size_t m = 0; m < kMetricCount; ++m) {
    const MetricSpec& spec = metrics[m];
    if (spec.priced && !priced) continue;
    std::vector<std::pair<std::string_view, std::string_view>> labels;
    labels.emplace_back("__name__", spec.name);
    // An empty value is the same as no label to every receiver, and the
    // protocol forbids sending one.
    auto add = [&](std::string_view name, std::string_view value) {
      if (!value.empty()) labels.emplace_back(name, value);
    };
    add("cluster", options_.cluster);
    add("namespace", ns);
    add("workload_kind", kind);
    add("workload", workload);
    if (spec.label_name[0] != '\0') add(spec.label_name, spec.label_value);
    if (spec.money) add("currency", cur);
    std::sort(labels.begin(), labels.end());
    TimeSeries ts;
    for (const auto& [name, value] : labels) {
      auto* l = ts.add_labels();
      l->set_name(std::string(name));
      l->set_value(std::string(value));
    }
    auto* s = ts.add_samples();
    s->set_value(slot.last[m]);
    s->set_timestamp(timestamp_ms);
    out->push_back(std::move(ts));
  }
}

void SeriesBuilder::Rebase() {
  for (auto& [_, slot] : admitted_) slot.base = slot.last;
  other_.base = other_.last;
}

std::string SanitizeUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++p;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      min = 0x10000;
    }
    bool ok = len > 0 && static_cast<size_t>(end - p) >= len;
    uint32_t cp = ok ? (c & (0x7f >> len)) : 0;
    for (size_t i = 1; ok && i < len; ++i) {
      ok = (p[i] & 0xc0) == 0x80;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if (ok && (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))) {
      ok = false;
    }
    if (ok) {
      out.append(reinterpret_cast<const char*>(p), len);
      p += len;
    } else {
      out.append("\xef\xbf\xbd");
      ++p;
    }
  }
  return out;
}

}  // namespace wattlens::collector::remote_write
