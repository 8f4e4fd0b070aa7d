// SPDX-License-Identifier: Apache-2.0
#include "collector/remote_write/queue.h"

#include <snappy.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace wattlens::collector::remote_write {

using wattlens::remotewrite::v1::TimeSeries;
using wattlens::remotewrite::v1::WriteRequest;

const char* DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kQueueFull:
      return "queue_full";
    case DropReason::kRejected:
      return "rejected";
    case DropReason::kShutdown:
      return "shutdown";
    default:
      return "unknown";
  }
}

const char* RetryReasonName(RetryReason r) {
  switch (r) {
    case RetryReason::kServerError:
      return "server_error";
    case RetryReason::kTooManyRequests:
      return "too_many_requests";
    case RetryReason::kNetwork:
      return "network";
    default:
      return "unknown";
  }
}

SendQueue::SendQueue(QueueOptions options, std::unique_ptr<HttpPoster> poster)
    : options_(options), poster_(std::move(poster)) {}

SendQueue::~SendQueue() { Stop(); }

void SendQueue::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void SendQueue::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (const Request& r : queue_) {
    Drop(DropReason::kShutdown, r.samples);
    queued_samples_ -= r.samples;
  }
  queue_.clear();
  stats_.queued_samples = queued_samples_;
}

void SendQueue::Drop(DropReason reason, size_t samples) {
  stats_.dropped_samples[static_cast<size_t>(reason)].fetch_add(
      samples, std::memory_order_relaxed);
}

void SendQueue::SetError(std::string e) {
  absl::MutexLock lock(&mu_);
  last_error_ = std::move(e);
}

std::string SendQueue::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void SendQueue::Enqueue(std::vector<TimeSeries> series) {
  const size_t per = std::max<size_t>(1, options_.max_samples_per_send);
  std::vector<Request> requests;
  for (size_t i = 0; i < series.size(); i += per) {
    WriteRequest wr;
    Request r;
    const size_t end = std::min(series.size(), i + per);
    for (size_t j = i; j < end; ++j) {
      for (const auto& s : series[j].samples()) {
        r.max_timestamp_ms = std::max(r.max_timestamp_ms, s.timestamp());
        ++r.samples;
      }
      *wr.add_timeseries() = std::move(series[j]);
    }
    std::string raw;
    wr.SerializeToString(&raw);
    snappy::Compress(raw.data(), raw.size(), &r.body);
    requests.push_back(std::move(r));
  }
  absl::MutexLock lock(&mu_);
  for (Request& r : requests) {
    if (stopping_) {
      Drop(DropReason::kShutdown, r.samples);
      continue;
    }
    queued_samples_ += r.samples;
    queue_.push_back(std::move(r));
    // Evict from the front, but never the request being sent, nor the one
    // just added (a snapshot larger than the capacity still goes out).
    const size_t first = in_flight_ ? 1 : 0;
    while (queued_samples_ > options_.capacity_samples &&
           queue_.size() > first + 1) {
      auto victim = queue_.begin() + first;
      Drop(DropReason::kQueueFull, victim->samples);
      queued_samples_ -= victim->samples;
      queue_.erase(victim);
    }
  }
  stats_.queued_samples = queued_samples_;
}

void SendQueue::Run() {
  for (;;) {
    Request r;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SendQueue::HasWorkOrStopping));
      if (stopping_) return;
      // The head stays in the queue (it counts against the capacity) but
      // is marked in flight so that eviction skips it.
      in_flight_ = true;
      r = queue_.front();
    }
    Deliver(r);
    absl::MutexLock lock(&mu_);
    in_flight_ = false;
    queued_samples_ -= r.samples;
    queue_.pop_front();
    stats_.queued_samples = queued_samples_;
  }
}

void SendQueue::Deliver(const Request& r) {
  absl::Duration backoff = options_.min_backoff;
  for (;;) {
    absl::StatusOr<int> code = poster_->Post(r.body);
    RetryReason reason;
    if (code.ok()) {
      stats_.last_status = *code;
      if (*code >= 200 && *code < 300) {
        stats_.sent_samples.fetch_add(r.samples, std::memory_order_relaxed);
        stats_.sent_requests.fetch_add(1, std::memory_order_relaxed);
        int64_t prev = stats_.last_sent_timestamp_ms.load();
        while (prev < r.max_timestamp_ms &&
               !stats_.last_sent_timestamp_ms.compare_exchange_weak(
                   prev, r.max_timestamp_ms)) {
        }
        return;
      }
      if (*code == 429) {
        reason = RetryReason::kTooManyRequests;
      } else if (*code >= 500 && *code < 600) {
        reason = RetryReason::kServerError;
      } else {
        // The receiver will never accept this request (bad samples, auth,
        // wrong path): retrying would only block the queue behind it.
        Drop(DropReason::kRejected, r.samples);
        const std::string e =
            absl::StrCat("HTTP ", *code, ": ", r.samples, " samples dropped");
        spdlog::warn("remote write: {}", e);
        SetError(e);
        return;
      }
      SetError(absl::StrCat("HTTP ", *code, ": retrying"));
    } else {
      stats_.last_status = 0;
      reason = RetryReason::kNetwork;
      SetError(std::string(code.status().message()));
    }
    stats_.retries[static_cast<size_t>(reason)].fetch_add(
        1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    // Backoff is the only wait here; stopping ends it early.
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), backoff)) {
      Drop(DropReason::kShutdown, r.samples);
      return;
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

bool SendQueue::WaitIdleForTest(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(this, &SendQueue::Idle), timeout);
}

}  // namespace wattlens::collector::remote_write
