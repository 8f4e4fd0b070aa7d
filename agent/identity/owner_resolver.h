// SPDX-License-Identifier: Apache-2.0
// Pod -> top-level workload: ReplicaSet -> Deployment, Job -> CronJob,
// StatefulSet, DaemonSet, static pods. An optional OwnerLookup (a cache of
// ReplicaSets and Jobs, filled by whoever watches them) gives exact answers
// and follows custom controllers (Argo Rollouts owning ReplicaSets); without
// it, the naming conventions of the built-in controllers are used and the
// result is marked `inferred`.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/identity/pod_info.h"

namespace wattlens::identity {

class OwnerLookup {
 public:
  virtual ~OwnerLookup() = default;
  // The controller owner of namespace/kind/name: a value when the object is
  // known (nullopt: it has no controller), NotFound or Unavailable when the
  // lookup cannot say.
  virtual absl::StatusOr<std::optional<OwnerReference>> ControllerOf(
      absl::string_view kind, absl::string_view namespace_name,
      absl::string_view name) const = 0;
};

// How many owner levels a lookup may climb (Pod -> RS -> Deployment -> a
// custom resource -> ...). Bounds cycles in a hostile or buggy cache.
inline constexpr int kMaxOwnerDepth = 5;

WorkloadRef ResolveWorkload(const PodInfo& pod,
                            const OwnerLookup* lookup = nullptr);

// The naming heuristics on their own, exposed for tests and docs.
// "web-7c9f6d5b8" with pod-template-hash "7c9f6d5b8" -> "web".
std::optional<std::string> DeploymentFromReplicaSetName(
    absl::string_view rs_name, absl::string_view pod_template_hash);
// "backup-28712345" (scheduled time in minutes since the epoch) -> "backup".
std::optional<std::string> CronJobFromJobName(absl::string_view job_name);

}  // namespace wattlens::identity
