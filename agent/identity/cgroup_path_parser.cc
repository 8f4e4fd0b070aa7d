// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/cgroup_path_parser.h"

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace wattlens::identity {
namespace {

// Container ids: Docker, containerd and CRI-O use 64 hex digits; shorter
// forms (12) appear in hand-made setups. Anything longer is not an id.
constexpr size_t kMinContainerIdLen = 12;
constexpr size_t kMaxContainerIdLen = 128;
// Pod UIDs are RFC 4122 (36 chars) or, for static pods, a 32-digit hash.
constexpr size_t kMinPodUidLen = 8;
constexpr size_t kMaxPodUidLen = 64;

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool IsContainerId(absl::string_view s) {
  if (s.size() < kMinContainerIdLen || s.size() > kMaxContainerIdLen) {
    return false;
  }
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

// Accepts hex digits with '-' or (systemd escaping) '_' separators and
// returns the lower-case dashed form.
std::optional<std::string> NormalizePodUid(absl::string_view s) {
  if (s.size() < kMinPodUidLen || s.size() > kMaxPodUidLen) return std::nullopt;
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '_' || c == '-') {
      out.push_back('-');
    } else if (absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else {
      return std::nullopt;
    }
  }
  if (out.front() == '-' || out.back() == '-') return std::nullopt;
  return out;
}

struct PodMatch {
  std::string uid;
  QosClass qos = QosClass::kUnknown;
  CgroupDriver driver = CgroupDriver::kUnknown;
};

// "kubepods", "kubepods-burstable", "kubelet-kubepods-besteffort": the QoS
// class of a systemd slice name stem, or nullopt if it is not a kubepods one.
std::optional<QosClass> SystemdKubepodsQos(absl::string_view stem) {
  auto ends_with_word = [&](absl::string_view word) {
    if (!absl::EndsWith(stem, word)) return false;
    size_t before = stem.size() - word.size();
    return before == 0 || stem[before - 1] == '-';
  };
  if (ends_with_word("kubepods-burstable")) return QosClass::kBurstable;
  if (ends_with_word("kubepods-besteffort")) return QosClass::kBestEffort;
  if (ends_with_word("kubepods")) return QosClass::kGuaranteed;
  return std::nullopt;
}

bool IsCgroupfsKubepods(absl::string_view c) { return c == "kubepods"; }

std::optional<PodMatch> MatchPod(const std::vector<absl::string_view>& parts,
                                 size_t i) {
  absl::string_view c = parts[i];
  if (absl::ConsumeSuffix(&c, ".slice")) {
    size_t pos = c.rfind("-pod");
    if (pos == absl::string_view::npos) return std::nullopt;
    auto qos = SystemdKubepodsQos(c.substr(0, pos));
    if (!qos) return std::nullopt;
    auto uid = NormalizePodUid(c.substr(pos + 4));
    if (!uid) return std::nullopt;
    return PodMatch{*std::move(uid), *qos, CgroupDriver::kSystemd};
  }
  if (!absl::ConsumePrefix(&c, "pod") || i == 0) return std::nullopt;
  auto uid = NormalizePodUid(c);
  if (!uid) return std::nullopt;
  absl::string_view parent = parts[i - 1];
  QosClass qos;
  if (IsCgroupfsKubepods(parent)) {
    qos = QosClass::kGuaranteed;
  } else if (i >= 2 && IsCgroupfsKubepods(parts[i - 2]) &&
             (parent == "burstable" || parent == "besteffort")) {
    qos = parent == "burstable" ? QosClass::kBurstable : QosClass::kBestEffort;
  } else {
    return std::nullopt;
  }
  return PodMatch{*std::move(uid), qos, CgroupDriver::kCgroupfs};
}

// kubepods.slice, kubepods-burstable.slice, kubepods/besteffort, ...
std::optional<QosClass> MatchQosLevel(const std::vector<absl::string_view>& p,
                                      size_t i) {
  absl::string_view c = p[i];
  if (absl::ConsumeSuffix(&c, ".slice")) {
    auto qos = SystemdKubepodsQos(c);
    // kubepods.slice holds every class; Guaranteed pods sit directly in it.
    if (qos == QosClass::kGuaranteed) return QosClass::kUnknown;
    return qos;
  }
  if (IsCgroupfsKubepods(c)) return QosClass::kUnknown;
  if (i >= 1 && IsCgroupfsKubepods(p[i - 1])) {
    if (c == "burstable") return QosClass::kBurstable;
    if (c == "besteffort") return QosClass::kBestEffort;
  }
  return std::nullopt;
}

struct ContainerMatch {
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
  std::string id;
  bool monitor = false;
  CgroupDriver driver = CgroupDriver::kUnknown;
};

struct Prefix {
  absl::string_view text;
  ContainerRuntime runtime;
  bool monitor;
};

// Longer prefixes first: "crio-conmon-" before "crio-".
constexpr Prefix kContainerPrefixes[] = {
    {"cri-containerd-", ContainerRuntime::kContainerd, false},
    {"crio-conmon-", ContainerRuntime::kCrio, true},
    {"crio-", ContainerRuntime::kCrio, false},
    {"docker-", ContainerRuntime::kDocker, false},
    {"libpod-conmon-", ContainerRuntime::kPodman, true},
    {"libpod-", ContainerRuntime::kPodman, false},
    {"nerdctl-", ContainerRuntime::kContainerd, false},
};

// `bare_ok`: accept a bare id (cgroupfs driver) for this component.
std::optional<ContainerMatch> MatchContainer(absl::string_view c,
                                             bool bare_ok) {
  ContainerMatch m;
  m.driver = absl::ConsumeSuffix(&c, ".scope") ? CgroupDriver::kSystemd
                                               : CgroupDriver::kCgroupfs;
  for (const Prefix& p : kContainerPrefixes) {
    absl::string_view rest = c;
    if (absl::ConsumePrefix(&rest, p.text) && IsContainerId(rest)) {
      m.runtime = p.runtime;
      m.monitor = p.monitor;
      m.id = std::string(rest);
      return m;
    }
  }
  if (bare_ok && m.driver == CgroupDriver::kCgroupfs && IsContainerId(c)) {
    m.id = std::string(c);
    return m;
  }
  return std::nullopt;
}

bool IsUnitName(absl::string_view c) {
  return absl::EndsWith(c, ".service") || absl::EndsWith(c, ".scope");
}

}  // namespace

absl::StatusOr<CgroupIdentity> ParseCgroupPath(absl::string_view path,
                                               TaskHint hint) {
  if (path.empty()) return absl::InvalidArgumentError("empty cgroup path");
  if (path.size() > kMaxCgroupPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat("cgroup path longer than ",
                                                   kMaxCgroupPathBytes,
                                                   " bytes: ", path.size()));
  }
  for (size_t i = 0; i < path.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cgroup path has a control byte 0x", absl::Hex(c), " at offset ", i));
    }
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(path, '/', absl::SkipEmpty());
  for (absl::string_view p : parts) {
    if (p == "." || p == "..") {
      return absl::InvalidArgumentError(
          "cgroup path has a '.' or '..' component");
    }
    if (p.size() > kMaxCgroupComponentBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("cgroup path component longer than ",
                       kMaxCgroupComponentBytes, " bytes"));
    }
  }

  CgroupIdentity id;
  id.path = absl::StrCat("/", absl::StrJoin(parts, "/"));
  if (hint == TaskHint::kKernelThread) {
    id.kind = CgroupKind::kKernel;
    return id;
  }
  if (parts.empty()) {
    id.kind = CgroupKind::kRoot;
    return id;
  }

  // Kubernetes: the deepest pod cgroup wins (nested clusters, kind, k3d).
  for (size_t i = parts.size(); i-- > 0;) {
    std::optional<PodMatch> pod = MatchPod(parts, i);
    if (!pod) continue;
    id.pod_uid = std::move(pod->uid);
    id.qos = pod->qos;
    id.driver = pod->driver;
    if (i + 1 == parts.size()) {
      id.kind = CgroupKind::kPod;
      return id;
    }
    id.kind = CgroupKind::kPodContainer;
    if (auto c = MatchContainer(parts[i + 1], /*bare_ok=*/true)) {
      id.runtime = c->runtime;
      id.container_id = std::move(c->id);
      id.runtime_monitor = c->monitor;
    }
    return id;
  }
  if (auto qos = MatchQosLevel(parts, parts.size() - 1)) {
    id.kind = CgroupKind::kPodQosLevel;
    id.qos = *qos;
    id.driver = absl::EndsWith(parts.back(), ".slice")
                    ? CgroupDriver::kSystemd
                    : CgroupDriver::kCgroupfs;
    return id;
  }

  bool in_unit = false;
  for (size_t i = parts.size(); i-- > 0;) {
    if (IsUnitName(parts[i])) {
      id.systemd_unit = std::string(parts[i]);
      in_unit = true;
      break;
    }
  }
  // No service or scope: the deepest slice names the cgroup for humans
  // (user-1000.slice), though it is not a unit that runs anything itself.
  for (size_t i = parts.size(); !in_unit && i-- > 0;) {
    if (absl::EndsWith(parts[i], ".slice") && parts[i].size() > 6) {
      id.systemd_unit = std::string(parts[i]);
      break;
    }
  }
  // Containers outside Kubernetes; the deepest one is the one that runs.
  for (size_t i = parts.size(); i-- > 0;) {
    absl::string_view parent = i > 0 ? parts[i - 1] : absl::string_view();
    bool bare_ok = parent == "docker" || parent == "libpod_parent" ||
                   parts[i].size() == 64;
    auto c = MatchContainer(parts[i], bare_ok);
    if (!c) continue;
    id.kind = CgroupKind::kContainer;
    id.runtime = c->runtime;
    if (id.runtime == ContainerRuntime::kUnknown) {
      if (parent == "docker") id.runtime = ContainerRuntime::kDocker;
      if (parent == "libpod_parent") id.runtime = ContainerRuntime::kPodman;
    }
    id.container_id = std::move(c->id);
    id.runtime_monitor = c->monitor;
    id.driver = c->driver;
    return id;
  }
  if (in_unit) {
    id.kind = CgroupKind::kSystemdUnit;
    id.driver = CgroupDriver::kSystemd;
    return id;
  }
  id.kind = CgroupKind::kHostOther;
  return id;
}

