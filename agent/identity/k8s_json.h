// SPDX-License-Identifier: Apache-2.0
// Kubernetes API JSON -> PodInfo: a Pod, a PodList and watch events
// (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR). Never throws: the JSON is
// parsed with exceptions off and every field's type is checked before use;
// a malformed pod is an error (a single event) or a counted drop (a list).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/identity/pod_info.h"

namespace wattlens::identity {

// Bounds that keep hostile or huge objects from costing memory.
inline constexpr size_t kMaxJsonDocumentBytes = 16 << 20;
inline constexpr size_t kMaxLabelsPerPod = 64;
inline constexpr size_t kMaxContainersPerPod = 64;
inline constexpr size_t kMaxOwnersPerPod = 8;
inline constexpr size_t kMaxNameBytes = 253;
inline constexpr size_t kMaxLabelValueBytes = 256;
inline constexpr size_t kMaxPodCidrs = 4;  // the API allows 2 (dual-stack)
inline constexpr size_t kMaxCidrBytes = 64;

struct DecodeStats {
  uint64_t labels_dropped = 0;      // over kMaxLabelsPerPod or too long
  uint64_t containers_dropped = 0;  // over the bound or without a name
  uint64_t quantities_invalid = 0;  // unparsable requests/limits
  uint64_t pods_dropped = 0;        // list items that are not valid pods
};

absl::StatusOr<PodInfo> DecodePod(absl::string_view json,
                                  DecodeStats* stats = nullptr);

struct PodList {
  std::vector<PodInfo> pods;
  std::string resource_version;  // to start the watch from
  std::string continue_token;    // non-empty when the list is paginated
};

absl::StatusOr<PodList> DecodePodList(absl::string_view json,
                                      DecodeStats* stats = nullptr);

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kError;
  std::optional<PodInfo> pod;       // ADDED, MODIFIED, DELETED
  std::string resource_version;     // of the pod, or the bookmark
  bool initial_events_end = false;  // bookmark annotation (sendInitialEvents)
  // ERROR: the metav1.Status the server sent.
  int error_code = 0;
  std::string error_reason;
  std::string error_message;

  // 410 Gone / reason Expired: the resourceVersion is too old; relist.
  bool IsGone() const {
    return type == Type::kError &&
           (error_code == 410 || error_reason == "Expired" ||
            error_reason == "Gone");
  }
};

absl::StatusOr<WatchEvent> DecodeWatchEvent(absl::string_view json,
                                            DecodeStats* stats = nullptr);

absl::string_view WatchEventTypeName(WatchEvent::Type type);

// What the agent needs of its own Node object (GET /api/v1/nodes/<name>):
// the labels pricing and carbon look up, and where the node runs.
struct NodeMeta {
  std::string name;
  // Only these keys are kept: topology.kubernetes.io/{region,zone},
  // node.kubernetes.io/instance-type and their deprecated beta forms
  // (mapped to the GA keys), kubernetes.io/arch, and
  // karpenter.sh/capacity-type / eks.amazonaws.com/capacityType /
  // cloud.google.com/gke-spot (spot pricing). Sorted by key.
  std::vector<std::pair<std::string, std::string>> labels;
  std::string provider_id;  // spec.providerID
  // spec.podCIDRs (spec.podCIDR on servers older than 1.16), unparsed: at
  // most kMaxPodCidrs strings of at most kMaxCidrBytes; others are dropped.
  std::vector<std::string> pod_cidrs;
  std::optional<int64_t> cpu_capacity_millis;    // status.capacity.cpu
  std::optional<int64_t> memory_capacity_bytes;  // status.capacity.memory
  std::optional<int64_t> gpus;  // status.capacity["nvidia.com/gpu"]
};

absl::StatusOr<NodeMeta> DecodeNode(absl::string_view json);

// Splits a watch response body (one JSON object per line) into lines as
// chunks arrive. A line longer than `max_line` is an error: the caller drops
// the connection and resumes from its last resourceVersion.
class JsonLineSplitter {
 public:
  explicit JsonLineSplitter(size_t max_line = kMaxJsonDocumentBytes)
      : max_line_(max_line) {}
  // Appends `chunk`; complete non-blank lines go to `out`.
  absl::Status Feed(absl::string_view chunk, std::vector<std::string>* out);
  size_t buffered() const { return partial_.size(); }
  void Reset() { partial_.clear(); }

 private:
  size_t max_line_;
  std::string partial_;
};

}  // namespace wattlens::identity
