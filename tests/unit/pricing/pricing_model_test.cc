// SPDX-License-Identifier: Apache-2.0
// CostModel against the shipped data (data/) and hand-computed values from
// docs/cost-carbon.md and the research notes (OpenCost ratio split, CCF PUE
// and embodied model, @tgwf/co2 0.19.0 intensities).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "collector/pricing/pricing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::pricing {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr int64_t kSec = 1'000'000'000;

CostModel MustLoad(const std::string& text,
                   const std::string& name = "cost.toml") {
  absl::StatusOr<CostModel> m = CostModel::FromText(text, name, "");
  EXPECT_TRUE(m.ok()) << m.status();
  if (!m.ok()) std::abort();
  return *std::move(m);
}

NodeAttributes Node(std::string name, uint32_t cpus = 4, uint64_t gib = 16) {
  NodeAttributes n;
  n.name = std::move(name);
  n.cpus = cpus;
  n.memory_bytes = gib * kGiB;
  return n;
}

NodeAttributes AwsNode(std::string name, const std::string& region) {
  NodeAttributes n = Node(std::move(name));
  n.labels["topology.kubernetes.io/region"] = region;
  n.provider_id = "aws:///" + region + "a/i-0123456789abcdef0";
  return n;
}

bool AnyContains(const std::vector<std::string>& v, const std::string& s) {
  for (const std::string& x : v) {
    if (x.find(s) != std::string::npos) return true;
  }
  return false;
}

// OpenCost costmodel.go ratio split; research worked example: $0.192/h,
// 4 vCPU, 16 GiB -> RAM $0.0041882/GiB-h, CPU $0.031247/vCPU-h.
TEST(PricingSplit, OpenCostWorkedExample) {
  absl::StatusOr<ComponentPrices> p =
      SplitNodePrice(0.192, 4, 16.0, 0,
                     {kOpenCostCpuPerCoreHour, kOpenCostRamPerGibHour,
                      kOpenCostGpuPerGpuHour});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_NEAR(p->ram_per_gib_hour, 0.0041882, 5e-8);
  EXPECT_NEAR(p->cpu_per_core_hour, 0.031247, 5e-7);
  // cpu:ram 7.4607 and gpu:ram 224.2 from the defaults.
  EXPECT_NEAR(p->cpu_per_core_hour / p->ram_per_gib_hour, 7.4607, 1e-4);
  EXPECT_NEAR(p->gpu_per_gpu_hour / p->ram_per_gib_hour, 224.2, 0.05);
  EXPECT_NEAR(4 * p->cpu_per_core_hour + 16 * p->ram_per_gib_hour, 0.192,
              1e-12);
}

TEST(PricingSplit, WithGpusSumsToTotal) {
  absl::StatusOr<ComponentPrices> p =
      SplitNodePrice(3.06, 8, 61.0, 1,
                     {kOpenCostCpuPerCoreHour, kOpenCostRamPerGibHour,
                      kOpenCostGpuPerGpuHour});
  ASSERT_TRUE(p.ok());
  EXPECT_NEAR(
      8 * p->cpu_per_core_hour + 61 * p->ram_per_gib_hour + p->gpu_per_gpu_hour,
      3.06, 1e-12);
}

// Property: over random node shapes, prices and discounts, a split total
// is recovered exactly by hourly_cost() (the node price x time invariant the
// collector's idle bucket relies on).
TEST(PricingSplit, HourlyCostEqualsDiscountedTotal) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    double total = (rng() % 100000) / 1000.0;
    double discount = (rng() % 100) / 100.0;
    uint32_t cpus = 1 + rng() % 128;
    uint64_t gib = 1 + rng() % 1024;
    uint32_t gpus = rng() % 9;
    std::string text =
        absl::StrCat("[[node]]\nname = \"n\"\nprice_per_hour = ", total,
                     "\ndiscount = ", discount, "\n");
    CostModel m = MustLoad(text);
    NodeAttributes n = Node("n", cpus, gib);
    n.gpus = gpus;
    NodeRates r = m.RatesFor(n);
    EXPECT_NEAR(r.hourly_cost(), total * (1 - discount), 1e-9 * (1 + total))
        << text;
  }
}

TEST(PricingSplit, NoCapacityIsAnError) {
  EXPECT_FALSE(SplitNodePrice(1.0, 0, 0, 0, {0.03, 0.004, 0.95}).ok());
}

