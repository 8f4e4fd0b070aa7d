// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/cgroup_v1.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace wattlens::identity {
namespace {

constexpr size_t kMaxProcCgroupBytes = 64 << 10;
constexpr size_t kMaxLines = 64;

std::optional<std::string> Slurp(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::string out(kMaxProcCgroupBytes, '\0');
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(f.gcount()));
  return out;
}

uint64_t Grow(uint64_t cur, uint64_t& last) {
  const uint64_t d = cur >= last ? cur - last : cur;
  last = cur;
  return d;
}

uint64_t Sub(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

absl::StatusOr<std::vector<ProcCgroupLine>> ParseProcCgroup(
    absl::string_view text) {
  if (text.size() > kMaxProcCgroupBytes) {
    return absl::InvalidArgumentError("/proc/<pid>/cgroup too large");
  }
  std::vector<ProcCgroupLine> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (out.size() == kMaxLines) {
      return absl::InvalidArgumentError("/proc/<pid>/cgroup: too many lines");
    }
    // The path may itself contain ':' (it is the rest of the line).
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    ProcCgroupLine l;
    if (f.size() != 3 || !absl::SimpleAtoi(f[0], &l.hierarchy) ||
        l.hierarchy < 0 || f[2].empty() || f[2][0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "not a /proc/<pid>/cgroup line: \"", line.substr(0, 80), "\""));
    }
    for (absl::string_view c : absl::StrSplit(f[1], ',', absl::SkipEmpty())) {
      l.controllers.emplace_back(c);
    }
    l.path = std::string(f[2]);
    out.push_back(std::move(l));
  }
  return out;
}

std::string V1WorkloadPath(const std::vector<ProcCgroupLine>& lines) {
  static constexpr const char* kPreference[] = {"cpu", "cpuacct", "memory",
                                                "pids", "name=systemd"};
  auto has = [](const ProcCgroupLine& l, absl::string_view c) {
    return std::find(l.controllers.begin(), l.controllers.end(), c) !=
           l.controllers.end();
  };
  for (const char* want : kPreference) {
    for (const ProcCgroupLine& l : lines) {
      if (l.hierarchy != 0 && has(l, want) && l.path != "/") return l.path;
    }
  }
  for (const ProcCgroupLine& l : lines) {
    if (l.hierarchy != 0 && l.path != "/") return l.path;
  }
  return "";
}

V1Attribution::V1Attribution(std::string proc_root, ReadFile read)
    : proc_root_(std::move(proc_root)),
      read_(read ? std::move(read) : ReadFile(Slurp)) {}

std::string V1Attribution::PathOf(uint32_t pid) {
  ++lookups_;
  std::optional<std::string> text =
      read_(absl::StrCat(proc_root_, "/", pid, "/cgroup"));
  if (!text) return "";
  absl::StatusOr<std::vector<ProcCgroupLine>> lines = ParseProcCgroup(*text);
  return lines.ok() ? V1WorkloadPath(*lines) : "";
}

