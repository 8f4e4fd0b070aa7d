// SPDX-License-Identifier: Apache-2.0
// Turns cumulative kernel counters and lifecycle events into per-process and
// per-cgroup totals, one interval at a time. Pure state: no BPF, no threads,
// no I/O except through the injected Env, so unit tests drive it directly.
//
// Exactness rules:
//  - A process is (tgid, start_ns): a reused PID is a different process.
//  - Kernel counters are cumulative per key; the aggregator keeps the last
//    value per key and adds deltas. A value below the last (key deleted and
//    re-created) counts as a reset and the new value is the delta.
//  - Every kernel key carries the cgroup (on-CPU time, syscalls, network),
//    so per-cgroup totals are exact even for processes that move. Kernel
//    threads' keys carry kKernelCgroupId: the `kernel` row, which needs no
//    resolving and is never collected as gone.
//  - An exited process is exported exactly once, flagged `exited`, in the
//    interval its EXIT event arrives. Its kernel keys are read once more and
//    deleted in the next interval; anything that arrived in between (a
//    sibling thread's final slice) is credited to its cgroup.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "agent/bpf/abi.h"
#include "agent/state/restart_state.h"
#include "agent/state/snapshot.h"

namespace wattlens {

struct ProcessKey {
  uint32_t tgid = 0;
  uint64_t start_ns = 0;
  friend bool operator==(const ProcessKey&, const ProcessKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ProcessKey& k) {
    return H::combine(std::move(h), k.tgid, k.start_ns);
  }
};

enum class EventType { kExec, kFork, kExit, kExiting };

struct LifecycleEvent {
  EventType type = EventType::kExec;
  ProcessKey proc;
  uint32_t ppid = 0;
  int32_t exit_code = 0;
  uint64_t cgroup_id = 0;
  uint64_t timestamp_ns = 0;
  std::string comm;
};

// Converts a ring-buffer record; nullopt for an unknown type.
std::optional<LifecycleEvent> FromWire(const wl_event& e);

struct KernelReadings {
  std::vector<std::pair<wl_sched_key, uint64_t>> oncpu;  // cumulative ns
  std::vector<std::pair<wl_syscall_key, wl_syscall_val>> syscalls;
  std::vector<std::pair<wl_net_key, wl_net_val>> net;
};

// What the aggregator may ask the system (faked in tests).
struct ProcInfo {
  uint64_t start_ticks = 0;  // /proc/<pid>/stat field 22
  uint32_t ppid = 0;
  std::string comm;
};

struct AggregatorEnv {
  // cgroup v2 id -> path relative to the v2 root; nullopt when it no longer
  // exists (or never resolved).
  std::function<std::optional<std::string>(uint64_t)> cgroup_path;
  // /proc/<tgid>; nullopt when there is no such process.
  std::function<std::optional<ProcInfo>(uint32_t)> read_proc;
  uint64_t tick_ns = 10'000'000;  // 1e9 / sysconf(_SC_CLK_TCK)
};

struct AggregatorOptions {
  size_t max_processes = 65536;
  size_t max_cgroups = 8192;
  // Live processes are checked against /proc every N intervals, to retire
  // those whose EXIT event was lost.
  uint32_t gc_every = 10;
  // A process announced EXITING (sampled CPU time) is retired this long
  // after it if its EXIT (sent by the first drain after its leader's final
  // switch-out, or at its free) never comes, and counted. The agent raises
  // it to two intervals.
  int64_t exit_grace_ns = 2'000'000'000;
  // How long a retired process's keys are still recognised: counts that
  // arrive after its export (a thread freed after its leader) go to its
  // cgroup only, and a late EXIT is not exported twice.
  int64_t graveyard_ns = 10'000'000'000;
};

class Aggregator {
 public:
  struct Deletions {
    std::vector<wl_sched_key> oncpu;
    std::vector<wl_syscall_key> syscalls;
    std::vector<wl_net_key> net;
  };
  struct Result {
    std::shared_ptr<const Snapshot> snapshot;
    Deletions deletions;  // delete these kernel keys now
  };

  Aggregator(AggregatorOptions options, AggregatorEnv env);

