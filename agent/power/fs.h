// SPDX-License-Identifier: Apache-2.0
// Read-only access to the files the power sources need, under an injectable
// root, so every reader runs unchanged against fake sysfs/procfs trees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::power {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // `path` is absolute inside the root ("/sys/class/powercap/...").
  virtual absl::StatusOr<std::string> ReadFile(
      absl::string_view path) const = 0;
  // Entry names (without "." and ".."), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      absl::string_view path) const = 0;
};

// The real file system, with every path resolved under `root` ("/" in
// production, a temporary directory in tests). With `proc_root` set, paths
// under /proc resolve there instead: a container that sees the host's sysfs
// under a mounted root (/host) reads the host's procfs at its own /proc
// (hostPID), which cannot be mounted beside it.
class RootedFileSystem final : public FileSystem {
 public:
  explicit RootedFileSystem(std::string root = "/", std::string proc_root = "");
  absl::StatusOr<std::string> ReadFile(absl::string_view path) const override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      absl::string_view path) const override;
  const std::string& root() const { return root_; }

 private:
  std::string Resolve(absl::string_view path) const;
  std::string root_;
  std::string proc_root_;
};

// Strict decimal parse of a sysfs value: surrounding whitespace allowed,
// nothing else (no sign, no trailing garbage, no overflow).
std::optional<uint64_t> ParseUint64(absl::string_view text);
std::optional<double> ParseDouble(absl::string_view text);

// Read errors keep the file system's status; contents that do not parse give
// InvalidArgument naming the file.
absl::StatusOr<uint64_t> ReadUint64(const FileSystem& fs,
                                    absl::string_view path);
absl::StatusOr<std::string> ReadTrimmed(const FileSystem& fs,
                                        absl::string_view path);

}  // namespace wattlens::power
