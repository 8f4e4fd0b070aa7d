// SPDX-License-Identifier: Apache-2.0
// /healthz (liveness) and /readyz (readiness) for Kubernetes probes, served
// on the same port as /metrics by the prometheus-cpp exposer (civetweb).
//
// A process registers named checks; a probe runs every check of its kind
// and answers 200 when all pass, 503 otherwise, with one line per check
// ("[+]name ok" / "[-]name failed: reason", as the Kubernetes API server
// does). Checks run on civetweb's threads, so they must be thread-safe and
// cheap: read atomics or published snapshots, never take a hot-path lock.
//
// Why HTTP on the metrics port and not gRPC probes: the agent serves no gRPC
// on TCP, and the collector's gRPC port requires client certificates, which
// the kubelet's plaintext gRPC probe cannot present.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/common/clock.h"

namespace prometheus {
class Exposer;
}

namespace wattlens {

enum class HealthProbe { kLiveness, kReadiness };

class HealthChecks {
 public:
  using Check = std::function<absl::Status()>;

  struct Result {
    bool healthy = true;
    std::string body;  // one line per check, then the verdict
  };

  void Add(HealthProbe probe, std::string name, Check check)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Runs every check of `probe`, in registration order.
  Result Evaluate(HealthProbe probe) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    HealthProbe probe;
    std::string name;
    Check check;
  };
  mutable absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Healthy while a counter keeps advancing: fails when `value` has not changed
// for longer than `window` (first measured from construction). Changes are
// seen when a probe calls Observe, so a stall is reported up to one probe
// period late. Used for "the uploader gets acks" and "the ticker ticks".
class ProgressCheck {
 public:
  ProgressCheck(const Clock& clock, int64_t window_ns, std::string what);
  // Call from a check: `value` is the counter's current reading.
  absl::Status Observe(uint64_t value) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const Clock& clock_;
  const int64_t window_ns_;
  const std::string what_;
  absl::Mutex mu_;
  uint64_t last_value_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_change_ns_ ABSL_GUARDED_BY(mu_);
};

// How the HTTP server holds up against slow clients. civetweb gives each
// connection a worker thread until its request is read, so a slow client
// (slowloris) holds a worker for up to `request_timeout`; probes are served
// promptly as long as fewer slow connections are open than workers. Idle
// workers cost a blocked thread each (stack pages are touched lazily).
struct HttpServingOptions {
  int workers = 600;
  absl::Duration request_timeout = absl::Seconds(2);
};

// Starts a prometheus-cpp Exposer on `address` ("host:port"; port 0 picks a
// free one) that also answers GET/HEAD /healthz and /readyz from `checks`.
// `checks` must outlive the returned exposer (destroy the exposer first).
absl::StatusOr<std::unique_ptr<prometheus::Exposer>> StartExposerWithHealth(
    const std::string& address, const HealthChecks* checks,
    const HttpServingOptions& serving = {});

}  // namespace wattlens
