// SPDX-License-Identifier: Apache-2.0
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/identity/k8s_json.h"
#include "agent/identity/owner_resolver.h"
#include "agent/identity/quantity.h"
#include "tests/fuzz/fuzz_targets.h"

namespace wattlens::fuzz {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

void CheckPod(const identity::PodInfo& pod) {
  Check(!pod.uid.empty() && !pod.name.empty());
  Check(pod.labels.size() <= identity::kMaxLabelsPerPod);
  Check(pod.containers.size() <= identity::kMaxContainersPerPod);
  Check(pod.owners.size() <= identity::kMaxOwnersPerPod);
  for (const identity::ContainerInfo& c : pod.containers) {
    Check(!c.name.empty());
    if (c.requests.cpu_millis) Check(*c.requests.cpu_millis >= 0);
    if (c.limits.memory_bytes) Check(*c.limits.memory_bytes >= 0);
  }
  identity::WorkloadRef w = identity::ResolveWorkload(pod);
  Check(!w.kind.empty());
}

}  // namespace

int FuzzK8sJson(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  identity::DecodeStats stats;
  if (auto pod = identity::DecodePod(in, &stats); pod.ok()) CheckPod(*pod);
  if (auto list = identity::DecodePodList(in, &stats); list.ok()) {
    for (const identity::PodInfo& p : list->pods) CheckPod(p);
  }
  if (auto ev = identity::DecodeWatchEvent(in, &stats); ev.ok()) {
    if (ev->pod) CheckPod(*ev->pod);
    if (ev->type == identity::WatchEvent::Type::kBookmark) {
      Check(!ev->resource_version.empty());
    }
  }
  // This node's own object (labels for pricing and carbon).
  if (auto node = identity::DecodeNode(in); node.ok()) {
    Check(node->labels.size() <= 10);
    for (size_t i = 1; i < node->labels.size(); ++i) {
      Check(node->labels[i - 1].first < node->labels[i].first);
    }
    if (node->cpu_capacity_millis) Check(*node->cpu_capacity_millis >= 0);
  }
  // The watch body splitter over two arbitrary chunks.
  identity::JsonLineSplitter splitter(/*max_line=*/1024);
  std::vector<std::string> lines;
  size_t half = size / 2;
  (void)splitter.Feed(in.substr(0, half), &lines);
  (void)splitter.Feed(in.substr(half), &lines);
  for (const std::string& l : lines) {
    Check(!l.empty() && l.size() <= 1024 && l.find('\n') == l.npos);
  }
  // Quantities: short inputs only, as in real specs.
  if (size <= 80) {
    if (auto v = identity::ParseBytes(in); v.ok()) Check(*v >= 0);
    if (auto v = identity::ParseCpuMillis(in); v.ok()) Check(*v >= 0);
  }
  return 0;
}

}  // namespace wattlens::fuzz
