// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/pod_cache.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace wattlens::identity {

PodCache::PodCache(const Clock& clock, size_t capacity,
                   int64_t deleted_retention_ns)
    : clock_(clock),
      capacity_(std::max<size_t>(capacity, 1)),
      retention_ns_(deleted_retention_ns) {}

void PodCache::IndexLocked(const PodInfo& pod) {
  for (const ContainerInfo& c : pod.containers) {
    if (!c.container_id.empty()) uid_by_container_[c.container_id] = pod.uid;
  }
  if (!pod.mirror_hash.empty()) uid_by_mirror_[pod.mirror_hash] = pod.uid;
}

void PodCache::UnindexLocked(const PodInfo& pod) {
  for (const ContainerInfo& c : pod.containers) {
    auto it = uid_by_container_.find(c.container_id);
    if (it != uid_by_container_.end() && it->second == pod.uid) {
      uid_by_container_.erase(it);
    }
  }
  auto it = uid_by_mirror_.find(pod.mirror_hash);
  if (it != uid_by_mirror_.end() && it->second == pod.uid) {
    uid_by_mirror_.erase(it);
  }
}

void PodCache::RemoveLocked(const std::string& uid) {
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) return;
  UnindexLocked(*it->second.pod);
  by_uid_.erase(it);
}

void PodCache::EvictIfFullLocked() {
  while (by_uid_.size() >= capacity_) {
    // Oldest deleted pod first; else the least recently updated live pod.
    const std::string* victim = nullptr;
    int64_t best_deleted = 0, best_updated = 0;
    bool victim_deleted = false;
    for (const auto& [uid, e] : by_uid_) {
      bool deleted = e.deleted_ns != 0;
      if (victim == nullptr || (deleted && !victim_deleted) ||
          (deleted && victim_deleted && e.deleted_ns < best_deleted) ||
          (!deleted && !victim_deleted && e.updated_ns < best_updated)) {
        victim = &uid;
        victim_deleted = deleted;
        best_deleted = e.deleted_ns;
        best_updated = e.updated_ns;
      }
    }
    if (victim_deleted) {
      ++stats_.evicted_deleted;
    } else {
      ++stats_.evicted_live;
    }
    RemoveLocked(std::string(*victim));
  }
}

void PodCache::UpsertLocked(PodInfo pod) {
  ++stats_.upserts;
  auto it = by_uid_.find(pod.uid);
  if (it != by_uid_.end()) {
    UnindexLocked(*it->second.pod);
  } else {
    EvictIfFullLocked();
  }
  auto shared = std::make_shared<const PodInfo>(std::move(pod));
  IndexLocked(*shared);
  Entry& e = by_uid_[shared->uid];
  e.pod = std::move(shared);
  e.updated_ns = Now();
  e.deleted_ns = 0;
}

void PodCache::Upsert(PodInfo pod) {
  absl::MutexLock lock(&mu_);
  UpsertLocked(std::move(pod));
}

void PodCache::MarkDeletedLocked(const std::string& uid) {
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end() || it->second.deleted_ns != 0) return;
  ++stats_.deletes;
  it->second.deleted_ns = std::max<int64_t>(Now(), 1);
}

void PodCache::MarkDeleted(absl::string_view uid) {
  absl::MutexLock lock(&mu_);
  MarkDeletedLocked(std::string(uid));
}

void PodCache::ReplaceAll(std::vector<PodInfo> pods) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_set<std::string> present;
  for (const PodInfo& p : pods) present.insert(p.uid);
  std::vector<std::string> gone;
  for (const auto& [uid, e] : by_uid_) {
    if (e.deleted_ns == 0 && !present.contains(uid)) gone.push_back(uid);
  }
  for (const std::string& uid : gone) MarkDeletedLocked(uid);
  for (PodInfo& p : pods) UpsertLocked(std::move(p));
}

void PodCache::ExpireDeleted() {
  absl::MutexLock lock(&mu_);
  int64_t now = Now();
  std::vector<std::string> expired;
  for (const auto& [uid, e] : by_uid_) {
    if (e.deleted_ns != 0 && now - e.deleted_ns >= retention_ns_) {
      expired.push_back(uid);
    }
  }
  for (const std::string& uid : expired) {
    RemoveLocked(uid);
    ++stats_.expired;
  }
}

absl::StatusOr<PodCache::Match> PodCache::ByPodUid(
    absl::string_view uid) const {
  absl::MutexLock lock(&mu_);
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end()) {
    auto m = uid_by_mirror_.find(uid);
    if (m != uid_by_mirror_.end()) it = by_uid_.find(m->second);
  }
  if (it == by_uid_.end()) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, " not known"));
  }
  return Match{it->second.pod, nullptr, it->second.deleted_ns != 0};
}

absl::StatusOr<PodCache::Match> PodCache::ByContainerId(
    absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  auto c = uid_by_container_.find(id);
  if (c == uid_by_container_.end()) {
    return absl::NotFoundError(
        absl::StrCat("container ", id.substr(0, 64), " not known"));
  }
  auto it = by_uid_.find(c->second);
  if (it == by_uid_.end()) {
    return absl::InternalError("container index points at a missing pod");
  }
  const PodInfo& pod = *it->second.pod;
  return Match{it->second.pod, pod.FindContainerById(id),
               it->second.deleted_ns != 0};
}

absl::StatusOr<PodCache::Match> PodCache::Lookup(
    const CgroupIdentity& id) const {
  if (!id.container_id.empty()) {
    absl::StatusOr<Match> m = ByContainerId(id.container_id);
    if (m.ok()) return m;
  }
  if (id.pod_uid.empty()) {
    return absl::NotFoundError(
        absl::StrCat("cgroup ", id.path.substr(0, 128), " is not a pod's"));
  }
  // A new container (status not yet seen) of a known pod: pod-level match.
  return ByPodUid(id.pod_uid);
}

PodCache::Stats PodCache::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  for (const auto& [uid, e] : by_uid_) {
    if (e.deleted_ns != 0) {
      ++s.deleted;
    } else {
      ++s.live;
    }
  }
  return s;
}

}  // namespace wattlens::identity
