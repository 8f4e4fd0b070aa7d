// SPDX-License-Identifier: Apache-2.0
#include "absl/strings/string_view.h"
#include "agent/identity/cgroup_path_parser.h"
#include "agent/identity/cgroup_v1.h"
#include "tests/fuzz/fuzz_targets.h"

namespace wattlens::fuzz {
namespace {

using identity::CgroupIdentity;
using identity::CgroupKind;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

int FuzzCgroupPath(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  // The same bytes as a /proc/<pid>/cgroup file (the v1 fallback).
  if (auto lines = identity::ParseProcCgroup(in); lines.ok()) {
    Check(lines->size() <= 64);
    for (const identity::ProcCgroupLine& l : *lines) {
      Check(l.hierarchy >= 0 && !l.path.empty() && l.path.front() == '/');
    }
    const std::string v1 = identity::V1WorkloadPath(*lines);
    Check(v1.empty() || (v1.front() == '/' && v1 != "/"));
  }
  absl::StatusOr<CgroupIdentity> id = identity::ParseCgroupPath(in);
  if (!id.ok()) {
    Check(!id.status().message().empty());
    return 0;
  }
  Check(!id->path.empty() && id->path.front() == '/');
  Check(id->path.size() <= identity::kMaxCgroupPathBytes + 1);
  Check(IsLowerHex(id->container_id));
  bool pod_kind =
      id->kind == CgroupKind::kPodContainer || id->kind == CgroupKind::kPod;
  Check(pod_kind == !id->pod_uid.empty());
  if (id->kind == CgroupKind::kRoot) Check(id->path == "/");
  // The normalised path parses to the same identity.
  absl::StatusOr<CgroupIdentity> again = identity::ParseCgroupPath(id->path);
  Check(again.ok());
  Check(again->kind == id->kind && again->pod_uid == id->pod_uid &&
        again->container_id == id->container_id &&
        again->runtime == id->runtime && again->qos == id->qos &&
        again->systemd_unit == id->systemd_unit && again->path == id->path);
  return 0;
}

}  // namespace wattlens::fuzz
