// SPDX-License-Identifier: Apache-2.0
//
// The series the collector remote-writes: its per-workload cluster totals,
// one sample per series per snapshot, built from a GetUsage answer
// (GROUP_BY_WORKLOAD) over [anchor, t). The values are that answer's numbers
// unchanged, so what a receiver stores is what `wattlens top --since anchor
// --until t` shows.
//
// Cardinality is bounded by max_workloads: the first workloads seen (in the
// answer's order, costliest first) are admitted for the writer's lifetime;
// later ones are summed into workload="__other__". Admission is sticky so
// that every written series, __other__ included, only grows: a workload
// never moves between its own series and __other__.
//
// Rebase() folds the values written so far into a per-series base; the
// writer calls it when it moves its anchor forward, so the anchor never
// falls out of the collector's retention.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "wattlens/remotewrite/v1/remote_write.pb.h"
#include "wattlens/v1/query.pb.h"

namespace wattlens::collector::remote_write {

inline constexpr char kOtherWorkload[] = "__other__";

struct SeriesOptions {
  // Value of the `cluster` label on every series; empty: no such label.
  std::string cluster;
  // Workloads with series of their own; the rest go to __other__.
  size_t max_workloads = 1000;
};

// One metric of a workload row: its name, the label that tells it apart
// from its siblings (resource or scope; empty for none) and where its value
// comes from in a Usage.
struct MetricSpec {
  const char* name;
  const char* label_name;
  const char* label_value;
  double (*value)(const wattlens::v1::Usage&);
  // Only when the answer carries a currency (there is a cost model).
  bool priced;
  // Carries the currency as a label (money).
  bool money;
};
inline constexpr size_t kMetricCount = 12;
const std::array<MetricSpec, kMetricCount>& Metrics();

class SeriesBuilder {
 public:
  explicit SeriesBuilder(SeriesOptions options);

  // The series of one snapshot at `timestamp_ms`, labels sorted.
  std::vector<wattlens::remotewrite::v1::TimeSeries> Build(
      const wattlens::v1::GetUsageResponse& usage, int64_t timestamp_ms);
  // The values last built become the base the next answers add to.
  void Rebase();

  size_t admitted() const { return admitted_.size(); }
  // Workload rows summed into __other__ by the last Build.
  size_t folded() const { return folded_; }

 private:
  using Values = std::array<double, kMetricCount>;
  struct Slot {
    std::string ns, kind, workload;
    Values base{};
    Values last{};
  };
  void Emit(const Slot& slot, const std::string& currency, bool priced,
            int64_t timestamp_ms,
            std::vector<wattlens::remotewrite::v1::TimeSeries>* out) const;

  const SeriesOptions options_;
  // Admitted workloads by key, plus __other__ (not counted as admitted).
  absl::flat_hash_map<std::string, Slot> admitted_;
  Slot other_;
  // __other__ is written from the first snapshot that folds a workload on.
  bool other_written_ = false;
  size_t folded_ = 0;
};

// `s` with every invalid UTF-8 sequence replaced by U+FFFD (receivers refuse
// a whole request over one bad label value).
std::string SanitizeUtf8(const std::string& s);

}  // namespace wattlens::collector::remote_write
