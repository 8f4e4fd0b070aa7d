// SPDX-License-Identifier: Apache-2.0
// The --cost_config parser: every error names file:line; a full example
// parses to the documented values.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "collector/pricing/config.h"
#include "collector/pricing/data.h"
#include "collector/pricing/pricing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens::pricing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct ErrorCase {
  const char* what;
  const char* text;
  const char* want;  // the whole message starts with this
};

// Errors the parser alone finds.
const ErrorCase kParseErrors[] = {
    {"unknown key", "currency = \"USD\"\ncolour = \"blue\"\n",
     "cost.toml:2: unknown key 'colour' in the top level"},
    {"unknown key in node", "[[node]]\nname = \"a\"\ncpu = 1\n",
     "cost.toml:3: unknown key 'cpu' in [[node]]"},
    {"unknown key in egress", "[egress_per_gb]\ncross_zone = 0.01\n",
     "cost.toml:2: unknown key 'cross_zone' in [egress_per_gb]"},
    {"negative price", "\n\ncpu_per_core_hour = -0.01\n",
     "cost.toml:3: cpu_per_core_hour: must not be negative"},
    {"negative node price", "[[node]]\nname = \"a\"\nprice_per_hour = -1\n",
     "cost.toml:3: price_per_hour: must not be negative"},
    {"negative egress", "[egress_per_gb]\ninternet = -0.12\n",
     "cost.toml:2: internet: must not be negative"},
    {"bad number", "ram_per_gib_hour = 0.004.2\n",
     "cost.toml:1: Error while parsing floating-point: expected decimal "
     "digit or exponent, saw '.'"},
    {"nan", "ram_per_gib_hour = nan\n",
     "cost.toml:1: ram_per_gib_hour: bad number 'nan'"},
    {"inf", "pue = inf\n", "cost.toml:1: pue: bad number 'inf'"},
    {"string for number", "gpu_per_gpu_hour = \"0.95\"\n",
     "cost.toml:1: gpu_per_gpu_hour: expected a number, got a string"},
    {"number for bool", "share_idle = 1\n",
     "cost.toml:1: share_idle: expected true or false, got a number"},
    {"duplicate rule",
     "[[node]]\nname = \"a\"\n[[node]]\ninstance_type = \"m5\"\n[[node]]\n"
     "name = \"a\"\n",
     "cost.toml:5: duplicate [[node]] rule for name 'a' (first at "
     "cost.toml:1)"},
    {"duplicate selector rule",
     "[[node]]\nselector = \"a=b\"\n\n[[node]]\nselector = \"a=b\"\n",
     "cost.toml:4: duplicate [[node]] rule for selector 'a=b'"},
    {"duplicate region",
     "[[regions]]\nname = \"x\"\n[[regions]]\nname = \"X\"\n",
     "cost.toml:3: duplicate [[regions]] 'x' (first at cost.toml:1)"},
    {"duplicate key", "discount = 0.1\ndiscount = 0.2\n",
     "cost.toml:2: Error while parsing key-value pair: cannot redefine "
     "existing floating-point 'discount'"},
    {"duplicate section", "[egress_per_gb]\n[egress_per_gb]\n",
     "cost.toml:2: Error while parsing table header: cannot redefine "
     "existing table 'egress_per_gb'"},
    {"unknown section", "[prices]\n",
     "cost.toml:1: unknown section '[prices]'"},
    {"no matcher", "[[node]]\nprice_per_hour = 1\n",
     "cost.toml:1: [[node]] needs exactly one of name, selector, "
     "instance_type"},
    {"two matchers", "[[node]]\nname = \"a\"\ninstance_type = \"b\"\n",
     "cost.toml:3: [[node]] needs exactly one of"},
    {"total and components",
     "[[node]]\nname = \"a\"\nprice_per_hour = 1\ncpu_per_core_hour = 0.1\n",
     "cost.toml:1: [[node]]: price_per_hour (split by the OpenCost ratio) "
     "excludes"},
    {"top-level total", "price_per_hour = 1\n",
     "cost.toml:1: price_per_hour belongs in a [[node]] rule"},
    {"discount above 1", "discount = 1.5\n",
     "cost.toml:1: discount: a fraction in [0, 1]"},
    {"pue below 1", "pue = 0.9\n", "cost.toml:1: pue: must be at least 1"},
    {"zero lifetime", "lifetime_hours = 0\n",
     "cost.toml:1: lifetime_hours: must be positive"},
    {"fractional count", "sockets = 1.5\n",
     "cost.toml:1: sockets: expected a whole number"},
    {"bad provider", "provider = \"ibm\"\n",
     "cost.toml:1: provider: unknown provider 'ibm'"},
    {"bad dataset", "intensity_dataset = \"watttime\"\n",
     "cost.toml:1: intensity_dataset: expected"},
    {"bad selector", "[[node]]\nselector = \"a=b,,c\"\n",
     "cost.toml:2: selector: empty term"},
    {"unterminated string", "currency = \"USD\n",
     "cost.toml:1: Error while parsing string: unescaped control characters "
     "other than TAB"},
    {"text after string", "currency = \"USD\" EUR\n",
     "cost.toml:1: Error while parsing key-value pair: expected a comment or "
     "whitespace, saw 'E'"},
    {"bad escape", "region = \"a\\qb\"\n",
     "cost.toml:1: Error while parsing string: unknown escape sequence "
     "'\\q'"},
    {"no equals", "currency USD\n",
     "cost.toml:1: Error while parsing key-value pair: expected '=', saw "
     "'U'"},
    {"missing value", "currency =\n",
     "cost.toml:1: Error while parsing key-value pair: expected value"},
    {"control character", "currency = \"U\x01SD\"\n",
     "cost.toml:1: Error while parsing string: unescaped control characters "
     "other than TAB"},
    {"empty string", "region = \"\"\n",
     "cost.toml:1: region: must not be empty"},
    {"syntax error after a multi-line string",
     "zone = \"\"\"\nDE\"\"\"\n[[node]]\nname = \"a\"\nprice_per_hour = "
     "0.1.2\n",
     "cost.toml:5: Error while parsing floating-point"},
    {"array for a number", "cpu_per_core_hour = [0.03, 0.04]\n",
     "cost.toml:1: cpu_per_core_hour: expected a number, got an array"},
    {"inline table for a string", "[[node]]\nname = { first = \"a\" }\n",
     "cost.toml:2: name: expected a string, got a table"},
    {"date for a number", "\nintensity_year = 2024-01-01\n",
     "cost.toml:2: intensity_year: expected a number, got a date or time"},
    {"dotted key in a rule", "[[node]]\nname = \"a\"\nlabels.pool = \"gpu\"\n",
     "cost.toml:3: unknown key 'labels' in [[node]]"},
    {"node as a table", "[node]\nname = \"a\"\n",
     "cost.toml:1: node: expected [[node]] tables, got a table"},
    {"node as a number", "node = 3\n",
     "cost.toml:1: node: expected [[node]] tables, got a number"},
    {"egress as a number", "egress_per_gb = 0.1\n",
     "cost.toml:1: egress_per_gb: expected a table, got a number"},
    {"unknown table array", "[[region]]\nname = \"x\"\n",
     "cost.toml:1: unknown section '[[region]]' (known: [egress_per_gb], "
     "[[node]], [[regions]])"},
    {"negative infinity", "embodied_kg = -inf\n",
     "cost.toml:1: embodied_kg: bad number '-inf'"},
    {"inline rule checked", "node = [{ name = \"a\" },\n  { name = \"a\" }]\n",
     "cost.toml:2: duplicate [[node]] rule for name 'a' (first at "
     "cost.toml:1)"},
};

