// SPDX-License-Identifier: Apache-2.0
// Host executable -> Debian package -> upstream project, for host processes.
//
// Reads dpkg's own database under an injected root (the agent sees the host
// at /host): <root>/var/lib/dpkg/info/<pkg>[:<arch>].list for file
// ownership and <root>/var/lib/dpkg/status for each package's source
// package. The index is built on the first lookup, not at start-up, and
// rebuilt when the status file changes (checked at most once per
// kRecheckInterval of the injected clock). Only paths where executables live
// are indexed (documentation, locales, headers and /etc are skipped), and
// the index is bounded; paths past the bound are counted, not stored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/common/clock.h"
#include "agent/identity/project_map.h"

namespace wattlens::identity {

struct PackageInfo {
  std::string package;  // binary package, without ":arch"
  std::string source;   // source package; equals `package` when not given
};

class DpkgIndex {
 public:
  static constexpr int64_t kRecheckIntervalNs = 60'000'000'000;
  static constexpr size_t kDefaultMaxPaths = 400'000;

  struct Stats {
    uint64_t builds = 0;
    uint64_t lists_read = 0;
    uint64_t lists_failed = 0;
    uint64_t paths_indexed = 0;
    uint64_t paths_dropped_over_limit = 0;
    uint64_t lookups = 0;
    uint64_t misses = 0;
  };

  DpkgIndex(std::string root, const Clock& clock,
            size_t max_paths = kDefaultMaxPaths);

  // The package owning `exe` (an absolute host path as /proc/<pid>/exe
  // reads it; a " (deleted)" suffix and usr-merge aliases are handled).
  // NotFound when no package owns it; FailedPrecondition when there is no
  // dpkg database under the root (not a Debian-family host).
  absl::StatusOr<PackageInfo> PackageFor(absl::string_view exe)
      ABSL_LOCKS_EXCLUDED(mu_);

  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void MaybeRebuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const PackageInfo* FindLocked(absl::string_view path) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  std::string root_;  // without a trailing slash
  const Clock& clock_;
  const size_t max_paths_;

  mutable absl::Mutex mu_;
  bool built_ ABSL_GUARDED_BY(mu_) = false;
  bool have_db_ ABSL_GUARDED_BY(mu_) = false;
  int64_t last_check_ns_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t status_mtime_ns_ ABSL_GUARDED_BY(mu_) = -1;
  std::vector<PackageInfo> packages_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> path_to_package_
      ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// How a host process's project was decided, for debugging and docs.
struct HostProject {
  std::string project;
  std::string package;  // empty when not from dpkg
  std::string via;      // "exe-rule", "package-rule", "source-package",
                        // "file-name"
};

// exe rule -> dpkg package -> package rule on the binary, then the source
// package -> the source package name -> the executable's file name.
// `index` may be null (non-Debian host).
HostProject ResolveHostProject(const ProjectMap& map, DpkgIndex* index,
                               absl::string_view exe);

// The same rules for a process in a container: its executable belongs to the
// container's file system, so the package database is the one under
// `container_root` (/proc/<pid>/root, the process's own root), never the
// host's. The index is built for this one lookup (once per container) and
// dropped. No dpkg database there (Alpine, distroless): the file name.
HostProject ResolveContainerProject(const ProjectMap& map,
                                    const std::string& container_root,
                                    absl::string_view exe);

}  // namespace wattlens::identity
