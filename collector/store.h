// SPDX-License-Identifier: Apache-2.0
// The embedded store: SQLite in WAL mode. Holds, per node, the last applied
// (epoch, sequence); per series its labels and last cumulative counters; and
// per (series, bucket) the deltas at the collector's resolution, kept for the
// retention. Writes are group-committed by one writer thread; a report is
// acknowledged only after the transaction holding it commits, so a collector
// restart loses nothing it acknowledged (the agent resends the rest, and the
// restored sequence numbers make resends add nothing).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"
#include "collector/cluster_state.h"

namespace wattlens::collector {

struct StoreOptions {
  std::string path;
  int64_t resolution_ns = 10'000'000'000;
  int64_t retention_ns = 24 * 3600'000'000'000;
  // FULL also survives power loss; NORMAL (default) survives process crashes.
  bool sync_full = false;
  // A failed commit (a full disk) is retried, in order, this often until it
  // succeeds: nothing behind it is acknowledged before it is durable.
  int64_t retry_ns = 1'000'000'000;
};

struct StoreStats {
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> failures{0};  // reports in failed commit attempts
  std::atomic<uint64_t> rows{0};
  std::atomic<int64_t> last_commit_ns{0};
  std::atomic<uint64_t> queued{0};
};

class Store {
 public:
  using Done = std::function<void(const absl::Status&)>;

  static absl::StatusOr<std::unique_ptr<Store>> Open(StoreOptions options,
                                                     const Clock& clock);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Loads everything within retention into `state`. Call before Start().
  absl::Status LoadInto(ClusterState& state);
  void Start();
  // Stops after committing everything queued.
  void Stop();

  // Cheap (a queue push); called under the node's lock to keep per-node
  // order. `done` runs on the writer thread after the commit. A failing
  // commit is retried until it succeeds; `done` sees an error only when the
  // store stops before then.
  void Submit(NodeWrite&& write, Done done);
  // `done` runs once everything submitted before it has committed.
  void SubmitBarrier(Done done);
  // Waits until everything submitted so far has committed (tests, shutdown).
  void Flush();

  const StoreStats& stats() const { return stats_; }

 private:
  Store(StoreOptions options, const Clock& clock, sqlite3* db);
  absl::Status Prepare();
  absl::Status Exec(const char* sql);
  void WriterLoop();
  absl::Status WriteOne(const NodeWrite& w);
  absl::Status ApplyRetention();

  const StoreOptions options_;
  const Clock& clock_;
  sqlite3* db_;
  sqlite3_stmt* upsert_node_ = nullptr;
  sqlite3_stmt* upsert_series_ = nullptr;    // with labels, RETURNING id
  sqlite3_stmt* upsert_counters_ = nullptr;  // counters only, RETURNING id
  sqlite3_stmt* update_series_ = nullptr;    // counters by id
  // (node, path) -> series id. Writer thread only (and LoadInto before
  // Start).
  absl::flat_hash_map<std::string, int64_t> series_ids_;
  sqlite3_stmt* upsert_bucket_ = nullptr;
  StoreStats stats_;
  int64_t last_retention_mono_ns_ = 0;
  bool failing_ = false;  // writer thread only

  absl::Mutex mu_;
  struct Item {
    NodeWrite write;
    Done done;
    bool barrier = false;
  };
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace wattlens::collector
