// SPDX-License-Identifier: Apache-2.0
// The collector's /healthz and /readyz checks (agent/common/health_http.h),
// served on the metrics port (9812): its gRPC port requires client
// certificates, which kubelet gRPC probes cannot present.
//
// Liveness ("ticker"): the node-state ticker keeps ticking; it takes the
// cluster state's locks, so a deadlock there fails it after
// max(10 x tick period, 30 s). Readiness: the gRPC server is serving (not
// shutting down) and, with a store, the last store commit succeeded.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"
#include "agent/common/clock.h"
#include "agent/common/health_http.h"
#include "collector/store.h"

namespace wattlens::collector {

struct CollectorHealthInputs {
  const std::atomic<uint64_t>* ticks = nullptr;  // null: no ticker (tests)
  absl::Duration tick_period;
  const std::atomic<bool>* serving = nullptr;
  const Store* store = nullptr;  // null: memory only
};

// Everything in `in` and `clock` must outlive `checks`' use.
void AddCollectorHealthChecks(HealthChecks& checks, CollectorHealthInputs in,
                              const Clock& clock);

}  // namespace wattlens::collector
