// SPDX-License-Identifier: Apache-2.0
//
// The send queue of one remote-write endpoint: encoded requests wait in a
// FIFO bounded by samples, one thread POSTs them in order (so every series'
// samples arrive in timestamp order), retrying the head request with
// exponential backoff on 5xx, 429 and no response, and dropping it on any
// other status (the receiver will never take it). When the queue is full the
// oldest waiting request is dropped: every snapshot carries cumulative
// totals, so a newer one supersedes it and only resolution is lost.
// Every dropped sample is counted by reason.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "collector/remote_write/http.h"
#include "wattlens/remotewrite/v1/remote_write.pb.h"

namespace wattlens::collector::remote_write {

enum class DropReason : int {
  kQueueFull = 0,  // evicted by newer snapshots while the receiver lagged
  kRejected,       // 4xx other than 429 (or another non-retryable status)
  kShutdown,       // still queued when the collector stopped
  kCount
};
const char* DropReasonName(DropReason r);

enum class RetryReason : int {
  kServerError = 0,  // 5xx
  kTooManyRequests,  // 429
  kNetwork,          // no response: connection, TLS, timeout
  kCount
};
const char* RetryReasonName(RetryReason r);

// Relaxed atomics, read by /metrics.
struct QueueStats {
  std::atomic<uint64_t> sent_samples{0};
  std::atomic<uint64_t> sent_requests{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(DropReason::kCount)>
      dropped_samples{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(RetryReason::kCount)>
      retries{};
  std::atomic<uint64_t> queued_samples{0};
  // Newest sample timestamp a receiver acknowledged (ms since the epoch).
  std::atomic<int64_t> last_sent_timestamp_ms{0};
  // HTTP status of the last response (0: none yet or no response).
  std::atomic<int> last_status{0};
};

struct QueueOptions {
  // Samples waiting or in flight; the oldest waiting requests are dropped
  // beyond it.
  size_t capacity_samples = 100'000;
  size_t max_samples_per_send = 2'000;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
};

class SendQueue {
 public:
  SendQueue(QueueOptions options, std::unique_ptr<HttpPoster> poster);
  ~SendQueue();

  void Start();
  // Stops after the request in flight (or its current backoff); whatever is
  // still queued is counted as dropped (shutdown).
  void Stop();

  // Splits `series` (one sample each) into requests, encodes and queues
  // them.
  void Enqueue(std::vector<wattlens::remotewrite::v1::TimeSeries> series);

  const QueueStats& stats() const { return stats_; }
  std::string last_error() const;
  // True once nothing is queued or in flight, false at the deadline.
  bool WaitIdleForTest(absl::Duration timeout);

 private:
  struct Request {
    std::string body;  // snappy-compressed WriteRequest
    size_t samples = 0;
    int64_t max_timestamp_ms = 0;
  };
  void Run();
  // Sends one request until it is delivered or dropped (or we stop).
  void Deliver(const Request& r);
  void Drop(DropReason reason, size_t samples);
  void SetError(std::string e);
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && !in_flight_;
  }

  const QueueOptions options_;
  const std::unique_ptr<HttpPoster> poster_;
  QueueStats stats_;

  mutable absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_samples_ ABSL_GUARDED_BY(mu_) = 0;  // incl. in flight
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace wattlens::collector::remote_write