TEST(PricingConfig, EveryParseErrorNamesFileAndLine) {
  for (const ErrorCase& c : kParseErrors) {
    absl::StatusOr<CostConfig> got = ParseCostConfig(c.text, "cost.toml");
    ASSERT_FALSE(got.ok()) << c.what;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
        << c.what;
    EXPECT_THAT(std::string(got.status().message()), StartsWith(c.want))
        << c.what;
  }
}

class PricingConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "pricing_config";
    std::filesystem::create_directories(dir_);
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::filesystem::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::filesystem::path dir_;
};

// Errors found against the data files or in referenced files, through
// CostModel::Load (file paths as given).
TEST_F(PricingConfigFileTest, LoadErrorsNameFileAndLine) {
  const std::string series =
      Write("grid.csv",
            "time,region_or_zone,g_per_kwh\n1700000000,us-east-1,250\n"
            "1700003600,us-east-1\n");
  const std::string bad_value = Write(
      "bad_value.csv", "time,region_or_zone,g_per_kwh\n1700000000,DE,-3\n");
  const std::string bad_time =
      Write("bad_time.csv",
            "# comment\ntime,region_or_zone,g_per_kwh\nyesterday,DE,30\n");
  const std::string dup_time =
      Write("dup_time.csv",
            "time,region_or_zone,g_per_kwh\n1700000000,DE,30\n"
            "2023-11-14T22:13:20Z,de,31\n");
  const std::string no_header = Write("no_header.csv", "1700000000,DE,30\n");
  struct Case {
    const char* what;
    std::string config;
    std::string want;
  };
  const std::string cfg = (dir_ / "cost.toml").string();
  const Case cases[] = {
      {"unknown currency", "# money\ncurrency = \"EUX\"\n",
       cfg + ":2: unknown currency 'EUX' (an ISO 4217 code"},
      {"lower-case currency", "currency = \"eur\"\n",
       cfg + ":1: unknown currency 'eur'"},
      {"year without data", "intensity_year = 2019\n",
       cfg + ":1: no Electricity Maps data for year 2019"},
      {"malformed CSV row", "intensity_timeseries = \"grid.csv\"\n",
       series + ":3: malformed row: 2 fields, expected 3"},
      {"negative intensity", "intensity_timeseries = \"bad_value.csv\"\n",
       bad_value + ":2: g_per_kwh must not be negative"},
      {"bad time", "intensity_timeseries = \"bad_time.csv\"\n",
       bad_time + ":3: bad time 'yesterday'"},
      {"duplicate sample", "intensity_timeseries = \"dup_time.csv\"\n",
       dup_time + ":3: second sample for 'de' at the same time (other at "
                  "line 2)"},
      {"no header", "intensity_timeseries = \"no_header.csv\"\n",
       no_header + ":1: expected header 'time,region_or_zone,g_per_kwh'"},
      {"missing series", "\nintensity_timeseries = \"absent.csv\"\n",
       cfg + ":2: intensity_timeseries: " + (dir_ / "absent.csv").string() +
           ": not found"},
  };
  for (const Case& c : cases) {
    Write("cost.toml", c.config);
    absl::StatusOr<CostModel> m = CostModel::Load(cfg, "");
    ASSERT_FALSE(m.ok()) << c.what;
    EXPECT_THAT(std::string(m.status().message()), StartsWith(c.want))
        << c.what;
  }
}

