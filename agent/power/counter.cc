// SPDX-License-Identifier: Apache-2.0
#include "agent/power/counter.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace wattlens::power {
namespace {

using u128 = unsigned __int128;

u128 EnergyBoundUj(double watts, int64_t interval_ns, bool round_up) {
  if (!(watts > 0) || interval_ns <= 0) return 0;
  long double uj = static_cast<long double>(watts) * interval_ns / 1000.0L;
  uj = round_up ? std::ceil(uj) : std::floor(uj);
  constexpr long double kMax = 1.0e36L;  // far below 2^128
  return static_cast<u128>(std::min(uj, kMax));
}

}  // namespace

int64_t PowerToMicrojoules(double watts, int64_t interval_ns) {
  if (!(watts > 0) || interval_ns <= 0) return 0;
  long double uj = static_cast<long double>(watts) * interval_ns / 1000.0L;
  constexpr long double kMax =
      static_cast<long double>(std::numeric_limits<int64_t>::max());
  if (uj >= kMax) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(std::llround(uj));
}

absl::StatusOr<CounterDelta> ResolveCounterDelta(uint64_t prev_uj,
                                                 uint64_t cur_uj,
                                                 uint64_t range_uj,
                                                 const CounterBounds& bounds) {
  const u128 max_e = EnergyBoundUj(bounds.max_power_w, bounds.interval_ns,
                                   /*round_up=*/true);
  const u128 min_e = EnergyBoundUj(bounds.min_power_w, bounds.interval_ns,
                                   /*round_up=*/false);
  if (range_uj == 0) {
    if (cur_uj < prev_uj) {
      return absl::FailedPreconditionError(
          absl::StrCat("counter went down from ", prev_uj, " to ", cur_uj,
                       " and has no wrap range"));
    }
    const uint64_t d = cur_uj - prev_uj;
    if (d > max_e || d < min_e) {
      return absl::UnavailableError(
          absl::StrCat(d, " uJ in ", bounds.interval_ns, " ns is outside [",
                       bounds.min_power_w, ", ", bounds.max_power_w, "] W"));
    }
    return CounterDelta{d, 0, false};
  }
  if (cur_uj > range_uj || prev_uj > range_uj) {
    return absl::OutOfRangeError(
        absl::StrCat("reading ", std::max(cur_uj, prev_uj),
                     " exceeds the counter range ", range_uj));
  }
  // d0 is the smallest non-negative candidate: one wrap already if the
  // counter is below its previous value.
  const bool wrapped = cur_uj < prev_uj;
  const u128 range = range_uj;
  const u128 d0 = wrapped ? range - prev_uj + cur_uj : u128{cur_uj - prev_uj};
  if (d0 > max_e) {
    return absl::UnavailableError(absl::StrCat(
        "at least ", static_cast<uint64_t>(d0), " uJ in ", bounds.interval_ns,
        " ns exceeds ", bounds.max_power_w, " W"));
  }
  const u128 k_max = (max_e - d0) / range;
  const u128 k_min = d0 >= min_e ? 0 : (min_e - d0 + range - 1) / range;
  if (k_min > k_max) {
    return absl::UnavailableError(absl::StrCat(
        "no wrap count puts the energy in [", bounds.min_power_w, ", ",
        bounds.max_power_w, "] W over ", bounds.interval_ns, " ns"));
  }
  u128 k = k_min;
  if (bounds.expected_power_w && k_max > k_min) {
    const long double expected =
        static_cast<long double>(*bounds.expected_power_w) *
        bounds.interval_ns / 1000.0L;
    const long double ideal =
        (expected - static_cast<long double>(d0)) / range_uj;
    const long double rounded = std::max(0.0L, std::round(ideal));
    k = std::clamp(static_cast<u128>(std::min(rounded, 1.0e30L)), k_min, k_max);
  }
  const u128 energy = d0 + k * range;
  if (energy > std::numeric_limits<int64_t>::max()) {
    return absl::UnavailableError("energy delta overflows");
  }
  return CounterDelta{static_cast<uint64_t>(energy),
                      static_cast<uint64_t>(k + (wrapped ? 1 : 0)),
                      k_max > k_min};
}

}  // namespace wattlens::power
