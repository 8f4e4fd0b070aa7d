// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/workload_identity.h"

#include <unistd.h>

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace wattlens::identity {
namespace {

std::optional<std::string> ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

constexpr int kHostProjectAttempts = 5;

// A container runtime's own processes run in a new container's cgroup for a
// moment (runc's init until it execs the container's command, a monitor):
// they never name the container's project.
bool IsRuntimeHelper(absl::string_view exe) {
  const size_t slash = exe.rfind('/');
  const absl::string_view name =
      slash == absl::string_view::npos ? exe : exe.substr(slash + 1);
  return name == "runc" || name == "crun" || name == "youki" ||
         name == "runsc" || name == "conmon" ||
         absl::StartsWith(name, "containerd-shim");
}

uint64_t NonNegative(const std::optional<int64_t>& v) {
  return v && *v > 0 ? static_cast<uint64_t>(*v) : 0;
}

// The container whose image names a pod as a whole: the first regular one
// (the application, by convention), else the first of any type.
const ContainerInfo* MainContainer(const PodInfo& pod) {
  for (const ContainerInfo& c : pod.containers) {
    if (c.type == ContainerInfo::Type::kRegular) return &c;
  }
  return pod.containers.empty() ? nullptr : &pod.containers.front();
}

}  // namespace

TaskHint HintForCgroup(uint64_t cgroup_id) {
  return cgroup_id == kKernelCgroupId ? TaskHint::kKernelThread
                                      : TaskHint::kNone;
}

ResolvedCgroup ResolveCgroup(absl::string_view path, const PodCache* cache,
                             const ProjectMap& projects, TaskHint hint) {
  ResolvedCgroup r;
  absl::StatusOr<CgroupIdentity> parsed = ParseCgroupPath(path, hint);
  if (!parsed.ok()) {
    r.cgroup.path = std::string(path);
    r.labels.kind = "invalid";
    return r;
  }
  r.cgroup = *std::move(parsed);
  WorkloadLabels& l = r.labels;
  l.kind = std::string(CgroupKindName(r.cgroup.kind));
  l.systemd_unit = r.cgroup.systemd_unit;
  l.pod_uid = r.cgroup.pod_uid;
  l.container_id = r.cgroup.container_id;
  if (!l.container_id.empty()) {
    l.container_runtime = std::string(ContainerRuntimeName(r.cgroup.runtime));
  }
  if (r.cgroup.kind == CgroupKind::kKernel) {
    // Not a cgroup: no unit, namespace or pod; one workload of its own.
    l.workload_kind = l.workload = std::string(CgroupKindName(r.cgroup.kind));
    l.project = l.pod_project = kKernelProject;
    return r;
  }
  const bool in_pod = r.cgroup.kind == CgroupKind::kPodContainer ||
                      r.cgroup.kind == CgroupKind::kPod;
  if (!in_pod || cache == nullptr) return r;
  absl::StatusOr<PodCache::Match> m = cache->Lookup(r.cgroup);
  if (!m.ok()) return r;
  r.pod = m->pod;
  r.container = m->container;
  const PodInfo& pod = *r.pod;
  l.pod_known = true;
  l.pod_uid = pod.uid;  // static pods: the mirror pod's UID, not the hash
  l.namespace_name = pod.namespace_name;
  l.pod = pod.name;
  l.workload_kind = pod.workload.kind;
  l.workload = pod.workload.name;
  const ContainerInfo* image_of = r.container;
  if (r.container != nullptr) {
    l.container = r.container->name;
  } else if (r.cgroup.kind == CgroupKind::kPod) {
    image_of = MainContainer(pod);
  }
  // A container the pod status does not list (the sandbox, or one that
  // just started) has no name and no project of its own yet.
  if (image_of != nullptr) {
    l.project = projects.ProjectForImageRef(image_of->image);
  }
  const ContainerInfo* main = MainContainer(pod);
  if (main == image_of) {
    l.pod_project = l.project;
  } else if (main != nullptr) {
    l.pod_project = projects.ProjectForImageRef(main->image);
  }
  return r;
}

WorkloadIdentifier::WorkloadIdentifier(const PodCache* cache,
                                       const ProjectMap* projects,
                                       WorkloadIdentityOptions options)
    : cache_(cache), projects_(projects), options_(std::move(options)) {
  if (!options_.read_exe) {
    const std::string proc = options_.proc_root;
    options_.read_exe = [proc](uint32_t pid) {
      return ReadLink(proc + "/" + std::to_string(pid) + "/exe");
    };
  }
}

void WorkloadIdentifier::Refresh(Entry& e, TaskHint hint) {
  if (!e.parsed) {
    ResolvedCgroup r = ResolveCgroup(e.path, cache_, *projects_, hint);
    if (r.labels.kind == "invalid") ++stats_.paths_invalid;
    e.cgroup = std::move(r.cgroup);
    e.parsed = true;
    e.pod = std::move(r.pod);
    e.labels = std::move(r.labels);
    e.requests = r.container ? r.container->requests : ResourceAmounts{};
    return;
  }
  if (e.cgroup.kind != CgroupKind::kPodContainer &&
      e.cgroup.kind != CgroupKind::kPod) {
    return;
  }
  if (cache_ == nullptr) return;
  absl::StatusOr<PodCache::Match> m = cache_->Lookup(e.cgroup);
  std::shared_ptr<const PodInfo> now = m.ok() ? m->pod : nullptr;
  // Unchanged pod object: the labels derived from it still hold. A pod the
  // API forgot (deleted past retention) keeps its last labels.
  if (now == e.pod || now == nullptr) return;
  ResolvedCgroup r = ResolveCgroup(e.path, cache_, *projects_);
  e.pod = std::move(r.pod);
  e.labels = std::move(r.labels);
  e.requests = r.container ? r.container->requests : ResourceAmounts{};
}

void WorkloadIdentifier::Label(Snapshot* s) {
  ++generation_;
  stats_.pod_cgroups = 0;
  stats_.pods_unknown = 0;
  // Containers of a pod that have a cgroup of their own this interval:
  // their requests are theirs, so the pod-level cgroup (which normally runs
  // nothing) carries only the rest and no request is counted twice.
  absl::flat_hash_set<std::string> containers_present;
  std::vector<std::pair<CgroupStats*, Entry*>> pod_level;
  for (CgroupStats& c : s->cgroups) {
    auto [it, fresh] = by_id_.try_emplace(c.id);
    Entry& e = it->second;
    if (fresh || e.path != c.path) {
      e = Entry();
      e.path = c.path.empty() ? "/" : c.path;
    }
    e.seen = generation_;
    Refresh(e, HintForCgroup(c.id));
    const bool in_pod = e.cgroup.kind == CgroupKind::kPodContainer ||
                        e.cgroup.kind == CgroupKind::kPod;
    if (in_pod) {
      ++stats_.pod_cgroups;
      if (!e.labels.pod_known) ++stats_.pods_unknown;
    }
    // Host processes: project from an executable, once per cgroup.
    if (!in_pod && !e.host_project_done && c.live_processes > 0 &&
        e.cgroup.kind != CgroupKind::kRoot &&
        e.cgroup.kind != CgroupKind::kKernel) {
      // A process that has not exec'd since its fork runs its parent's
      // executable: in a new container that is the runtime's init (runc)
      // about to exec the container's command. Such a process decides only
      // when, by the last attempt, no process of the cgroup has exec'd.
      const bool last_try =
          e.host_project_attempts + 1 >= kHostProjectAttempts;
      for (const ProcessStats& p : s->processes) {
        if (p.cgroup_id != c.id || p.exited) continue;
        std::optional<std::string> exe;
        if (options_.exes != nullptr) {
          exe = options_.exes->Lookup(p.pid);
          if (exe && !last_try && options_.exes->Inherited(p.pid)) continue;
        }
        if (!exe) exe = options_.read_exe(p.pid);
        if (!exe || exe->empty() || (*exe)[0] != '/') continue;
        if (!last_try && IsRuntimeHelper(*exe)) continue;
        // The first readable exe decides.
        e.labels.project =
            e.cgroup.kind == CgroupKind::kContainer
                ? ResolveContainerProject(
                      *projects_,
                      absl::StrCat(options_.proc_root, "/", p.pid, "/root"),
                      *exe)
                      .project
                : ResolveHostProject(*projects_, options_.dpkg, *exe).project;
        e.labels.pod_project = e.labels.project;
        ++stats_.host_projects_resolved;
        e.host_project_done = true;
        break;
      }
      // Every exe unreadable (exited, or another user's process once the
      // agent dropped its capabilities): try again for a few intervals.
      if (++e.host_project_attempts >= kHostProjectAttempts) {
        e.host_project_done = true;
      }
    }
    e.labels.project_pending =
        !in_pod && !e.host_project_done && c.live_processes > 0 &&
        e.cgroup.kind != CgroupKind::kRoot &&
        e.cgroup.kind != CgroupKind::kKernel;
    c.identity = e.labels;
    c.resources.cpu_request_millicores = NonNegative(e.requests.cpu_millis);
    c.resources.memory_request_bytes = NonNegative(e.requests.memory_bytes);
    if (e.cgroup.kind == CgroupKind::kPodContainer &&
        !e.cgroup.container_id.empty()) {
      containers_present.insert(e.cgroup.container_id);
    }
    if (e.cgroup.kind == CgroupKind::kPod && e.pod) {
      pod_level.emplace_back(&c, &e);
    }
  }
  for (auto& [c, e] : pod_level) {
    uint64_t cpu = 0, mem = 0;
    for (const ContainerInfo& k : e->pod->containers) {
      if (k.type != ContainerInfo::Type::kRegular) continue;
      if (!k.container_id.empty() &&
          containers_present.contains(k.container_id)) {
        continue;
      }
      cpu += NonNegative(k.requests.cpu_millis);
      mem += NonNegative(k.requests.memory_bytes);
    }
    c->resources.cpu_request_millicores = cpu;
    c->resources.memory_request_bytes = mem;
  }
  // Forget cgroups that left the snapshot.
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    if (it->second.seen != generation_) {
      by_id_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace wattlens::identity
