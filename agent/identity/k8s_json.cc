// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/k8s_json.h"

#include <algorithm>
#include <map>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/identity/quantity.h"
#include "nlohmann/json.hpp"

namespace wattlens::identity {
namespace {

using json = nlohmann::json;

// Pods nest about ten levels deep; anything far deeper is hostile, and
// rejecting it before parsing bounds the parser's memory.
constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxContainerIdBytes = 128;
constexpr size_t kMaxImageBytes = 1024;

absl::Status CheckShape(absl::string_view s) {
  if (s.size() > kMaxJsonDocumentBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JSON document larger than ", kMaxJsonDocumentBytes, " bytes"));
  }
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        return absl::InvalidArgumentError(
            absl::StrCat("JSON nested deeper than ", kMaxJsonDepth));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<json> Parse(absl::string_view s) {
  if (absl::Status st = CheckShape(s); !st.ok()) return st;
  json j = json::parse(s.begin(), s.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("malformed JSON");
  if (!j.is_object()) {
    return absl::InvalidArgumentError("JSON document is not an object");
  }
  return j;
}

const json* Field(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const json* Object(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_object() ? f : nullptr;
}

const json* Array(const json& j, const char* key) {
  const json* f = Field(j, key);
  return f != nullptr && f->is_array() ? f : nullptr;
}

// The string at `key`, or "" when absent or not a string; cut to `max`.
std::string Str(const json& j, const char* key, size_t max = kMaxNameBytes) {
  const json* f = Field(j, key);
  if (f == nullptr || !f->is_string()) return "";
  const std::string& s = f->get_ref<const std::string&>();
  return s.size() <= max ? s : s.substr(0, max);
}

ResourceAmounts DecodeAmounts(const json* list, DecodeStats& stats) {
  ResourceAmounts out;
  if (list == nullptr || !list->is_object()) return out;
  // Quantities are strings in the API; tolerate plain numbers too.
  auto text = [](const json* v) -> std::optional<std::string> {
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) return v->get<std::string>();
    if (v->is_number_integer()) return std::to_string(v->get<int64_t>());
    return std::string("?");
  };
  if (auto cpu = text(Field(*list, "cpu"))) {
    absl::StatusOr<int64_t> v = ParseCpuMillis(*cpu);
    if (v.ok()) {
      out.cpu_millis = *v;
    } else {
      ++stats.quantities_invalid;
    }
  }
  if (auto mem = text(Field(*list, "memory"))) {
    absl::StatusOr<int64_t> v = ParseBytes(*mem);
    if (v.ok()) {
      out.memory_bytes = *v;
    } else {
      ++stats.quantities_invalid;
    }
  }
  return out;
}

void DecodeContainers(const json& spec, const json* status, const char* key,
                      const char* status_key, ContainerInfo::Type type,
                      PodInfo& pod, DecodeStats& stats) {
  const json* list = Array(spec, key);
  if (list == nullptr) return;
  absl::flat_hash_map<std::string, const json*> status_by_name;
  if (status != nullptr) {
    if (const json* statuses = Array(*status, status_key)) {
      for (const json& s : *statuses) {
        std::string name = Str(s, "name");
        if (!name.empty()) status_by_name.emplace(std::move(name), &s);
      }
    }
  }
  for (const json& c : *list) {
    ContainerInfo info;
    info.name = Str(c, "name");
    if (info.name.empty() || pod.containers.size() >= kMaxContainersPerPod) {
      ++stats.containers_dropped;
      continue;
    }
    info.type = type;
    info.image = Str(c, "image", kMaxImageBytes);
    if (const json* res = Object(c, "resources")) {
      info.requests = DecodeAmounts(Field(*res, "requests"), stats);
      info.limits = DecodeAmounts(Field(*res, "limits"), stats);
    }
    if (auto it = status_by_name.find(info.name); it != status_by_name.end()) {
      info.image_id = Str(*it->second, "imageID", kMaxImageBytes);
      std::string cid = Str(*it->second, "containerID", kMaxImageBytes);
      size_t sep = cid.find("://");
      if (sep != std::string::npos) {
        info.runtime = RuntimeFromContainerIdScheme(cid.substr(0, sep));
        std::string id = cid.substr(sep + 3);
        if (!id.empty() && id.size() <= kMaxContainerIdBytes) {
          info.container_id = std::move(id);
        }
      }
    }
    pod.containers.push_back(std::move(info));
  }
}

absl::StatusOr<PodInfo> DecodePodObject(const json& obj, DecodeStats& stats) {
  const json* meta = Object(obj, "metadata");
  if (meta == nullptr) {
    return absl::InvalidArgumentError("pod without metadata");
  }
  PodInfo pod;
  const json* uid = Field(*meta, "uid");
  if (uid == nullptr || !uid->is_string() ||
      uid->get_ref<const std::string&>().empty() ||
      uid->get_ref<const std::string&>().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError("pod without a valid metadata.uid");
  }
  pod.uid = uid->get<std::string>();
  pod.name = Str(*meta, "name");
  if (pod.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("pod ", pod.uid, " without metadata.name"));
  }
  pod.namespace_name = Str(*meta, "namespace");
  pod.resource_version = Str(*meta, "resourceVersion", 64);
  pod.terminating = Field(*meta, "deletionTimestamp") != nullptr &&
                    !Field(*meta, "deletionTimestamp")->is_null();
  if (const json* ann = Object(*meta, "annotations")) {
    pod.mirror_hash = Str(*ann, "kubernetes.io/config.mirror", 64);
  }
  if (const json* labels = Object(*meta, "labels")) {
    for (auto it = labels->begin(); it != labels->end(); ++it) {
      if (!it.value().is_string() || it.key().size() > kMaxNameBytes + 64 ||
          it.value().get_ref<const std::string&>().size() >
              kMaxLabelValueBytes ||
          pod.labels.size() >= kMaxLabelsPerPod) {
        ++stats.labels_dropped;
        continue;
      }
      pod.labels.emplace_back(it.key(), it.value().get<std::string>());
    }
    std::sort(pod.labels.begin(), pod.labels.end());
  }
  if (const json* owners = Array(*meta, "ownerReferences")) {
    for (const json& o : *owners) {
      if (pod.owners.size() >= kMaxOwnersPerPod) break;
      OwnerReference ref{Str(o, "kind"), Str(o, "name"), Str(o, "uid"), false};
      if (ref.kind.empty() || ref.name.empty()) continue;
      const json* ctl = Field(o, "controller");
      ref.controller = ctl != nullptr && ctl->is_boolean() && ctl->get<bool>();
      pod.owners.push_back(std::move(ref));
    }
  }
  const json* status = Object(obj, "status");
  if (status != nullptr) {
    pod.phase = Str(*status, "phase", 32);
    pod.qos_class = Str(*status, "qosClass", 32);
  }
  if (const json* spec = Object(obj, "spec")) {
    pod.node_name = Str(*spec, "nodeName");
    DecodeContainers(*spec, status, "initContainers", "initContainerStatuses",
                     ContainerInfo::Type::kInit, pod, stats);
    DecodeContainers(*spec, status, "containers", "containerStatuses",
                     ContainerInfo::Type::kRegular, pod, stats);
    DecodeContainers(*spec, status, "ephemeralContainers",
                     "ephemeralContainerStatuses",
                     ContainerInfo::Type::kEphemeral, pod, stats);
  }
  return pod;
}

absl::Status CheckKind(const json& obj, absl::string_view want) {
  std::string kind = Str(obj, "kind", 64);
  // Objects inside lists and watch events may omit kind; accept that.
  if (!kind.empty() && kind != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected kind ", want, ", got ", kind));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PodInfo> DecodePod(absl::string_view text, DecodeStats* stats) {
  DecodeStats local;
  absl::StatusOr<json> j = Parse(text);
  if (!j.ok()) return j.status();
  if (absl::Status s = CheckKind(*j, "Pod"); !s.ok()) return s;
  absl::StatusOr<PodInfo> pod = DecodePodObject(*j, stats ? *stats : local);
  return pod;
}

absl::StatusOr<PodList> DecodePodList(absl::string_view text,
                                      DecodeStats* stats) {
  DecodeStats local;
  DecodeStats& st = stats ? *stats : local;
  absl::StatusOr<json> j = Parse(text);
  if (!j.ok()) return j.status();
  if (absl::Status s = CheckKind(*j, "PodList"); !s.ok()) return s;
  PodList list;
  if (const json* meta = Object(*j, "metadata")) {
    list.resource_version = Str(*meta, "resourceVersion", 64);
    list.continue_token = Str(*meta, "continue", 4096);
  }
  const json* items = Field(*j, "items");
  if (items != nullptr && !items->is_null() && !items->is_array()) {
    return absl::InvalidArgumentError("PodList.items is not an array");
  }
  if (items != nullptr && items->is_array()) {
    for (const json& item : *items) {
      absl::StatusOr<PodInfo> pod = DecodePodObject(item, st);
      if (!pod.ok()) {
        ++st.pods_dropped;
        continue;
      }
      list.pods.push_back(*std::move(pod));
    }
  }
  return list;
}

absl::StatusOr<NodeMeta> DecodeNode(absl::string_view text) {
  absl::StatusOr<json> j = Parse(text);
  if (!j.ok()) return j.status();
  if (absl::Status s = CheckKind(*j, "Node"); !s.ok()) return s;
  NodeMeta node;
  const json* meta = Object(*j, "metadata");
  if (meta == nullptr)
    return absl::InvalidArgumentError("Node without metadata");
  node.name = Str(*meta, "name");
  // Deprecated beta keys still appear on old nodes; the GA key wins.
  static constexpr std::pair<const char*, const char*> kKeys[] = {
      {"topology.kubernetes.io/region", "topology.kubernetes.io/region"},
      {"topology.kubernetes.io/zone", "topology.kubernetes.io/zone"},
      {"node.kubernetes.io/instance-type", "node.kubernetes.io/instance-type"},
      {"failure-domain.beta.kubernetes.io/region",
       "topology.kubernetes.io/region"},
      {"failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/zone"},
      {"beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type"},
      {"kubernetes.io/arch", "kubernetes.io/arch"},
      {"karpenter.sh/capacity-type", "karpenter.sh/capacity-type"},
      {"eks.amazonaws.com/capacityType", "eks.amazonaws.com/capacityType"},
      {"cloud.google.com/gke-spot", "cloud.google.com/gke-spot"},
  };
  std::map<std::string, std::string> kept;
  if (const json* labels = Object(*meta, "labels")) {
    for (const auto& [from, to] : kKeys) {
      std::string v = Str(*labels, from, kMaxLabelValueBytes);
      if (v.empty()) continue;
      const bool ga = std::string_view(from) == std::string_view(to);
      if (ga || !kept.count(to)) kept[to] = std::move(v);
    }
  }
  node.labels.assign(kept.begin(), kept.end());
  if (const json* spec = Object(*j, "spec")) {
    node.provider_id = Str(*spec, "providerID", 1024);
    // Kept whole or not at all: a cut CIDR would be a different one.
    auto keep = [&node](const json* c) {
      if (c == nullptr || !c->is_string()) return;
      const std::string& s = c->get_ref<const std::string&>();
      if (!s.empty() && s.size() <= kMaxCidrBytes &&
          node.pod_cidrs.size() < kMaxPodCidrs) {
        node.pod_cidrs.push_back(s);
      }
    };
    if (const json* cidrs = Array(*spec, "podCIDRs")) {
      for (const json& c : *cidrs) keep(&c);
    }
    if (node.pod_cidrs.empty()) keep(Field(*spec, "podCIDR"));
  }
  if (const json* status = Object(*j, "status")) {
    if (const json* cap = Object(*status, "capacity")) {
      std::string cpu = Str(*cap, "cpu", 64), mem = Str(*cap, "memory", 64),
                  gpu = Str(*cap, "nvidia.com/gpu", 64);
      if (auto v = ParseCpuMillis(cpu); !cpu.empty() && v.ok()) {
        node.cpu_capacity_millis = *v;
      }
      if (auto v = ParseBytes(mem); !mem.empty() && v.ok()) {
        node.memory_capacity_bytes = *v;
      }
      if (auto v = ParseQuantityScaled(gpu, 0); !gpu.empty() && v.ok()) {
        node.gpus = *v;
      }
    }
  }
  return node;
}

absl::StatusOr<WatchEvent> DecodeWatchEvent(absl::string_view text,
                                            DecodeStats* stats) {
  DecodeStats local;
  absl::StatusOr<json> j = Parse(text);
  if (!j.ok()) return j.status();
  std::string type = Str(*j, "type", 32);
  const json* obj = Object(*j, "object");
  if (obj == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("watch event ", type, " without an object"));
  }
  WatchEvent ev;
  if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") {
    ev.type = type == "ADDED"      ? WatchEvent::Type::kAdded
              : type == "MODIFIED" ? WatchEvent::Type::kModified
                                   : WatchEvent::Type::kDeleted;
    if (absl::Status s = CheckKind(*obj, "Pod"); !s.ok()) return s;
    absl::StatusOr<PodInfo> pod = DecodePodObject(*obj, stats ? *stats : local);
    if (!pod.ok()) return pod.status();
    ev.resource_version = pod->resource_version;
    ev.pod = *std::move(pod);
    return ev;
  }
  if (type == "BOOKMARK") {
    ev.type = WatchEvent::Type::kBookmark;
    if (const json* meta = Object(*obj, "metadata")) {
      ev.resource_version = Str(*meta, "resourceVersion", 64);
      if (const json* ann = Object(*meta, "annotations")) {
        ev.initial_events_end =
            Str(*ann, "k8s.io/initial-events-end", 8) == "true";
      }
    }
    if (ev.resource_version.empty()) {
      return absl::InvalidArgumentError("bookmark without resourceVersion");
    }
    return ev;
  }
  if (type == "ERROR") {
    ev.type = WatchEvent::Type::kError;
    const json* code = Field(*obj, "code");
    if (code != nullptr && code->is_number_integer()) {
      int64_t c = code->get<int64_t>();
      ev.error_code = c >= 0 && c < 1000 ? static_cast<int>(c) : 0;
    }
    ev.error_reason = Str(*obj, "reason", 64);
    ev.error_message = Str(*obj, "message", 512);
    return ev;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown watch event type \"", type, "\""));
}

absl::string_view WatchEventTypeName(WatchEvent::Type type) {
  switch (type) {
    case WatchEvent::Type::kAdded:
      return "ADDED";
    case WatchEvent::Type::kModified:
      return "MODIFIED";
    case WatchEvent::Type::kDeleted:
      return "DELETED";
    case WatchEvent::Type::kBookmark:
      return "BOOKMARK";
    case WatchEvent::Type::kError:
      return "ERROR";
  }
  return "?";
}

absl::Status JsonLineSplitter::Feed(absl::string_view chunk,
                                    std::vector<std::string>* out) {
  while (!chunk.empty()) {
    size_t nl = chunk.find('\n');
    absl::string_view piece =
        nl == absl::string_view::npos ? chunk : chunk.substr(0, nl);
    if (partial_.size() + piece.size() > max_line_) {
      partial_.clear();
      return absl::ResourceExhaustedError(
          absl::StrCat("watch line longer than ", max_line_, " bytes"));
    }
    partial_.append(piece.data(), piece.size());
    if (nl == absl::string_view::npos) break;
    chunk.remove_prefix(nl + 1);
    if (partial_.find_first_not_of(" \t\r") != std::string::npos) {
      out->push_back(std::move(partial_));
    }
    partial_.clear();
  }
  return absl::OkStatus();
}

}  // namespace wattlens::identity
