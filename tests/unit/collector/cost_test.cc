// SPDX-License-Identifier: Apache-2.0
// Cost and carbon (issue #7): the worked example of docs/cost-carbon.md
// reproduced exactly, and the conservation invariants over random clusters.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>
#include <tuple>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/cluster_state.h"
#include "collector/cost.h"
#include "collector/ingest_service.h"
#include "collector/metrics.h"
#include "collector/store.h"
#include "sqlite3.h"
#include "collector/validate.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace wattlens::collector {
namespace {

using google::protobuf::util::TimeUtil;
using wattlens::v1::GetUsageRequest;
using wattlens::v1::GetUsageResponse;
using wattlens::v1::NodeReport;

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kHourNs = 3600ull * 1'000'000'000;
constexpr uint64_t kUjPerWh = 3'600'000'000;  // 1 Wh = 3600 J

std::shared_ptr<const CostEngine> Engine(const std::string& config) {
  auto model = pricing::CostModel::FromText(config, "cost.toml", "");
  EXPECT_TRUE(model.ok()) << model.status();
  return std::make_shared<const CostEngine>(std::move(model).value());
}

const wattlens::v1::UsageRow* Find(const GetUsageResponse& r,
                                   const std::string& workload) {
  for (const auto& row : r.rows()) {
    if (row.key().workload() == workload) return &row;
  }
  return nullptr;
}

// docs/cost-carbon.md, "Worked example": one node, two workloads, one hour.
class WorkedExample : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.SetCostEngine(Engine(R"(
currency = "USD"
cpu_per_core_hour = 0.03
ram_per_gib_hour = 0.004
pue = 1.2
grid_intensity = 400
embodied_kg = 1752
lifetime_hours = 35040
)"));
    NodeReport r;
    r.set_node_name("worker-1");
    r.set_epoch(1);
    r.set_sequence(1);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock_.RealtimeNs());
    *r.mutable_interval() = TimeUtil::SecondsToDuration(3600);
    r.set_elapsed_nanoseconds(kHourNs);
    r.mutable_node()->set_cpus(4);
    r.mutable_node()->set_memory_bytes(16 * kGiB);
    (*r.mutable_node()->mutable_labels())["topology.kubernetes.io/region"] =
        "us-east-1";
    auto add = [&](const std::string& path, const std::string& ns,
                   const std::string& kind, const std::string& name) {
      auto* w = r.add_workloads();
      auto* id = w->mutable_identity();
      id->set_cgroup_path(path);
      id->set_cgroup_id(r.workloads_size());
      id->set_namespace_(ns);
      id->set_workload_kind(kind);
      id->set_workload(name);
      if (!ns.empty()) id->set_pod(name + "-0");
      return w;
    };
    // web: 1 core on average against a 0.5 core request; 3 GiB working set
    // against a 2 GiB request; 2 GiB to the internet; 10,000 connections.
    auto* web = add("/kubepods/pod-web", "shop", "Deployment", "web");
    web->set_cpu_nanoseconds(3600ull * 1'000'000'000);
    web->set_cpu_request_cores(0.5);
    web->set_memory_request_bytes(2 * kGiB);
    web->set_memory_working_set_bytes(3 * kGiB);
    web->set_cpu_allocated_core_nanoseconds(kHourNs);          // 1 core-h
    web->set_memory_allocated_byte_seconds(3 * kGiB * 3600);   // 3 GiB-h
    web->set_tcp_accepted(10'000);
    auto* n = web->add_network();
    n->set_network_class(wattlens::v1::NETWORK_CLASS_INTERNET);
    n->set_transmit_bytes(2 * kGiB);
    auto* e = web->add_energy();
    e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
    e->set_microjoules(101 * kUjPerWh / 10);  // 10.1 Wh
    // report: a quarter core against a 1 core request; 1 GiB against 4.
    auto* batch = add("/kubepods/pod-report", "batch", "Job", "report");
    batch->set_cpu_nanoseconds(900ull * 1'000'000'000);
    batch->set_cpu_allocated_core_nanoseconds(kHourNs);         // 1 core-h
    batch->set_memory_allocated_byte_seconds(4 * kGiB * 3600);  // 4 GiB-h
    e = batch->add_energy();
    e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
    e->set_microjoules(5 * kUjPerWh);  // 5 Wh
    // The node's idle energy, as the agent reports it.
    auto* idle = r.add_energy_buckets();
    idle->set_bucket(wattlens::v1::ENERGY_BUCKET_IDLE);
    e = idle->add_energy();
    e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
    e->set_mode(wattlens::v1::ENERGY_MODE_IDLE);
    e->set_microjoules(8 * kUjPerWh);  // 8 Wh
    ASSERT_TRUE(ValidateReport(r, ReportLimits{}).ok())
        << ValidateReport(r, ReportLimits{});
    state_.Apply(r, nullptr);
    report_ = r;
  }
  GetUsageResponse Usage(bool share_idle = false) {
    return UsageOf(state_, share_idle);
  }
  static GetUsageResponse UsageOf(const ClusterState& state,
                                  bool share_idle = false) {
    GetUsageRequest req;
    req.mutable_window()->set_seconds(3600);
    req.set_share_idle(share_idle);
    req.set_sort_by(wattlens::v1::SORT_BY_COST);
    auto r = state.GetUsage(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  FakeClock clock_{1'800'000'000'000'000'000};
  ClusterState state_{clock_, ClusterOptions{}};
  NodeReport report_;
};

// The allocation counters, covered time and node spec survive a collector
// restart: the restored state prices the hour exactly as before.
TEST_F(WorkedExample, StoreRoundTripKeepsCostAndCarbon) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       absl::StrCat("wattlens-cost-store-", getpid(), ".db"))
          .string();
  std::filesystem::remove(path);
  {
    ClusterState state(clock_, ClusterOptions{});
    auto store = Store::Open({path}, clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->LoadInto(state).ok());
    (*store)->Start();
    state.Apply(report_, [&](NodeWrite&& nw) {
      (*store)->Submit(std::move(nw), [](const absl::Status& st) {
        EXPECT_TRUE(st.ok()) << st;
      });
    });
    (*store)->Flush();
  }
  ClusterState restored(clock_, ClusterOptions{});
  restored.SetCostEngine(state_.cost_engine());
  auto store = Store::Open({path}, clock_);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->LoadInto(restored).ok());
  const GetUsageResponse before = Usage(), after = UsageOf(restored);
  // Integers exact; derived doubles equal up to summation order.
  ASSERT_EQ(before.rows_size(), after.rows_size());
  for (const auto& b : before.rows()) {
    const auto* a = Find(after, b.key().workload());
    ASSERT_NE(a, nullptr) << b.key().workload();
    EXPECT_EQ(a->usage().cpu_nanoseconds(), b.usage().cpu_nanoseconds());
    EXPECT_EQ(a->usage().energy_microjoules(), b.usage().energy_microjoules());
    EXPECT_EQ(a->usage().tcp_accepted(), b.usage().tcp_accepted());
    EXPECT_NEAR(a->usage().cost().total(), b.usage().cost().total(), 1e-12);
    EXPECT_NEAR(a->usage().carbon().total_grams(),
                b.usage().carbon().total_grams(), 1e-9);
  }
  EXPECT_NEAR(after.total().cost().total(), 0.424, 1e-12);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix);
  }
}

