// SPDX-License-Identifier: Apache-2.0
#include "collector/pricing/pricing.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "collector/pricing/config.h"
#include "collector/pricing/csv.h"
#include "collector/pricing/data.h"

#ifndef WATTLENS_INSTALL_DATA_DIR
#define WATTLENS_INSTALL_DATA_DIR "/usr/local/share/wattlens"
#endif
#ifndef WATTLENS_SOURCE_DATA_DIR
#define WATTLENS_SOURCE_DATA_DIR ""
#endif

namespace wattlens::pricing {
namespace {

constexpr double kBytesPerGib = 1024.0 * 1024.0 * 1024.0;

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }
std::string Upper(absl::string_view s) { return absl::AsciiStrToUpper(s); }

const std::string* Label(const NodeAttributes& node,
                         std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = node.labels.find(k);
    if (it != node.labels.end() && !it->second.empty()) return &it->second;
  }
  return nullptr;
}

// Provider and region from spec.providerID:
//   aws:///us-east-1a/i-0abc      -> aws, us-east-1 (AZ minus its letter)
//   gce://project/us-central1-a/n -> gcp, us-central1
//   azure:///subscriptions/...    -> azure, (none)
void FromProviderId(absl::string_view id, std::string* provider,
                    std::string* region) {
  if (absl::StartsWith(id, "aws://")) {
    *provider = "aws";
    std::vector<absl::string_view> parts =
        absl::StrSplit(id.substr(6), '/', absl::SkipEmpty());
    if (parts.size() >= 2) {
      absl::string_view az = parts[0];
      if (az.size() > 1 && absl::ascii_isalpha(az.back()) &&
          absl::ascii_isdigit(az[az.size() - 2])) {
        *region = std::string(az.substr(0, az.size() - 1));
      }
    }
  } else if (absl::StartsWith(id, "gce://")) {
    *provider = "gcp";
    std::vector<absl::string_view> parts =
        absl::StrSplit(id.substr(6), '/', absl::SkipEmpty());
    if (parts.size() >= 3) {
      absl::string_view zone = parts[1];
      size_t dash = zone.rfind('-');
      if (dash != absl::string_view::npos && dash > 0) {
        *region = std::string(zone.substr(0, dash));
      }
    }
  } else if (absl::StartsWith(id, "azure://")) {
    *provider = "azure";
  }
}

// The rules that apply to a node, highest precedence first, then the
// top-level settings.
struct Matched {
  std::vector<const NodeSettings*> settings;
  std::vector<std::string> labels;  // "name:worker-1 (cost.toml:12)"
};

template <typename T>
struct Found {
  const T* value = nullptr;
  std::string where;
};

template <typename T>
Found<T> First(const Matched& m, std::optional<T> NodeSettings::*field,
               const char* key) {
  for (const NodeSettings* s : m.settings) {
    const std::optional<T>& v = s->*field;
    if (v) {
      auto it = s->where.find(key);
      return Found<T>{&*v, it == s->where.end() ? "" : it->second};
    }
  }
  return Found<T>{};
}

std::string Trim(double v) { return absl::StrFormat("%.6g", v); }

}  // namespace

double NodeRates::hourly_cost() const {
  return cpus * cpu_per_core_hour + memory_gib * ram_per_gib_hour +
         gpus * gpu_per_gpu_hour;
}

double NodeRates::egress_for_network_class(int network_class) const {
  if (network_class < 1 || network_class > kEgressClasses) return 0;
  return egress_per_gb[network_class - 1];
}

absl::StatusOr<ComponentPrices> SplitNodePrice(
    double total_per_hour, uint32_t cpus, double ram_gib, uint32_t gpus,
    const ComponentPrices& defaults) {
  if (!(total_per_hour >= 0)) {
    return absl::InvalidArgumentError("negative node price");
  }
  // As OpenCost: ratios of the default prices, 10 and 100 when undefined.
  double cpu_to_ram = 10, gpu_to_ram = 100;
  if (defaults.ram_per_gib_hour > 0) {
    cpu_to_ram = defaults.cpu_per_core_hour / defaults.ram_per_gib_hour;
    gpu_to_ram = defaults.gpu_per_gpu_hour / defaults.ram_per_gib_hour;
  }
  double ram_multiple = gpus * gpu_to_ram + cpus * cpu_to_ram + ram_gib;
  if (!(ram_multiple > 0)) {
    return absl::FailedPreconditionError(
        "cannot split a node price without the node's CPUs or memory");
  }
  ComponentPrices p;
  p.ram_per_gib_hour = total_per_hour / ram_multiple;
  p.cpu_per_core_hour = p.ram_per_gib_hour * cpu_to_ram;
  p.gpu_per_gpu_hour = p.ram_per_gib_hour * gpu_to_ram;
  return p;
}

