// SPDX-License-Identifier: Apache-2.0
#include "agent/state/resources.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

namespace wattlens {
namespace {

constexpr uint64_t kMilli = 1000;
constexpr uint64_t kNsPerSecond = 1'000'000'000;

std::optional<std::string> Slurp(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return std::nullopt;
  return ss.str();
}

// A whole decimal u64, optionally followed by one newline.
std::optional<uint64_t> ParseU64(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return std::nullopt;
  return v;
}

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace

std::optional<uint64_t> ResourceAccounting::WorkingSet(
    const std::string& current, const std::string& stat,
    const char* inactive_key) {
  std::optional<uint64_t> cur = ParseU64(current);
  if (!cur) return std::nullopt;
  std::istringstream in(stat);
  std::string line;
  const std::string key = std::string(inactive_key) + " ";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::optional<uint64_t> inactive = ParseU64(line.substr(key.size()));
    if (!inactive || *inactive > *cur) return std::nullopt;
    return *cur - *inactive;
  }
  return std::nullopt;
}

ResourceAccounting::ResourceAccounting(std::string cgroup_root,
                                       int64_t start_ns, ReadFile read,
                                       std::string memory_v1_root)
    : root_(std::move(cgroup_root)),
      v1_root_(std::move(memory_v1_root)),
      read_(read ? std::move(read) : ReadFile(Slurp)),
      last_ns_(start_ns) {}

std::optional<uint64_t> ResourceAccounting::ReadWorkingSet(
    const std::string& path, bool* odd) {
  *odd = false;
  std::optional<uint64_t> ws;
  const std::string dir = root_ + path;
  std::optional<std::string> cur;
  if (!root_.empty()) cur = read_(dir + "/memory.current");  // v1-only: none
  if (cur) {
    std::optional<std::string> stat = read_(dir + "/memory.stat");
    if (stat) ws = WorkingSet(*cur, *stat);
  } else if (!v1_root_.empty()) {
    const std::string v1 = v1_root_ + path;
    std::optional<std::string> usage = read_(v1 + "/memory.usage_in_bytes");
    if (!usage) return std::nullopt;
    std::optional<std::string> stat = read_(v1 + "/memory.stat");
    if (stat) ws = WorkingSet(*usage, *stat, "total_inactive_file");
  } else {
    return std::nullopt;
  }
  if (!ws) *odd = true;
  return ws.value_or(0);
}

void ResourceAccounting::Update(int64_t now_ns, Snapshot* s) {
  ++generation_;
  const uint64_t dt = now_ns > last_ns_ ? now_ns - last_ns_ : 0;
  last_ns_ = std::max(last_ns_, now_ns);
  elapsed_ns_ += dt;
  for (CgroupStats& c : s->cgroups) {
    Acc& a = acc_[c.id];
    a.seen = generation_;
    // The root has no memory.current, and a removed cgroup nothing to
    // read: they keep their last working set. Kernel threads are no
    // cgroup (their memory is the kernel's, not a working set).
    const bool readable =
        !c.gone && !c.path.empty() && c.path != "/" && c.id != kKernelCgroupId;
    if (readable) {
      bool odd = false;
      std::optional<uint64_t> ws = ReadWorkingSet(c.path, &odd);
      a.working_set = ws.value_or(0);
      if (odd) ++ws_drops_;
      if (!ws) ++ws_unavailable_;
    }
    CgroupResources& r = c.resources;
    r.memory_working_set_bytes = a.working_set;
    // CPU: the request over dt, or the CPU time used in dt if more.
    const uint64_t cpu_delta = a.have_cpu && c.cpu_ns >= a.last_cpu_ns
                                   ? c.cpu_ns - a.last_cpu_ns
                                   : (a.have_cpu ? 0 : c.cpu_ns);
    a.have_cpu = true;
    a.last_cpu_ns = c.cpu_ns;
    const unsigned __int128 req_cpu =
        static_cast<unsigned __int128>(r.cpu_request_millicores) * dt +
        a.cpu_carry;
    const uint64_t requested_ns = static_cast<uint64_t>(req_cpu / kMilli);
    a.cpu_carry = static_cast<uint64_t>(req_cpu % kMilli);
    a.cpu_allocated =
        SaturatingAdd(a.cpu_allocated, std::max(requested_ns, cpu_delta));
    // Memory: max(request, working set) over dt, in byte-seconds.
    const unsigned __int128 mem = static_cast<unsigned __int128>(std::max(
                                      r.memory_request_bytes, a.working_set)) *
                                      dt +
                                  a.mem_carry;
    const unsigned __int128 whole = mem / kNsPerSecond;
    a.mem_carry = static_cast<uint64_t>(mem % kNsPerSecond);
    a.mem_allocated = SaturatingAdd(
        a.mem_allocated,
        whole > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(whole));
    r.cpu_allocated_core_ns = a.cpu_allocated;
    r.memory_allocated_byte_seconds = a.mem_allocated;
  }
  for (auto it = acc_.begin(); it != acc_.end();) {
    if (it->second.seen != generation_) {
      acc_.erase(it++);
    } else {
      ++it;
    }
  }
  s->elapsed_ns = elapsed_ns_;
}

void ReadNodeCapacity(const std::string& proc_root, NodeInfo* node) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  node->cpus = online > 0 ? static_cast<uint32_t>(online) : 0;
  std::ifstream f(proc_root + "/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (f >> key >> kib) {
    std::getline(f, unit);
    if (key == "MemTotal:") {
      node->memory_bytes = kib * 1024;
      break;
    }
  }
}

std::string FindCgroupV1Mount(const std::string& proc_root,
                              const std::string& controller) {
  std::ifstream f(proc_root + "/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    // ... <mount point> <options> [optional fields] - <fstype> <source>
    // <super options>
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, parent, dev, root, mount_point, fstype, source, super;
    if (!(pre >> id >> parent >> dev >> root >> mount_point)) continue;
    if (!(post >> fstype >> source >> super) || fstype != "cgroup") continue;
    std::istringstream opts(super);
    std::string opt;
    while (std::getline(opts, opt, ',')) {
      if (opt == controller) return mount_point;
    }
  }
  return "";
}

}  // namespace wattlens