// Agents before NodeReport.energy_buckets sent the idle bucket as a
// workload named __idle__: the collector answers the same for both.
TEST_F(WorkedExample, BucketSentAsLegacyWorkloadGivesTheSameAnswers) {
  NodeReport legacy = report_;
  ASSERT_EQ(legacy.energy_buckets_size(), 1);
  auto* idle = legacy.add_workloads();
  idle->mutable_identity()->set_cgroup_path("__idle__");
  *idle->mutable_energy() = legacy.energy_buckets(0).energy();
  legacy.clear_energy_buckets();
  ASSERT_TRUE(ValidateReport(legacy, ReportLimits{}).ok());
  ClusterState state(clock_, ClusterOptions{});
  state.SetCostEngine(state_.cost_engine());
  state.Apply(legacy, nullptr);
  // Integers exact; derived doubles equal up to summation order.
  google::protobuf::util::MessageDifferencer same;
  same.set_float_comparison(
      google::protobuf::util::MessageDifferencer::APPROXIMATE);
  for (bool share_idle : {false, true}) {
    std::string diff;
    same.ReportDifferencesToString(&diff);
    EXPECT_TRUE(same.Compare(UsageOf(state, share_idle), Usage(share_idle)))
        << "share_idle " << share_idle << ": " << diff;
  }
}