  // Applies one interval: events (in arrival order) then the counter
  // readings taken after those events were consumed. `self` is copied into
  // the snapshot with the aggregator's own counters filled in.
  Result Update(std::vector<LifecycleEvent> events,
                const KernelReadings& readings, int64_t monotonic_ns,
                int64_t realtime_ns, AgentSelfStats self);

  // Called after the caller deleted `deletions` from the kernel maps.
  void ForgetDeleted(const Deletions& d);

  // The last cumulative value per kernel key, as of the latest Update (and
  // ForgetDeleted): what a restarted agent that adopts the same maps must
  // count from (agent/state/restart_state.h).
  std::shared_ptr<const KernelBaselines> Baselines() const;
  // Before the first Update: counts only growth past `b` (keys missing from
  // the next readings are forgotten).
  void SeedBaselines(const KernelBaselines& b);

 private:
  struct Proc {
    uint32_t ppid = 0;
    std::string comm;
    uint64_t cgroup_id = 0;
    uint64_t cpu_ns = 0;
    uint64_t syscalls = 0;
    uint64_t errors = 0;
    bool exited = false;
    bool comm_known = false;
    int64_t exiting_since_ns = 0;  // monotonic; 0: no EXITING seen
    int32_t exit_code = 0;
    absl::flat_hash_map<uint32_t, SyscallStats> by_syscall;
    std::array<NetStats, kNetClasses> net{};
    TcpStats tcp;
  };
  struct Cgroup {
    std::string path;
    bool resolved = false;
    uint32_t resolve_attempts = 0;
    uint64_t cpu_ns = 0;
    uint64_t syscalls = 0;
    uint64_t errors = 0;
    uint64_t last_active = 0;  // sequence
    bool gone = false;
    std::array<NetStats, kNetClasses> net{};
    TcpStats tcp;
  };
  // Kernel map keys are plain structs with explicit padding: hash and
  // compare their bytes.
  struct KeyBytes {
    template <typename K>
    size_t operator()(const K& k) const {
      return absl::HashOf(
          absl::string_view(reinterpret_cast<const char*>(&k), sizeof(K)));
    }
    template <typename K>
    bool operator()(const K& a, const K& b) const {
      return std::memcmp(&a, &b, sizeof(K)) == 0;
    }
  };
  template <typename K, typename V>
  using LastValues = absl::flat_hash_map<K, V, KeyBytes, KeyBytes>;

  void ApplyEvent(const LifecycleEvent& e);
  // Delta of a cumulative value against the last one seen for its key
  // (every field a u64, restarting together: RecordGrowth).
  template <typename K, typename V>
  V Delta(LastValues<K, V>& last, const K& key, const V& cum);
  Proc* FindOrCreate(const ProcessKey& k);
  Cgroup* CgroupFor(uint64_t id);
  void CollectGarbage();
  std::shared_ptr<const Snapshot> Build(int64_t mono, int64_t real,
                                        AgentSelfStats self);

  AggregatorOptions options_;
  AggregatorEnv env_;
  uint64_t seq_ = 0;
  int64_t last_mono_ = 0;

  absl::flat_hash_map<ProcessKey, Proc> procs_;
  // Exited processes already exported, with when (monotonic ns): their
  // kernel keys are deleted when read, and anything that arrives for them
  // later goes to their cgroup only. Kept for options_.graveyard_ns.
  absl::flat_hash_map<ProcessKey, int64_t> graveyard_;
  // Exited in this interval: exported once now, graveyard next.
  std::vector<std::pair<ProcessKey, Proc>> exited_now_;
  absl::flat_hash_map<uint64_t, Cgroup> cgroups_;
  LastValues<wl_sched_key, uint64_t> last_oncpu_;
  LastValues<wl_syscall_key, wl_syscall_val> last_syscalls_;
  LastValues<wl_net_key, wl_net_val> last_net_;
  absl::flat_hash_map<uint32_t, SyscallStats> node_syscalls_;
  bool seeded_ = false;  // until the first Update after SeedBaselines

  uint64_t exits_inferred_ = 0;
  uint64_t exit_free_unseen_ = 0;
  int64_t mono_now_ = 0;  // of the Update in progress
  uint64_t counter_resets_ = 0;
  uint64_t process_table_full_ = 0;
  uint64_t cgroup_table_full_ = 0;
};

}  // namespace wattlens