std::string DefaultDataDir() {
  if (const char* env = std::getenv("WATTLENS_DATA_DIR"); env && *env) {
    return env;
  }
  std::error_code ec;
  std::string installed = WATTLENS_INSTALL_DATA_DIR;
  if (std::filesystem::exists(installed + "/carbon/grid_intensity.csv", ec)) {
    return installed;
  }
  std::string source = WATTLENS_SOURCE_DATA_DIR;
  return source.empty() ? installed : source;
}

CostModel::CostModel(std::shared_ptr<const CostConfig> config,
                     std::shared_ptr<const CarbonData> data,
                     std::vector<std::string> warnings)
    : config_(std::move(config)),
      data_(std::move(data)),
      warnings_(std::move(warnings)) {}

CostModel::~CostModel() = default;

const std::vector<std::string>& CostModel::warnings() const {
  return warnings_;
}
const std::string& CostModel::currency() const { return config_->currency; }
bool CostModel::share_idle() const { return config_->share_idle; }

Intensity CostModel::WorldAverage() const {
  return Intensity{data_->world_g_per_kwh,
                   absl::StrCat("world:", data_->world_year), true};
}

absl::StatusOr<CostModel> CostModel::Load(const std::string& config_path,
                                          const std::string& data_dir) {
  std::string text;
  if (!config_path.empty()) {
    absl::StatusOr<std::string> read = ReadTextFile(config_path);
    if (!read.ok()) {
      return absl::Status(
          read.status().code(),
          absl::StrCat("cost config: ", read.status().message()));
    }
    text = *std::move(read);
  }
  return FromText(text, config_path, data_dir);
}

