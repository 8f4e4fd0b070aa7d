// SPDX-License-Identifier: Apache-2.0
// The shipped data files (data/), loaded once: grid intensity per Ember
// country/aggregate and Electricity Maps zone and year, cloud region maps,
// PUE defaults, embodied-emission constants and ISO 4217 codes. Sources,
// years and licences: data/carbon/ATTRIBUTION.md and docs/cost-carbon.md.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::pricing {

struct RegionInfo {
  std::string provider;  // aws, gcp, azure
  std::string region;    // lower case
  std::string zone;      // Electricity Maps zone, may be empty
  std::string country;   // ISO 3166-1 alpha-3
  std::string source;    // ccf | wattlens
};

struct EmbodiedDefaults {
  double base_kg = 1000;
  double dram_base_gb = 16;
  double dram_kg_per_gb = 533.0 / 384.0;
  double extra_socket_kg = 100;
  double hdd_kg = 50;
  double ssd_kg = 100;
  double gpu_kg = 150;
  double lifetime_hours = 35040;
  double vcpu_host_kg = 1610.79;
  double vcpu_host_vcpus = 96;
};

struct CarbonData {
  std::string dir;
  // Electricity Maps: zone (as published, e.g. "US-MIDA-PJM") -> year -> g.
  absl::flat_hash_map<std::string, std::map<int, double>> em_zones;
  // Upper-cased zone -> zone as published, for case-insensitive lookups.
  absl::flat_hash_map<std::string, std::string> em_zone_by_upper;
  // Ember: key (alpha-3, alpha-2 or aggregate, upper case) -> (year, g).
  absl::flat_hash_map<std::string, std::pair<int, double>> ember;
  // "provider/region" and "region" (first provider listing it) -> info.
  absl::flat_hash_map<std::string, RegionInfo> regions;
  // "provider/region" or "provider/*" -> PUE; provider "unknown" for
  // on-premises and unknown.
  absl::flat_hash_map<std::string, double> pue;
  EmbodiedDefaults embodied;
  absl::flat_hash_set<std::string> currencies;
  // Ember WORLD.
  int world_year = 0;
  double world_g_per_kwh = 0;
};

// Loads <dir>/carbon/{grid_intensity,cloud_regions,pue,embodied}.csv and
// <dir>/currencies.csv. Errors name the file and line.
absl::StatusOr<CarbonData> LoadCarbonData(const std::string& dir);

// Parsers behind LoadCarbonData, for tests; each adds to `data`.
absl::Status ParseGridIntensity(absl::string_view text, absl::string_view name,
                                CarbonData* data);
absl::Status ParseCloudRegions(absl::string_view text, absl::string_view name,
                               CarbonData* data);

}  // namespace wattlens::pricing
