// SPDX-License-Identifier: Apache-2.0
// The terminal view of the busiest workloads, redrawn each interval.
#pragma once

#include <cstddef>
#include <string>

#include "agent/state/snapshot.h"

namespace wattlens {

// Rates are computed between `prev` and `cur`; `prev` may be null on the
// first interval (rates then show as 0).
std::string RenderLiveView(const Snapshot* prev, const Snapshot& cur,
                           size_t top_n);

}  // namespace wattlens
