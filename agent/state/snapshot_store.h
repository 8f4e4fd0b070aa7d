// SPDX-License-Identifier: Apache-2.0
// Single-writer, many-reader publication of the latest Snapshot. Readers get
// a shared_ptr they may hold as long as they like; the writer never waits.
#pragma once

#include <atomic>
#include <memory>

#include "agent/state/snapshot.h"

namespace wattlens {

class SnapshotStore {
 public:
  void Publish(std::shared_ptr<const Snapshot> s) {
    latest_.store(std::move(s), std::memory_order_release);
  }
  // Null until the first interval completes.
  std::shared_ptr<const Snapshot> Latest() const {
    return latest_.load(std::memory_order_acquire);
  }

 private:
  std::atomic<std::shared_ptr<const Snapshot>> latest_;
};

}  // namespace wattlens
