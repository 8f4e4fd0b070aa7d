// SPDX-License-Identifier: Apache-2.0
// Snapshot -> wattlens.v1.NodeReport, and the agent's local node API
// (NodeService) serving the same view for this node plus per-process detail.
// Must not depend on: collector/ (the agent never includes it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "agent/state/snapshot.h"
#include "wattlens/v1/node.grpc.pb.h"
#include "wattlens/v1/report.pb.h"

namespace wattlens {

struct NodeReportOptions {
  std::string node_name;
  // Agent start time in ns since the Unix epoch: a restart is a new epoch.
  uint64_t epoch = 0;
  std::string agent_version;
  // How often reports are sent (--upload_interval); 0: not stated.
  int64_t upload_interval_ns = 0;
  // The epoch's counters began this long before the agent started: it
  // adopted an earlier agent's pinned maps and counts on from that agent's
  // last acknowledged report (agent/state/restart_state.h), so the epoch's
  // wall time covers the outage too.
  uint64_t carried_ns = 0;
};

// Every cgroup of the snapshot becomes a workload with its cumulative
// counters, identity, requests, working set and allocation; the report's
// sequence is the snapshot's (strictly increasing within an epoch).
wattlens::v1::NodeReport BuildNodeReport(const Snapshot& snapshot,
                                         const NodeReportOptions& options);

// The identity of a cgroup: what the agent's identity stage found, or, for a
// snapshot that never passed it, what the path alone says (pod UID,
// container id, systemd unit).
WorkloadLabels LabelsOf(const CgroupStats& c);

// NodeService over the agent's snapshots. Update() is called by the agent
// after each publish (copies the two snapshots it needs); RPCs read them
// without touching the hot path.
class NodeApiService final : public wattlens::v1::NodeService::Service {
 public:
  explicit NodeApiService(NodeReportOptions options)
      : options_(std::move(options)) {}

  // Called once per interval with the newest snapshot; rates are computed
  // between the last two (the service keeps its own copies: the caller's
  // may be gone by the time an RPC reads them).
  void Update(const Snapshot& cur);

  grpc::Status GetNodeUsage(grpc::ServerContext* ctx,
                            const wattlens::v1::GetNodeUsageRequest* req,
                            wattlens::v1::GetNodeUsageResponse* resp) override;
  grpc::Status ListProcesses(
      grpc::ServerContext* ctx, const wattlens::v1::ListProcessesRequest* req,
      wattlens::v1::ListProcessesResponse* resp) override;

 private:
  const NodeReportOptions options_;
  absl::Mutex mu_;
  std::shared_ptr<const Snapshot> prev_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const Snapshot> cur_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wattlens