void V1Attribution::Apply(Snapshot* s) {
  ++generation_;
  CgroupStats* root = nullptr;
  for (CgroupStats& c : s->cgroups) {
    if (c.path.empty() || c.path == "/") {
      root = &c;
      break;
    }
  }
  if (root == nullptr) return;
  const uint64_t root_id = root->id;
  absl::flat_hash_map<uint64_t, uint32_t> live;
  uint32_t moved_live = 0;
  for (ProcessStats& p : s->processes) {
    if (p.cgroup_id != root_id) continue;
    auto [it, fresh] = procs_.try_emplace(std::make_pair(p.pid, p.start_ns));
    Proc& pr = it->second;
    if (fresh) {
      const std::string path = PathOf(p.pid);
      if (!path.empty()) {
        pr.cgroup = absl::HashOf(path) | kSyntheticCgroupBit;
        // Clear of the reserved ids (the kernel threads' among them).
        if (pr.cgroup >= kFirstReservedCgroupId) pr.cgroup -= 16;
        cgroups_[pr.cgroup].path = path;
      }
    }
    pr.seen = generation_;
    if (pr.cgroup == 0) continue;
    Synthetic& syn = cgroups_[pr.cgroup];
    syn.seen = generation_;
    Counters d;
    d.cpu_ns = Grow(p.cpu_ns, pr.last.cpu_ns);
    d.syscalls = Grow(p.syscalls, pr.last.syscalls);
    d.errors = Grow(p.syscall_errors, pr.last.errors);
    for (size_t k = 0; k < kNetClasses; ++k) {
      d.net[k].tx_bytes = Grow(p.net[k].tx_bytes, pr.last.net[k].tx_bytes);
      d.net[k].rx_bytes = Grow(p.net[k].rx_bytes, pr.last.net[k].rx_bytes);
      d.net[k].tx_packets =
          Grow(p.net[k].tx_packets, pr.last.net[k].tx_packets);
      d.net[k].rx_packets =
          Grow(p.net[k].rx_packets, pr.last.net[k].rx_packets);
    }
    d.tcp.connects = Grow(p.tcp.connects, pr.last.tcp.connects);
    d.tcp.accepts = Grow(p.tcp.accepts, pr.last.tcp.accepts);
    d.tcp.closes = Grow(p.tcp.closes, pr.last.tcp.closes);
    d.tcp.retransmits = Grow(p.tcp.retransmits, pr.last.tcp.retransmits);
    for (Counters* acc : {&syn.total, &moved_}) {
      acc->cpu_ns += d.cpu_ns;
      acc->syscalls += d.syscalls;
      acc->errors += d.errors;
      for (size_t k = 0; k < kNetClasses; ++k) {
        acc->net[k].tx_bytes += d.net[k].tx_bytes;
        acc->net[k].rx_bytes += d.net[k].rx_bytes;
        acc->net[k].tx_packets += d.net[k].tx_packets;
        acc->net[k].rx_packets += d.net[k].rx_packets;
      }
      acc->tcp.connects += d.tcp.connects;
      acc->tcp.accepts += d.tcp.accepts;
      acc->tcp.closes += d.tcp.closes;
      acc->tcp.retransmits += d.tcp.retransmits;
    }
    if (!p.exited) {
      ++live[pr.cgroup];
      ++moved_live;
    }
    p.cgroup_id = pr.cgroup;
  }
  // The root keeps what no v1 path claimed.
  root->cpu_ns = Sub(root->cpu_ns, moved_.cpu_ns);
  root->syscalls = Sub(root->syscalls, moved_.syscalls);
  root->syscall_errors = Sub(root->syscall_errors, moved_.errors);
  for (size_t k = 0; k < kNetClasses; ++k) {
    root->net[k].tx_bytes = Sub(root->net[k].tx_bytes, moved_.net[k].tx_bytes);
    root->net[k].rx_bytes = Sub(root->net[k].rx_bytes, moved_.net[k].rx_bytes);
    root->net[k].tx_packets =
        Sub(root->net[k].tx_packets, moved_.net[k].tx_packets);
    root->net[k].rx_packets =
        Sub(root->net[k].rx_packets, moved_.net[k].rx_packets);
  }
  root->tcp.connects = Sub(root->tcp.connects, moved_.tcp.connects);
  root->tcp.accepts = Sub(root->tcp.accepts, moved_.tcp.accepts);
  root->tcp.closes = Sub(root->tcp.closes, moved_.tcp.closes);
  root->tcp.retransmits = Sub(root->tcp.retransmits, moved_.tcp.retransmits);
  root->live_processes =
      root->live_processes > moved_live ? root->live_processes - moved_live : 0;
  for (auto it = cgroups_.begin(); it != cgroups_.end();) {
    const Synthetic& syn = it->second;
    const bool expired = generation_ - syn.seen > kIdleIntervals;
    CgroupStats c;
    c.id = it->first;
    c.path = syn.path;
    c.cpu_ns = syn.total.cpu_ns;
    c.syscalls = syn.total.syscalls;
    c.syscall_errors = syn.total.errors;
    c.net = syn.total.net;
    c.tcp = syn.total.tcp;
    auto l = live.find(it->first);
    c.live_processes = l == live.end() ? 0 : l->second;
    c.gone = expired;
    s->cgroups.push_back(std::move(c));
    if (expired) {
      cgroups_.erase(it++);
    } else {
      ++it;
    }
  }
  std::sort(
      s->cgroups.begin(), s->cgroups.end(),
      [](const CgroupStats& a, const CgroupStats& b) { return a.id < b.id; });
  for (auto it = procs_.begin(); it != procs_.end();) {
    if (it->second.seen != generation_) {
      procs_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace wattlens::identity