TEST(PricingModel, RatioSplitThroughConfig) {
  CostModel m = MustLoad(R"(
[[node]]
name = "m5-like"
price_per_hour = 0.192
)");
  NodeRates r = m.RatesFor(Node("m5-like", 4, 16));
  EXPECT_NEAR(r.ram_per_gib_hour, 0.0041882, 5e-8);
  EXPECT_NEAR(r.cpu_per_core_hour, 0.031247, 5e-7);
  EXPECT_NEAR(r.hourly_cost(), 0.192, 1e-12);
  EXPECT_THAT(r.price_source, HasSubstr("name:m5-like (cost.toml:2)"));
  EXPECT_THAT(r.price_source, HasSubstr("ratio-split"));
}

TEST(PricingModel, DefaultsWithoutConfig) {
  absl::StatusOr<CostModel> loaded = CostModel::Load("", "");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  NodeRates r = loaded->RatesFor(Node("bare", 2, 8));
  EXPECT_EQ(r.currency, "USD");
  EXPECT_EQ(r.cpu_per_core_hour, 0.031611);
  EXPECT_EQ(r.ram_per_gib_hour, 0.004237);
  EXPECT_EQ(r.gpu_per_gpu_hour, 0.95);
  EXPECT_EQ(r.energy_per_kwh, 0);
  EXPECT_EQ(r.price_source, "opencost-default");
  EXPECT_FALSE(r.share_idle);
  EXPECT_NEAR(r.hourly_cost(), 2 * 0.031611 + 8 * 0.004237, 1e-12);
  EXPECT_EQ(r.egress_per_gb, (std::array<double, 5>{0, 0, 0.01, 0.12, 0.12}));
  EXPECT_EQ(r.egress_for_network_class(4), 0.12);  // NETWORK_CLASS_INTERNET
  EXPECT_EQ(r.egress_for_network_class(0), 0);
  EXPECT_EQ(r.egress_for_network_class(6), 0);
  // Unknown provider: CCF on-premises PUE; no region: world average.
  EXPECT_EQ(r.provider, "");
  EXPECT_EQ(r.pue, 1.58);
  EXPECT_EQ(r.pue_source, "ccf:unknown/*");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 472.94);
  EXPECT_EQ(r.annual_intensity.source, "world:2024");
  EXPECT_TRUE(r.annual_intensity.fallback);
  EXPECT_TRUE(AnyContains(r.warnings, "node bare: no region"));
  // On-premises server model: base 1000 kg (8 GiB <= 16 GiB, 1 socket).
  EXPECT_EQ(r.embodied_source, "teads-server-model");
  EXPECT_NEAR(r.embodied_kg, 1000, 1e-9);
  EXPECT_NEAR(r.embodied_grams_per_hour, 1e6 / 35040, 1e-9);
  EXPECT_TRUE(loaded->warnings().empty());
}

// name > label selector > instance type > default, each only for the nodes
// it matches.
TEST(PricingModel, RulePrecedence) {
  CostModel m = MustLoad(R"(
cpu_per_core_hour = 0.02
[[node]]
instance_type = "m5.xlarge"
cpu_per_core_hour = 0.04
[[node]]
selector = "pool=batch,node.kubernetes.io/lifecycle!=on-demand"
cpu_per_core_hour = 0.03
[[node]]
name = "special"
cpu_per_core_hour = 0.05
)");
  NodeAttributes n = Node("special");
  n.labels = {{"pool", "batch"},
              {"node.kubernetes.io/instance-type", "m5.xlarge"}};
  EXPECT_EQ(m.RatesFor(n).cpu_per_core_hour, 0.05);
  EXPECT_THAT(m.RatesFor(n).price_source, HasSubstr("name:special"));
  n.name = "other";
  EXPECT_EQ(m.RatesFor(n).cpu_per_core_hour, 0.03);
  EXPECT_THAT(m.RatesFor(n).price_source,
              HasSubstr("selector:pool=batch,node.kubernetes.io/lifecycle!="
                        "on-demand (cost.toml:6)"));
  n.labels["node.kubernetes.io/lifecycle"] = "on-demand";  // selector fails
  EXPECT_EQ(m.RatesFor(n).cpu_per_core_hour, 0.04);
  n.labels.erase("node.kubernetes.io/instance-type");
  EXPECT_EQ(m.RatesFor(n).cpu_per_core_hour, 0.02);
  EXPECT_THAT(m.RatesFor(n).price_source,
              HasSubstr("config:default (cost.toml:2)"));
  // Component prices a rule does not give come from the defaults.
  EXPECT_EQ(m.RatesFor(n).ram_per_gib_hour, kOpenCostRamPerGibHour);
}

