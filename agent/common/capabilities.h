// SPDX-License-Identifier: Apache-2.0
// Dropping privileges once the BPF programs are loaded.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace wattlens {

// Reduces the calling thread's effective, permitted and inheritable sets to
// `keep` (intersected with what it has), and drops every other capability
// from the bounding set where CAP_SETPCAP allows. Capabilities are per
// thread: call it before starting threads, which then inherit the result.
absl::Status DropCapabilitiesExcept(const std::vector<int>& keep);

// The calling thread's effective capability bits (CapEff).
uint64_t EffectiveCapabilities();

}  // namespace wattlens
