// SPDX-License-Identifier: Apache-2.0
// Fuzz-ish: random bytes and mutated valid inputs fed to every parser never
// crash (run under ASan+UBSan in CI) and never return OK with garbage
// silently accepted where a value is required.
#include <cmath>
#include <random>
#include <string>

#include "collector/pricing/config.h"
#include "collector/pricing/data.h"
#include "collector/pricing/pricing.h"
#include "gtest/gtest.h"

namespace wattlens::pricing {
namespace {

const char kValidConfig[] = R"(# example
currency = "EUR"
cpu_per_core_hour = 0.03
discount = 0.1
share_idle = true
intensity_dataset = "ember"
[egress_per_gb]
internet = 0.09
[[node]]
selector = "pool=gpu,!spot"
price_per_hour = 3.06
pue = 1.2
[[regions]]
name = "dc-1"
zone = "DE"
)";

const char kValidSeries[] =
    "time,region_or_zone,g_per_kwh\n1700000000,us-east-1,250\n"
    "2023-11-14T22:13:20Z,DE,100\n";

std::string Mutate(std::string s, std::mt19937_64& rng, int max_edits = 6) {
  const char alphabet[] = "[]=\"'#,.-+e0123456789 \n\t\\!_abcnodezu\x01\xff";
  int edits = 1 + rng() % max_edits;
  for (int i = 0; i < edits && !s.empty(); ++i) {
    size_t pos = rng() % s.size();
    switch (rng() % 4) {
      case 0:
        s[pos] = alphabet[rng() % (sizeof(alphabet) - 1)];
        break;
      case 1:
        s.insert(pos, 1, alphabet[rng() % (sizeof(alphabet) - 1)]);
        break;
      case 2:
        s.erase(pos, 1 + rng() % 8);
        break;
      case 3:
        s.insert(pos, s.substr(rng() % s.size(), rng() % 16));
        break;
    }
  }
  return s;
}

std::string RandomBytes(std::mt19937_64& rng) {
  std::string s(rng() % 300, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(PricingFuzz, ParsersNeverCrash) {
  std::mt19937_64 rng(20261121);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string config =
        i % 3 == 0 ? RandomBytes(rng) : Mutate(kValidConfig, rng);
    absl::StatusOr<CostConfig> c = ParseCostConfig(config, "fuzz.toml");
    if (c.ok()) {
      ++accepted;
      for (const NodeRule& r : c->rules) EXPECT_FALSE(r.match.empty());
    } else {
      // Every error names the file and a line.
      EXPECT_EQ(c.status().message().rfind("fuzz.toml:", 0), 0u) << c.status();
    }
    std::string series =
        i % 3 == 0 ? RandomBytes(rng) : Mutate(kValidSeries, rng);
    auto ts = ParseIntensityTimeSeries(series, "fuzz.csv");
    if (!ts.ok()) {
      EXPECT_EQ(ts.status().message().rfind("fuzz.csv:", 0), 0u) << ts.status();
    }
    (void)Selector::Parse(Mutate("pool=gpu,!spot,zone!=a", rng));
    CarbonData data;
    (void)ParseGridIntensity(
        Mutate("source,year,key,g_per_kwh\nember,2024,DEU,342.06\n", rng),
        "fuzz-grid.csv", &data);
  }
  // The mutations leave some inputs valid, so both paths ran.
  EXPECT_GT(accepted, 100);
}

// Nesting and size that a recursive parser could choke on are errors with a
// line, not a stack overflow.
TEST(PricingFuzz, DeepNestingIsAnError) {
  for (const char* open : {"[", "{ a = ", "[{ a = "}) {
    std::string text = "\ncpu_per_core_hour = ";
    for (int i = 0; i < 100000; ++i) text += open;
    absl::StatusOr<CostConfig> c = ParseCostConfig(text, "deep.toml");
    ASSERT_FALSE(c.ok()) << open;
    EXPECT_EQ(c.status().message().rfind("deep.toml:2: ", 0), 0u) << c.status();
  }
  std::string many = "node = [";
  for (int i = 0; i < 2000; ++i) {
    many += "{ name = \"n" + std::to_string(i) + "\" },";
  }
  many += "]\n";
  absl::StatusOr<CostConfig> c = ParseCostConfig(many, "many.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rules.size(), 2000u);
}

// Mutated configs that load give finite, non-negative rates for any node.
TEST(PricingFuzz, LoadedModelsGiveSaneRates) {
  std::mt19937_64 rng(7);
  int loaded = 0;
  // Most single edits break TOML syntax (about one in eight leaves a file
  // that loads), so enough are tried for more than 50 to load.
  for (int i = 0; i < 500; ++i) {
    absl::StatusOr<CostModel> m =
        CostModel::FromText(Mutate(kValidConfig, rng, 1), "fuzz.toml", "");
    if (!m.ok()) continue;
    ++loaded;
    NodeAttributes n;
    n.name = "n";
    n.cpus = rng() % 5;
    n.memory_bytes = (rng() % 3) << 30;
    n.gpus = rng() % 2;
    n.labels = {{"pool", rng() % 2 ? "gpu" : "cpu"},
                {"topology.kubernetes.io/region", rng() % 2 ? "dc-1" : "x"}};
    NodeRates r = m->RatesFor(n);
    for (double v :
         {r.cpu_per_core_hour, r.ram_per_gib_hour, r.gpu_per_gpu_hour,
          r.hourly_cost(), r.pue, r.embodied_grams_per_hour,
          r.annual_intensity.grams_per_kwh}) {
      EXPECT_TRUE(std::isfinite(v) && v >= 0) << v;
    }
    EXPECT_GE(r.pue, 1);
    Intensity at = m->IntensityFor(r, int64_t{1'700'000'000} * 1'000'000'000);
    EXPECT_FALSE(at.source.empty());
  }
  EXPECT_GT(loaded, 50);
}

}  // namespace
}  // namespace wattlens::pricing
