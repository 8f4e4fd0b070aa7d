// SPDX-License-Identifier: Apache-2.0
#include "agent/power/power_source.h"

#include "absl/strings/str_cat.h"

namespace wattlens::power {

absl::string_view ZoneName(Zone zone) {
  switch (zone) {
    case Zone::kPackage:
      return "package";
    case Zone::kCore:
      return "core";
    case Zone::kUncore:
      return "uncore";
    case Zone::kDram:
      return "dram";
    case Zone::kPsys:
      return "psys";
    case Zone::kPlatform:
      return "platform";
    case Zone::kGpu:
      return "gpu";
  }
  return "unknown";
}

absl::string_view HealthName(SourceHealth health) {
  switch (health) {
    case SourceHealth::kUnknown:
      return "unknown";
    case SourceHealth::kHealthy:
      return "healthy";
    case SourceHealth::kDegraded:
      return "degraded";
    case SourceHealth::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

absl::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kUnreadable:
      return "unreadable";
    case RejectReason::kUnparsable:
      return "unparsable";
    case RejectReason::kSentinel:
      return "sentinel";
    case RejectReason::kOutOfRange:
      return "out_of_range";
    case RejectReason::kImplausible:
      return "implausible";
    case RejectReason::kBackwards:
      return "backwards";
  }
  return "unknown";
}

uint64_t RejectCounters::Total() const {
  uint64_t total = 0;
  for (uint64_t c : counts_) total += c;
  return total;
}

std::map<Zone, ZoneTotal> PowerSample::Totals() const {
  std::map<Zone, ZoneTotal> totals;
  std::map<Zone, bool> all_idle;
  for (const ZoneReading& r : readings) {
    ZoneTotal& t = totals[r.zone];
    auto [it, inserted] = all_idle.try_emplace(r.zone, true);
    t.energy_uj += r.energy_uj;
    ++t.domains;
    if (r.idle_uj) {
      t.idle_uj = t.idle_uj.value_or(0) + *r.idle_uj;
    } else {
      it->second = false;
    }
  }
  for (auto& [zone, t] : totals) {
    if (!all_idle[zone]) t.idle_uj.reset();
  }
  return totals;
}

void PowerSource::SetDegraded(std::string reason) {
  health_ = SourceHealth::kDegraded;
  last_error_ = std::move(reason);
}

absl::Status PowerSource::SetUnavailable(absl::Status status) {
  health_ = SourceHealth::kUnavailable;
  last_error_ = std::string(status.message());
  return status;
}

void PowerSource::UpdateHealthAfterSample(uint64_t rejects_before,
                                          absl::string_view last_reject) {
  if (rejected_.Total() == rejects_before) {
    health_ = SourceHealth::kHealthy;
  } else {
    SetDegraded(std::string(last_reject));
  }
}

}  // namespace wattlens::power
