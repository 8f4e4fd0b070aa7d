// SPDX-License-Identifier: Apache-2.0
// Bounded, thread-safe pod metadata cache keyed by pod UID, with indexes by
// container id and static-pod mirror hash. One writer (the watch) and many
// readers (the per-interval snapshot builder): entries are immutable
// shared_ptrs, so a reader keeps a consistent PodInfo without holding a lock.
//
// Deleted pods stay for a retention period, because their last samples
// arrive after the DELETE. When the API server is unreachable the cache
// simply stops changing: known pods keep their last metadata, pods it has
// never seen look up as NotFound ("unknown" to the caller).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"
#include "agent/identity/cgroup_path_parser.h"
#include "agent/identity/pod_info.h"

namespace wattlens::identity {

class PodCache {
 public:
  // The kubelet allows 110 pods per node by default; 1024 leaves room for
  // large nodes plus deleted pods within their retention.
  static constexpr size_t kDefaultCapacity = 1024;
  static constexpr int64_t kDefaultDeletedRetentionNs = 5 * 60'000'000'000LL;

  struct Stats {
    size_t live = 0;
    size_t deleted = 0;
    uint64_t upserts = 0;
    uint64_t deletes = 0;
    uint64_t evicted_deleted = 0;  // deleted pods pushed out by capacity
    uint64_t evicted_live = 0;     // live pods pushed out: capacity too small
    uint64_t expired = 0;          // deleted pods past retention
  };

  struct Match {
    std::shared_ptr<const PodInfo> pod;
    const ContainerInfo* container = nullptr;  // points into *pod
    bool deleted = false;
  };

  PodCache(const Clock& clock, size_t capacity = kDefaultCapacity,
           int64_t deleted_retention_ns = kDefaultDeletedRetentionNs);

  void Upsert(PodInfo pod) ABSL_LOCKS_EXCLUDED(mu_);
  void MarkDeleted(absl::string_view uid) ABSL_LOCKS_EXCLUDED(mu_);
  // After a (re)list: `pods` is the complete set for this node; cached live
  // pods not in it were deleted while the watch was down.
  void ReplaceAll(std::vector<PodInfo> pods) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops deleted pods past their retention.
  void ExpireDeleted() ABSL_LOCKS_EXCLUDED(mu_);

  // By API UID or, for static pods, by the kubelet's config hash (which is
  // what the cgroup path carries).
  absl::StatusOr<Match> ByPodUid(absl::string_view uid) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<Match> ByContainerId(absl::string_view id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // A parsed cgroup: the container when its id is known, else the pod.
  absl::StatusOr<Match> Lookup(const CgroupIdentity& id) const
      ABSL_LOCKS_EXCLUDED(mu_);

  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::shared_ptr<const PodInfo> pod;
    int64_t updated_ns = 0;
    int64_t deleted_ns = 0;  // 0: live
  };
  void UpsertLocked(PodInfo pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkDeletedLocked(const std::string& uid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const std::string& uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexLocked(const PodInfo& pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexLocked(const PodInfo& pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictIfFullLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t Now() const { return clock_.MonotonicNs(); }

  const Clock& clock_;
  const size_t capacity_;
  const int64_t retention_ns_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> by_uid_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> uid_by_container_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> uid_by_mirror_
      ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace wattlens::identity
