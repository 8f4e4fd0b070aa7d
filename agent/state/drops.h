// SPDX-License-Identifier: Apache-2.0
// Every reason the agent counts for something it did not record as it
// should, kernel side and user side, in one enum with one names table.
//
// Most are losses, exported as wattlens_agent_lost_events_total{reason}. A
// few lose no event and are exported as wattlens_agent_anomalies_total{reason}
// instead, so that an alert on lost events means data is missing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "bpf/shared/wattlens_abi.h"

namespace wattlens {

enum class DropReason : uint8_t {
  // Counted in the kernel: the same values as enum wl_drop_reason, so that
  // the `drops` map's index is the enum's value.
  kSyscallMapFull = WL_DROP_SYSCALL_MAP_FULL,
  kSchedMapFull = WL_DROP_SCHED_MAP_FULL,
  kRingbufFull = WL_DROP_RINGBUF_RESERVE,
  kTaskStorageFull = WL_DROP_TASK_STORAGE,
  kNetMapFull = WL_DROP_NET_MAP_FULL,
  kSocketStorageFull = WL_DROP_SOCK_STORAGE,
  kSchedDyingFull = WL_DROP_SCHED_DYING_FULL,
  kCasRetryDeferred = WL_DROP_CAS_RETRY_DEFERRED,
  // Counted by the agent.
  kExitFreeUnseen,
  kEventQueueFull,
  kMalformedEvent,
  kShortRecord,
  kExeQueueFull,
  kExeTableFull,
  kExePathTooLong,
  kProcessTableFull,
  kCgroupTableFull,
  kCgroupPathInvalid,
  kPodWatchEventInvalid,
  kRestartStateUnmatchedAck,
  kPodsEvictedLive,
  kWorkingSetUnreadable,
};

inline constexpr size_t kKernelDropReasons = WL_DROP_MAX;
inline constexpr size_t kDropReasons =
    static_cast<size_t>(DropReason::kWorkingSetUnreadable) + 1;

struct DropReasonInfo {
  DropReason reason;
  absl::string_view name;  // the exported `reason` label value
  bool lost;               // false: nothing was lost (see the header comment)
};

// Indexed by DropReason; the static_asserts below keep it in step.
inline constexpr std::array<DropReasonInfo, kDropReasons> kDropReasonTable = {{
    {DropReason::kSyscallMapFull, "syscall_map_full", true},
    {DropReason::kSchedMapFull, "sched_map_full", true},
    {DropReason::kRingbufFull, "ringbuf_full", true},
    {DropReason::kTaskStorageFull, "task_storage_full", true},
    {DropReason::kNetMapFull, "net_map_full", true},
    {DropReason::kSocketStorageFull, "socket_storage_full", true},
    {DropReason::kSchedDyingFull, "sched_dying_full", true},
    // The slice stays unclaimed and the next sample charges it.
    {DropReason::kCasRetryDeferred, "cas_retry_deferred", false},
    {DropReason::kExitFreeUnseen, "exit_free_unseen", true},
    {DropReason::kEventQueueFull, "event_queue_full", true},
    {DropReason::kMalformedEvent, "malformed_event", true},
    {DropReason::kShortRecord, "short_record", true},
    {DropReason::kExeQueueFull, "exe_queue_full", true},
    {DropReason::kExeTableFull, "exe_table_full", true},
    {DropReason::kExePathTooLong, "exe_path_too_long", true},
    {DropReason::kProcessTableFull, "process_table_full", true},
    {DropReason::kCgroupTableFull, "cgroup_table_full", true},
    {DropReason::kCgroupPathInvalid, "cgroup_path_invalid", true},
    {DropReason::kPodWatchEventInvalid, "pod_watch_event_invalid", true},
    {DropReason::kRestartStateUnmatchedAck, "restart_state_unmatched_ack",
     true},
    // A live pod's metadata left a full cache; it is read again when seen.
    {DropReason::kPodsEvictedLive, "pods_evicted_live", false},
    // A cgroup's memory could not be read this interval: a gauge is
    // missing, no event is.
    {DropReason::kWorkingSetUnreadable, "working_set_unreadable", false},
}};

constexpr bool DropTableInOrder() {
  for (size_t i = 0; i < kDropReasonTable.size(); ++i) {
    if (static_cast<size_t>(kDropReasonTable[i].reason) != i) return false;
    if (kDropReasonTable[i].name.empty()) return false;
  }
  return true;
}
static_assert(DropTableInOrder(), "kDropReasonTable must follow DropReason");
static_assert(kKernelDropReasons ==
                  static_cast<size_t>(DropReason::kCasRetryDeferred) + 1,
              "every kernel drop reason needs a DropReason, and no more");

constexpr absl::string_view DropReasonName(DropReason r) {
  return kDropReasonTable[static_cast<size_t>(r)].name;
}
constexpr bool IsLoss(DropReason r) {
  return kDropReasonTable[static_cast<size_t>(r)].lost;
}

// Cumulative counts, one per reason.
class DropTable {
 public:
  uint64_t& operator[](DropReason r) {
    return counts_[static_cast<size_t>(r)];
  }
  uint64_t operator[](DropReason r) const {
    return counts_[static_cast<size_t>(r)];
  }
  // Calls fn(const DropReasonInfo&, uint64_t count) for every reason, in
  // enum order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const DropReasonInfo& info : kDropReasonTable) {
      fn(info, counts_[static_cast<size_t>(info.reason)]);
    }
  }
  uint64_t TotalLost() const {
    uint64_t n = 0;
    for (const DropReasonInfo& info : kDropReasonTable) {
      if (info.lost) n += counts_[static_cast<size_t>(info.reason)];
    }
    return n;
  }

 private:
  std::array<uint64_t, kDropReasons> counts_{};
};

}  // namespace wattlens
