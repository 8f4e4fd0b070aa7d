// SPDX-License-Identifier: Apache-2.0
#include "agent/export/agent_health.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace wattlens {
namespace {

// Readiness means the core sources count: syscalls up, and sched at least
// degraded (a failed harvest of running tasks delays their CPU time to their
// next switch, it loses none). Network is optional: a kernel that cannot
// load it, or count its bytes, leaves the node serving what it measures,
// said in wattlens_agent_source_state. Power and kubernetes are left to
// metrics and alerts.
struct Requirement {
  const char* source;
  SourceState worst_ready;
};
constexpr Requirement kRequiredSources[] = {
    {"syscalls", SourceState::kUp},
    {"sched", SourceState::kDegraded},
};

}  // namespace

absl::Status SourcesReady(const std::vector<SourceHealth>& sources) {
  std::string down;
  for (const Requirement& req : kRequiredSources) {
    auto it = std::find_if(
        sources.begin(), sources.end(),
        [&req](const SourceHealth& h) { return h.source == req.source; });
    if (it == sources.end()) {
      absl::StrAppend(&down, down.empty() ? "" : "; ", req.source,
                      ": missing");
    } else if (it->state > req.worst_ready) {
      absl::StrAppend(&down, down.empty() ? "" : "; ", req.source, ": ",
                      SourceStateName(it->state), " (",
                      HealthReasonName(it->reason), ")",
                      it->detail.empty() ? "" : ": ", it->detail);
    }
  }
  if (!down.empty()) return absl::UnavailableError(down);
  return absl::OkStatus();
}

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
    return SourcesReady(s->self.sources);
  });
}

}  // namespace wattlens
