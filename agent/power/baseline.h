// SPDX-License-Identifier: Apache-2.0
// The idle (static) power baseline on metered nodes: the lowest node power
// seen while the node was nearly idle, over a rolling window. Before any
// low-load interval has been seen, the intercept at zero load of a
// least-squares line through (utilisation, power) stands in when the window
// spans enough load variation; otherwise there is no baseline yet and all
// energy counts as dynamic. A configured value overrides both.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/common/clock.h"

namespace wattlens::power {

struct BaselineConfig {
  double low_utilisation = 0.10;  // "nearly idle"
  int64_t window_ns = 24LL * 3600 * 1'000'000'000;
  size_t max_samples = 20'000;  // per zone, for the regression
  // Regression fallback needs this many samples and this spread of load.
  size_t min_regression_samples = 10;
  double min_utilisation_stddev = 0.05;
  std::map<std::string, double> configured_watts;  // per zone key
};

enum class BaselineKind { kNone, kConfigured, kLowLoadMinimum, kRegression };
absl::string_view BaselineKindName(BaselineKind kind);

struct Baseline {
  double watts = 0;
  BaselineKind kind = BaselineKind::kNone;
};

class IdleBaselineEstimator {
 public:
  IdleBaselineEstimator(const Clock& clock, BaselineConfig config = {});

  // One interval's average power in `zone` at node utilisation `u`.
  void Observe(const std::string& zone, double watts, double utilisation);
  Baseline Get(const std::string& zone);
  // Baseline energy for an interval, never more than `energy_uj`.
  int64_t IdleMicrojoules(const std::string& zone, int64_t interval_ns,
                          int64_t energy_uj);

 private:
  struct Point {
    int64_t t_ns;
    double u;
    double watts;
  };
  struct ZoneState {
    std::deque<Point> low_min;  // increasing watts: a sliding-window minimum
    std::deque<Point> all;      // every sample, for the regression
    double su = 0, sp = 0, suu = 0, sup = 0;
  };
  void Prune(ZoneState& z, int64_t now);

  const Clock& clock_;
  BaselineConfig config_;
  std::map<std::string, ZoneState> zones_;
};

}  // namespace wattlens::power
