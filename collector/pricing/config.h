// SPDX-License-Identifier: Apache-2.0
// The --cost_config file: TOML 1.0, read by toml++, then checked here with
// the line of every value (docs/cost-carbon.md documents every key). The
// document is the top-level keys, an `egress_per_gb` table and the arrays of
// tables `node` and `regions`, however TOML spells them (headers, dotted keys
// or inline tables). Every value is a string, a number or a boolean; an
// array, table or date where one is expected is a type error naming the key,
// and inf or nan is a bad number.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collector/pricing/pricing.h"

namespace wattlens::pricing {

// Kubernetes equality-based label selector: "k=v,k2!=v2,k3,!k4".
class Selector {
 public:
  static absl::StatusOr<Selector> Parse(absl::string_view text);
  bool Matches(const std::map<std::string, std::string>& labels) const;

 private:
  enum class Op { kEq, kNe, kExists, kNotExists };
  struct Term {
    std::string key;
    std::string value;
    Op op;
  };
  std::vector<Term> terms_;
};

// Settings a [[node]] rule, or the top level (for every node), may give.
struct NodeSettings {
  // Prices: either a total (split by the OpenCost ratio) or components.
  std::optional<double> price_per_hour;
  std::optional<double> cpu_per_core_hour, ram_per_gib_hour, gpu_per_gpu_hour;
  std::optional<double> discount;
  std::optional<double> energy_per_kwh;
  // Location.
  std::optional<std::string> provider, region, zone, country;
  // Carbon.
  std::optional<double> pue, grid_intensity;
  std::optional<double> embodied_kg, lifetime_hours;
  std::optional<std::string> embodied_model;  // "vcpu" or "server"
  std::optional<uint32_t> sockets, hdds, ssds;
  // "<file>:<line>" of each key given, for provenance and messages.
  std::map<std::string, std::string> where;

  bool HasPrice() const {
    return price_per_hour || cpu_per_core_hour || ram_per_gib_hour ||
           gpu_per_gpu_hour;
  }
};

struct NodeRule {
  enum class Kind { kName, kSelector, kInstanceType };
  Kind kind = Kind::kName;
  std::string match;  // node name, selector text or instance type
  Selector selector;  // kSelector only
  std::string where;  // "<file>:<line>" of the [[node]] header or table
  NodeSettings settings;
};

// [[regions]]: facts about a region name, for regions the shipped tables do
// not know or to correct them.
struct RegionRule {
  std::string name;  // lower case
  std::optional<std::string> provider;
  std::optional<std::string> zone, country;
  std::optional<double> pue, grid_intensity;
  std::string where;
};

// One time series of grid intensity per region or zone key (lower case),
// samples sorted by time.
struct IntensitySeries {
  std::vector<std::pair<int64_t, double>> samples;  // unix ns, g/kWh
};

struct CostConfig {
  std::string name;  // the file, for messages ("" = built-in defaults)
  std::string currency = "USD";
  std::string currency_where;
  // Default component prices (before discount); OpenCost's when absent.
  double cpu_per_core_hour = kOpenCostCpuPerCoreHour;
  double ram_per_gib_hour = kOpenCostRamPerGibHour;
  double gpu_per_gpu_hour = kOpenCostGpuPerGpuHour;
  bool prices_configured = false;
  std::string prices_where;
  double discount = 0;
  double energy_per_kwh = 0;
  bool share_idle = false;
  std::array<double, kEgressClasses> egress_per_gb = kDefaultEgressPerGb;
  // "electricitymaps" (zone first, then country) or "ember" (country first).
  std::string intensity_dataset = "electricitymaps";
  std::optional<int> intensity_year;
  std::string intensity_year_where;
  // Path as written and resolved against the config file's directory.
  std::string intensity_timeseries;
  std::string intensity_timeseries_where;
  absl::flat_hash_map<std::string, IntensitySeries> timeseries;

  // Top-level node settings (apply to every node, below rules).
  NodeSettings defaults;
  std::vector<NodeRule> rules;  // in file order
  std::vector<RegionRule> regions;
};

// Parses config text; `name` prefixes every error ("cost.toml:12: ...").
// Checks syntax, types, ranges and duplicates; the checks that need the data
// files (currency list, regions, years) and loading the time series are
// done by CostModel::Load.
absl::StatusOr<CostConfig> ParseCostConfig(absl::string_view text,
                                           const std::string& name);

// Parses a time-series CSV "time,region_or_zone,g_per_kwh" (time: unix
// seconds or RFC 3339). Keys are lower-cased.
absl::StatusOr<absl::flat_hash_map<std::string, IntensitySeries>>
ParseIntensityTimeSeries(absl::string_view text, absl::string_view name);

}  // namespace wattlens::pricing
