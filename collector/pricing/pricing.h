// SPDX-License-Identifier: Apache-2.0
// Prices, locations and carbon coefficients per node: the data and
// configuration layer of cost and carbon accounting (issue #7).
//
// A CostModel is loaded once from the shipped data files (data/, see
// docs/cost-carbon.md for every source, year and licence) and an optional
// --cost_config file. RatesFor() resolves one node's prices, PUE, location
// and embodied emissions; callers cache the result per node. IntensityFor()
// gives the grid intensity that applies to that node at a given time.
//
// Owns: parsing of the config, data and time-series files; price rules and
// the OpenCost ratio split; region -> grid zone -> intensity resolution.
// Must not depend on: collector_core, agent code, protos (callers convert).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace wattlens::pricing {

// Egress price classes, in the order of the agent's NetworkClass enum:
// index = NetworkClass - 1 (NETWORK_CLASS_NODE = 1 ... UNKNOWN = 5).
inline constexpr int kEgressClasses = 5;
inline constexpr std::array<const char*, kEgressClasses> kEgressClassNames = {
    "node", "cluster", "private", "internet", "unknown"};

// OpenCost configs/default.json ("Default prices based on GCP us-central1").
inline constexpr double kOpenCostCpuPerCoreHour = 0.031611;
inline constexpr double kOpenCostRamPerGibHour = 0.004237;
inline constexpr double kOpenCostGpuPerGpuHour = 0.95;
// Defaults per egress class, $/GB: traffic that stays on the node or in the
// cluster is free; other private ranges are priced like OpenCost's zone
// egress, internet and unclassified like its internet egress.
inline constexpr std::array<double, kEgressClasses> kDefaultEgressPerGb = {
    0, 0, 0.01, 0.12, 0.12};

// What the collector knows about a node (from the agent's NodeSpec).
struct NodeAttributes {
  std::string name;
  // Kubernetes node labels (topology.kubernetes.io/region,
  // node.kubernetes.io/instance-type, ...).
  std::map<std::string, std::string> labels;
  // spec.providerID: aws:///us-east-1a/i-..., gce://project/zone/name,
  // azure:///subscriptions/...; empty when unknown.
  std::string provider_id;
  uint32_t cpus = 0;
  uint64_t memory_bytes = 0;
  uint32_t gpus = 0;
};

// Where a grid intensity came from.
struct Intensity {
  double grams_per_kwh = 0;
  // "override", "timeseries:<key>", "em-zone:US-MIDA-PJM:2025",
  // "ember-country:DEU:2024", "world:2024".
  std::string source;
  // True when no location-specific value applied (world average).
  bool fallback = false;
};

// Everything cost and carbon accounting needs about one node. Prices are
// after discount, in `currency`.
struct NodeRates {
  std::string currency = "USD";
  double cpu_per_core_hour = 0;
  double ram_per_gib_hour = 0;
  double gpu_per_gpu_hour = 0;
  // Price of facility energy; 0 = energy is not charged (cloud nodes, whose
  // instance price includes it).
  double energy_per_kwh = 0;
  // $/GB transmitted, index = agent NetworkClass - 1 (see kEgressClassNames).
  std::array<double, kEgressClasses> egress_per_gb = kDefaultEgressPerGb;
  double discount = 0;  // already applied to the three prices above
  bool share_idle = false;

  // Capacity the prices apply to (copied from NodeAttributes).
  uint32_t cpus = 0;
  double memory_gib = 0;
  uint32_t gpus = 0;

  // Location: provider "aws", "gcp", "azure" or "" (on-premises/unknown);
  // cloud region (or a configured region name); `zone` is the Electricity
  // Maps grid zone (e.g. "US-MIDA-PJM"), not the topology zone; `country`
  // is ISO 3166-1 alpha-3 when known.
  std::string provider, region, zone, country;
  std::string instance_type;

  double pue = 1.58;
  // Embodied emissions of the whole node, amortised over its lifetime.
  double embodied_kg = 0;
  double lifetime_hours = 35040;
  double embodied_grams_per_hour = 0;

