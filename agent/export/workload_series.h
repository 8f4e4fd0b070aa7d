// SPDX-License-Identifier: Apache-2.0
// The rows behind every wattlens_workload_* family on /metrics, with the
// series budget that bounds their cardinality (docs/identity.md).
//
// Levels, finest first:
//   cgroup     one row per cgroup (container, pod sandbox, unit, ...)
//   pod        the cgroups of a pod together; host cgroups by systemd unit
//   workload   the pods of an owner (Deployment/web) together
//   namespace  a namespace's pods together (per project); host cgroups by
//              top-level slice
// With level "auto" (the default) the finest level whose rows fit in
// `max_series` is used: the agent goes coarser at once when the current
// level no longer fits, and finer again only when the finer level fits in
// 80% of the budget (hysteresis, so a level does not flap). If even the
// namespace level does not fit, the rows with the least CPU are folded into
// one row, cgroup="__other__", so the bound always holds.
//
// Rows are stateful: each holds its own cumulative counters, fed with the
// deltas of its member cgroups. A cgroup that goes away (a restarted
// container) leaves its totals in its pod's row, so no series ever goes
// backwards; a cgroup that moves to another row (pod metadata arrived, a
// level change) adds only its growth from then on, so nothing is counted
// twice. A row whose members are all gone is exported one last time and
// then dropped; its energy moves to the cgroup="__removed__" row (as do all
// rows' at a level change), so the workload energy series always sum to
// the node's energy.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/state/snapshot.h"

namespace wattlens {

enum class SeriesLevel { kCgroup = 0, kPod = 1, kWorkload = 2, kNamespace = 3 };

absl::string_view SeriesLevelName(SeriesLevel level);
// "cgroup", "pod", "workload", "namespace"; "auto" gives nullopt.
absl::StatusOr<std::optional<SeriesLevel>> ParseSeriesLevel(
    absl::string_view text);

struct WorkloadSeriesOptions {
  std::optional<SeriesLevel> fixed_level;  // nullopt: auto
  // The documented bound: at most this many wattlens_workload_* series.
  uint64_t max_series = 2000;
};

// The path up to and including the component `unit` names (the deepest
// one): sub-cgroups of a service count as the service. `path` when absent.
std::string UnitCgroupPath(const std::string& path, const std::string& unit);

// Series a row makes: cpu, syscalls, errors, processes; 4 per traffic class
// with traffic; 4 TCP series once it has TCP activity; 2 per energy zone.
uint64_t SeriesOfRow(const WorkloadRow& row);

class WorkloadSeries {
 public:
  explicit WorkloadSeries(WorkloadSeriesOptions options = {});

  // Builds snapshot->rows from its cgroups (identity filled) and energy.
  void Update(Snapshot* s);

  SeriesLevel level() const { return level_; }

 private:
  // The cumulative values a cgroup (or bucket) had last time: the next
  // interval adds only the growth past them, to whichever row it feeds.
  struct Contribution {
    uint64_t seen = 0;
    uint64_t cpu_ns = 0, syscalls = 0, errors = 0;
    std::array<NetStats, kNetClasses> net{};
    TcpStats tcp;
    std::map<std::string, std::pair<uint64_t, uint64_t>> energy;  // zone
  };

  struct RowState {
    WorkloadRow row;  // energy is kept in `energy` until published
    std::map<std::string, RowEnergy> energy;
    uint64_t seen = 0;
  };

  WorkloadSeriesOptions options_;
  uint64_t generation_ = 0;
  SeriesLevel level_ = SeriesLevel::kCgroup;
  bool level_chosen_ = false;
  uint64_t level_changes_ = 0;
  absl::flat_hash_map<std::string, RowState> rows_;
  absl::flat_hash_map<uint64_t, Contribution> by_cgroup_;
  absl::flat_hash_map<std::string, Contribution> by_bucket_;
  std::map<std::string, RowEnergy> removed_;  // by zone
};

}  // namespace wattlens
