// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/dpkg_index.h"

#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace wattlens::identity {
namespace {

constexpr absl::string_view kInfoDir = "/var/lib/dpkg/info";
constexpr absl::string_view kStatusFile = "/var/lib/dpkg/status";
constexpr size_t kMaxPathBytes = 4096;

// Paths that never hold executables: skipping them keeps the index to a
// fraction of the dpkg database.
constexpr absl::string_view kSkippedPrefixes[] = {
    "/usr/share/",    "/usr/include/",
    "/etc/",          "/usr/src/",
    "/var/",          "/usr/lib/debug/",
    "/lib/firmware/", "/usr/lib/firmware/",
    "/boot/",         "/usr/lib/python3/dist-packages/",
};

bool Indexed(absl::string_view path) {
  if (path.empty() || path.front() != '/' || path.size() > kMaxPathBytes) {
    return false;
  }
  for (absl::string_view p : kSkippedPrefixes) {
    if (absl::StartsWith(path, p)) return false;
  }
  return true;
}

int64_t MtimeNs(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// "Source: foo (1.2-3)" -> "foo".
std::string SourceName(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  size_t space = value.find(' ');
  return std::string(value.substr(0, space));
}

// /usr/bin/x <-> /bin/x: dpkg records whichever path the package shipped,
// the kernel reports the resolved one.
std::string UsrMergeAlias(absl::string_view path) {
  for (absl::string_view dir : {"bin/", "sbin/", "lib/", "lib64/", "lib32/"}) {
    if (absl::StartsWith(path, absl::StrCat("/usr/", dir))) {
      return std::string(path.substr(4));
    }
    if (absl::StartsWith(path, absl::StrCat("/", dir))) {
      return absl::StrCat("/usr", path);
    }
  }
  return "";
}

}  // namespace

DpkgIndex::DpkgIndex(std::string root, const Clock& clock, size_t max_paths)
    : root_(std::move(root)), clock_(clock), max_paths_(max_paths) {
  while (!root_.empty() && root_.back() == '/') root_.pop_back();
}

void DpkgIndex::MaybeRebuildLocked() {
  int64_t now = clock_.MonotonicNs();
  if (built_ && now - last_check_ns_ < kRecheckIntervalNs) return;
  last_check_ns_ = now;
  int64_t mtime = MtimeNs(absl::StrCat(root_, kStatusFile));
  if (built_ && mtime == status_mtime_ns_) return;
  status_mtime_ns_ = mtime;
  BuildLocked();
}

void DpkgIndex::BuildLocked() {
  built_ = true;
  ++stats_.builds;
  packages_.clear();
  path_to_package_.clear();
  stats_.paths_indexed = 0;

  absl::flat_hash_map<std::string, std::string> source_of;
  {
    std::ifstream status(absl::StrCat(root_, kStatusFile));
    have_db_ = status.good();
    std::string line, package;
    while (std::getline(status, line)) {
      absl::string_view l = line;
      if (absl::ConsumePrefix(&l, "Package:")) {
        package = std::string(absl::StripAsciiWhitespace(l));
      } else if (absl::ConsumePrefix(&l, "Source:") && !package.empty()) {
        source_of[package] = SourceName(l);
      } else if (l.empty()) {
        package.clear();
      }
    }
  }
  if (!have_db_) return;

  std::string info_dir = absl::StrCat(root_, kInfoDir);
  DIR* dir = opendir(info_dir.c_str());
  if (dir == nullptr) {
    have_db_ = false;
    return;
  }
  while (dirent* e = readdir(dir)) {
    absl::string_view name = e->d_name;
    if (!absl::ConsumeSuffix(&name, ".list")) continue;
    absl::string_view pkg = name.substr(0, name.find(':'));
    std::ifstream list(absl::StrCat(info_dir, "/", e->d_name));
    if (!list.good()) {
      ++stats_.lists_failed;
      continue;
    }
    ++stats_.lists_read;
    PackageInfo info{std::string(pkg), std::string(pkg)};
    if (auto it = source_of.find(info.package); it != source_of.end()) {
      info.source = it->second;
    }
    packages_.push_back(std::move(info));
    uint32_t idx = static_cast<uint32_t>(packages_.size() - 1);
    std::string path;
    while (std::getline(list, path)) {
      if (!Indexed(path)) continue;
      if (path_to_package_.size() >= max_paths_) {
        ++stats_.paths_dropped_over_limit;
        continue;
      }
      // Directories appear in many lists; the first owner is as good as any
      // and they are never executables.
      path_to_package_.try_emplace(std::move(path), idx);
    }
  }
  closedir(dir);
  stats_.paths_indexed = path_to_package_.size();
  spdlog::debug("dpkg index under '{}': {} packages, {} paths, {} dropped",
                root_, packages_.size(), stats_.paths_indexed,
                stats_.paths_dropped_over_limit);
}

const PackageInfo* DpkgIndex::FindLocked(absl::string_view path) const {
  if (auto it = path_to_package_.find(path); it != path_to_package_.end()) {
    return &packages_[it->second];
  }
  std::string alias = UsrMergeAlias(path);
  if (!alias.empty()) {
    if (auto it = path_to_package_.find(alias); it != path_to_package_.end()) {
      return &packages_[it->second];
    }
  }
  return nullptr;
}

absl::StatusOr<PackageInfo> DpkgIndex::PackageFor(absl::string_view exe) {
  absl::ConsumeSuffix(&exe, " (deleted)");
  absl::MutexLock lock(&mu_);
  ++stats_.lookups;
  MaybeRebuildLocked();
  if (!have_db_) {
    return absl::FailedPreconditionError(
        absl::StrCat("no dpkg database under '", root_, "'"));
  }
  if (const PackageInfo* p = FindLocked(exe)) return *p;
  ++stats_.misses;
  return absl::NotFoundError(
      absl::StrCat("no package owns ", exe.substr(0, 256)));
}

DpkgIndex::Stats DpkgIndex::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

HostProject ResolveHostProject(const ProjectMap& map, DpkgIndex* index,
                               absl::string_view exe) {
  absl::ConsumeSuffix(&exe, " (deleted)");
  if (auto p = map.ProjectForExecutable(exe)) {
    return {*std::move(p), "", "exe-rule"};
  }
  if (index != nullptr) {
    absl::StatusOr<PackageInfo> pkg = index->PackageFor(exe);
    if (pkg.ok()) {
      if (auto p = map.ProjectForPackage(pkg->package)) {
        return {*std::move(p), pkg->package, "package-rule"};
      }
      if (auto p = map.ProjectForPackage(pkg->source)) {
        return {*std::move(p), pkg->package, "package-rule"};
      }
      return {pkg->source, pkg->package, "source-package"};
    }
  }
  size_t slash = exe.rfind('/');
  absl::string_view base =
      slash == absl::string_view::npos ? exe : exe.substr(slash + 1);
  if (base.empty()) base = "unknown";
  return {std::string(base.substr(0, kMaxProjectNameBytes)), "", "file-name"};
}

HostProject ResolveContainerProject(const ProjectMap& map,
                                    const std::string& container_root,
                                    absl::string_view exe) {
  // A one-shot index never rechecks, so the clock is never consulted twice.
  DpkgIndex index(container_root, RealClock::Get());
  return ResolveHostProject(map, &index, exe);
}

}  // namespace wattlens::identity
