// SPDX-License-Identifier: Apache-2.0
#include "agent/power/meter_guard.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "spdlog/spdlog.h"

namespace wattlens::power {

absl::string_view SourceRejectReasonName(SourceRejectReason reason) {
  switch (reason) {
    case SourceRejectReason::kAbsent:
      return "absent";
    case SourceRejectReason::kUnavailable:
      return "unavailable";
    case SourceRejectReason::kStuck:
      return "stuck";
    case SourceRejectReason::kBackwards:
      return "backwards";
    case SourceRejectReason::kImplausible:
      return "implausible";
    case SourceRejectReason::kFailed:
      return "failed";
  }
  return "unknown";
}

bool IsWholePlatformZone(Zone zone, bool from_model) {
  if (zone == Zone::kPsys) return true;
  // The model's platform term is its static rest-of-server power, a part.
  return zone == Zone::kPlatform && !from_model;
}

ReadingVerdict CheckReading(const PowerSample& sample, bool from_model,
                            const IntervalLoad& load,
                            const MeterCheckConfig& config) {
  ReadingVerdict v;
  if (from_model) return v;
  const bool busy =
      load.interval_ns > 0 && static_cast<double>(load.cpu_busy_ns) >=
                                  config.busy_fraction_of_one_cpu *
                                      static_cast<double>(load.interval_ns);
  // A counter that stands still over a judged interval: package and whole
  // platform zones never idle at 0 W, so they must always advance; cores and
  // DRAM must advance when the CPUs are busy. Uncore (an integrated GPU)
  // and discrete GPUs may legitimately draw nothing.
  for (const ZoneReading& r : sample.readings) {
    if (r.interval_ns < config.min_judged_interval_ns) continue;
    v.judged = true;
    if (r.energy_uj != 0) continue;
    const bool always = r.zone == Zone::kPackage ||
                        IsWholePlatformZone(r.zone, /*from_model=*/false);
    const bool when_busy = r.zone == Zone::kCore || r.zone == Zone::kDram;
    if (always || (when_busy && busy)) {
      v.ok = false;
      v.reason = SourceRejectReason::kStuck;
      v.detail = absl::StrFormat(
          "%s (%s) did not advance over %.0f ms%s", r.label, ZoneName(r.zone),
          r.interval_ns / 1e6,
          busy ? absl::StrFormat(" with %.0f ms on-CPU", load.cpu_busy_ns / 1e6)
               : "");
      return v;
    }
  }
  struct Sum {
    int64_t energy_uj = 0;
    int64_t interval_ns = 0;
    int domains = 0;
  };
  std::map<Zone, Sum> sums;
  for (const ZoneReading& r : sample.readings) {
    Sum& s = sums[r.zone];
    s.energy_uj += r.energy_uj;
    s.interval_ns = std::max(s.interval_ns, r.interval_ns);
    ++s.domains;
  }
  for (const auto& [zone, s] : sums) {
    if (s.interval_ns < config.min_judged_interval_ns) continue;
    const double watts = static_cast<double>(s.energy_uj) * 1e3 /
                         static_cast<double>(s.interval_ns);
    double ceiling = std::max(config.ceiling_watts_per_domain * s.domains,
                              config.ceiling_watts_per_cpu * config.cpus);
    if (IsWholePlatformZone(zone, /*from_model=*/false)) {
      ceiling += config.ceiling_watts_per_domain;
    }
    if (watts > ceiling || s.energy_uj < 0) {
      v.ok = false;
      v.reason = SourceRejectReason::kImplausible;
      v.detail = absl::StrFormat("%s at %.1f W is outside [0, %.0f] W",
                                 ZoneName(zone), watts, ceiling);
      return v;
    }
  }
  return v;
}

MeterGuard::MeterGuard(std::vector<std::unique_ptr<PowerSource>> candidates,
                       std::vector<RejectedSource> init_rejects,
                       MeterCheckConfig config)
    : rejected_(std::move(init_rejects)), config_(config) {
  for (auto& s : candidates) {
    if (!s) continue;
    Candidate c;
    c.model = s->is_model();
    c.source = std::move(s);
    candidates_.push_back(std::move(c));
  }
  if (!candidates_.empty()) current_ = 0;
}

const PowerSource* MeterGuard::current() const {
  return current_ >= 0 ? candidates_[current_].source.get() : nullptr;
}

bool MeterGuard::measured() const {
  return current_ >= 0 && !candidates_[current_].model;
}

void MeterGuard::Reject(Candidate& c, SourceRejectReason reason,
                        std::string detail) {
  c.believed = false;
  spdlog::warn("power: {} rejected ({}): {}", std::string(c.source->name()),
               std::string(SourceRejectReasonName(reason)), detail);
  rejected_.push_back(
      {std::string(c.source->name()), reason, std::move(detail)});
}

absl::StatusOr<PowerSample> MeterGuard::Sample(const IntervalLoad& load) {
  int chosen = -1;
  PowerSample out;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    Candidate& c = candidates_[i];
    if (!c.believed) continue;
    const RejectCounters before = c.source->rejected();
    absl::StatusOr<PowerSample> s = c.source->Sample();
    if (!s.ok()) {
      Reject(c, SourceRejectReason::kFailed, std::string(s.status().message()));
      continue;
    }
    if (!c.model) {
      const RejectCounters& after = c.source->rejected();
      const uint64_t backwards = after.Get(RejectReason::kBackwards) -
                                 before.Get(RejectReason::kBackwards);
      const uint64_t implausible = after.Get(RejectReason::kImplausible) -
                                   before.Get(RejectReason::kImplausible) +
                                   after.Get(RejectReason::kOutOfRange) -
                                   before.Get(RejectReason::kOutOfRange);
      ReadingVerdict v = CheckReading(*s, /*from_model=*/false, load, config_);
      if (!v.ok && v.reason == SourceRejectReason::kStuck) {
        Reject(c, v.reason, std::move(v.detail));
        continue;
      }
      if (v.ok && (backwards > 0 || implausible > 0)) {
        v.ok = false;
        v.reason = backwards > 0 ? SourceRejectReason::kBackwards
                                 : SourceRejectReason::kImplausible;
        v.detail = c.source->last_error();
      }
      if (!v.ok) {
        if (++c.bad_in_a_row >= config_.bad_intervals_to_reject) {
          Reject(c, v.reason,
                 absl::StrCat(c.bad_in_a_row,
                              " intervals in a row; last: ", v.detail));
        } else {
          spdlog::info("power: {} reading dropped ({}): {}",
                       std::string(c.source->name()),
                       std::string(SourceRejectReasonName(v.reason)), v.detail);
        }
        continue;  // the next believed source covers this interval
      }
      c.bad_in_a_row = 0;
      if (v.judged) c.verified = true;
      if (!c.verified) continue;  // not yet judged: the next source covers
    }
    if (chosen < 0) {
      chosen = static_cast<int>(i);
      out = *std::move(s);
    }
  }
  if (chosen < 0) {
    current_ = -1;
    for (size_t i = 0; i < candidates_.size(); ++i) {
      if (candidates_[i].believed) {
        current_ = static_cast<int>(i);
        break;
      }
    }
    if (current_ < 0) {
      return absl::FailedPreconditionError("no believable power source left");
    }
    return PowerSample{};  // this interval: every believed reading dropped
  }
  current_ = chosen;
  return out;
}

}  // namespace wattlens::power