TEST(PricingModel, DiscountCurrencyEnergyEgress) {
  CostModel m = MustLoad(R"(
currency = "EUR"
discount = 0.1
energy_per_kwh = 0.25
share_idle = true
[egress_per_gb]
internet = 0.09
private = 0.02
[[node]]
name = "spot"
discount = 0.7
)");
  NodeRates spot = m.RatesFor(Node("spot"));
  NodeRates other = m.RatesFor(Node("other"));
  EXPECT_EQ(spot.currency, "EUR");
  EXPECT_NEAR(spot.cpu_per_core_hour, 0.031611 * 0.3, 1e-15);
  EXPECT_NEAR(other.cpu_per_core_hour, 0.031611 * 0.9, 1e-15);
  EXPECT_NEAR(other.gpu_per_gpu_hour, 0.95 * 0.9, 1e-15);
  EXPECT_EQ(other.energy_per_kwh, 0.25);
  EXPECT_TRUE(other.share_idle);
  EXPECT_TRUE(m.share_idle());
  EXPECT_EQ(other.egress_per_gb,
            (std::array<double, 5>{0, 0, 0.02, 0.09, 0.12}));
}

// AWS us-east-1 -> US-MIDA-PJM (CCF), Electricity Maps 2025: 418 g/kWh.
TEST(PricingModel, AwsRegionToZoneToIntensity) {
  CostModel m = MustLoad("");
  NodeRates r = m.RatesFor(AwsNode("a", "us-east-1"));
  EXPECT_EQ(r.provider, "aws");
  EXPECT_EQ(r.region, "us-east-1");
  EXPECT_EQ(r.zone, "US-MIDA-PJM");
  EXPECT_EQ(r.country, "USA");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 418);
  EXPECT_EQ(r.annual_intensity.source, "em-zone:US-MIDA-PJM:2025");
  EXPECT_FALSE(r.annual_intensity.fallback);
  EXPECT_EQ(r.pue, 1.135);
  EXPECT_EQ(r.pue_source, "ccf:aws/*");
  EXPECT_TRUE(r.warnings.empty());
  // A VM: CCF linear vCPU slice of an m5.metal-like host, 16.78 kg/vCPU,
  // 0.479 g per vCPU-hour.
  EXPECT_EQ(r.embodied_source.rfind("ccf-vcpu-slice", 0), 0u);
  EXPECT_NEAR(r.embodied_kg, 4 * 1610.79 / 96, 1e-9);
  EXPECT_NEAR(r.embodied_grams_per_hour / 4, 0.479, 5e-4);
  // Without the label the region comes from the providerID's zone.
  NodeAttributes n = AwsNode("b", "eu-west-3");
  n.labels.clear();
  r = m.RatesFor(n);
  EXPECT_EQ(r.region, "eu-west-3");
  EXPECT_EQ(r.annual_intensity.source, "em-zone:FR:2025");
}

TEST(PricingModel, OtherProvidersAndYears) {
  CostModel m = MustLoad("intensity_year = 2023\n");
  NodeAttributes g = Node("g");
  g.provider_id = "gce://my-project/us-central1-b/g";
  NodeRates r = m.RatesFor(g);
  EXPECT_EQ(r.provider, "gcp");
  EXPECT_EQ(r.region, "us-central1");
  EXPECT_EQ(r.zone, "US-MIDW-MISO");
  EXPECT_EQ(r.annual_intensity.source, "em-zone:US-MIDW-MISO:2023");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 503);
  EXPECT_EQ(r.pue, 1.11);  // CCF GCP trailing-twelve-month for us-central1
  NodeAttributes az = Node("z");
  az.provider_id =
      "azure:///subscriptions/x/resourceGroups/y/providers/"
      "Microsoft.Compute/virtualMachineScaleSets/s/virtualMachines/0";
  az.labels["topology.kubernetes.io/region"] = "EastUS";
  r = m.RatesFor(az);
  EXPECT_EQ(r.provider, "azure");
  EXPECT_EQ(r.zone, "US-MIDA-PJM");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 401);
  EXPECT_EQ(r.pue, 1.185);
  // A region CCF has no zone for: the country's Ember value.
  r = m.RatesFor(AwsNode("bh", "me-south-1"));
  EXPECT_EQ(r.zone, "");
  EXPECT_EQ(r.annual_intensity.source.rfind("ember-country:BHR:", 0), 0u);
}