TEST_F(WorkedExample, ReproducesTheHandComputation) {
  const GetUsageResponse r = Usage();
  EXPECT_EQ(r.currency(), "USD");
  ASSERT_EQ(r.rows_size(), 3);
  const auto* web = Find(r, "web");
  const auto* report = Find(r, "report");
  const auto* idle = Find(r, "__idle__");
  ASSERT_TRUE(web && report && idle);
  constexpr double kEps = 1e-12;
  // Cost: web 1 core-h x 0.03 + 3 GiB-h x 0.004 + 2 GB x 0.12 = 0.282.
  EXPECT_NEAR(web->usage().cost().cpu(), 0.03, kEps);
  EXPECT_NEAR(web->usage().cost().ram(), 0.012, kEps);
  EXPECT_NEAR(web->usage().cost().network(), 0.24, kEps);
  EXPECT_NEAR(web->usage().cost().total(), 0.282, kEps);
  // report: 1 core-h x 0.03 + 4 GiB-h x 0.004 = 0.046.
  EXPECT_NEAR(report->usage().cost().total(), 0.046, kEps);
  // Idle: (4 - 2) core-h x 0.03 + (16 - 7) GiB-h x 0.004 = 0.096.
  EXPECT_NEAR(idle->usage().cost().cpu(), 0.06, kEps);
  EXPECT_NEAR(idle->usage().cost().ram(), 0.036, kEps);
  EXPECT_NEAR(idle->usage().cost().total(), 0.096, kEps);
  // Σ allocation = node price x 1 h = 4 x 0.03 + 16 x 0.004 = 0.184.
  EXPECT_NEAR(r.total().cost().cpu() + r.total().cost().ram(), 0.184, kEps);
  // Operational carbon: Wh / 1000 x PUE 1.2 x 400 g/kWh.
  EXPECT_NEAR(web->usage().carbon().operational_grams(), 4.848, 1e-9);
  EXPECT_NEAR(report->usage().carbon().operational_grams(), 2.4, 1e-9);
  EXPECT_NEAR(idle->usage().carbon().operational_grams(), 3.84, 1e-9);
  EXPECT_NEAR(r.total().carbon().operational_grams(), 11.088, 1e-9);
  EXPECT_NEAR(web->usage().facility_energy_kwh(), 0.01212, 1e-12);
  // Embodied: 1752 kg / 35040 h = 50 g/h, 12.5 g per vCPU-hour.
  EXPECT_NEAR(web->usage().carbon().embodied_grams(), 12.5, 1e-9);
  EXPECT_NEAR(report->usage().carbon().embodied_grams(), 12.5, 1e-9);
  EXPECT_NEAR(idle->usage().carbon().embodied_grams(), 25.0, 1e-9);
  // SCI: web per accepted connection, report per hour.
  EXPECT_EQ(web->usage().carbon().sci_unit(), "connection");
  EXPECT_NEAR(web->usage().carbon().sci_grams(), 17.348 / 10'000, 1e-12);
  EXPECT_EQ(report->usage().carbon().sci_unit(), "hour");
  EXPECT_NEAR(report->usage().carbon().sci_grams(), 14.9, 1e-9);
  // Sorted by cost; shares of the cluster's cost.
  EXPECT_EQ(r.rows(0).key().workload(), "web");
  EXPECT_NEAR(web->usage().cost_share(), 0.282 / 0.424, 1e-12);
}

TEST_F(WorkedExample, SharedIdleGoesToWorkloadsByResourceCost) {
  const GetUsageResponse r = Usage(/*share_idle=*/true);
  const auto* web = Find(r, "web");
  const auto* report = Find(r, "report");
  ASSERT_TRUE(web && report);
  // CPU idle 0.06 split 0.03 : 0.03; RAM idle 0.036 split 0.012 : 0.016.
  EXPECT_NEAR(web->usage().cost().cpu(), 0.06, 1e-12);
  EXPECT_NEAR(report->usage().cost().cpu(), 0.06, 1e-12);
  EXPECT_NEAR(web->usage().cost().ram(), 0.012 + 0.036 * 12 / 28, 1e-12);
  EXPECT_NEAR(report->usage().cost().ram(), 0.016 + 0.036 * 16 / 28, 1e-12);
  EXPECT_NEAR(r.total().cost().total(), 0.424, 1e-12);
  const auto* idle = Find(r, "__idle__");
  ASSERT_NE(idle, nullptr);  // its energy and embodied carbon stay idle
  EXPECT_NEAR(idle->usage().cost().cpu() + idle->usage().cost().ram(), 0,
              1e-12);
  EXPECT_NEAR(idle->usage().carbon().embodied_grams(), 25.0, 1e-9);
}

// The collector's /metrics: cumulative cost and carbon per workload (with
// its project), the idle row, and each node's intensity and price.
TEST_F(WorkedExample, MetricsCarryCostCarbonAndIntensity) {
  IngestCounters ingest;
  CollectorMetrics metrics(state_, ingest, nullptr, 100, 500);
  std::map<std::string, double> v;
  for (const auto& f : metrics.Collect()) {
    for (const auto& m : f.metric) {
      std::string key = f.name;
      for (const auto& l : m.label) {
        absl::StrAppend(&key, ",", l.name, "=", l.value);
      }
      v[key] = f.type == prometheus::MetricType::Counter ? m.counter.value
                                                         : m.gauge.value;
    }
  }
  const std::string web =
      ",namespace=shop,workload_kind=Deployment,workload=web,project=";
  EXPECT_NEAR(v["wattlens_workload_cost_total" + web +
                ",resource=cpu,currency=USD"],
              0.03, 1e-12);
  EXPECT_NEAR(v["wattlens_workload_cost_total" + web +
                ",resource=network,currency=USD"],
              0.24, 1e-12);
  EXPECT_NEAR(v["wattlens_workload_carbon_grams_total" + web +
                ",scope=operational"],
              4.848, 1e-9);
  EXPECT_NEAR(v["wattlens_workload_energy_joules_total" + web], 36360, 1e-6);
  const std::string idle =
      ",namespace=,workload_kind=,workload=__idle__,project=";
  EXPECT_NEAR(v["wattlens_workload_cost_total" + idle +
                ",resource=cpu,currency=USD"],
              0.06, 1e-12);
  EXPECT_NEAR(v["wattlens_workload_carbon_grams_total" + idle +
                ",scope=embodied"],
              25, 1e-9);
  // The region table knows us-east-1 is AWS's, in grid zone US-MIDA-PJM.
  EXPECT_EQ(v["wattlens_grid_intensity_grams_per_kwh,node=worker-1,provider=aws,"
              "region=us-east-1,zone=US-MIDA-PJM,source=override"],
            400);
  EXPECT_NEAR(v["wattlens_node_hourly_cost,node=worker-1,currency=USD"], 0.184,
              1e-12);
  EXPECT_EQ(v["wattlens_node_pue,node=worker-1"], 1.2);
}

// Random clusters: every invariant of the issue, in every grouping.
TEST(CostProperty, SumsOverWorkloadsAndIdleEqualNodeTotals) {
  std::mt19937_64 rng(20261121);
  auto U = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    FakeClock clock(1'800'000'000'000'000'000);
    ClusterState state(clock, ClusterOptions{});
    const bool intensity_override = U(0, 1);
    state.SetCostEngine(Engine(absl::StrCat(
        "energy_per_kwh = 0.", U(0, 30), "\n",
        intensity_override ? "grid_intensity = 321\n" : "",
        "[[node]]\nname = \"n0\"\nprice_per_hour = 0.", U(100, 900),
        "\n[[node]]\nname = \"n1\"\npue = 1.", U(0, 9), "\n")));
    const int nodes = static_cast<int>(U(1, 4));
    const char* regions[] = {"us-east-1", "europe-west1", "eastus", "mars-1"};
    double node_price_time = 0, node_energy_kwh = 0, node_embodied = 0;
    double node_operational = 0, usage_billed = 0;
    std::vector<NodeReport> last(nodes);
    const int reports = static_cast<int>(U(1, 6));
    for (int rep = 1; rep <= reports; ++rep) {
      for (int n = 0; n < nodes; ++n) {
        NodeReport& r = last[n];
        if (rep == 1) {
          r.set_node_name(absl::StrCat("n", n));
          r.set_epoch(1);
          r.mutable_node()->set_cpus(static_cast<uint32_t>(U(1, 64)));
          r.mutable_node()->set_memory_bytes(U(1, 256) * kGiB);
          r.mutable_node()->set_gpus(static_cast<uint32_t>(U(0, 1)));
          (*r.mutable_node()->mutable_labels())
              ["topology.kubernetes.io/region"] = regions[U(0, 3)];
          for (int w = 0, nw = static_cast<int>(U(0, 8)); w < nw; ++w) {
            auto* wl = r.add_workloads();
            auto* id = wl->mutable_identity();
            id->set_cgroup_path(absl::StrCat("/kubepods/p", w));
            id->set_cgroup_id(w + 1);
            id->set_namespace_(absl::StrCat("ns", U(0, 2)));
            id->set_pod(absl::StrCat("p", w));
            id->set_workload(absl::StrCat("w", U(0, 3)));
            id->set_workload_kind("Deployment");
            id->set_project(U(0, 1) ? "postgresql" : "nginx");
          }
          if (U(0, 1)) {
            auto* wl = r.add_workloads();
            wl->mutable_identity()->set_cgroup_path("__idle__");
          }
        }
        r.set_sequence(rep);
        // 10 s apart, inside one hour-long window.
        *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(
            clock.RealtimeNs() - 1000'000'000'000 + rep * 10'000'000'000);
        // At most the 10 s the report covers (the collector bounds growth
        // by the time covered).
        const uint64_t dt = U(1, 10) * 1'000'000'000;
        r.set_elapsed_nanoseconds(r.elapsed_nanoseconds() + dt);
        for (auto& wl : *r.mutable_workloads()) {
          const bool bucket = wl.identity().cgroup_path()[0] == '_';
          if (!bucket) {
            // Overcommit happens (Σ max(request, usage) > capacity).
            wl.set_cpu_allocated_core_nanoseconds(
                wl.cpu_allocated_core_nanoseconds() + U(0, 4) * dt);
            wl.set_memory_allocated_byte_seconds(
                wl.memory_allocated_byte_seconds() +
                U(0, 8) * kGiB * (dt / 1'000'000'000));
            wl.set_tcp_accepted(wl.tcp_accepted() + U(0, 100));
            if (wl.network_size() == 0) {
              for (int c = 1; c <= 5; ++c) {
                wl.add_network()->set_network_class(
                    static_cast<wattlens::v1::NetworkClass>(c));
              }
            }
            for (auto& nc : *wl.mutable_network()) {
              nc.set_transmit_bytes(nc.transmit_bytes() + U(0, 1) * kGiB);
            }
          }
          if (wl.energy_size() == 0) wl.add_energy();
          wl.mutable_energy(0)->set_microjoules(wl.energy(0).microjoules() +
                                                U(0, 30) * kUjPerWh);
        }
        ASSERT_TRUE(ValidateReport(r, ReportLimits{}).ok())
            << ValidateReport(r, ReportLimits{});
        state.Apply(r, nullptr);
      }
    }
    // Ground truth from the reports and the engine's rates.
    auto engine = state.cost_engine();
    for (const NodeReport& r : last) {
      std::string spec;
      r.node().SerializeToString(&spec);
      auto rates = engine->RatesFor(r.node_name(), r.node(), spec);
      const double h = static_cast<double>(r.elapsed_nanoseconds()) / 3.6e12;
      node_price_time += rates->hourly_cost() * h;
      node_embodied += rates->embodied_grams_per_hour * h;
      uint64_t energy_uj = 0;
      for (const auto& wl : r.workloads()) {
        energy_uj += wl.energy(0).microjoules();
        const Impact i = WorkloadImpact(CountersFrom(wl), *rates, 0);
        usage_billed += i.network_cost + i.energy_cost;
      }
      const double kwh = static_cast<double>(energy_uj) / 3.6e12;
      node_energy_kwh += kwh;
      node_operational +=
          kwh * rates->pue *
          engine->model().IntensityFor(*rates, clock.RealtimeNs())
              .grams_per_kwh;
    }
    for (auto group :
         {wattlens::v1::GROUP_BY_NODE, wattlens::v1::GROUP_BY_NAMESPACE,
          wattlens::v1::GROUP_BY_WORKLOAD, wattlens::v1::GROUP_BY_PROJECT,
          wattlens::v1::GROUP_BY_CONTAINER, wattlens::v1::GROUP_BY_CGROUP}) {
      for (bool share : {false, true}) {
        SCOPED_TRACE(absl::StrCat("group ", group, " share ", share));
        GetUsageRequest req;
        req.set_group_by(group);
        req.set_share_idle(share);
        req.mutable_window()->set_seconds(3600);
        auto resp = state.GetUsage(req);
        ASSERT_TRUE(resp.ok());
        double cost = 0, alloc = 0, kwh = 0, op = 0, emb = 0;
        for (const auto& row : resp->rows()) {
          cost += row.usage().cost().total();
          alloc += row.usage().cost().cpu() + row.usage().cost().ram() +
                   row.usage().cost().gpu();
          kwh += row.usage().energy_kwh();
          op += row.usage().carbon().operational_grams();
          emb += row.usage().carbon().embodied_grams();
        }
        const double tol = 1e-9 * (1 + node_price_time + usage_billed);
        // Σ workloads + idle = node price x time (allocation resources).
        EXPECT_NEAR(alloc, node_price_time, tol);
        EXPECT_NEAR(cost, node_price_time + usage_billed, tol);
        EXPECT_NEAR(resp->total().cost().total(), cost, tol);
        // Σ energy, Σ operational and Σ embodied carbon = the node's.
        EXPECT_NEAR(kwh, node_energy_kwh, 1e-9 * (1 + node_energy_kwh));
        EXPECT_NEAR(op, node_operational, 1e-9 * (1 + node_operational));
        EXPECT_NEAR(emb, node_embodied, 1e-9 * (1 + node_embodied));
      }
    }
  }
}

// The store keeps counters packed; a restart at another resolution
// re-buckets them without losing a unit, and a damaged blob is a clear
// error, not a crash.
TEST_F(WorkedExample, StoreRebucketsAndRefusesDamagedBlobs) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       absl::StrCat("wattlens-cost-rebucket-", getpid(), ".db"))
          .string();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix);
  }
  {
    ClusterState state(clock_, ClusterOptions{});
    auto store = Store::Open({path}, clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->LoadInto(state).ok());
    (*store)->Start();
    state.Apply(report_, [&](NodeWrite&& nw) {
      (*store)->Submit(std::move(nw), [](const absl::Status&) {});
    });
    (*store)->Flush();
  }
  ClusterOptions coarse;
  coarse.resolution_ns = 60'000'000'000;
  ClusterState restored(clock_, coarse);
  restored.SetCostEngine(state_.cost_engine());
  {
    StoreOptions so{path};
    so.resolution_ns = coarse.resolution_ns;
    auto store = Store::Open(so, clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->LoadInto(restored).ok());
  }
  const GetUsageResponse after = UsageOf(restored);
  EXPECT_EQ(after.total().energy_microjoules(),
            Usage().total().energy_microjoules());
  EXPECT_NEAR(after.total().cost().total(), 0.424, 1e-12);
  // Damage one bucket blob: loading names the problem.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE buckets SET counters = x'01ff'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  ClusterState damaged(clock_, coarse);
  StoreOptions so{path};
  so.resolution_ns = coarse.resolution_ns;
  auto store = Store::Open(so, clock_);
  ASSERT_TRUE(store.ok());
  absl::Status st = (*store)->LoadInto(damaged);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find("damaged counters"), std::string::npos) << st;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix);
  }
}

