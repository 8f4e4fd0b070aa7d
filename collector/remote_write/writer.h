// SPDX-License-Identifier: Apache-2.0
//
// Remote write of the collector's cluster-wide series (docs/remote-write.md).
// Every interval the writer asks the collector's own query for each
// workload's totals over [anchor, t), where t is the latest bucket boundary
// at least `delay` old, turns the answer into series (series.h) and queues
// them for the endpoint (queue.h). The anchor is the first such boundary
// after start; it moves forward (and the totals so far become the base the
// next answers add to) every `rebase_after`, capped at half the retention:
// that keeps the anchor inside the data the collector holds and bounds the
// buckets each snapshot sums. Data arriving later than that for buckets
// before the moved anchor is in the collector's queries but not in the
// written series.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/common/clock.h"
#include "collector/remote_write/http.h"
#include "collector/remote_write/queue.h"
#include "collector/remote_write/series.h"
#include "wattlens/v1/query.pb.h"

namespace wattlens::collector::remote_write {

struct RemoteWriteOptions {
  // http:// or https:// URL of the receiver's write endpoint; empty: off.
  std::string url;
  std::string bearer_token_file;
  std::string ca_file;
  // Snapshot period; zero: only CollectNow() (tests).
  absl::Duration interval = absl::Seconds(30);
  // How old a bucket boundary must be before it is written: reports of the
  // last interval have time to arrive.
  absl::Duration delay = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(30);
  // How long the anchor stays put (at most half the retention).
  absl::Duration rebase_after = absl::Hours(1);
  SeriesOptions series;
  QueueOptions queue;
};

// Refuses what cannot work: a URL that is not http(s), unreadable token or
// CA files, zero sizes, negative durations.
absl::Status ValidateRemoteWriteOptions(const RemoteWriteOptions& options);

// The collector's answer for a window (ClusterState::GetUsage).
using UsageFn = std::function<absl::StatusOr<wattlens::v1::GetUsageResponse>(
    const wattlens::v1::GetUsageRequest&)>;

class RemoteWriter {
 public:
  // `resolution_ns`/`retention_ns`: the collector's buckets. `poster`
  // overrides the HTTP client (tests).
  static absl::StatusOr<std::unique_ptr<RemoteWriter>> Create(
      RemoteWriteOptions options, UsageFn usage, int64_t resolution_ns,
      int64_t retention_ns, const Clock& clock,
      std::unique_ptr<HttpPoster> poster = nullptr);
  ~RemoteWriter();

  void Start();
  void Stop();

  // One snapshot now: queries, builds and queues. Nothing when no new
  // bucket boundary has passed since the last one.
  absl::Status CollectNow();

  const QueueStats& stats() const { return queue_->stats(); }
  std::string last_error() const { return queue_->last_error(); }
  // Start of the window the current values are summed over (ns since the
  // epoch), and the timestamp of the last snapshot queued.
  int64_t anchor_ns() const { return anchor_ns_.load(); }
  int64_t last_snapshot_ns() const { return last_ns_.load(); }
  uint64_t snapshot_errors() const { return snapshot_errors_.load(); }
  size_t admitted_workloads() const;
  bool WaitIdleForTest(absl::Duration timeout) {
    return queue_->WaitIdleForTest(timeout);
  }

 private:
  RemoteWriter(RemoteWriteOptions options, UsageFn usage, int64_t resolution_ns,
               int64_t retention_ns, const Clock& clock,
               std::unique_ptr<HttpPoster> poster);
  void Loop();
  int64_t BoundaryNs() const;

  const RemoteWriteOptions options_;
  const UsageFn usage_;
  const int64_t resolution_ns_;
  const int64_t rebase_after_ns_;
  const Clock& clock_;
  std::unique_ptr<SendQueue> queue_;

  mutable absl::Mutex build_mu_;  // one snapshot at a time
  SeriesBuilder builder_ ABSL_GUARDED_BY(build_mu_);
  std::atomic<int64_t> anchor_ns_{0};
  std::atomic<int64_t> last_ns_{0};
  std::atomic<uint64_t> snapshot_errors_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace wattlens::collector::remote_write
