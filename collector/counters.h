// SPDX-License-Identifier: Apache-2.0
// Counter arithmetic shared by ingest, store and queries.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/counters/counter_growth.h"
#include "wattlens/v1/report.pb.h"

namespace wattlens::collector {

// One workload's counters: cumulative values in reports, deltas in buckets.
// Integers only, so sums across nodes and reports are exact.
struct Counters {
  uint64_t cpu_ns = 0;
  uint64_t syscalls = 0;
  uint64_t syscall_errors = 0;
  uint64_t net_tx_bytes = 0;  // all classes
  uint64_t net_rx_bytes = 0;
  uint64_t energy_uj = 0;
  uint64_t tcp_accepted = 0;
  // OpenCost allocation, max(request, usage) accumulated by the agent.
  uint64_t cpu_alloc_core_ns = 0;
  uint64_t mem_alloc_byte_s = 0;
  // Transmitted bytes by the agent's network class (egress pricing):
  // node, cluster, private, internet, unknown.
  uint64_t tx_node = 0;
  uint64_t tx_cluster = 0;
  uint64_t tx_private = 0;
  uint64_t tx_internet = 0;
  uint64_t tx_unknown = 0;
  // Only on a node's "__node__" series: wall time its agent covered.
  uint64_t elapsed_ns = 0;

  // Every field, in a fixed order (the packed storage order).
  static constexpr std::array<uint64_t Counters::*, 15> kFields = {
      &Counters::cpu_ns,           &Counters::syscalls,
      &Counters::syscall_errors,   &Counters::net_tx_bytes,
      &Counters::net_rx_bytes,     &Counters::energy_uj,
      &Counters::tcp_accepted,     &Counters::cpu_alloc_core_ns,
      &Counters::mem_alloc_byte_s, &Counters::tx_node,
      &Counters::tx_cluster,       &Counters::tx_private,
      &Counters::tx_internet,      &Counters::tx_unknown,
      &Counters::elapsed_ns};

  // Egress bytes by class index (NetworkClass - 1).
  std::array<uint64_t, 5> TxByClass() const {
    return {tx_node, tx_cluster, tx_private, tx_internet, tx_unknown};
  }

  // Saturating: a sum pinned at 2^64-1 is wrong, a wrapped one is wrong and
  // small. True when any field saturated.
  bool Add(const Counters& o) {
    bool saturated = false;
    for (auto f : kFields) {
      if (__builtin_add_overflow(this->*f, o.*f, &(this->*f))) {
        this->*f = UINT64_MAX;
        saturated = true;
      }
    }
    return saturated;
  }
  // Growth from `prev` to this, field by field: a field below its previous
  // value restarted from zero (its whole value is growth), the others grew
  // by the difference. One field going backwards must not re-add the rest.
  Counters GrowthSince(const Counters& prev, bool* any_reset) const {
    Counters d;
    for (auto f : kFields) {
      d.*f = CounterGrowth(prev.*f, this->*f);
      *any_reset |= CounterRestarted(prev.*f, this->*f);
    }
    return d;
  }
  // Lowers every field above `cap` to it; true when any was.
  bool CapAt(const Counters& cap) {
    bool capped = false;
    for (auto f : kFields) {
      if (this->*f > cap.*f) {
        this->*f = cap.*f;
        capped = true;
      }
    }
    return capped;
  }
  bool IsZero() const {
    uint64_t any = 0;
    for (auto f : kFields) any |= this->*f;
    return any == 0;
  }
  // True when any field of `cur` is below this one's: the source restarted.
  bool AnyAbove(const Counters& cur) const {
    for (auto f : kFields) {
      if (CounterRestarted(this->*f, cur.*f)) return true;
    }
    return false;
  }
  Counters Minus(const Counters& o) const {
    Counters d;
    for (auto f : kFields) d.*f = this->*f - o.*f;
    return d;
  }
  bool operator==(const Counters&) const = default;

  // Compact storage form: a version byte, then every field as a LEB128
  // varint (most are small or zero: ~20 bytes instead of 15 columns).
  std::string Pack() const {
    std::string out;
    out.reserve(32);
    out.push_back(kPackVersion);
    for (auto f : kFields) {
      uint64_t v = this->*f;
      while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
      }
      out.push_back(static_cast<char>(v));
    }
    return out;
  }
  // False on a truncated, over-long or unknown-version blob (a damaged
  // store), leaving *out unspecified.
  static bool Unpack(const void* data, size_t size, Counters* out) {
    const auto* p = static_cast<const unsigned char*>(data);
    const unsigned char* end = p + size;
    if (size == 0 || *p++ != kPackVersion) return false;
    for (auto f : kFields) {
      uint64_t v = 0;
      for (int shift = 0;; shift += 7) {
        if (p == end || shift > 63) return false;
        const unsigned char b = *p++;
        v |= static_cast<uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
      }
      out->*f = v;
    }
    return p == end;
  }
  static constexpr char kPackVersion = 1;
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

// The node's energy buckets (NodeReport.energy_buckets) are series and
// query rows like workloads, under these paths, so that sums over rows equal
// node totals: idle (static) energy, and dynamic energy no CPU time explains
// (an interval in which nothing ran).
inline constexpr char kIdlePath[] = "__idle__";
inline constexpr char kUnattributedPath[] = "__unattributed__";
inline bool IsEnergyBucketPath(const std::string& path) {
  return path == kIdlePath || path == kUnattributedPath;
}
// A bucket's series path; empty for a bucket this collector does not know.
inline std::string_view EnergyBucketPath(wattlens::v1::EnergyBucket bucket) {
  switch (bucket) {
    case wattlens::v1::ENERGY_BUCKET_IDLE:
      return kIdlePath;
    case wattlens::v1::ENERGY_BUCKET_UNATTRIBUTED:
      return kUnattributedPath;
    default:
      return {};
  }
}
// The kernel threads: a workload like the others (workload_kind and
// workload "kernel", project "linux"), though no cgroup. With the buckets,
// the only series paths not starting with /.
inline constexpr char kKernelPath[] = "kernel";

// The pseudo-series that carries a node's covered time (Counters::elapsed_ns)
// next to its workloads. Never a row of its own in query results.
inline constexpr char kNodeSeriesPath[] = "__node__";

}  // namespace wattlens::collector
