// SPDX-License-Identifier: Apache-2.0
// Every field of an incoming report is checked before it touches state:
// reports come from the network and may be hostile.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/common/report_limits.h"
#include "wattlens/v1/report.pb.h"

namespace wattlens::collector {

// Defaults are the limits the agent sanitises to (agent/common/
// report_limits.h): lowering one makes the collector refuse what agents send.
struct ReportLimits {
  size_t max_report_bytes = 4 << 20;
  size_t max_workloads = report_limits::kMaxWorkloads;
  size_t max_path_bytes = report_limits::kMaxCgroupPathBytes;
  size_t max_label_bytes = report_limits::kMaxLabelBytes;
  size_t max_health_entries = report_limits::kMaxHealthEntries;
};

// Why a report or stream was refused; each has a counter.
enum class RejectReason : int {
  kMalformed = 0,        // a field failed validation (INVALID_ARGUMENT)
  kOversized,            // larger than max_report_bytes (INVALID_ARGUMENT)
  kIdentityMismatch,     // node_name is not the peer's (PERMISSION_DENIED)
  kNoClientCertificate,  // TLS without a client certificate (UNAUTHENTICATED)
  kNodeChanged,          // a stream switched node mid-way (PERMISSION_DENIED)
  kStoreError,           // could not be made durable (UNAVAILABLE)
  kNoNodeToken,  // --node_identity=token: no valid node token (UNAUTHENTICATED)
  kCount,
};
std::string_view RejectReasonName(RejectReason r);

// Cumulative counters by reason; lock-free.
class RejectCounters {
 public:
  void Inc(RejectReason r) {
    counts_[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t Get(RejectReason r) const {
    return counts_[static_cast<int>(r)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, static_cast<int>(RejectReason::kCount)>
      counts_{};
};

// Why one workload of an otherwise valid report was left out; each has a
// counter. One bad workload must not cost the node its report.
enum class WorkloadRefusal : int {
  kPath = 0,      // cgroup_path empty, not under /, too long, control bytes
  kLabel,         // an identity label too long or with control bytes
  kRepeated,      // cgroup_path already in the report
  kCounterRange,  // a counter above 2^62
  kInconsistent,  // syscall_errors > syscalls, request not finite, ...
  kNetwork,       // too many or unknown network classes
  kEnergy,        // too many or unknown energy zones, or out of range
  kCount,
};
std::string_view WorkloadRefusalName(WorkloadRefusal r);

class WorkloadRefusalCounters {
 public:
  void Inc(WorkloadRefusal r) {
    counts_[static_cast<int>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t Get(WorkloadRefusal r) const {
    return counts_[static_cast<int>(r)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<uint64_t>, static_cast<int>(WorkloadRefusal::kCount)>
      counts_{};
};

// Strict: INVALID_ARGUMENT naming the first offending field (of the report
// or of any workload), or OK.
absl::Status ValidateReport(const wattlens::v1::NodeReport& report,
                            const ReportLimits& limits);

// What ingest applies: the report's own fields are checked as above (an
// error refuses the report), then every workload or energy bucket that fails
// is removed from `report` and counted in `refused` (may be null). Returns
// the number removed.
absl::StatusOr<size_t> ValidateAndFilterReport(
    wattlens::v1::NodeReport& report, const ReportLimits& limits,
    WorkloadRefusalCounters* refused);

// RFC 1123-ish: [A-Za-z0-9._-], 1..253 bytes, starting alphanumeric.
bool IsValidNodeName(std::string_view name);

}  // namespace wattlens::collector
