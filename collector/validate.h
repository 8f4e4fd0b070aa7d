// Every field of an incoming report is checked before it touches state:
// reports come from the network and may be hostile.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "wattlens/v1/report.pb.h"

namespace wattlens::collector {

struct ReportLimits {
  size_t max_report_bytes = 4 << 20;
  size_t max_workloads = 10000;
  size_t max_path_bytes = 4096;
  size_t max_label_bytes = 253;
  size_t max_health_entries = 256;
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

// INVALID_ARGUMENT naming the first offending field, or OK.
absl::Status ValidateReport(const wattlens::v1::NodeReport& report,
                            const ReportLimits& limits);

// RFC 1123-ish: [A-Za-z0-9._-], 1..253 bytes, starting alphanumeric.
bool IsValidNodeName(std::string_view name);

}  // namespace wattlens::collector