namespace {

// Whether the data knows `region` as a cloud region, zone or country.
bool KnownLocation(const CarbonData& d, const std::string& region) {
  return d.regions.contains(Lower(region)) ||
         d.em_zone_by_upper.contains(Upper(region)) ||
         d.ember.contains(Upper(region));
}

std::string WorldNote(const CarbonData& d) {
  return absl::StrCat("world average ", Trim(d.world_g_per_kwh),
                      " g/kWh (Ember ", d.world_year, ") applies");
}

absl::Status CheckSettingsLocation(const CarbonData& d, const NodeSettings& s,
                                   const CostConfig& c,
                                   std::vector<std::string>* warnings) {
  if (s.region && !s.zone && !s.country && !s.grid_intensity &&
      !KnownLocation(d, *s.region)) {
    bool has_rule = false;
    for (const RegionRule& r : c.regions) {
      if (r.name == Lower(*s.region)) has_rule = true;
    }
    if (!has_rule) {
      warnings->push_back(absl::StrCat(s.where.at("region"),
                                       ": unknown region '", *s.region,
                                       "': ", WorldNote(d)));
    }
  }
  if (s.zone && !d.em_zone_by_upper.contains(Upper(*s.zone))) {
    warnings->push_back(absl::StrCat(
        s.where.at("zone"), ": unknown Electricity Maps zone '", *s.zone, "'"));
  }
  if (s.country && !d.ember.contains(Upper(*s.country))) {
    warnings->push_back(absl::StrCat(s.where.at("country"),
                                     ": no Ember value for country '",
                                     *s.country, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CostModel> CostModel::FromText(absl::string_view config_text,
                                              const std::string& config_name,
                                              const std::string& data_dir) {
  std::string name = config_name.empty() ? "cost config" : config_name;
  absl::StatusOr<CostConfig> parsed = ParseCostConfig(config_text, name);
  if (!parsed.ok()) return parsed.status();
  auto config = std::make_shared<CostConfig>(*std::move(parsed));
  absl::StatusOr<CarbonData> loaded =
      LoadCarbonData(data_dir.empty() ? DefaultDataDir() : data_dir);
  if (!loaded.ok()) return loaded.status();
  auto data = std::make_shared<CarbonData>(*std::move(loaded));
  std::vector<std::string> warnings;

  if (!data->currencies.contains(config->currency)) {
    return absl::InvalidArgumentError(absl::StrCat(
        config->currency_where, ": unknown currency '", config->currency,
        "' (an ISO 4217 code such as USD, EUR)"));
  }
  if (config->intensity_year) {
    bool any = false;
    for (const auto& [zone, years] : data->em_zones) {
      if (years.contains(*config->intensity_year)) any = true;
    }
    if (!any) {
      return absl::InvalidArgumentError(absl::StrCat(
          config->intensity_year_where, ": no Electricity Maps data for year ",
          *config->intensity_year));
    }
  }
  absl::Status s =
      CheckSettingsLocation(*data, config->defaults, *config, &warnings);
  if (!s.ok()) return s;
  for (const NodeRule& rule : config->rules) {
    s = CheckSettingsLocation(*data, rule.settings, *config, &warnings);
    if (!s.ok()) return s;
  }
  for (const RegionRule& r : config->regions) {
    if (!r.zone && !r.country && !r.grid_intensity &&
        !KnownLocation(*data, r.name)) {
      warnings.push_back(absl::StrCat(r.where, ": unknown region '", r.name,
                                      "' and no zone, country or "
                                      "grid_intensity given: ",
                                      WorldNote(*data)));
    }
  }
  if (!config->intensity_timeseries.empty()) {
    std::filesystem::path path(config->intensity_timeseries);
    if (path.is_relative() && !config_name.empty()) {
      path = std::filesystem::path(config_name).parent_path() / path;
    }
    absl::StatusOr<std::string> text = ReadTextFile(path.string());
    if (!text.ok()) {
      return absl::Status(
          text.status().code(),
          absl::StrCat(config->intensity_timeseries_where,
                       ": intensity_timeseries: ", text.status().message()));
    }
    absl::StatusOr<absl::flat_hash_map<std::string, IntensitySeries>> series =
        ParseIntensityTimeSeries(*text, path.string());
    if (!series.ok()) return series.status();
    config->intensity_timeseries = path.string();
    config->timeseries = *std::move(series);
  }
  return CostModel(std::move(config), std::move(data), std::move(warnings));
}

NodeRates CostModel::RatesFor(const NodeAttributes& node) const {
  const CostConfig& c = *config_;
  const CarbonData& d = *data_;
  NodeRates r;
  r.currency = c.currency;
  r.cpus = node.cpus;
  r.memory_gib = static_cast<double>(node.memory_bytes) / kBytesPerGib;
  r.gpus = node.gpus;
  r.share_idle = c.share_idle;
  r.egress_per_gb = c.egress_per_gb;
  if (const std::string* it =
          Label(node, {"node.kubernetes.io/instance-type",
                       "beta.kubernetes.io/instance-type"})) {
    r.instance_type = *it;
  }

  // Rules in precedence order: name > selector (file order) > instance type.
  Matched m;
  for (const NodeRule& rule : c.rules) {
    if (rule.kind == NodeRule::Kind::kName && rule.match == node.name) {
      m.settings.push_back(&rule.settings);
      m.labels.push_back(
          absl::StrCat("name:", rule.match, " (", rule.where, ")"));
    }
  }
  for (const NodeRule& rule : c.rules) {
    if (rule.kind == NodeRule::Kind::kSelector &&
        rule.selector.Matches(node.labels)) {
      m.settings.push_back(&rule.settings);
      m.labels.push_back(
          absl::StrCat("selector:", rule.match, " (", rule.where, ")"));
    }
  }
  for (const NodeRule& rule : c.rules) {
    if (rule.kind == NodeRule::Kind::kInstanceType &&
        !r.instance_type.empty() && rule.match == r.instance_type) {
      m.settings.push_back(&rule.settings);
      m.labels.push_back(
          absl::StrCat("instance_type:", rule.match, " (", rule.where, ")"));
    }
  }
  const size_t rule_count = m.settings.size();

  // ---- prices ----
  const ComponentPrices defaults{c.cpu_per_core_hour, c.ram_per_gib_hour,
                                 c.gpu_per_gpu_hour};
  ComponentPrices prices = defaults;
  r.price_source = c.prices_configured
                       ? absl::StrCat("config:default (", c.prices_where, ")")
                       : "opencost-default";
  for (size_t i = 0; i < rule_count; ++i) {
    const NodeSettings& s = *m.settings[i];
    if (!s.HasPrice()) continue;
    r.price_source = absl::StrCat("config:", m.labels[i]);
    if (s.price_per_hour) {
      absl::StatusOr<ComponentPrices> split = SplitNodePrice(
          *s.price_per_hour, node.cpus, r.memory_gib, node.gpus, defaults);
      if (split.ok()) {
        prices = *split;
        absl::StrAppend(&r.price_source, " total ", Trim(*s.price_per_hour),
                        "/h ratio-split");
      } else {
        r.warnings.push_back(absl::StrCat("node ", node.name, ": ", m.labels[i],
                                          ": ", split.status().message(),
                                          "; default prices apply"));
        r.price_source = "opencost-default";
        if (c.prices_configured) {
          r.price_source =
              absl::StrCat("config:default (", c.prices_where, ")");
        }
      }
    } else {
      if (s.cpu_per_core_hour) prices.cpu_per_core_hour = *s.cpu_per_core_hour;
      if (s.ram_per_gib_hour) prices.ram_per_gib_hour = *s.ram_per_gib_hour;
      if (s.gpu_per_gpu_hour) prices.gpu_per_gpu_hour = *s.gpu_per_gpu_hour;
    }
    break;
  }
  Found<double> discount = First(m, &NodeSettings::discount, "discount");
  r.discount = discount.value ? *discount.value : c.discount;
  if (r.discount > 0)
    absl::StrAppend(&r.price_source, " discount ", Trim(r.discount));
  r.cpu_per_core_hour = prices.cpu_per_core_hour * (1 - r.discount);
  r.ram_per_gib_hour = prices.ram_per_gib_hour * (1 - r.discount);
  r.gpu_per_gpu_hour = prices.gpu_per_gpu_hour * (1 - r.discount);
  Found<double> energy =
      First(m, &NodeSettings::energy_per_kwh, "energy_per_kwh");
  r.energy_per_kwh = energy.value ? *energy.value : c.energy_per_kwh;

  // From here on the top-level settings count too (below the rules).
  m.settings.push_back(&c.defaults);

  // ---- location ----
  std::string id_provider, id_region;
  FromProviderId(node.provider_id, &id_provider, &id_region);
  Found<std::string> provider = First(m, &NodeSettings::provider, "provider");
  if (provider.value) r.provider = *provider.value;
  // A provider from a rule wins; a top-level one only fills in for nodes
  // whose providerID does not say.
  bool provider_from_rule = false;
  for (size_t i = 0; i < rule_count; ++i) {
    if (m.settings[i]->provider) provider_from_rule = true;
  }
  if (!provider_from_rule && !id_provider.empty()) r.provider = id_provider;

  Found<std::string> region_rule_value;
  for (size_t i = 0; i < rule_count; ++i) {
    if (m.settings[i]->region) {
      region_rule_value.value = &*m.settings[i]->region;
      break;
    }
  }
  if (region_rule_value.value) {
    r.region = *region_rule_value.value;
  } else if (const std::string* l =
                 Label(node, {"topology.kubernetes.io/region",
                              "failure-domain.beta.kubernetes.io/region"})) {
    r.region = *l;
  } else if (!id_region.empty()) {
    r.region = id_region;
  } else if (c.defaults.region) {
    r.region = *c.defaults.region;
  }
  const std::string region_lower = Lower(r.region);

  const RegionRule* region_rule = nullptr;
  if (!r.region.empty()) {
    for (const RegionRule& rr : c.regions) {
      if (rr.name == region_lower &&
          (!rr.provider || *rr.provider == r.provider)) {
        region_rule = &rr;
        break;
      }
    }
  }
  const RegionInfo* info = nullptr;
  if (!r.region.empty()) {
    auto it = d.regions.find(r.provider.empty()
                                 ? region_lower
                                 : absl::StrCat(r.provider, "/", region_lower));
    if (it == d.regions.end() && !r.provider.empty()) {
      it = d.regions.find(region_lower);
    }
    if (it != d.regions.end()) info = &it->second;
  }
  if (r.provider.empty() && info != nullptr && !provider.value) {
    r.provider = info->provider;
  }

  // Config (rules, [[regions]], top level) before the shipped tables.
  auto pick =
      [&](std::optional<std::string> NodeSettings::*field,
          const std::optional<std::string>& from_region) -> std::string {
    for (size_t i = 0; i < rule_count; ++i) {
      if (m.settings[i]->*field) return *(m.settings[i]->*field);
    }
    if (from_region) return *from_region;
    if (c.defaults.*field) return *(c.defaults.*field);
    return "";
  };
  r.zone =
      pick(&NodeSettings::zone, region_rule ? region_rule->zone : std::nullopt);
  r.country = Upper(pick(&NodeSettings::country,
                         region_rule ? region_rule->country : std::nullopt));
  const bool located_by_config = !r.zone.empty() || !r.country.empty();
  if (!located_by_config && info != nullptr) {
    r.zone = info->zone;
    r.country = info->country;
  }
  if (!located_by_config && info == nullptr && !r.region.empty()) {
    // A configured region may itself be a grid zone or a country code.
    auto z = d.em_zone_by_upper.find(Upper(r.region));
    if (z != d.em_zone_by_upper.end()) r.zone = z->second;
    if (d.ember.contains(Upper(r.region)) && r.region.size() <= 3) {
      r.country = Upper(r.region);
    }
  }
  if (!r.zone.empty()) {
    auto z = d.em_zone_by_upper.find(Upper(r.zone));
    if (z != d.em_zone_by_upper.end()) r.zone = z->second;
  }

  // ---- annual intensity ----
  std::optional<double> override_g;
  for (size_t i = 0; i < rule_count && !override_g; ++i) {
    override_g = m.settings[i]->grid_intensity;
  }
  if (!override_g && region_rule) override_g = region_rule->grid_intensity;
  if (!override_g) override_g = c.defaults.grid_intensity;
  if (override_g) {
    r.annual_intensity = Intensity{*override_g, "override", false};
    r.intensity_overridden = true;
  } else {
    auto from_zone = [&]() -> std::optional<Intensity> {
      if (r.zone.empty()) return std::nullopt;
      auto z = d.em_zones.find(r.zone);
      if (z == d.em_zones.end() || z->second.empty()) return std::nullopt;
      auto y = z->second.end();
      --y;  // latest
      if (c.intensity_year) {
        auto want = z->second.find(*c.intensity_year);
        if (want != z->second.end()) y = want;
      }
      return Intensity{y->second,
                       absl::StrCat("em-zone:", r.zone, ":", y->first), false};
    };
    auto from_country = [&]() -> std::optional<Intensity> {
      if (r.country.empty()) return std::nullopt;
      auto e = d.ember.find(r.country);
      if (e == d.ember.end()) return std::nullopt;
      return Intensity{
          e->second.second,
          absl::StrCat("ember-country:", r.country, ":", e->second.first),
          false};
    };
    std::optional<Intensity> got;
    if (c.intensity_dataset == "ember") {
      got = from_country();
      if (!got) got = from_zone();
    } else {
      got = from_zone();
      if (!got) got = from_country();
    }
    if (got) {
      r.annual_intensity = *std::move(got);
    } else {
      r.annual_intensity = WorldAverage();
      if (r.region.empty() && r.zone.empty() && r.country.empty()) {
        r.warnings.push_back(absl::StrCat(
            "node ", node.name,
            ": no region (label topology.kubernetes.io/region or config): ",
            WorldNote(d)));
      } else if (!r.region.empty() && info == nullptr &&
                 !KnownLocation(d, r.region) && r.zone.empty() &&
                 r.country.empty()) {
        r.warnings.push_back(absl::StrCat("node ", node.name,
                                          ": unknown region '", r.region,
                                          "': ", WorldNote(d)));
      } else {
        r.warnings.push_back(absl::StrCat(
            "node ", node.name, ": no grid intensity for region '", r.region,
            "' zone '", r.zone, "' country '", r.country, "': ", WorldNote(d)));
      }
    }
  }

  // ---- PUE ----
  Found<double> pue;
  for (size_t i = 0; i < rule_count && !pue.value; ++i) {
    if (m.settings[i]->pue) {
      pue.value = &*m.settings[i]->pue;
      pue.where = m.settings[i]->where.at("pue");
    }
  }
  if (!pue.value && region_rule && region_rule->pue) {
    pue.value = &*region_rule->pue;
    pue.where = region_rule->where;
  }
  if (!pue.value && c.defaults.pue) {
    pue.value = &*c.defaults.pue;
    pue.where = c.defaults.where.at("pue");
  }
  if (pue.value) {
    r.pue = *pue.value;
    r.pue_source = absl::StrCat("config (", pue.where, ")");
  } else {
    std::string p = r.provider.empty() ? "unknown" : r.provider;
    for (const std::string& key :
         {absl::StrCat(p, "/", region_lower), absl::StrCat(p, "/*"),
          std::string("unknown/*")}) {
      auto it = d.pue.find(key);
      if (it != d.pue.end()) {
        r.pue = it->second;
        r.pue_source = absl::StrCat("ccf:", key);
        break;
      }
    }
  }

  // ---- embodied ----
  const EmbodiedDefaults& e = d.embodied;
  Found<double> lifetime =
      First(m, &NodeSettings::lifetime_hours, "lifetime_hours");
  r.lifetime_hours = lifetime.value ? *lifetime.value : e.lifetime_hours;
  Found<double> kg = First(m, &NodeSettings::embodied_kg, "embodied_kg");
  if (kg.value) {
    r.embodied_kg = *kg.value;
    r.embodied_source = absl::StrCat("config (", kg.where, ")");
  } else {
    Found<std::string> model =
        First(m, &NodeSettings::embodied_model, "embodied_model");
    std::string which =
        model.value ? *model.value : (r.provider.empty() ? "server" : "vcpu");
    if (which == "vcpu") {
      double per_vcpu = e.vcpu_host_kg / e.vcpu_host_vcpus;
      r.embodied_kg = node.cpus * per_vcpu + node.gpus * e.gpu_kg;
      r.embodied_source =
          absl::StrCat("ccf-vcpu-slice ", Trim(per_vcpu), " kg/vCPU");
      if (node.cpus == 0) {
        r.warnings.push_back(absl::StrCat(
            "node ", node.name, ": CPU count unknown; embodied emissions 0"));
      }
    } else {
      Found<uint32_t> sockets = First(m, &NodeSettings::sockets, "sockets");
      Found<uint32_t> hdds = First(m, &NodeSettings::hdds, "hdds");
      Found<uint32_t> ssds = First(m, &NodeSettings::ssds, "ssds");
      uint32_t n_sockets = sockets.value ? *sockets.value : 1;
      r.embodied_kg =
          e.base_kg +
          e.dram_kg_per_gb * std::max(0.0, r.memory_gib - e.dram_base_gb) +
          e.extra_socket_kg * (n_sockets - 1) +
          e.hdd_kg * (hdds.value ? *hdds.value : 0) +
          e.ssd_kg * (ssds.value ? *ssds.value : 0) + e.gpu_kg * node.gpus;
      r.embodied_source = "teads-server-model";
    }
  }
  r.embodied_grams_per_hour = r.embodied_kg * 1000.0 / r.lifetime_hours;
  return r;
}

Intensity CostModel::IntensityFor(const NodeRates& rates,
                                  int64_t unix_time_ns) const {
  if (rates.intensity_overridden || config_->timeseries.empty()) {
    return rates.annual_intensity;
  }
  for (const std::string* key : {&rates.region, &rates.zone, &rates.country}) {
    if (key->empty()) continue;
    std::string lower = Lower(*key);
    auto it = config_->timeseries.find(lower);
    if (it == config_->timeseries.end()) continue;
    const auto& samples = it->second.samples;
    // Latest sample at or before the time.
    auto after =
        std::upper_bound(samples.begin(), samples.end(), unix_time_ns,
                         [](int64_t t, const std::pair<int64_t, double>& s) {
                           return t < s.first;
                         });
    if (after == samples.begin()) continue;
    --after;
    return Intensity{after->second, absl::StrCat("timeseries:", lower), false};
  }
  return rates.annual_intensity;
}

}  // namespace wattlens::pricing
