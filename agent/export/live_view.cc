// SPDX-License-Identifier: Apache-2.0
#include "agent/export/live_view.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "common/counters/counter_growth.h"

namespace wattlens {
namespace {

// namespace/pod/container for pods (the pod UID until the API names it),
// the systemd unit for host services, "kernel [linux]" for the kernel
// threads, else the cgroup path.
std::string WorkloadName(const CgroupStats& c) {
  const WorkloadLabels& l = c.identity;
  if (l.kind == "kernel") return c.path + " [" + l.project + "]";
  if (!l.pod.empty()) {
    std::string name = l.namespace_name + "/" + l.pod;
    if (!l.container.empty()) name += "/" + l.container;
    if (!l.project.empty()) name += " [" + l.project + "]";
    return name;
  }
  if (!l.pod_uid.empty()) return "pod:" + l.pod_uid;
  if (!l.systemd_unit.empty()) {
    return l.project.empty() ? l.systemd_unit
                             : l.systemd_unit + " [" + l.project + "]";
  }
  return c.path.empty() ? "/" : c.path;
}

}  // namespace

std::string RenderLiveView(const Snapshot* prev, const Snapshot& cur,
                           size_t top_n) {
  struct Row {
    const CgroupStats* c;
    double cpu_pct;
    double sys_rate;
    double err_rate;
  };
  absl::flat_hash_map<uint64_t, const CgroupStats*> before;
  if (prev) {
    for (const auto& c : prev->cgroups) before[c.id] = &c;
  }
  double secs = prev ? (cur.monotonic_ns - prev->monotonic_ns) / 1e9 : 0;
  std::vector<Row> rows;
  for (const auto& c : cur.cgroups) {
    Row r{&c, 0, 0, 0};
    auto it = before.find(c.id);
    if (secs > 0 && it != before.end()) {
      const CgroupStats& b = *it->second;
      r.cpu_pct = 100.0 * CounterGrowth(b.cpu_ns, c.cpu_ns) / 1e9 / secs;
      r.sys_rate = CounterGrowth(b.syscalls, c.syscalls) / secs;
      r.err_rate = CounterGrowth(b.syscall_errors, c.syscall_errors) / secs;
    }
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.cpu_pct != b.cpu_pct) return a.cpu_pct > b.cpu_pct;
    return a.sys_rate > b.sys_rate;
  });
  const uint64_t lost = cur.self.drops.TotalLost();
  std::string out = absl::StrFormat(
      "wattlens-agent  interval #%d  processes %d  workloads %d  lost %d\n",
      cur.sequence, cur.self.processes_tracked, cur.cgroups.size(), lost);
  absl::StrAppendFormat(&out, "%-56s %7s %12s %9s %6s\n", "WORKLOAD", "CPU%",
                        "SYSCALLS/s", "ERRORS/s", "PROCS");
  for (size_t i = 0; i < rows.size() && i < top_n; ++i) {
    const Row& r = rows[i];
    std::string path = WorkloadName(*r.c);
    if (path.size() > 56) path = "..." + path.substr(path.size() - 53);
    absl::StrAppendFormat(&out, "%-56s %7.1f %12.0f %9.0f %6d\n", path,
                          r.cpu_pct, r.sys_rate, r.err_rate,
                          r.c->live_processes);
  }
  return out;
}

}  // namespace wattlens
