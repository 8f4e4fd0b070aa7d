// SPDX-License-Identifier: Apache-2.0
// cgroup v2 id -> path, for the `cgroup` label.
//
// The id the kernel reports (bpf_get_current_cgroup_id) is the cgroup
// directory's kernfs inode number, and it doubles as a file handle:
// open_by_handle_at() on the v2 mount opens the directory in O(1), and its
// /proc/self/fd link names the path. Where that is refused (no
// CAP_DAC_READ_SEARCH) the resolver indexes the tree by inode, rescanning
// only when it meets an id it does not know, at most once per interval.
// Results are cached (bounded); a failed lookup is not cached so a cgroup
// created after the last scan still resolves.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"

namespace wattlens {

// Finds the cgroup v2 mount point in <proc_root>/self/mountinfo, preferring
// /sys/fs/cgroup (unified hosts) over hybrid layouts such as
// /sys/fs/cgroup/unified.
absl::StatusOr<std::string> FindCgroup2Mount(const std::string& proc_root);

class CgroupResolver {
 public:
  struct Options {
    size_t max_cached = 16384;
    int64_t min_rescan_interval_ns = 1'000'000'000;
    bool use_file_handles = true;
    size_t max_scan_entries = 200'000;
  };

  CgroupResolver(std::string mount_point, const Clock& clock, Options options);
  CgroupResolver(std::string mount_point, const Clock& clock)
      : CgroupResolver(std::move(mount_point), clock, Options()) {}

  // Path relative to the mount ("/" for the root), or nullopt if no cgroup
  // with that id exists now.
  std::optional<std::string> PathOf(uint64_t id);

  // The id of a path relative to the mount (its inode), if it exists.
  std::optional<uint64_t> IdOf(const std::string& relative_path) const;

  const std::string& mount_point() const { return mount_; }
  uint64_t scans() const { return scans_; }

 private:
  std::optional<std::string> ByHandle(uint64_t id);
  void Rescan();

  const std::string mount_;
  const Clock& clock_;
  const Options options_;
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, std::string> cache_ ABSL_GUARDED_BY(mu_);
  int64_t last_scan_ns_ = 0;
  uint64_t scans_ = 0;
  bool handles_work_ = true;
};

}  // namespace wattlens
