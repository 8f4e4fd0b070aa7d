// SPDX-License-Identifier: Apache-2.0
// cgroup v1 fallback: on v1-only hosts (and hybrid ones where runtimes only
// use the v1 hierarchies) every process sits in the v2 root, so the v2
// cgroup id names nothing. Its workload is then the v1 path from
// /proc/<pid>/cgroup, read once per process (never environ or cmdline).
//
// V1Attribution moves what the root cgroup's processes did into one
// synthetic cgroup per v1 path ("/kubepods/burstable/pod<uid>/<id>",
// "/system.slice/nginx.service"): the processes' growth since last seen is
// taken out of the root and added to the synthetic cgroup, so totals are
// unchanged and the identity stage parses the v1 path like a v2 one.
// Synthetic ids have the top bit set (v2 ids are inode numbers, far below)
// and stay below kFirstReservedCgroupId. Kernel threads are keyed under
// kKernelCgroupId, not the root, so they are never moved: they stay the
// `kernel` workload.
//
// Must not depend on: agent_core, BPF (only the Snapshot structs).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/state/snapshot.h"

namespace wattlens::identity {

// One line of /proc/<pid>/cgroup: "hierarchy-id:controller-list:path".
struct ProcCgroupLine {
  int hierarchy = 0;
  std::vector<std::string> controllers;  // "cpu", "cpuacct", "name=systemd"
  std::string path;
};

// InvalidArgument for text that is not a /proc/<pid>/cgroup file.
absl::StatusOr<std::vector<ProcCgroupLine>> ParseProcCgroup(
    absl::string_view text);

// The v1 path that names the process's workload: the CPU controller's
// (cpu, then cpuacct: where its CPU time is charged), else memory, pids,
// name=systemd, else the first v1 hierarchy; "" when there is no v1
// hierarchy or the process sits in the v1 root of all of them.
std::string V1WorkloadPath(const std::vector<ProcCgroupLine>& lines);

inline constexpr uint64_t kSyntheticCgroupBit = uint64_t{1} << 63;

class V1Attribution {
 public:
  // /proc/<pid>/cgroup contents (injectable for fixture trees).
  using ReadFile =
      std::function<std::optional<std::string>(const std::string& path)>;

  explicit V1Attribution(std::string proc_root, ReadFile read = nullptr);

  // Rewrites `s`: processes of the root cgroup with a v1 workload path move
  // to their synthetic cgroup, with their growth. Call once per snapshot,
  // in order.
  void Apply(Snapshot* s);

  uint64_t lookups() const { return lookups_; }
  size_t synthetic_cgroups() const { return cgroups_.size(); }

 private:
  struct Counters {
    uint64_t cpu_ns = 0, syscalls = 0, errors = 0;
    std::array<NetStats, kNetClasses> net{};
    TcpStats tcp;
  };
  struct Proc {
    uint64_t cgroup = 0;  // synthetic id, 0: stays in the root
    Counters last;
    uint64_t seen = 0;
  };
  struct Synthetic {
    std::string path;
    Counters total;
    uint64_t seen = 0;  // last interval a process of it was reported
  };
  // A synthetic cgroup without processes is kept (and exported, unchanged)
  // this many intervals, so a path that runs again later continues its
  // counters instead of restarting them; then exported once as gone.
  static constexpr uint64_t kIdleIntervals = 300;
  std::string PathOf(uint32_t pid);

  const std::string proc_root_;
  ReadFile read_;
  uint64_t generation_ = 0;
  uint64_t lookups_ = 0;
  Counters moved_;  // everything taken out of the root so far
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Proc> procs_;
  absl::flat_hash_map<uint64_t, Synthetic> cgroups_;
};

}  // namespace wattlens::identity
