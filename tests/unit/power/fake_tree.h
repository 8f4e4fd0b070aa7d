// SPDX-License-Identifier: Apache-2.0
// Temporary sysfs/procfs trees for the power readers, and a file system
// decorator that refuses chosen paths (tests run as root, so chmod cannot
// simulate the root-only RAPL files).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/power/fs.h"

namespace wattlens::power::testing {

class TempTree {
 public:
  TempTree() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "wl-power-XXXXXX").string();
    root_ = mkdtemp(pattern.data());
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  // `path` is absolute inside the tree: "/sys/class/powercap/x/name".
  void Write(const std::string& path, const std::string& content) const {
    std::filesystem::path full = root_ + path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full, std::ios::trunc) << content;
  }
  void MakeDir(const std::string& path) const {
    std::filesystem::create_directories(root_ + path);
  }
  void Remove(const std::string& path) const {
    std::error_code ec;
    std::filesystem::remove_all(root_ + path, ec);
  }
  const std::string& root() const { return root_; }
  std::shared_ptr<RootedFileSystem> fs() const {
    return std::make_shared<RootedFileSystem>(root_);
  }

 private:
  std::string root_;
};

// Answers PermissionDenied for any path ending in one of `denied`.
class DenyingFileSystem final : public FileSystem {
 public:
  explicit DenyingFileSystem(std::shared_ptr<const FileSystem> base)
      : base_(std::move(base)) {}
  void Deny(std::string suffix) { denied_.insert(std::move(suffix)); }
  void Allow(const std::string& suffix) { denied_.erase(suffix); }

  absl::StatusOr<std::string> ReadFile(absl::string_view path) const override {
    for (const std::string& d : denied_) {
      if (absl::EndsWith(path, d)) {
        return absl::PermissionDeniedError(
            absl::StrCat("open ", path, ": Permission denied"));
      }
    }
    return base_->ReadFile(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      absl::string_view path) const override {
    return base_->ListDir(path);
  }

 private:
  std::shared_ptr<const FileSystem> base_;
  std::set<std::string> denied_;
};

}  // namespace wattlens::power::testing
