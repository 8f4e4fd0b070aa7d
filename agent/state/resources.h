// SPDX-License-Identifier: Apache-2.0
// Requests, working set and allocation per cgroup, and the node's size:
// what the collector's cost engine needs (issue #7, docs/identity.md).
//
// Every interval dt (agent monotonic clock, from the agent's start):
//   cpu_allocated_core_ns         += max(cpu_request_cores x dt, CPU time in
//   dt) memory_allocated_byte_seconds += max(memory_request, working set) x dt
// in exact integers: the sub-unit remainders (request millicores x ns / 1000,
// bytes x ns / 1e9) are carried per cgroup, so no rounding accumulates.
// Working set = memory.current - inactive_file (memory.stat) of the cgroup's
// v2 directory, as the kubelet and cAdvisor define it. Where the v2
// hierarchy has no memory controller (hybrid hosts: memory is on v1), the
// same path under the v1 memory hierarchy is read instead:
// memory.usage_in_bytes - total_inactive_file, as cAdvisor does on v1
// (systemd and the kubelet name a cgroup alike in every hierarchy).
// Odd contents (memory.stat without inactive_file, inactive above the
// usage, garbage) are a counted drop (working_set_unreadable) and give 0.
// No memory accounting at all for the cgroup (no memory controller on v2,
// no such v1 directory, or the cgroup just went away) gives 0 and is
// counted apart as unavailable: nothing was lost that could be read.
//
// Pure state apart from the injected file reader: unit tests drive it with a
// fake tree and explicit times.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/state/snapshot.h"

namespace wattlens {

class ResourceAccounting {
 public:
  using ReadFile =
      std::function<std::optional<std::string>(const std::string& path)>;

  // `cgroup_root`: the v2 mount; `start_ns`: when the epoch began (the
  // first interval runs from there).
  // `memory_v1_root`: the v1 memory hierarchy's mount, or "" (none).
  ResourceAccounting(std::string cgroup_root, int64_t start_ns,
                     ReadFile read = nullptr, std::string memory_v1_root = "");

  // Reads each cgroup's working set, then accumulates its allocation over
  // [last update, now_ns); fills snapshot->cgroups[].resources (requests
  // must already be there) and snapshot->elapsed_ns.
  void Update(int64_t now_ns, Snapshot* s);

  uint64_t elapsed_ns() const { return elapsed_ns_; }
  uint64_t working_set_drops() const { return ws_drops_; }
  uint64_t working_set_unavailable() const { return ws_unavailable_; }

  // memory.current - inactive_file; nullopt when either is missing or odd.
  static std::optional<uint64_t> WorkingSet(
      const std::string& current, const std::string& stat,
      const char* inactive_key = "inactive_file");

 private:
  struct Acc {
    bool have_cpu = false;
    uint64_t last_cpu_ns = 0;
    uint64_t cpu_allocated = 0;
    uint64_t cpu_carry = 0;  // millicore-ns, < 1000
    uint64_t mem_allocated = 0;
    uint64_t mem_carry = 0;  // byte-ns, < 1e9
    uint64_t working_set = 0;
    uint64_t seen = 0;
  };

  // nullopt: no accounting files; 0 with *odd set: unreadable contents.
  std::optional<uint64_t> ReadWorkingSet(const std::string& path, bool* odd);

  const std::string root_;
  const std::string v1_root_;
  ReadFile read_;
  int64_t last_ns_;
  uint64_t elapsed_ns_ = 0;
  uint64_t ws_drops_ = 0;
  uint64_t ws_unavailable_ = 0;
  uint64_t generation_ = 0;
  absl::flat_hash_map<uint64_t, Acc> acc_;
};

// Online CPUs and MemTotal (<proc_root>/meminfo); labels are left alone.
void ReadNodeCapacity(const std::string& proc_root, NodeInfo* node);

// The mount point of the cgroup v1 hierarchy carrying `controller`
// (<proc_root>/self/mountinfo), or "" when there is none.
std::string FindCgroupV1Mount(const std::string& proc_root,
                              const std::string& controller);

}  // namespace wattlens
