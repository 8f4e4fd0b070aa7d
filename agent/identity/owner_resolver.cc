// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/owner_resolver.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace wattlens::identity {
namespace {

// CronJob controller v2 names Jobs "<cronjob>-<minutes since epoch>"; that
// number has had 8 digits since 1989 and keeps 8 until 2160.
constexpr size_t kMinCronSuffixDigits = 8;
constexpr size_t kMaxCronSuffixDigits = 10;

const OwnerReference* ControllerRef(const PodInfo& pod) {
  for (const OwnerReference& o : pod.owners) {
    if (o.controller) return &o;
  }
  return pod.owners.empty() ? nullptr : &pod.owners.front();
}

// One step up by naming convention, for the two built-in two-level chains.
std::optional<WorkloadRef> Heuristic(const PodInfo& pod,
                                     const OwnerReference& owner) {
  if (owner.kind == "ReplicaSet") {
    const std::string* hash = pod.Label("pod-template-hash");
    if (hash != nullptr) {
      if (auto d = DeploymentFromReplicaSetName(owner.name, *hash)) {
        return WorkloadRef{"Deployment", *std::move(d), true};
      }
    }
  } else if (owner.kind == "Job") {
    if (auto c = CronJobFromJobName(owner.name)) {
      return WorkloadRef{"CronJob", *std::move(c), true};
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> DeploymentFromReplicaSetName(
    absl::string_view rs_name, absl::string_view pod_template_hash) {
  if (pod_template_hash.empty()) return std::nullopt;
  std::string suffix = absl::StrCat("-", pod_template_hash);
  if (!absl::EndsWith(rs_name, suffix) || rs_name.size() == suffix.size()) {
    return std::nullopt;
  }
  return std::string(rs_name.substr(0, rs_name.size() - suffix.size()));
}

std::optional<std::string> CronJobFromJobName(absl::string_view job_name) {
  size_t dash = job_name.rfind('-');
  if (dash == absl::string_view::npos || dash == 0) return std::nullopt;
  absl::string_view digits = job_name.substr(dash + 1);
  if (digits.size() < kMinCronSuffixDigits ||
      digits.size() > kMaxCronSuffixDigits) {
    return std::nullopt;
  }
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  return std::string(job_name.substr(0, dash));
}

WorkloadRef ResolveWorkload(const PodInfo& pod, const OwnerLookup* lookup) {
  const OwnerReference* owner = ControllerRef(pod);
  if (owner == nullptr) return WorkloadRef{"Pod", pod.name, false};
  if (owner->kind == "Node") {
    // Static pod: the mirror pod is named <manifest name>-<node name>.
    std::string suffix = absl::StrCat("-", owner->name);
    absl::string_view name = pod.name;
    if (absl::EndsWith(name, suffix) && name.size() > suffix.size()) {
      name.remove_suffix(suffix.size());
    }
    return WorkloadRef{"StaticPod", std::string(name), false};
  }

  WorkloadRef current{owner->kind, owner->name, false};
  if (lookup != nullptr) {
    bool climbed = false;
    for (int depth = 0; depth < kMaxOwnerDepth; ++depth) {
      absl::StatusOr<std::optional<OwnerReference>> up =
          lookup->ControllerOf(current.kind, pod.namespace_name, current.name);
      if (!up.ok()) break;  // unknown to the lookup: try the heuristics
      climbed = true;
      if (!up->has_value()) return current;  // known, and top-level
      current = WorkloadRef{(*up)->kind, (*up)->name, false};
    }
    if (climbed) return current;
  }
  if (auto h = Heuristic(pod, *owner)) return *std::move(h);
  return current;
}

}  // namespace wattlens::identity