absl::string_view CgroupKindName(CgroupKind kind) {
  switch (kind) {
    case CgroupKind::kRoot:
      return "root";
    case CgroupKind::kKernel:
      return "kernel";
    case CgroupKind::kPodContainer:
      return "pod_container";
    case CgroupKind::kPod:
      return "pod";
    case CgroupKind::kPodQosLevel:
      return "pod_qos_level";
    case CgroupKind::kContainer:
      return "container";
    case CgroupKind::kSystemdUnit:
      return "systemd_unit";
    case CgroupKind::kHostOther:
      return "host_other";
  }
  return "unknown";
}

absl::string_view ContainerRuntimeName(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kPodman:
      return "podman";
    case ContainerRuntime::kUnknown:
      break;
  }
  return "unknown";
}

absl::string_view QosClassName(QosClass qos) {
  switch (qos) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
    case QosClass::kUnknown:
      break;
  }
  return "unknown";
}

ContainerRuntime RuntimeFromContainerIdScheme(absl::string_view scheme) {
  if (scheme == "containerd") return ContainerRuntime::kContainerd;
  if (scheme == "cri-o") return ContainerRuntime::kCrio;
  if (scheme == "docker") return ContainerRuntime::kDocker;
  if (scheme == "podman") return ContainerRuntime::kPodman;
  return ContainerRuntime::kUnknown;
}

}  // namespace wattlens::identity
