// SPDX-License-Identifier: Apache-2.0
// Conservation over random inputs: in every zone, workloads + __idle__ +
// __unattributed__ sum exactly to the node energy; every share is within
// one microjoule of its exact proportion; processes never get more than
// their workload.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "agent/power/attribution.h"
#include "gtest/gtest.h"

namespace wattlens::power {
namespace {

constexpr int kIterations = 3000;

uint64_t RandomWeight(std::mt19937_64& rng) {
  switch (rng() % 5) {
    case 0:
      return 0;
    case 1:
      return rng() % 10;  // tiny
    case 2:
      return rng();  // up to 2^64 - 1
    default:
      return rng() % 100'000'000'000;  // ~100 s of CPU at 1 GHz
  }
}

AttributionInput RandomInput(std::mt19937_64& rng) {
  AttributionInput in;
  const int workloads = static_cast<int>(rng() % 40);
  for (int w = 0; w < workloads; ++w) {
    in.workloads.push_back({absl::StrCat("ns", w % 5, "/pod", w),
                            rng() % 3 == 0 ? RandomWeight(rng) : 0,
                            rng() % 4000, rng() % 3 == 0 ? rng() % 8000 : 0});
  }
  const int processes = static_cast<int>(rng() % 120);
  for (int p = 0; p < processes; ++p) {
    const std::string workload = workloads > 0 && rng() % 8 != 0
                                     ? in.workloads[rng() % workloads].key
                                     : absl::StrCat("late/pod", rng() % 3);
    in.processes.push_back({p + 1, workload,
                            RandomWeight(rng) % 1'000'000'000'000,
                            rng() % 4 == 0});
  }
  in.kernel_weight = RandomWeight(rng);
  in.idle_policy = static_cast<IdlePolicy>(rng() % 3);
  in.node_allocatable_millicores = rng() % 64'000;
  const int zones = 1 + static_cast<int>(rng() % 6);
  for (int z = 0; z < zones; ++z) {
    ZoneEnergyInput zin;
    zin.zone = absl::StrCat("zone", z);
    // From 0 up to 2^44 µJ (17.6 MJ: a 1 kW zone for about 5 hours).
    zin.energy_uj = static_cast<int64_t>(rng() >> (20 + rng() % 44));
    zin.idle_uj = rng() % 3 == 0
                      ? zin.energy_uj * 2
                      : static_cast<int64_t>(rng() >> (20 + rng() % 44));
    if (rng() % 4 == 0) {  // a GPU-like zone with its own weights
      std::map<std::string, uint64_t> weights;
      const int n = static_cast<int>(rng() % 6);
      for (int k = 0; k < n; ++k) {
        weights[workloads > 0 && rng() % 2 ? in.workloads[rng() % workloads].key
                                           : absl::StrCat("gpu/job", k)] =
            RandomWeight(rng);
      }
      zin.weight_override = std::move(weights);
      zin.unattributed_weight = RandomWeight(rng);
    }
    in.zones.push_back(std::move(zin));
  }
  return in;
}

TEST(AttributionPropertyTest, ConservationOverRandomInputs) {
  std::mt19937_64 rng(20260417);
  int64_t zones_checked = 0;
  for (int it = 0; it < kIterations; ++it) {
    const AttributionInput in = RandomInput(rng);
    auto r = Attribute(in);
    ASSERT_TRUE(r.ok()) << "iteration " << it << ": " << r.status();
    ASSERT_TRUE(CheckConservation(*r).ok())
        << "iteration " << it << ": " << CheckConservation(*r);
    ASSERT_EQ(r->zones.size(), in.zones.size());

    // Workload weights as Attribute sees them, for the proportionality check.
    std::map<std::string, long double> weight;
    std::map<std::string, long double> proc_sum;
    for (const auto& w : in.workloads) weight[w.key] = w.weight;
    for (const auto& p : in.processes) proc_sum[p.workload] += p.weight;
    for (auto& [key, w] : weight) {
      if (w == 0) w = proc_sum[key];
    }
    for (const auto& [key, s] : proc_sum) {
      if (!weight.count(key)) weight[key] = s;
    }
    long double total_weight = in.kernel_weight;
    for (const auto& [key, w] : weight) total_weight += w;

    for (size_t zi = 0; zi < r->zones.size(); ++zi) {
      const ZoneAttribution& z = r->zones[zi];
      ++zones_checked;
      EXPECT_EQ(z.energy_uj, in.zones[zi].energy_uj);
      EXPECT_EQ(z.idle_uj, std::min(in.zones[zi].idle_uj, z.energy_uj));
      int64_t idle_sum = 0;
      for (const auto& [key, split] : z.workloads) idle_sum += split.idle_uj;
      EXPECT_EQ(idle_sum, z.idle_uj);
      if (in.idle_policy == IdlePolicy::kRequestShare) {
        // E_idle_k = E_idle × max(request, usage) / max(A, Σ a), ±1 µJ.
        long double allocated = 0;
        for (const auto& w : in.workloads) {
          allocated +=
              std::max(w.cpu_request_millicores, w.cpu_usage_millicores);
        }
        const long double denominator =
            std::max<long double>(allocated, in.node_allocatable_millicores);
        for (const auto& w : in.workloads) {
          const long double exact =
              denominator > 0 ? z.idle_uj * (std::max(w.cpu_request_millicores,
                                                      w.cpu_usage_millicores) /
                                             denominator)
                              : 0;
          EXPECT_LE(std::fabs(z.workloads.at(w.key).idle_uj - exact), 1.0L)
              << "iteration " << it << " zone " << z.zone << " " << w.key;
        }
        EXPECT_EQ(z.workloads.at(std::string(kUnattributedWorkload)).idle_uj,
                  0);
      }
      if (total_weight > 0 && !in.zones[zi].weight_override) {
        for (const auto& [key, w] : weight) {
          const long double exact = z.dynamic_uj * (w / total_weight);
          // Weights are summed in 128-bit integers; long double sums here
          // lose a little at 2^64 scale, hence the small slack.
          EXPECT_LE(std::fabs(static_cast<long double>(
                                  z.workloads.at(key).dynamic_uj) -
                              exact),
                    1.0L + exact * 1e-15L)
              << "iteration " << it << " zone " << z.zone << " " << key;
        }
      }
      if (in.zones[zi].weight_override) continue;
      std::map<std::string, int64_t> by_workload;
      for (const auto& p : in.processes) {
        by_workload[p.workload] += z.process_dynamic_uj.at(p.pid);
      }
      for (const auto& [key, sum] : by_workload) {
        EXPECT_LE(sum, z.workloads.at(key).dynamic_uj)
            << "iteration " << it << " " << key;
      }
    }
  }
  std::printf("checked %lld zone-intervals\n",
              static_cast<long long>(zones_checked));
}

}  // namespace
}  // namespace wattlens::power
