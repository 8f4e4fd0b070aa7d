// SPDX-License-Identifier: Apache-2.0
// The compact pod metadata the agent keeps per pod on its node: what labels
// and reports need, nothing else. Deliberately absent: environment,
// command lines, arguments, volumes, annotations other than the static-pod
// mirror hash (privacy, and memory on nodes with hundreds of pods).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/identity/cgroup_path_parser.h"

namespace wattlens::identity {

struct ResourceAmounts {
  std::optional<int64_t> cpu_millis;
  std::optional<int64_t> memory_bytes;
  bool operator==(const ResourceAmounts&) const = default;
};

struct ContainerInfo {
  enum class Type { kRegular, kInit, kEphemeral };
  std::string name;
  Type type = Type::kRegular;
  std::string image;     // spec image reference, as written in the pod
  std::string image_id;  // status imageID (digest), when running
  // From status.containerStatuses[].containerID "<scheme>://<id>"; empty
  // until the container has started.
  std::string container_id;
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
  ResourceAmounts requests;
  ResourceAmounts limits;
};

struct OwnerReference {
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
};

// The top-level workload a pod belongs to: Deployment/web, CronJob/backup,
// StatefulSet/db, DaemonSet/agent, StaticPod/kube-apiserver, Pod/debug.
struct WorkloadRef {
  std::string kind;
  std::string name;
  // True when found by a naming heuristic rather than an owner lookup.
  bool inferred = false;
  bool operator==(const WorkloadRef&) const = default;
};

struct PodInfo {
  std::string uid;
  std::string name;
  std::string namespace_name;
  std::string node_name;
  std::string phase;      // Pending, Running, Succeeded, Failed, Unknown
  std::string qos_class;  // status.qosClass
  std::string resource_version;
  // Static pods: the kubelet's config hash (annotation
  // kubernetes.io/config.mirror). Their cgroup carries this, not `uid`.
  std::string mirror_hash;
  bool terminating = false;  // metadata.deletionTimestamp is set
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key
  std::vector<OwnerReference> owners;
  std::vector<ContainerInfo> containers;
  WorkloadRef workload;  // filled in by ResolveWorkload

  const ContainerInfo* FindContainerById(absl::string_view id) const {
    for (const ContainerInfo& c : containers) {
      if (!c.container_id.empty() && c.container_id == id) return &c;
    }
    return nullptr;
  }
  const std::string* Label(absl::string_view key) const {
    for (const auto& [k, v] : labels) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

}  // namespace wattlens::identity
