// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/cgroup_resolver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_split.h"

namespace wattlens {
namespace {

constexpr int kFileidKernfs = 0xfe;  // FILEID_KERNFS, include/linux/exportfs.h

std::string Relative(const std::string& mount, const std::string& abs) {
  if (abs.size() <= mount.size()) return "/";
  return abs.substr(mount.size());
}

}  // namespace

absl::StatusOr<std::string> FindCgroup2Mount(const std::string& proc_root) {
  std::ifstream in(proc_root + "/self/mountinfo");
  if (!in) {
    return absl::NotFoundError("cannot read " + proc_root + "/self/mountinfo");
  }
  std::string line, best;
  while (std::getline(in, line)) {
    // "... <mount point> <options> [optional...] - <fstype> <source> ..."
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 1 >= f.size() || f[dash + 1] != "cgroup2") {
      continue;
    }
    const std::string& mp = f[4];
    if (best.empty() || mp == "/sys/fs/cgroup") best = mp;
  }
  if (best.empty()) {
    return absl::NotFoundError("no cgroup2 mount in " + proc_root +
                               "/self/mountinfo (cgroup v1-only host)");
  }
  return best;
}

CgroupResolver::CgroupResolver(std::string mount_point, const Clock& clock,
                               Options options)
    : mount_(std::move(mount_point)),
      clock_(clock),
      options_(options),
      handles_work_(options.use_file_handles) {}

std::optional<std::string> CgroupResolver::ByHandle(uint64_t id) {
  int mount_fd = open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd < 0) return std::nullopt;
  struct {
    file_handle fh;
    uint64_t id;
  } h;
  h.fh.handle_bytes = sizeof(uint64_t);
  h.fh.handle_type = kFileidKernfs;
  std::memcpy(h.fh.f_handle, &id, sizeof(id));
  int fd = open_by_handle_at(mount_fd, &h.fh, O_RDONLY | O_CLOEXEC);
  int err = errno;
  close(mount_fd);
  if (fd < 0) {
    if (err == EPERM || err == EOPNOTSUPP || err == ENOSYS) {
      handles_work_ = false;  // no CAP_DAC_READ_SEARCH: walk instead
    }
    return std::nullopt;
  }
  char buf[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  std::string abs(buf, n);
  if (abs.rfind(mount_, 0) != 0) return std::nullopt;  // other mount
  return Relative(mount_, abs);
}

void CgroupResolver::Rescan() {
  ++scans_;
  std::error_code ec;
  size_t seen = 0;
  absl::flat_hash_map<uint64_t, std::string> found;
  struct stat st;
  if (stat(mount_.c_str(), &st) == 0) found[st.st_ino] = "/";
  for (auto it = std::filesystem::recursive_directory_iterator(
           mount_, std::filesystem::directory_options::skip_permission_denied,
           ec);
       !ec && it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (++seen > options_.max_scan_entries) break;
    if (!it->is_directory(ec)) continue;
    if (stat(it->path().c_str(), &st) != 0) continue;
    found[st.st_ino] = Relative(mount_, it->path().string());
  }
  absl::MutexLock lock(&mu_);
  for (auto& [id, path] : found) {
    if (cache_.size() >= options_.max_cached) break;
    cache_[id] = std::move(path);
  }
}

std::optional<std::string> CgroupResolver::PathOf(uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) {
      // Confirm it still exists: ids are never reused, but cgroups go away.
      if (IdOf(it->second) == id) return it->second;
      cache_.erase(it);
      return std::nullopt;
    }
  }
  std::optional<std::string> path;
  if (handles_work_) path = ByHandle(id);
  if (!path) {
    int64_t now = clock_.MonotonicNs();
    if (!last_scan_ns_ ||
        now - last_scan_ns_ >= options_.min_rescan_interval_ns) {
      last_scan_ns_ = now;
      Rescan();
    }
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) path = it->second;
  }
  if (path) {
    absl::MutexLock lock(&mu_);
    if (cache_.size() >= options_.max_cached) cache_.clear();
    cache_[id] = *path;
  }
  return path;
}

std::optional<uint64_t> CgroupResolver::IdOf(
    const std::string& relative_path) const {
  struct stat st;
  std::string abs = relative_path == "/" ? mount_ : mount_ + relative_path;
  if (stat(abs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  return st.st_ino;
}

}  // namespace wattlens
