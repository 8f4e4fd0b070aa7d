// SPDX-License-Identifier: Apache-2.0
#include "collector/health_http.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace wattlens::collector {
namespace {

// Whether the store's newest outcome was a failure, from its cumulative
// commit and failure counters: only failures advancing since the last look
// means the writes are failing now; a commit since then clears it.
class StoreOutcome {
 public:
  explicit StoreOutcome(const Store& store) : store_(store) {}
  absl::Status Check() {
    const uint64_t commits = store_.stats().commits.load();
    const uint64_t failures = store_.stats().failures.load();
    absl::MutexLock lock(&mu_);
    if (commits != commits_) {
      failing_ = false;
    } else if (failures != failures_) {
      failing_ = true;
    }
    commits_ = commits;
    failures_ = failures;
    if (!failing_) return absl::OkStatus();
    return absl::UnavailableError(
        absl::StrCat("store commits are failing (", failures,
                     " reports failed so far; see the collector log)"));
  }

 private:
  const Store& store_;
  absl::Mutex mu_;
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failures_ ABSL_GUARDED_BY(mu_) = 0;
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

void AddCollectorHealthChecks(HealthChecks& checks, CollectorHealthInputs in,
                              const Clock& clock) {
  if (in.ticks != nullptr) {
    auto ticks = std::make_shared<ProgressCheck>(
        clock,
        std::max<int64_t>(10 * absl::ToInt64Nanoseconds(in.tick_period),
                          30'000'000'000),
        "node-state ticker");
    checks.Add(HealthProbe::kLiveness, "ticker",
               [p = in.ticks, ticks] { return ticks->Observe(p->load()); });
  }
  if (in.serving != nullptr) {
    checks.Add(HealthProbe::kReadiness, "grpc", [p = in.serving] {
      if (p->load()) return absl::OkStatus();
      return absl::UnavailableError("gRPC server not serving");
    });
  }
  if (in.store != nullptr) {
    auto outcome = std::make_shared<StoreOutcome>(*in.store);
    checks.Add(HealthProbe::kReadiness, "store",
               [outcome] { return outcome->Check(); });
  }
}

}  // namespace wattlens::collector
