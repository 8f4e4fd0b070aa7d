// Counter arithmetic shared by ingest, store and queries.
#pragma once

#include <cstdint>
#include <string>

namespace wattlens::collector {

// One workload's counters: cumulative values in reports, deltas in buckets.
// Integers only, so sums across nodes and reports are exact.
struct Counters {
  uint64_t cpu_ns = 0;
  uint64_t syscalls = 0;
  uint64_t syscall_errors = 0;
  uint64_t net_tx_bytes = 0;
  uint64_t net_rx_bytes = 0;
  uint64_t energy_uj = 0;

  void Add(const Counters& o) {
    cpu_ns += o.cpu_ns;
    syscalls += o.syscalls;
    syscall_errors += o.syscall_errors;
    net_tx_bytes += o.net_tx_bytes;
    net_rx_bytes += o.net_rx_bytes;
    energy_uj += o.energy_uj;
  }
  bool IsZero() const {
    return (cpu_ns | syscalls | syscall_errors | net_tx_bytes | net_rx_bytes |
            energy_uj) == 0;
  }
  // True when any field of `cur` is below this one's: the source restarted.
  bool AnyAbove(const Counters& cur) const {
    return cur.cpu_ns < cpu_ns || cur.syscalls < syscalls ||
           cur.syscall_errors < syscall_errors ||
           cur.net_tx_bytes < net_tx_bytes || cur.net_rx_bytes < net_rx_bytes ||
           cur.energy_uj < energy_uj;
  }
  Counters Minus(const Counters& o) const {
    return {cpu_ns - o.cpu_ns,
            syscalls - o.syscalls,
            syscall_errors - o.syscall_errors,
            net_tx_bytes - o.net_tx_bytes,
            net_rx_bytes - o.net_rx_bytes,
            energy_uj - o.energy_uj};
  }
  bool operator==(const Counters&) const = default;
};

// Who a series is. Shared read-only between the series and query results.
struct WorkloadLabels {
  std::string cgroup_path;
  std::string systemd_unit;
  std::string ns;
  std::string pod;
  std::string container;
  std::string workload_kind;
  std::string workload;
  std::string project;
  bool operator==(const WorkloadLabels&) const = default;
};

}  // namespace wattlens::collector
