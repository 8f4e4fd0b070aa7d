// SPDX-License-Identifier: Apache-2.0
#include "agent/common/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace wattlens {
namespace {

bool Get(__user_cap_data_struct data[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return syscall(SYS_capget, &hdr, data) == 0;
}

}  // namespace

uint64_t EffectiveCapabilities() {
  __user_cap_data_struct data[2] = {};
  if (!Get(data)) return 0;
  return uint64_t{data[1].effective} << 32 | data[0].effective;
}

absl::Status DropCapabilitiesExcept(const std::vector<int>& keep) {
  __user_cap_data_struct data[2] = {};
  if (!Get(data)) return absl::ErrnoToStatus(errno, "capget");
  uint64_t have = uint64_t{data[1].permitted} << 32 | data[0].permitted;
  uint64_t mask = 0;
  for (int cap : keep) mask |= uint64_t{1} << cap;
  // Bounding set first (needs CAP_SETPCAP, which is about to go).
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (!(mask & (uint64_t{1} << cap))) prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  }
  const uint64_t kept = have & mask;
  for (int i = 0; i < 2; ++i) {
    const uint32_t bits = static_cast<uint32_t>(kept >> (32 * i));
    data[i].effective = data[i].permitted = bits;
    data[i].inheritable = 0;
  }
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  if (syscall(SYS_capset, &hdr, data) != 0) {
    return absl::ErrnoToStatus(errno, "capset");
  }
  return absl::OkStatus();
}

}  // namespace wattlens
