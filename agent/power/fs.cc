// SPDX-License-Identifier: Apache-2.0
#include "agent/power/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/common/status_macros.h"

namespace wattlens::power {
namespace {

// /proc/cpuinfo on large hosts is a few hundred KiB; sysfs files are tiny.
constexpr size_t kMaxFileBytes = 8 << 20;

}  // namespace

RootedFileSystem::RootedFileSystem(std::string root, std::string proc_root)
    : root_(std::move(root)), proc_root_(std::move(proc_root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  while (proc_root_.size() > 1 && proc_root_.back() == '/') {
    proc_root_.pop_back();
  }
}

std::string RootedFileSystem::Resolve(absl::string_view path) const {
  if (!proc_root_.empty() &&
      (path == "/proc" || absl::StartsWith(path, "/proc/"))) {
    return absl::StrCat(proc_root_, path.substr(5));
  }
  if (root_ == "/" || root_.empty()) return std::string(path);
  return absl::StrCat(root_, path);
}

absl::StatusOr<std::string> RootedFileSystem::ReadFile(
    absl::string_view path) const {
  const std::string full = Resolve(path);
  int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", full));
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoToStatus(err, absl::StrCat("read ", full));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxFileBytes) {
      close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat(full, " is larger than ", kMaxFileBytes, " bytes"));
    }
  }
  close(fd);
  return out;
}

absl::StatusOr<std::vector<std::string>> RootedFileSystem::ListDir(
    absl::string_view path) const {
  const std::string full = Resolve(path);
  DIR* dir = opendir(full.c_str());
  if (dir == nullptr)
    return ErrnoToStatus(errno, absl::StrCat("opendir ", full));
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<uint64_t> ParseUint64(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  auto [ptr, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, 10);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> ParseDouble(absl::string_view text) {
  std::string copy(absl::StripAsciiWhitespace(text));
  if (copy.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(copy.c_str(), &end);
  if (errno != 0 || end != copy.c_str() + copy.size()) return std::nullopt;
  return value;
}

absl::StatusOr<std::string> ReadTrimmed(const FileSystem& fs,
                                        absl::string_view path) {
  ASSIGN_OR_RETURN(std::string text, fs.ReadFile(path));
  return std::string(absl::StripAsciiWhitespace(text));
}

absl::StatusOr<uint64_t> ReadUint64(const FileSystem& fs,
                                    absl::string_view path) {
  ASSIGN_OR_RETURN(std::string text, fs.ReadFile(path));
  std::optional<uint64_t> value = ParseUint64(text);
  if (!value) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an unsigned integer: \"",
                     absl::CEscape(text.substr(0, 32)), "\""));
  }
  return *value;
}

}  // namespace wattlens::power
