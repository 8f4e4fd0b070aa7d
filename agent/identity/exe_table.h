// SPDX-License-Identifier: Apache-2.0
// The executable each live process runs, for host project identity.
//
// Reading /proc/<pid>/exe needs ptrace access to the process: an agent
// running with only CAP_BPF and CAP_PERFMON (the DaemonSet's set) has none
// to root's processes, which hold more capabilities than it does. So the
// kernel names the executable at every exec (sched.bpf.c), a task iterator
// names those of the processes already running at start, and, where the
// agent still has the capabilities before dropping them, a scan of
// /proc/*/exe fills in what the iterator could not name. This table keeps
// the result per process: a fork inherits its parent's executable, an exit
// forgets it. Bounded: past `capacity` entries a new process is not kept,
// and counted.
//
// One thread (the agent's drain thread) owns it; not thread-safe.
// Must not depend on: BPF, agent_core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"

namespace wattlens::identity {

// An executable learnt at an exec (or at the start-up scan, timestamp 0),
// handed from the ring-buffer reader to the drain thread.
struct ExeUpdate {
  uint32_t tgid = 0;
  uint64_t start_ns = 0;
  uint64_t timestamp_ns = 0;
  std::string path;
};

class ExeTable {
 public:
  struct Stats {
    uint64_t entries = 0;
    uint64_t dropped_full = 0;  // cumulative: processes not kept, table full
  };

  explicit ExeTable(size_t capacity) : capacity_(capacity) {}

  // `tgid` now runs `path` (it exec'd, or was found by a scan).
  void Exec(uint32_t tgid, uint64_t start_ns, std::string path);
  // Like Exec, but only for a process not known yet: a scan must not
  // overwrite what an exec has since reported.
  void Seed(uint32_t tgid, uint64_t start_ns, std::string path);
  // A new process runs its parent's executable until it execs.
  void Fork(uint32_t child, uint64_t start_ns, uint32_t parent);
  // The process ended. A different process under a reused pid is kept.
  void Exit(uint32_t tgid, uint64_t start_ns);

  // The executable of `tgid`, if known.
  std::optional<std::string> Lookup(uint32_t tgid) const;
  // True when `tgid` has not exec'd since its fork: it runs its parent's
  // executable (a forking server's worker, or a runtime's init just before
  // it execs the container's command).
  bool Inherited(uint32_t tgid) const;

  Stats stats() const { return {map_.size(), dropped_full_}; }

 private:
  struct Entry {
    uint64_t start_ns = 0;                    // 0: unknown (a /proc scan)
    std::shared_ptr<const std::string> path;  // shared by forked children
    bool inherited = false;                   // from Fork, not Exec/Seed
  };
  void Put(uint32_t tgid, Entry e);

  size_t capacity_;
  absl::flat_hash_map<uint32_t, Entry> map_;
  uint64_t dropped_full_ = 0;
};

// Reads <proc_root>/<pid>/exe of every process into `table` with Seed.
// Returns how many could be read; a process whose exe the caller may not
// read (no ptrace access) is left out.
struct ProcScanResult {
  int read = 0;
  int unreadable = 0;
};
ProcScanResult SeedFromProc(const std::string& proc_root, ExeTable* table);

}  // namespace wattlens::identity