// Ember 2024 Germany 342.06 g/kWh (@tgwf/co2 0.19.0 average-intensities).
TEST(PricingModel, EmberCountry) {
  CostModel m = MustLoad(R"(
[[node]]
name = "onprem-de"
country = "DEU"
[[node]]
name = "onprem-de2"
region = "DE"
)");
  NodeRates r = m.RatesFor(Node("onprem-de"));
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 342.06);
  EXPECT_EQ(r.annual_intensity.source, "ember-country:DEU:2024");
  // "DE" is both an Electricity Maps zone and an alpha-2 code; zone first.
  r = m.RatesFor(Node("onprem-de2"));
  EXPECT_EQ(r.annual_intensity.source, "em-zone:DE:2025");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 342);
  CostModel ember = MustLoad("intensity_dataset = \"ember\"\n");
  r = ember.RatesFor(AwsNode("f", "eu-central-1"));
  EXPECT_EQ(r.annual_intensity.source, "ember-country:DEU:2024");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 342.06);
}

TEST(PricingModel, UnknownRegionFallsBackToWorldWithWarning) {
  CostModel m = MustLoad("");
  NodeRates r = m.RatesFor(AwsNode("mars", "mars-north-1"));
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 472.94);
  EXPECT_TRUE(r.annual_intensity.fallback);
  EXPECT_EQ(r.annual_intensity.source, "world:2024");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0],
            "node mars: unknown region 'mars-north-1': world average 472.94 "
            "g/kWh (Ember 2024) applies");
  // Still AWS: the provider's PUE applies.
  EXPECT_EQ(r.pue, 1.135);

  // In the config it is a load-time warning naming file:line, not an error.
  CostModel c = MustLoad("# on-prem\nregion = \"mars-1\"\n");
  ASSERT_EQ(c.warnings().size(), 1u);
  EXPECT_EQ(c.warnings()[0],
            "cost.toml:2: unknown region 'mars-1': world average 472.94 g/kWh "
            "(Ember 2024) applies");
  r = c.RatesFor(Node("x"));
  EXPECT_TRUE(r.annual_intensity.fallback);
  EXPECT_TRUE(AnyContains(r.warnings, "unknown region 'mars-1'"));
}

TEST(PricingModel, RegionRuleAndOverrides) {
  CostModel m = MustLoad(R"(
region = "dc-berlin"
[[regions]]
name = "dc-berlin"
zone = "DE"
pue = 1.3
[[node]]
name = "green"
grid_intensity = 12.5
pue = 1.05
embodied_kg = 2000
lifetime_hours = 52560
)");
  EXPECT_TRUE(m.warnings().empty());
  NodeRates r = m.RatesFor(Node("plain"));
  EXPECT_EQ(r.region, "dc-berlin");
  EXPECT_EQ(r.zone, "DE");
  EXPECT_EQ(r.annual_intensity.source, "em-zone:DE:2025");
  EXPECT_EQ(r.pue, 1.3);
  EXPECT_EQ(r.pue_source, "config (cost.toml:3)");
  r = m.RatesFor(Node("green"));
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 12.5);
  EXPECT_EQ(r.annual_intensity.source, "override");
  EXPECT_TRUE(r.intensity_overridden);
  EXPECT_EQ(r.pue, 1.05);
  EXPECT_EQ(r.embodied_kg, 2000);
  EXPECT_NEAR(r.embodied_grams_per_hour, 2e6 / 52560, 1e-9);
}