TEST(PricingConfig, MalformedDataRowNamesFileAndLine) {
  CarbonData data;
  absl::Status s = ParseGridIntensity(
      "# header comment\nsource,year,key,g_per_kwh\nember,2024,DEU\n",
      "grid_intensity.csv", &data);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("grid_intensity.csv:3: malformed row"));
  s = ParseGridIntensity("source,year,key,g_per_kwh\nember,2024,DEU,3x\n",
                         "g.csv", &data);
  EXPECT_THAT(std::string(s.message()), StartsWith("g.csv:2: bad number '3x'"));
  s = ParseCloudRegions(
      "provider,region,em_zone,country,source\nibm,x,,USA,ccf\n", "r.csv",
      &data);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("r.csv:2: unknown provider 'ibm'"));
}

// The documented example (docs/cost-carbon.md) parses to these values.
TEST(PricingConfig, FullExample) {
  const char kExample[] = R"(# Wattlens cost and carbon configuration
currency = "EUR"            # ISO 4217
cpu_per_core_hour = 0.029
ram_per_gib_hour = 0.0039
gpu_per_gpu_hour = 0.87
discount = 0.05
energy_per_kwh = 0.21
share_idle = true
intensity_dataset = "electricitymaps"
intensity_year = 2024
region = 'dc-berlin'
pue = 1.4
lifetime_hours = 43_800

[egress_per_gb]
node = 0
cluster = 0
private = 0.01
internet = 0.09
unknown = 0.09

[[node]]
name = "db-1"
price_per_hour = 0.192
embodied_kg = 1800

[[node]]
selector = "pool=gpu, node.kubernetes.io/lifecycle!=spot"
cpu_per_core_hour = 0.035
gpu_per_gpu_hour = 1.1
discount = 0.3

[[node]]
instance_type = "m5.xlarge"
price_per_hour = 0.192
region = "us-east-1"
provider = "aws"

[[regions]]
name = "dc-berlin"
zone = "DE"
pue = 1.25
)";
  absl::StatusOr<CostConfig> c = ParseCostConfig(kExample, "cost.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->currency, "EUR");
  EXPECT_EQ(c->currency_where, "cost.toml:2");
  EXPECT_EQ(c->cpu_per_core_hour, 0.029);
  EXPECT_EQ(c->gpu_per_gpu_hour, 0.87);
  EXPECT_EQ(c->discount, 0.05);
  EXPECT_EQ(c->energy_per_kwh, 0.21);
  EXPECT_TRUE(c->share_idle);
  EXPECT_EQ(c->intensity_year, 2024);
  EXPECT_EQ(c->defaults.region, "dc-berlin");
  EXPECT_EQ(c->defaults.lifetime_hours, 43800);
  EXPECT_EQ(c->egress_per_gb, (std::array<double, 5>{0, 0, 0.01, 0.09, 0.09}));
  ASSERT_EQ(c->rules.size(), 3u);
  EXPECT_EQ(c->rules[0].kind, NodeRule::Kind::kName);
  EXPECT_EQ(c->rules[0].where, "cost.toml:22");
  EXPECT_EQ(c->rules[1].kind, NodeRule::Kind::kSelector);
  EXPECT_TRUE(c->rules[1].selector.Matches({{"pool", "gpu"}}));
  EXPECT_FALSE(c->rules[1].selector.Matches(
      {{"pool", "gpu"}, {"node.kubernetes.io/lifecycle", "spot"}}));
  EXPECT_EQ(c->rules[2].settings.provider, "aws");
  ASSERT_EQ(c->regions.size(), 1u);
  EXPECT_EQ(c->regions[0].pue, 1.25);

  absl::StatusOr<CostModel> m = CostModel::FromText(kExample, "cost.toml", "");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->warnings().empty());
  NodeAttributes n;
  n.name = "gpu-7";
  n.cpus = 8;
  n.memory_bytes = uint64_t{32} << 30;
  n.gpus = 1;
  n.labels = {{"pool", "gpu"}};
  NodeRates r = m->RatesFor(n);
  EXPECT_NEAR(r.cpu_per_core_hour, 0.035 * 0.7, 1e-15);
  EXPECT_NEAR(r.ram_per_gib_hour, 0.0039 * 0.7, 1e-15);
  EXPECT_NEAR(r.gpu_per_gpu_hour, 1.1 * 0.7, 1e-15);
  EXPECT_EQ(r.zone, "DE");
  EXPECT_EQ(r.pue, 1.25);  // [[regions]] beats the top-level pue
  EXPECT_EQ(r.annual_intensity.source, "em-zone:DE:2024");
  EXPECT_EQ(r.annual_intensity.grams_per_kwh, 341);
  EXPECT_NEAR(r.embodied_grams_per_hour, r.embodied_kg * 1000 / 43800, 1e-9);
}

