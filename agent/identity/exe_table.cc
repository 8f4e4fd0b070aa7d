// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/exe_table.h"

#include <dirent.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/numbers.h"

namespace wattlens::identity {

void ExeTable::Put(uint32_t tgid, Entry e) {
  auto it = map_.find(tgid);
  if (it != map_.end()) {
    it->second = std::move(e);
    return;
  }
  if (map_.size() >= capacity_) {
    ++dropped_full_;
    return;
  }
  map_.emplace(tgid, std::move(e));
}

void ExeTable::Exec(uint32_t tgid, uint64_t start_ns, std::string path) {
  Put(tgid, {start_ns, std::make_shared<const std::string>(std::move(path))});
}

void ExeTable::Seed(uint32_t tgid, uint64_t start_ns, std::string path) {
  if (map_.contains(tgid)) return;
  Exec(tgid, start_ns, std::move(path));
}

void ExeTable::Fork(uint32_t child, uint64_t start_ns, uint32_t parent) {
  auto it = map_.find(parent);
  if (it == map_.end()) {
    // Whatever a reused pid ran before is not this child's.
    map_.erase(child);
    return;
  }
  Put(child, {start_ns, it->second.path, /*inherited=*/true});
}

void ExeTable::Exit(uint32_t tgid, uint64_t start_ns) {
  auto it = map_.find(tgid);
  if (it == map_.end()) return;
  if (it->second.start_ns != 0 && start_ns != 0 &&
      it->second.start_ns != start_ns) {
    return;
  }
  map_.erase(it);
}

std::optional<std::string> ExeTable::Lookup(uint32_t tgid) const {
  auto it = map_.find(tgid);
  if (it == map_.end()) return std::nullopt;
  return *it->second.path;
}

bool ExeTable::Inherited(uint32_t tgid) const {
  auto it = map_.find(tgid);
  return it != map_.end() && it->second.inherited;
}

ProcScanResult SeedFromProc(const std::string& proc_root, ExeTable* table) {
  ProcScanResult r;
  DIR* dir = opendir(proc_root.c_str());
  if (dir == nullptr) return r;
  while (dirent* d = readdir(dir)) {
    uint32_t pid = 0;
    if (!absl::SimpleAtoi(d->d_name, &pid) || pid == 0) continue;
    const std::string link = proc_root + "/" + d->d_name + "/exe";
    char buf[4096];
    const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
    if (n <= 0 || buf[0] != '/') {
      ++r.unreadable;  // a kernel thread, gone, or no ptrace access
      continue;
    }
    table->Seed(pid, 0, std::string(buf, static_cast<size_t>(n)));
    ++r.read;
  }
  closedir(dir);
  return r;
}

}  // namespace wattlens::identity
