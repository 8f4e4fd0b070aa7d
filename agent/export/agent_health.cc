// SPDX-License-Identifier: Apache-2.0
#include "agent/export/agent_health.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace wattlens {
namespace {

// Readiness means the core sources count. Network is optional: a kernel
// that cannot count its bytes leaves it degraded (source_up 0, with the
// reason), and the node still serves what it measures.
constexpr const char* kRequiredSources[] = {"syscalls", "sched"};

}  // namespace

void AddAgentHealthChecks(HealthChecks& checks, const SnapshotStore& store,
                          const Clock& clock, absl::Duration interval) {
  const int64_t interval_ns = absl::ToInt64Nanoseconds(interval);
  // The snapshot's own time, not a probe-driven ProgressCheck: exact however
  // rarely the kubelet probes. Before the first snapshot, from registration.
  const int64_t live_ns = std::max<int64_t>(5 * interval_ns, 30'000'000'000);
  const int64_t start_ns = clock.MonotonicNs();
  checks.Add(
      HealthProbe::kLiveness, "drain", [&store, &clock, live_ns, start_ns] {
        auto s = store.Latest();
        const int64_t idle =
            clock.MonotonicNs() - (s ? s->monotonic_ns : start_ns);
        if (idle <= live_ns) return absl::OkStatus();
        return absl::UnavailableError(
            absl::StrCat("no snapshot published for ", idle / 1'000'000'000,
                         " s (limit ", live_ns / 1'000'000'000, " s)"));
      });

  const int64_t fresh_ns = std::max<int64_t>(3 * interval_ns, 5'000'000'000);
  checks.Add(HealthProbe::kReadiness, "snapshot", [&store, &clock, fresh_ns] {
    auto s = store.Latest();
    if (!s) return absl::UnavailableError("no snapshot published yet");
    const int64_t age = clock.MonotonicNs() - s->monotonic_ns;
    if (age > fresh_ns) {
      return absl::UnavailableError(
          absl::StrCat("newest snapshot is ", age / 1'000'000,
                       " ms old (limit ", fresh_ns / 1'000'000, " ms)"));
    }
    return absl::OkStatus();
  });
  checks.Add(HealthProbe::kReadiness, "sources", [&store] {
    auto s = store.Latest();
    if (!s) return absl::UnavailableError("no snapshot published yet");
    std::string down;
    for (const char* name : kRequiredSources) {
      auto it = std::find_if(
          s->self.sources.begin(), s->self.sources.end(),
          [name](const SourceHealth& h) { return h.source == name; });
      if (it == s->self.sources.end()) {
        absl::StrAppend(&down, down.empty() ? "" : "; ", name, ": missing");
      } else if (!it->healthy) {
        absl::StrAppend(&down, down.empty() ? "" : "; ", name, ": ",
                        it->last_error.empty() ? "down" : it->last_error);
      }
    }
    if (!down.empty()) return absl::UnavailableError(down);
    return absl::OkStatus();
  });
}

}  // namespace wattlens
