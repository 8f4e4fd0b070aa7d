// SPDX-License-Identifier: Apache-2.0
// The identity stage of the agent: every cgroup of a snapshot gets its
// namespace, pod, container, owner workload and project, and its pod's
// requests. Runs on the drain thread once per interval, after the
// aggregator and before publish; reads the PodCache (filled by the watch
// thread) without blocking it for long.
//
// Per cgroup id the parsed path is cached (an id never changes path), and
// the labels are cached against the PodInfo they came from: only a pod
// update (a new shared PodInfo) re-derives them, so the project map's glob
// rules run once per container, not once per interval.
//
// Host cgroups: the systemd unit (or the path) names them; their project
// comes from a live process's executable (as the kernel reported it, else
// /proc/<pid>/exe) -> dpkg -> project, resolved once per cgroup. Containers
// outside Kubernetes (podman, docker) have no image from the API: theirs
// comes the same way, but from the dpkg database of the
// container's own root (/proc/<pid>/root), where the executable lives. Never
// reads /proc/<pid>/environ or cmdline. Kernel threads (kKernelCgroupId) are
// the workload `kernel` of project `linux`.
//
// Must not depend on: agent_core, BPF, exporters (only the Snapshot
// structs, which are plain data).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"
#include "agent/identity/cgroup_path_parser.h"
#include "agent/identity/dpkg_index.h"
#include "agent/identity/exe_table.h"
#include "agent/identity/pod_cache.h"
#include "agent/identity/project_map.h"
#include "agent/state/snapshot.h"

namespace wattlens::identity {

struct WorkloadIdentityOptions {
  // Where /proc is: /proc/<pid>/exe of host and container processes, and
  // /proc/<pid>/root, a container process's file system.
  std::string proc_root = "/proc";
  // Host executable -> project; null: the executable's file name.
  DpkgIndex* dpkg = nullptr;
  // The executables the kernel reported (exec events and the start-up
  // scan), asked before read_exe: /proc/<pid>/exe is unreadable for
  // root's processes once the agent runs with fewer capabilities than they
  // hold. Null: read_exe only.
  const ExeTable* exes = nullptr;
  // Reads /proc/<pid>/exe (injectable for tests); default readlink.
  std::function<std::optional<std::string>(uint32_t pid)> read_exe;
};

// The labels of one cgroup path with a pod match (null when none).
struct ResolvedCgroup {
  CgroupIdentity cgroup;
  std::shared_ptr<const PodInfo> pod;
  const ContainerInfo* container = nullptr;  // into *pod
  WorkloadLabels labels;
};

// Labels of `path` from the parser and the cache (no host project). With
// TaskHint::kKernelThread, the `kernel` workload: workload_kind and
// workload "kernel", project kKernelProject, whatever the path.
ResolvedCgroup ResolveCgroup(absl::string_view path, const PodCache* cache,
                             const ProjectMap& projects,
                             TaskHint hint = TaskHint::kNone);

// kKernelThread for kKernelCgroupId, the kernel threads' cgroup key.
TaskHint HintForCgroup(uint64_t cgroup_id);

class WorkloadIdentifier {
 public:
  struct Stats {
    uint64_t pod_cgroups = 0;    // cgroups inside a pod, this interval
    uint64_t pods_unknown = 0;   // ... whose pod the API has not described
    uint64_t paths_invalid = 0;  // cumulative: unparsable cgroup paths
    uint64_t host_projects_resolved = 0;  // cumulative
  };

  // `cache` may be null (no Kubernetes API): pods keep only their UID and
  // container id, from the path.
  WorkloadIdentifier(const PodCache* cache, const ProjectMap* projects,
                     WorkloadIdentityOptions options = {});

  // Fills identity and requests of every cgroup in `s`.
  void Label(Snapshot* s);

  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    bool parsed = false;
    std::string path;
    CgroupIdentity cgroup;
    std::shared_ptr<const PodInfo> pod;  // what `labels` were derived from
    WorkloadLabels labels;
    ResourceAmounts requests;  // this container's (pod: none)
    bool host_project_done = false;
    int host_project_attempts = 0;  // intervals with no readable exe
    uint64_t seen = 0;
  };
  void Refresh(Entry& e, TaskHint hint);

  const PodCache* cache_;
  const ProjectMap* projects_;
  WorkloadIdentityOptions options_;
  // Node-based: Label() keeps pointers to entries while inserting others.
  absl::node_hash_map<uint64_t, Entry> by_id_;
  uint64_t generation_ = 0;
  Stats stats_;
};

}  // namespace wattlens::identity