TEST(CountersPack, RoundTripsAndRejectsTruncation) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 1000; ++i) {
    Counters c;
    for (auto f : Counters::kFields) c.*f = rng() >> (rng() % 64);
    const std::string p = c.Pack();
    Counters back;
    ASSERT_TRUE(Counters::Unpack(p.data(), p.size(), &back));
    EXPECT_EQ(back, c);
    for (size_t cut = 0; cut < p.size(); ++cut) {
      EXPECT_FALSE(Counters::Unpack(p.data(), cut, &back)) << cut;
    }
  }
  const std::string zero = Counters().Pack();
  EXPECT_EQ(zero.size(), 1 + Counters::kFields.size());
}

// Hourly intensity from a time-series file: each bucket's energy is priced
// at the intensity of its own time.
TEST(CostTimeSeries, EachBucketUsesTheIntensityOfItsTime) {
  const auto dir = std::filesystem::temp_directory_path() /
                   absl::StrCat("wattlens-cost-ts-", getpid());
  std::filesystem::create_directories(dir);
  const int64_t t0 = 1'800'000'000;  // unix seconds, an hour boundary - 800
  std::ofstream(dir / "grid.csv")
      << "time,region_or_zone,g_per_kwh\n"
      << t0 << ",us-east-1,100\n"
      << t0 + 3600 << ",us-east-1,500\n";
  auto model = pricing::CostModel::FromText(
      "intensity_timeseries = \"grid.csv\"\npue = 1\n",
      (dir / "cost.toml").string(), "");
  ASSERT_TRUE(model.ok()) << model.status();
  // FakeClock's wall clock is its monotonic value + 1.7e18 ns.
  FakeClock clock((t0 + 7200) * 1'000'000'000 - 1'700'000'000'000'000'000);
  ClusterState state(clock, ClusterOptions{});
  state.SetCostEngine(std::make_shared<const CostEngine>(*std::move(model)));
  NodeReport r;
  r.set_node_name("ts");
  r.set_epoch(1);
  r.mutable_node()->set_cpus(1);
  (*r.mutable_node()->mutable_labels())["topology.kubernetes.io/region"] =
      "us-east-1";
  auto* w = r.add_workloads();
  w->mutable_identity()->set_cgroup_path("/a");
  auto* e = w->add_energy();
  // 1 kWh in the first hour, 2 kWh more in the second.
  for (const auto& [seq, at, kwh] :
       {std::tuple<int, int64_t, uint64_t>{1, t0 + 1800, 1},
        std::tuple<int, int64_t, uint64_t>{2, t0 + 5400, 3}}) {
    r.set_sequence(seq);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(at * 1'000'000'000);
    e->set_microjoules(kwh * 1000 * kUjPerWh);
    ASSERT_TRUE(ValidateReport(r, ReportLimits{}).ok());
    state.Apply(r, nullptr);
  }
  GetUsageRequest req;
  req.mutable_window()->set_seconds(7200);
  auto resp = state.GetUsage(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  // 1 kWh x 100 g/kWh + 2 kWh x 500 g/kWh.
  EXPECT_NEAR(resp->total().carbon().operational_grams(), 1100, 1e-9);
  std::filesystem::remove_all(dir);
}

TEST(CostProperty, UnknownRegionFallsBackToWorldAverageAndSaysSo) {
  FakeClock clock(1'800'000'000'000'000'000);
  ClusterState state(clock, ClusterOptions{});
  state.SetCostEngine(Engine(""));
  NodeReport r;
  r.set_node_name("far");
  r.set_epoch(1);
  r.set_sequence(1);
  *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock.RealtimeNs());
  r.set_elapsed_nanoseconds(kHourNs);
  r.mutable_node()->set_cpus(2);
  r.mutable_node()->set_memory_bytes(4 * kGiB);
  (*r.mutable_node()->mutable_labels())["topology.kubernetes.io/region"] =
      "mars-1";
  auto* w = r.add_workloads();
  w->mutable_identity()->set_cgroup_path("/a");
  w->add_energy()->set_microjoules(kUjPerWh * 1000);  // 1 kWh
  state.Apply(r, nullptr);
  GetUsageRequest req;
  req.mutable_window()->set_seconds(3600);
  auto resp = state.GetUsage(req);
  ASSERT_TRUE(resp.ok());
  ASSERT_GE(resp->warnings_size(), 1);
  EXPECT_NE(resp->warnings(0).find("world average"), std::string::npos)
      << resp->warnings(0);
  // 1 kWh x PUE 1.58 (unknown provider) x 472.94 g/kWh (Ember WORLD).
  EXPECT_NEAR(resp->total().carbon().operational_grams(), 1.58 * 472.94,
              1e-6);
}

}  // namespace
}  // namespace wattlens::collector
