// SPDX-License-Identifier: Apache-2.0
#include "agent/power/baseline.h"

#include <algorithm>
#include <cmath>

#include "agent/power/counter.h"

namespace wattlens::power {

absl::string_view BaselineKindName(BaselineKind kind) {
  switch (kind) {
    case BaselineKind::kNone:
      return "none";
    case BaselineKind::kConfigured:
      return "configured";
    case BaselineKind::kLowLoadMinimum:
      return "low_load_minimum";
    case BaselineKind::kRegression:
      return "regression";
  }
  return "none";
}

IdleBaselineEstimator::IdleBaselineEstimator(const Clock& clock,
                                             BaselineConfig config)
    : clock_(clock), config_(std::move(config)) {}

void IdleBaselineEstimator::Prune(ZoneState& z, int64_t now) {
  const int64_t oldest = now - config_.window_ns;
  while (!z.low_min.empty() && z.low_min.front().t_ns < oldest) {
    z.low_min.pop_front();
  }
  while (!z.all.empty() &&
         (z.all.front().t_ns < oldest || z.all.size() > config_.max_samples)) {
    const Point& p = z.all.front();
    z.su -= p.u;
    z.sp -= p.watts;
    z.suu -= p.u * p.u;
    z.sup -= p.u * p.watts;
    z.all.pop_front();
  }
  if (z.all.empty()) z.su = z.sp = z.suu = z.sup = 0;  // no drift
}

void IdleBaselineEstimator::Observe(const std::string& zone, double watts,
                                    double u) {
  if (!std::isfinite(watts) || watts < 0 || !std::isfinite(u)) return;
  u = std::clamp(u, 0.0, 1.0);
  const int64_t now = clock_.MonotonicNs();
  ZoneState& z = zones_[zone];
  const Point p{now, u, watts};
  if (u <= config_.low_utilisation) {
    while (!z.low_min.empty() && z.low_min.back().watts >= watts) {
      z.low_min.pop_back();
    }
    z.low_min.push_back(p);
  }
  z.all.push_back(p);
  z.su += u;
  z.sp += watts;
  z.suu += u * u;
  z.sup += u * watts;
  Prune(z, now);
}

Baseline IdleBaselineEstimator::Get(const std::string& zone) {
  if (auto it = config_.configured_watts.find(zone);
      it != config_.configured_watts.end()) {
    return {it->second, BaselineKind::kConfigured};
  }
  auto it = zones_.find(zone);
  if (it == zones_.end()) return {};
  ZoneState& z = it->second;
  Prune(z, clock_.MonotonicNs());
  if (!z.low_min.empty()) {
    return {z.low_min.front().watts, BaselineKind::kLowLoadMinimum};
  }
  const double n = static_cast<double>(z.all.size());
  if (z.all.size() < config_.min_regression_samples) return {};
  const double mean_u = z.su / n;
  const double var_u = z.suu / n - mean_u * mean_u;
  if (!(var_u >=
        config_.min_utilisation_stddev * config_.min_utilisation_stddev)) {
    return {};
  }
  const double slope = (z.sup / n - mean_u * z.sp / n) / var_u;
  double intercept = z.sp / n - slope * mean_u;
  // The baseline can never exceed the lowest power actually seen.
  double min_seen = z.all.front().watts;
  for (const Point& p : z.all) min_seen = std::min(min_seen, p.watts);
  intercept = std::clamp(intercept, 0.0, min_seen);
  return {intercept, BaselineKind::kRegression};
}

int64_t IdleBaselineEstimator::IdleMicrojoules(const std::string& zone,
                                               int64_t interval_ns,
                                               int64_t energy_uj) {
  const Baseline b = Get(zone);
  if (b.kind == BaselineKind::kNone) return 0;
  return std::clamp<int64_t>(PowerToMicrojoules(b.watts, interval_ns), 0,
                             std::max<int64_t>(energy_uj, 0));
}

}  // namespace wattlens::power
