// SPDX-License-Identifier: Apache-2.0
// The health of one data source as a state and a reason code. Readiness,
// metrics and tests decide on the codes; the free text is for people.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace wattlens {

// Degraded is not down: a degraded source still measures, less than it
// could (a kernel without a feature, a fallback standing in). Ordered from
// best to worst: readiness compares states.
enum class SourceState : uint8_t { kUp, kDegraded, kDown };

enum class HealthReason : uint8_t {
  kNone,              // up
  kNoVariant,         // the kernel lacks what every design of it needs
  kLoadFailed,        // open, load or attach failed
  kHarvestFailed,     // loaded, but reading it failed
  kNetworkBytesOff,   // bytes not counted (switched off or unsupported)
  kNotSynced,         // the Kubernetes watch has not listed yet
  kWatchFailed,       // the Kubernetes watch reports an error
  kNoMeter,           // no CPU energy source at all
  kMeterDegraded,     // the energy source reads, with a fallback
  kMeterUnavailable,  // the energy source stopped reading
};

inline constexpr size_t kSourceStates =
    static_cast<size_t>(SourceState::kDown) + 1;
inline constexpr size_t kHealthReasons =
    static_cast<size_t>(HealthReason::kMeterUnavailable) + 1;

inline constexpr std::array<absl::string_view, kSourceStates>
    kSourceStateNames = {"up", "degraded", "down"};
// Indexed by HealthReason; a reason added without a name leaves an empty
// slot, which the static_assert below refuses.
inline constexpr std::array<absl::string_view, kHealthReasons>
    kHealthReasonNames = {
        "none",           "no_variant",        "load_failed",
        "harvest_failed", "network_bytes_off", "not_synced",
        "watch_failed",   "no_meter",          "meter_degraded",
        "meter_unavailable",
};
template <size_t N>
constexpr bool AllNamed(const std::array<absl::string_view, N>& names) {
  for (absl::string_view n : names) {
    if (n.empty()) return false;
  }
  return true;
}
static_assert(AllNamed(kSourceStateNames), "a SourceState has no name");
static_assert(AllNamed(kHealthReasonNames), "a HealthReason has no name");

constexpr absl::string_view SourceStateName(SourceState s) {
  return kSourceStateNames[static_cast<size_t>(s)];
}
constexpr absl::string_view HealthReasonName(HealthReason r) {
  return kHealthReasonNames[static_cast<size_t>(r)];
}

struct SourceHealth {
  std::string source;
  SourceState state = SourceState::kDown;
  HealthReason reason = HealthReason::kNone;
  std::string detail;        // why, for people; empty when up
  std::string variant = {};  // the design loaded here; empty: one only

  static SourceHealth Up(std::string source, std::string variant = {}) {
    return {std::move(source), SourceState::kUp, HealthReason::kNone, "",
            std::move(variant)};
  }
  bool up() const { return state == SourceState::kUp; }
};

}  // namespace wattlens