TEST(PricingModel, ServerEmbodiedModel) {
  CostModel m = MustLoad(R"(
[[node]]
name = "gpu-box"
sockets = 2
ssds = 1
hdds = 2
)");
  NodeAttributes n = Node("gpu-box", 64, 384);
  n.gpus = 2;
  NodeRates r = m.RatesFor(n);
  // 1000 + (384-16) x 533/384 + 100 + 2 x 50 + 100 + 2 x 150.
  EXPECT_NEAR(r.embodied_kg, 1000 + 368 * 533.0 / 384 + 100 + 100 + 100 + 300,
              1e-6);
  // An m5.metal-like host (384 GB, 2 sockets): CCF's 1610.79 kg.
  NodeRates m5 = m.RatesFor(Node("m5-metal", 96, 384));
  (void)m5;
  CostModel two = MustLoad("sockets = 2\n");
  EXPECT_NEAR(two.RatesFor(Node("m5", 96, 384)).embodied_kg, 1610.79, 0.005);
}

class PricingTimeSeriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "pricing_ts";
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "grid.csv") << "# hourly values\n"
                                        "time,region_or_zone,g_per_kwh\n"
                                        "1700003600,us-east-1,300\n"
                                        "1700000000,us-east-1,250.5\n"
                                        "2023-11-14T22:13:20Z,DE,100\n";
  }
  std::filesystem::path dir_;
};

TEST_F(PricingTimeSeriesTest, LatestSampleAtOrBeforeTime) {
  std::string config = (dir_ / "cost.toml").string();
  absl::StatusOr<CostModel> m =
      CostModel::FromText("intensity_timeseries = \"grid.csv\"\n", config, "");
  ASSERT_TRUE(m.ok()) << m.status();
  NodeRates r = m->RatesFor(AwsNode("a", "us-east-1"));
  Intensity before = m->IntensityFor(r, 1699999999 * kSec);
  EXPECT_EQ(before.source, "em-zone:US-MIDA-PJM:2025");  // annual
  Intensity first = m->IntensityFor(r, 1700000000 * kSec);
  EXPECT_EQ(first.grams_per_kwh, 250.5);
  EXPECT_EQ(first.source, "timeseries:us-east-1");
  EXPECT_EQ(m->IntensityFor(r, 1700003599 * kSec).grams_per_kwh, 250.5);
  EXPECT_EQ(m->IntensityFor(r, 1700003600 * kSec).grams_per_kwh, 300);
  EXPECT_EQ(m->IntensityFor(r, 1800000000 * kSec).grams_per_kwh, 300);
  // Keyed by zone too (RFC 3339 time = 1700000000).
  NodeRates de = m->RatesFor(AwsNode("f", "eu-central-1"));
  EXPECT_EQ(m->IntensityFor(de, 1700000000 * kSec).grams_per_kwh, 100);
  EXPECT_EQ(m->IntensityFor(de, 1700000000 * kSec).source, "timeseries:de");
}

TEST_F(PricingTimeSeriesTest, OverrideBeatsTimeSeries) {
  std::string config = (dir_ / "cost.toml").string();
  absl::StatusOr<CostModel> m = CostModel::FromText(
      "intensity_timeseries = \"grid.csv\"\n[[node]]\nname = \"a\"\n"
      "grid_intensity = 7\n",
      config, "");
  ASSERT_TRUE(m.ok()) << m.status();
  NodeRates r = m->RatesFor(AwsNode("a", "us-east-1"));
  EXPECT_EQ(m->IntensityFor(r, 1700000000 * kSec).source, "override");
}

TEST(PricingData, MissingDataDirNamesIt) {
  absl::StatusOr<CostModel> m = CostModel::FromText("", "", "/nonexistent/wl");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              HasSubstr("/nonexistent/wl/carbon/grid_intensity.csv"));
}

TEST(PricingData, MissingConfigFileNamesIt) {
  absl::StatusOr<CostModel> m = CostModel::Load("/nonexistent/cost.toml", "");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("/nonexistent/cost.toml"));
}

// Every region in the shipped map resolves to a zone or country with data.
TEST(PricingData, EveryShippedRegionHasAnIntensity) {
  CostModel m = MustLoad("");
  for (const char* id : {"aws:///us-west-2a/i-1", "aws:///ap-east-1a/i-1",
                         "aws:///cn-north-1a/i-1", "gce://p/europe-west9-a/n",
                         "gce://p/asia-east2-a/n"}) {
    NodeAttributes n = Node("n");
    n.provider_id = id;
    NodeRates r = m.RatesFor(n);
    EXPECT_FALSE(r.annual_intensity.fallback) << id;
    EXPECT_TRUE(r.warnings.empty()) << id;
  }
}

}  // namespace
}  // namespace wattlens::pricing
