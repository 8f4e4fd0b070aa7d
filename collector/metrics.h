// SPDX-License-Identifier: Apache-2.0
// /metrics of the collector: self-metrics (nodes by state, ingest lag,
// rejected reports, store) and bounded cluster aggregates, computed at
// scrape time from the live state.
#pragma once

#include <vector>

#include "collector/cluster_state.h"
#include "collector/ingest_service.h"
#include "collector/remote_write/writer.h"
#include "collector/store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace wattlens::collector {

class CollectorMetrics final : public prometheus::Collectable {
 public:
  CollectorMetrics(const ClusterState& state, const IngestCounters& ingest,
                   const Store* store, size_t max_namespaces,
                   size_t max_workloads = 500,
                   const remote_write::RemoteWriter* remote_writer = nullptr)
      : state_(state),
        ingest_(ingest),
        store_(store),
        max_namespaces_(max_namespaces),
        max_workloads_(max_workloads),
        remote_writer_(remote_writer) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ClusterState& state_;
  const IngestCounters& ingest_;
  const Store* const store_;
  const size_t max_namespaces_;
  const size_t max_workloads_;
  const remote_write::RemoteWriter* const remote_writer_;
};

}  // namespace wattlens::collector