  // Annual intensity for the node's location (or the configured override);
  // IntensityFor() prefers a time-series sample when one applies.
  Intensity annual_intensity;
  bool intensity_overridden = false;

  // Provenance, shown in output: e.g. "opencost-default",
  // "config:node-name:worker-1 (cost.toml:12) total 0.192/h ratio-split";
  // "ccf-provider:aws", "config:pue (cost.toml:3)"; "ccf-vcpu-slice",
  // "teads-server-model".
  std::string price_source, pue_source, embodied_source;
  // Human-readable problems that did not stop accounting (unknown region ->
  // world average, unsplittable price, ...). Callers surface them.
  std::vector<std::string> warnings;

  // cpus x cpu + GiB x ram + gpus x gpu, after discount.
  double hourly_cost() const;
  // $/GB for an agent NetworkClass value (1..5); 0 outside that range.
  double egress_for_network_class(int network_class) const;
};

struct CostConfig;  // config.h
struct CarbonData;  // data.h

// Immutable once loaded: const methods may be called from any thread, and
// copies share the loaded data.
class CostModel {
 public:
  // Loads the data files from `data_dir` (empty = DefaultDataDir()) and the
  // config file at `config_path` (empty = defaults only). Errors name the
  // file and line. Non-fatal problems are in warnings().
  static absl::StatusOr<CostModel> Load(const std::string& config_path,
                                        const std::string& data_dir);
  // As Load, with the config given as text; `config_name` is used in
  // messages and relative paths (intensity_timeseries) resolve against its
  // directory. For tests and for callers that read the file themselves.
  static absl::StatusOr<CostModel> FromText(absl::string_view config_text,
                                            const std::string& config_name,
                                            const std::string& data_dir);

  // Cheap enough to call per report, but meant to be cached per node: it
  // matches rules and resolves the location (a few hash lookups).
  NodeRates RatesFor(const NodeAttributes& node) const;
  // Grid intensity for the node at `unix_time_ns`: the configured override,
  // else the latest time-series sample at or before that time for the
  // node's region or zone, else rates.annual_intensity.
  Intensity IntensityFor(const NodeRates& rates, int64_t unix_time_ns) const;

  // Load-time warnings (e.g. "cost.toml:9: unknown region 'mars-1': world
  // average 472.94 g/kWh (Ember 2024) applies").
  const std::vector<std::string>& warnings() const;
  const std::string& currency() const;
  bool share_idle() const;
  // The world average that unknown locations fall back to.
  Intensity WorldAverage() const;

  CostModel(const CostModel&) = default;
  CostModel& operator=(const CostModel&) = default;
  CostModel(CostModel&&) = default;
  CostModel& operator=(CostModel&&) = default;
  ~CostModel();

 private:
  CostModel(std::shared_ptr<const CostConfig> config,
            std::shared_ptr<const CarbonData> data,
            std::vector<std::string> warnings);

  std::shared_ptr<const CostConfig> config_;
  std::shared_ptr<const CarbonData> data_;
  std::vector<std::string> warnings_;
};

// The installed data directory (<prefix>/share/wattlens) when it exists,
// else the source tree's data/ (set by CMake), so tests and scripts/run.sh
// work from a build tree. WATTLENS_DATA_DIR in the environment wins.
std::string DefaultDataDir();

// OpenCost's split of a node's total hourly price into component prices
// (costmodel.go): ram = total / (gpus*gpu_to_ram + cpus*cpu_to_ram + GiB),
// cpu = ram*cpu_to_ram, gpu = ram*gpu_to_ram, where the ratios come from the
// default component prices. Fails when the node has no capacity.
struct ComponentPrices {
  double cpu_per_core_hour = 0;
  double ram_per_gib_hour = 0;
  double gpu_per_gpu_hour = 0;
};
absl::StatusOr<ComponentPrices> SplitNodePrice(double total_per_hour,
                                               uint32_t cpus, double ram_gib,
                                               uint32_t gpus,
                                               const ComponentPrices& defaults);

}  // namespace wattlens::pricing
