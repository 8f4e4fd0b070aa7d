// SPDX-License-Identifier: Apache-2.0
// What an agent leaves for the next one so that a restart loses nothing.
//
// The kernel keeps counting while no agent runs (pinned maps and links,
// agent/bpf/pinning.h), and its maps are cumulative per key. The next agent
// starts a new epoch (the collector's counters of a new epoch start at
// zero), so its first report must hold exactly what the collector has not
// seen: the growth of every kernel key since the last report the collector
// acknowledged. Hence, at each acknowledgement, the aggregator's last value
// per key as of the acknowledged report is written here (atomically: a
// temporary file renamed over the old one), and the next agent that adopts
// the same maps seeds its aggregator with it.
//
// Writes happen only for acknowledged reports: a report the collector never
// applied must be carried again. A file that cannot be read (missing,
// corrupt, another layout or another node) leaves the next agent a fresh
// start with the adopted maps' current values as its baseline (nothing
// counted twice; what ran since the last acknowledgement is lost), counted.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/bpf/abi.h"

namespace wattlens {

// The aggregator's last cumulative value per kernel key.
struct KernelBaselines {
  std::vector<std::pair<wl_sched_key, uint64_t>> oncpu;
  std::vector<std::pair<wl_syscall_key, wl_syscall_val>> syscalls;
  std::vector<std::pair<wl_net_key, wl_net_val>> net;
};

struct RestartState {
  // Which pinned maps the baselines belong to: "<concern>-<layout>" of each
  // pinned object, space separated.
  std::string layout;
  std::string node_name;
  uint64_t epoch = 0;
  uint64_t sequence = 0;
  int64_t report_time_ns = 0;  // the acknowledged report's time (Unix ns)
  KernelBaselines baselines;
};

std::string EncodeRestartState(const RestartState& s);
// DataLossError for a truncated, corrupt or foreign file.
absl::StatusOr<RestartState> DecodeRestartState(absl::string_view data);

// <dir>/restart-state: written durably, read at start.
class RestartStateFile {
 public:
  explicit RestartStateFile(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Write(const RestartState& s) const;
  // NotFoundError when there is none.
  absl::StatusOr<RestartState> Read() const;
  void Remove() const;
  std::string path() const { return dir_ + "/restart-state"; }

 private:
  std::string dir_;
};

// What a starting agent knows about its BPF objects.
struct RestoreInput {
  std::string layout;  // as RestartState::layout
  std::string node_name;
  // Which maps were adopted from an earlier agent (the rest start empty).
  bool adopted_oncpu = false;
  bool adopted_syscalls = false;
  bool adopted_net = false;
  int64_t now_ns = 0;  // Unix ns
};

struct RestorePlan {
  // "off" (nothing pinned), "fresh" (new maps; any state removed),
  // "resumed" (adopted maps, counted on from the state's baselines) or
  // "state_unreadable" (adopted maps, no usable state: seeded from them).
  std::string outcome;
  std::string reason;
  // Seed the aggregator with these (only for adopted maps)...
  KernelBaselines baselines;
  // ...and, per source, an adopted one the state does not describe with its
  // maps' values as they are now (nothing counted twice, the outage lost).
  bool seed_oncpu_from_maps = false;
  bool seed_syscalls_from_maps = false;
  bool seed_net_from_maps = false;
  // Resumed: how long before now the state's report was.
  uint64_t carried_ns = 0;
};

// Decides how a starting agent's counters begin. `file` may be null (no
// state kept).
RestorePlan PlanRestore(const RestoreInput& in, const RestartStateFile* file);

// Remembers the baselines of each queued report until the collector
// acknowledges it (or a later one), then writes them. Thread-safe: reports
// are queued by the uploader's timer, acknowledged on its sender thread.
class RestartLedger {
 public:
  struct Stats {
    uint64_t writes = 0;
    uint64_t write_errors = 0;
    // Acknowledged reports whose baselines were no longer held (more than
    // `max_pending` queued since): the state file is removed.
    uint64_t unmatched_acks = 0;
    std::string last_error;
  };

  RestartLedger(RestartStateFile file, std::string layout,
                std::string node_name, size_t max_pending = 64)
      : file_(std::move(file)),
        layout_(std::move(layout)),
        node_name_(std::move(node_name)),
        max_pending_(max_pending) {}

  void Queued(uint64_t epoch, uint64_t sequence, int64_t report_time_ns,
              std::shared_ptr<const KernelBaselines> baselines);
  void Acked(uint64_t epoch, uint64_t sequence);
  Stats stats() const;

 private:
  struct Pending {
    int64_t time_ns;
    std::shared_ptr<const KernelBaselines> baselines;
  };
  const RestartStateFile file_;
  const std::string layout_;
  const std::string node_name_;
  const size_t max_pending_;
  mutable absl::Mutex mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);  // by sequence
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wattlens
