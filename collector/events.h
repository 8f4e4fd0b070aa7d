// SPDX-License-Identifier: Apache-2.0
// Fan-out of watch events to subscribers with bounded queues: a slow watcher
// loses events (counted and told in-band), never blocks ingest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "wattlens/v1/query.pb.h"

namespace wattlens::collector {

class Subscription {
 public:
  explicit Subscription(size_t capacity) : capacity_(capacity) {}
  // Waits up to `timeout` for the next event. Returns false on timeout or
  // when closed. A LostEvents message is produced first when events were
  // dropped since the last call.
  bool Next(wattlens::v1::WatchResponse* out, absl::Duration timeout);
  void Push(const wattlens::v1::WatchResponse& event);
  void Close();
  uint64_t lost() const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<wattlens::v1::WatchResponse> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t lost_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t lost_unreported_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class EventHub {
 public:
  std::shared_ptr<Subscription> Subscribe(size_t capacity,
                                          bool include_reports);
  void Unsubscribe(const std::shared_ptr<Subscription>& sub);
  // Report events go only to subscribers that asked for them.
  void Publish(const wattlens::v1::WatchResponse& event, bool is_report);
  bool HasReportSubscribers() const;
  uint64_t TotalLost() const;
  size_t subscribers() const;

 private:
  struct Entry {
    std::shared_ptr<Subscription> sub;
    bool include_reports;
  };
  mutable absl::Mutex mu_;
  std::vector<Entry> subs_ ABSL_GUARDED_BY(mu_);
  uint64_t lost_from_closed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace wattlens::collector
