// SPDX-License-Identifier: Apache-2.0
// IngestService: one bidirectional stream per agent on gRPC's callback API,
// so ten thousand streams need no thread each. A report is validated, checked
// against the peer's certificate identity, applied to ClusterState and (with
// a store) acknowledged after its transaction commits.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "collector/cluster_state.h"
#include "collector/node_token.h"
#include "collector/store.h"
#include "collector/validate.h"
#include "wattlens/v1/ingest.grpc.pb.h"

namespace wattlens::collector {

struct IngestOptions {
  ReportLimits limits;
  // With TLS: every report's node_name must be the client certificate's CN
  // or one of its SANs; a stream without a client certificate is refused.
  bool require_peer_identity = true;
  // Set (--node_identity=token): the node comes from the stream's
  // service-account token (collector/node_token.h), not from the
  // certificate, which then only proves "a Wattlens agent".
  std::shared_ptr<NodeTokenVerifier> node_tokens;
  // Reports applied but not yet durable per stream before reading pauses.
  int max_unacked_per_stream = 256;
};

// Lock-free histogram of ingest lag: collector wall clock when a report is
// acknowledged minus the report's own time.
class LagHistogram {
 public:
  static constexpr std::array<double, 10> kBounds = {0.01, 0.05, 0.1, 0.5, 1,
                                                     2,    5,    10,  30,  60};
  void Observe(double seconds) {
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(static_cast<int64_t>(seconds * 1e6),
                      std::memory_order_relaxed);
  }
  // Non-cumulative count of bucket i (i == kBounds.size(): +Inf).
  uint64_t Count(size_t i) const {
    return counts_[i].load(std::memory_order_relaxed);
  }
  double SumSeconds() const {
    return static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> counts_{};
  std::atomic<int64_t> sum_us_{0};
};

struct IngestCounters {
  RejectCounters rejected;
  // Workloads left out of otherwise accepted reports.
  WorkloadRefusalCounters refused_workloads;
  LagHistogram lag;
  std::atomic<int64_t> active_streams{0};
  std::atomic<uint64_t> streams_total{0};
};

class IngestServiceImpl final
    : public wattlens::v1::IngestService::CallbackService {
 public:
  IngestServiceImpl(ClusterState& state, Store* store, IngestOptions options,
                    IngestCounters& counters, const Clock& clock)
      : state_(state),
        store_(store),
        options_(options),
        counters_(counters),
        clock_(clock) {}

  grpc::ServerBidiReactor<wattlens::v1::UploadRequest,
                          wattlens::v1::UploadResponse>*
  Upload(grpc::CallbackServerContext* context) override;

 private:
  friend class UploadReactor;
  ClusterState& state_;
  Store* const store_;
  const IngestOptions options_;
  IngestCounters& counters_;
  const Clock& clock_;
};

}  // namespace wattlens::collector
