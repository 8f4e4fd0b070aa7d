// SPDX-License-Identifier: Apache-2.0
#include "collector/events.h"

#include <algorithm>

namespace wattlens::collector {

bool Subscription::Next(wattlens::v1::WatchResponse* out,
                        absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closed_ || !queue_.empty() || lost_unreported_ > 0;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (lost_unreported_ > 0) {
    out->Clear();
    out->mutable_lost_events()->set_count(lost_unreported_);
    lost_unreported_ = 0;
    return true;
  }
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

void Subscription::Push(const wattlens::v1::WatchResponse& event) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  if (queue_.size() >= capacity_) {
    ++lost_;
    ++lost_unreported_;
    return;
  }
  queue_.push_back(event);
}

void Subscription::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

uint64_t Subscription::lost() const {
  absl::MutexLock lock(&mu_);
  return lost_;
}

std::shared_ptr<Subscription> EventHub::Subscribe(size_t capacity,
                                                  bool include_reports) {
  auto sub = std::make_shared<Subscription>(capacity);
  absl::MutexLock lock(&mu_);
  subs_.push_back({sub, include_reports});
  return sub;
}

void EventHub::Unsubscribe(const std::shared_ptr<Subscription>& sub) {
  absl::MutexLock lock(&mu_);
  auto it = std::find_if(subs_.begin(), subs_.end(),
                         [&](const Entry& e) { return e.sub == sub; });
  if (it != subs_.end()) {
    lost_from_closed_ += it->sub->lost();
    subs_.erase(it);
  }
}

void EventHub::Publish(const wattlens::v1::WatchResponse& event,
                       bool is_report) {
  absl::MutexLock lock(&mu_);
  for (const Entry& e : subs_) {
    if (is_report && !e.include_reports) continue;
    e.sub->Push(event);
  }
}

bool EventHub::HasReportSubscribers() const {
  absl::MutexLock lock(&mu_);
  return std::any_of(subs_.begin(), subs_.end(),
                     [](const Entry& e) { return e.include_reports; });
}

uint64_t EventHub::TotalLost() const {
  absl::MutexLock lock(&mu_);
  uint64_t total = lost_from_closed_;
  for (const Entry& e : subs_) total += e.sub->lost();
  return total;
}

size_t EventHub::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subs_.size();
}

}  // namespace wattlens::collector
