// SPDX-License-Identifier: Apache-2.0
// The agent's /healthz and /readyz checks (agent/common/health_http.h).
//
// Liveness ("drain"): the drain loop keeps publishing snapshots; a wedged
// loop fails it after max(5 x interval, 30 s) and the kubelet restarts the
// pod. Readiness: the newest snapshot is fresh (max(3 x interval, 5 s)), the
// core BPF sources (syscalls, sched) are up and network is not down. Power
// sources are left to metrics and alerts (wattlens_agent_source_state): a
// node without power meters still measures CPU, syscalls and network, and
// should not hold up a DaemonSet rollout.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "agent/common/clock.h"
#include "agent/common/health_http.h"
#include "agent/state/snapshot_store.h"

namespace wattlens {

// OK when every source readiness needs is in a state it allows; otherwise
// names each that is not, with its state and reason code.
absl::Status SourcesReady(const std::vector<SourceHealth>& sources);

// `store` and `clock` must outlive `checks`' use.
void AddAgentHealthChecks(HealthChecks& checks, const SnapshotStore& store,
                          const Clock& clock, absl::Duration interval);

}  // namespace wattlens
