// SPDX-License-Identifier: Apache-2.0
// Turning two readings of a wrapping energy counter into the energy between
// them. RAPL counters are 32-bit in hardware and wrap every few minutes at
// high power; after a long stall the counter may have wrapped several times,
// which only plausibility bounds can disambiguate.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"

namespace wattlens::power {

struct CounterBounds {
  int64_t interval_ns = 0;
  double min_power_w = 0;     // energy below min_power_w × Δt is impossible
  double max_power_w = 1000;  // and so is energy above max_power_w × Δt
  // Power seen recently in this zone; picks among several fitting wrap
  // counts. Without it the smallest count wins.
  std::optional<double> expected_power_w;
};

struct CounterDelta {
  uint64_t energy_uj = 0;
  uint64_t wraps = 0;
  bool ambiguous = false;
};

// Energy between `prev_uj` and `cur_uj` of a counter that wraps to 0 after
// `range_uj` (max_energy_range_uj; 0 = unknown, the counter must not go
// down). Candidates are (cur − prev) mod range + k × range for k ≥ 0; those
// within the bounds are kept. Errors: OutOfRange when a reading exceeds the
// range, FailedPrecondition when the counter went down without a known
// range, and Unavailable when no candidate fits (the reading is impossible).
absl::StatusOr<CounterDelta> ResolveCounterDelta(uint64_t prev_uj,
                                                 uint64_t cur_uj,
                                                 uint64_t range_uj,
                                                 const CounterBounds& bounds);

// W × ns → µJ, floored at 0 and saturating at INT64_MAX.
int64_t PowerToMicrojoules(double watts, int64_t interval_ns);

}  // namespace wattlens::power