// What full TOML adds over the old subset: multi-line and literal strings,
// dotted keys, inline tables, and rules written as an array of inline tables.
// Provenance still names the line each value is written on.
TEST(PricingConfig, FullTomlSyntax) {
  const char kText[] = R"(currency = """
EUR"""
region = '''dc-berlin'''
egress_per_gb.internet = 0.2
egress_per_gb.private = 0.02
node = [
  { name = "db-1", price_per_hour = 0.5 },
  { selector = "pool=gpu", pue = 1.1 },
]
regions = [{ name = "dc-berlin", zone = "DE" }]
)";
  absl::StatusOr<CostConfig> c = ParseCostConfig(kText, "cost.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  // A newline right after the opening quotes is not part of the string.
  EXPECT_EQ(c->currency, "EUR");
  EXPECT_EQ(c->currency_where, "cost.toml:1");
  EXPECT_EQ(c->defaults.region, "dc-berlin");
  EXPECT_EQ(c->defaults.where.at("region"), "cost.toml:3");
  EXPECT_EQ(c->egress_per_gb[2], 0.02);
  EXPECT_EQ(c->egress_per_gb[3], 0.2);
  ASSERT_EQ(c->rules.size(), 2u);
  EXPECT_EQ(c->rules[0].kind, NodeRule::Kind::kName);
  EXPECT_EQ(c->rules[0].match, "db-1");
  EXPECT_EQ(c->rules[0].where, "cost.toml:7");
  EXPECT_EQ(c->rules[0].settings.price_per_hour, 0.5);
  EXPECT_EQ(c->rules[1].kind, NodeRule::Kind::kSelector);
  EXPECT_EQ(c->rules[1].where, "cost.toml:8");
  EXPECT_EQ(c->rules[1].settings.where.at("pue"), "cost.toml:8");
  ASSERT_EQ(c->regions.size(), 1u);
  EXPECT_EQ(c->regions[0].zone, "DE");
  EXPECT_EQ(c->regions[0].where, "cost.toml:10");
}

TEST(PricingConfig, EmptyRuleArraysAreNoRules) {
  absl::StatusOr<CostConfig> c =
      ParseCostConfig("node = []\nregions = []\n", "cost.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->rules.empty());
  EXPECT_TRUE(c->regions.empty());
}

// The same rules as headers and as inline tables parse alike.
TEST(PricingConfig, TableArrayHeadersEqualInlineTables) {
  absl::StatusOr<CostConfig> headers = ParseCostConfig(
      "[[node]]\nname = \"a\"\ndiscount = 0.5\n[[node]]\n"
      "instance_type = \"m5\"\n",
      "cost.toml");
  absl::StatusOr<CostConfig> inline_tables = ParseCostConfig(
      "node = [{ name = \"a\", discount = 0.5 }, { instance_type = \"m5\" }]\n",
      "cost.toml");
  ASSERT_TRUE(headers.ok()) << headers.status();
  ASSERT_TRUE(inline_tables.ok()) << inline_tables.status();
  ASSERT_EQ(headers->rules.size(), 2u);
  ASSERT_EQ(inline_tables->rules.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(headers->rules[i].kind, inline_tables->rules[i].kind);
    EXPECT_EQ(headers->rules[i].match, inline_tables->rules[i].match);
    EXPECT_EQ(headers->rules[i].settings.discount,
              inline_tables->rules[i].settings.discount);
  }
}

TEST(PricingConfig, Selectors) {
  absl::StatusOr<Selector> s = Selector::Parse("a=b, c==d, e!=f, g, !h");
  ASSERT_TRUE(s.ok()) << s.status();
  std::map<std::string, std::string> labels = {
      {"a", "b"}, {"c", "d"}, {"e", "x"}, {"g", ""}};
  EXPECT_TRUE(s->Matches(labels));
  labels["h"] = "1";
  EXPECT_FALSE(s->Matches(labels));
  labels.erase("h");
  labels["e"] = "f";
  EXPECT_FALSE(s->Matches(labels));
  EXPECT_FALSE(Selector::Parse("a b=c").ok());
  EXPECT_FALSE(Selector::Parse("").ok());
}

// Headers toml++ 3.3 would take into its key parser with a character that
// cannot start a key (an assertion there): refused first, with their line.
TEST(PricingConfig, BrokenTableArrayHeadersAreErrorsNotCrashes) {
  for (const char* text : {"a = 1\n[[[1]]]\n", "a = 1\n[[[a]]]\n",
                           "a = 1\n[[[]]\n", "a = 1\n  [[=\n", "a = 1\n[=\n",
                           "a = 1\n[ {\n", "a = 1\n[[\nnode]]\n"}) {
    auto c = ParseCostConfig(text, "cost.toml");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_TRUE(absl::StartsWith(c.status().message(), "cost.toml:2:"))
        << c.status();
  }
  EXPECT_TRUE(ParseCostConfig("[[ node ]]\nname = \"a\"\nprice_per_hour = 1\n",
                              "cost.toml")
                  .ok());
}

}  // namespace
}  // namespace wattlens::pricing
