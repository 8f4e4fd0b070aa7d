// SPDX-License-Identifier: Apache-2.0
// Cgroup v2 path -> what runs in it: a Kubernetes pod container, a pod-level
// cgroup, a standalone container, a systemd unit, another host cgroup, or the
// root. A pure function over the path string: no filesystem access, so it is
// safe to call on the hot path and to fuzz.
//
// Covered layouts (the kubelet's two cgroup drivers x four runtimes):
//   systemd:  kubepods.slice/kubepods-burstable.slice/
//               kubepods-burstable-pod<uid_with_underscores>.slice/
//               {cri-containerd,crio,docker}-<id>.scope
//   cgroupfs: kubepods/burstable/pod<uid>/<id>   (containerd, Docker)
//             kubepods/burstable/pod<uid>/crio-<id>
//   Podman:   machine.slice/libpod-<id>.scope, libpod_parent/libpod-<id>
//   Docker:   system.slice/docker-<id>.scope, docker/<id>
// Any prefix is allowed before "kubepods" (kind's kubelet.slice, a k3d node
// running inside a Docker container, a custom --cgroup-root); the deepest pod
// wins. With the cgroupfs driver containerd and Docker name the container
// cgroup by its bare id, so the runtime is kUnknown there; the pod's
// containerStatuses (containerd://<id>) supply it later.
//
// Must not depend on: the filesystem, the Kubernetes client, BPF.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::identity {

enum class CgroupKind {
  kRoot,          // "/": processes never moved out of the root cgroup.
  kKernel,        // Kernel threads (TaskHint, for WL_CGROUP_KERNEL).
  kPodContainer,  // A container (or its pause sandbox) of a Kubernetes pod.
  kPod,           // The pod-level cgroup itself (pod overhead).
  kPodQosLevel,   // kubepods.slice or a QoS-class slice above the pods.
  kContainer,     // A container outside Kubernetes (docker run, podman).
  kSystemdUnit,   // A host service or scope: system.slice/nginx.service.
  kHostOther,     // Any other host cgroup; identified by its path.
};

enum class ContainerRuntime { kUnknown, kContainerd, kCrio, kDocker, kPodman };

enum class QosClass { kUnknown, kGuaranteed, kBurstable, kBestEffort };

enum class CgroupDriver { kUnknown, kSystemd, kCgroupfs };

// What the caller knows about the task, beyond its cgroup.
enum class TaskHint { kNone, kKernelThread };

struct CgroupIdentity {
  CgroupKind kind = CgroupKind::kHostOther;
  ContainerRuntime runtime = ContainerRuntime::kUnknown;
  CgroupDriver driver = CgroupDriver::kUnknown;
  QosClass qos = QosClass::kUnknown;
  // Lower-case hex; empty when not a container or not recognisable.
  std::string container_id;
  // Dashed form (systemd's underscores are turned back into dashes). For
  // static pods this is the kubelet's config hash, not the mirror pod's UID.
  std::string pod_uid;
  // Host cgroups: the deepest systemd unit in the path (nginx.service,
  // session-3.scope), else the deepest slice (user-1000.slice); empty for
  // Kubernetes pods, "/" and plain paths. The one place the agent derives a
  // unit from a path (reports, node API and metrics all use it).
  std::string systemd_unit;
  // True for conmon, the per-container monitor of CRI-O and Podman
  // (crio-conmon-<id>.scope): runtime overhead, attributed to the container.
  bool runtime_monitor = false;
  // The path as given, normalised to one leading slash and no trailing one.
  std::string path;
};

// Limits that make hostile input cheap to reject (PATH_MAX, NAME_MAX).
inline constexpr size_t kMaxCgroupPathBytes = 4096;
inline constexpr size_t kMaxCgroupComponentBytes = 255;

// Parses a cgroup v2 path relative to the cgroup mount ("/" for the root,
// "/kubepods.slice/..."); a missing leading slash is tolerated. Returns
// InvalidArgument for input that cannot be a cgroup path: empty, too long,
// NUL or control bytes, "." or ".." components, over-long components. Never
// fails on a well-formed path it does not recognise: that is kHostOther.
absl::StatusOr<CgroupIdentity> ParseCgroupPath(absl::string_view path,
                                               TaskHint hint = TaskHint::kNone);

absl::string_view CgroupKindName(CgroupKind kind);
absl::string_view ContainerRuntimeName(ContainerRuntime runtime);
absl::string_view QosClassName(QosClass qos);

// "containerd://<id>", "cri-o://<id>", "docker://<id>" as in a pod's
// status.containerStatuses[].containerID. Returns kUnknown for others.
ContainerRuntime RuntimeFromContainerIdScheme(absl::string_view scheme);

}  // namespace wattlens::identity
