// SPDX-License-Identifier: Apache-2.0
// Prometheus exposition of the latest Snapshot (prometheus-cpp Collectable).
// Rendering reads one immutable snapshot, so every scrape is consistent
// within an interval and never blocks the aggregator.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/state/snapshot.h"
#include "agent/state/snapshot_store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace wattlens {

struct ExpositionOptions {
  // Per-process series (pid, comm, cgroup labels) for the top N processes by
  // CPU; 0 disables them (the default: pids make unbounded label sets).
  size_t process_top_n = 0;
  std::string version = WATTLENS_VERSION;
  std::string revision = "unknown";
};

std::vector<prometheus::MetricFamily> RenderSnapshot(
    const Snapshot& s, const ExpositionOptions& options);

// Text format 0.0.4, as /metrics serves it.
std::string RenderSnapshotText(const Snapshot& s,
                               const ExpositionOptions& options);

class SnapshotCollectable final : public prometheus::Collectable {
 public:
  SnapshotCollectable(const SnapshotStore* store, ExpositionOptions options)
      : store_(store), options_(std::move(options)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const SnapshotStore* store_;
  ExpositionOptions options_;
};

}  // namespace wattlens
