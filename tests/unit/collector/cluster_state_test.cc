// SPDX-License-Identifier: Apache-2.0
// ClusterState and validation: exactness under repeat, reorder, loss, reset
// and restart; hostile field values; store round trip.
#include "collector/cluster_state.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "collector/store.h"
#include "collector/validate.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace wattlens::collector {
namespace {

using google::protobuf::util::TimeUtil;
using wattlens::v1::NodeReport;

class ClusterStateTest : public ::testing::Test {
 protected:
  NodeReport Report(uint64_t epoch, uint64_t seq, uint64_t cpu,
                    uint64_t cgroup_id = 1) {
    NodeReport r;
    r.set_node_name("n1");
    r.set_epoch(epoch);
    r.set_sequence(seq);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock_.RealtimeNs());
    auto* w = r.add_workloads();
    w->mutable_identity()->set_cgroup_path("/system.slice/a.service");
    w->mutable_identity()->set_cgroup_id(cgroup_id);
    w->set_cpu_nanoseconds(cpu);
    w->set_syscalls(cpu / 10);
    return r;
  }
  uint64_t TotalCpu() {
    wattlens::v1::GetUsageRequest req;
    req.mutable_window()->set_seconds(3600);
    auto r = state_.GetUsage(req);
    EXPECT_TRUE(r.ok());
    return r->total().cpu_nanoseconds();
  }
  void Apply(const NodeReport& r) {
    ASSERT_TRUE(ValidateReport(r, ReportLimits{}).ok());
    state_.Apply(r, nullptr);
    clock_.AdvanceNs(10'000'000'000);
  }

  FakeClock clock_{1'000'000'000'000};
  ClusterState state_{clock_, ClusterOptions{}};
};

TEST_F(ClusterStateTest, RepeatedAndReorderedReportsAddNothing) {
  Apply(Report(5, 1, 100));
  Apply(Report(5, 3, 300));
  Apply(Report(5, 2, 200));  // late: covered by #3
  Apply(Report(5, 3, 300));  // repeat
  EXPECT_EQ(TotalCpu(), 300u);
  EXPECT_EQ(state_.stats().duplicates.load(), 2u);
  Apply(Report(5, 4, 450));
  EXPECT_EQ(TotalCpu(), 450u);
}

TEST_F(ClusterStateTest, NewEpochStartsFromZeroOldEpochIgnored) {
  Apply(Report(5, 1, 1000));
  Apply(Report(6, 1, 10));  // agent restarted
  EXPECT_EQ(TotalCpu(), 1010u);
  Apply(Report(5, 2, 5000));  // the old instance, late
  EXPECT_EQ(TotalCpu(), 1010u);
  EXPECT_EQ(state_.stats().stale_epoch.load(), 1u);
  Apply(Report(6, 2, 30));
  EXPECT_EQ(TotalCpu(), 1030u);
}

TEST_F(ClusterStateTest, ResetWithinEpochNeverNegative) {
  Apply(Report(5, 1, 1000));
  Apply(Report(5, 2, 40));  // went backwards: counted as reset
  EXPECT_EQ(TotalCpu(), 1040u);
  Apply(Report(5, 3, 50, /*cgroup_id=*/2));  // same path, new cgroup
  EXPECT_EQ(TotalCpu(), 1090u);
  EXPECT_EQ(state_.stats().counter_resets.load(), 2u);
}

TEST_F(ClusterStateTest, WindowsSelectBuckets) {
  Apply(Report(5, 1, 100));  // t0
  clock_.AdvanceNs(590'000'000'000);
  Apply(Report(5, 2, 300));  // ~10 min later
  wattlens::v1::GetUsageRequest req;
  req.mutable_window()->set_seconds(60);
  auto r = state_.GetUsage(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->total().cpu_nanoseconds(), 200u);
  EXPECT_DOUBLE_EQ(r->total().cpu_cores(), 200e-9 / 60);
  req.mutable_window()->set_seconds(3600);
  EXPECT_EQ(state_.GetUsage(req)->total().cpu_nanoseconds(), 300u);
  req.mutable_window()->set_seconds(0);
  req.mutable_since()->set_seconds(10);
  req.mutable_until()->set_seconds(5);
  EXPECT_EQ(state_.GetUsage(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The agent's kernel threads: a workload like any other (its own row by
// workload and by project), not an energy bucket.
TEST_F(ClusterStateTest, KernelWorkloadIsAWorkload) {
  NodeReport r = Report(1, 1, 1000);
  auto* k = r.add_workloads();
  auto* id = k->mutable_identity();
  id->set_cgroup_path("kernel");
  id->set_cgroup_id(0xfffffffffffffffeULL);
  id->set_workload_kind("kernel");
  id->set_workload("kernel");
  id->set_project("linux");
  k->set_cpu_nanoseconds(300);
  auto* e = k->add_energy();
  e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
  e->set_microjoules(42);
  Apply(r);
  wattlens::v1::GetUsageRequest req;
  req.mutable_window()->set_seconds(3600);
  for (auto group :
       {wattlens::v1::GROUP_BY_WORKLOAD, wattlens::v1::GROUP_BY_PROJECT,
        wattlens::v1::GROUP_BY_CGROUP}) {
    req.set_group_by(group);
    auto u = state_.GetUsage(req);
    ASSERT_TRUE(u.ok()) << u.status();
    int rows = 0;
    const bool by_project = group == wattlens::v1::GROUP_BY_PROJECT;
    for (const auto& row : u->rows()) {
      if (by_project ? row.key().project() != "linux"
                     : row.key().workload() != "kernel") {
        continue;
      }
      ++rows;
      EXPECT_EQ(row.usage().cpu_nanoseconds(), 300u);
      EXPECT_EQ(row.usage().energy_microjoules(), 42u);
      if (!by_project) {
        EXPECT_EQ(row.key().workload_kind(), "kernel");
      }
    }
    EXPECT_EQ(rows, 1) << group;
    EXPECT_EQ(u->total().cpu_nanoseconds(), 1300u);
  }
}

// Where energy comes from travels from each node's report into every usage
// row: a row of one node has that node's provenance, a row summing a
// modelled and a measured node is mixed, and rejected meters (other than
// absent ones) are named with their node.
TEST_F(ClusterStateTest, EnergyProvenancePassesIntoEveryRow) {
  auto with_energy = [&](const std::string& node, bool measured,
                         const std::string& source) {
    NodeReport r = Report(1, 1, 1000);
    r.set_node_name(node);
    auto* e = r.mutable_workloads(0)->add_energy();
    e->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
    e->set_microjoules(5'000'000);
    auto* p = r.mutable_energy_provenance();
    p->set_basis(measured ? wattlens::v1::ENERGY_BASIS_MEASURED
                          : wattlens::v1::ENERGY_BASIS_MODELLED);
    p->add_sources(source);
    return r;
  };
  NodeReport modelled = with_energy("n1", false, "model:ccf");
  auto* stuck = modelled.mutable_energy_provenance()->add_rejected();
  stuck->set_source("perf-power");
  stuck->set_reason("stuck");
  stuck->set_detail("energy-psys (psys) did not advance over 500 ms");
  auto* absent = modelled.mutable_energy_provenance()->add_rejected();
  absent->set_source("rapl-powercap");
  absent->set_reason("absent");
  Apply(modelled);
  Apply(with_energy("n2", true, "rapl-powercap"));

  wattlens::v1::GetUsageRequest req;
  req.mutable_window()->set_seconds(3600);
  req.set_group_by(wattlens::v1::GROUP_BY_NODE);
  auto by_node = state_.GetUsage(req);
  ASSERT_TRUE(by_node.ok()) << by_node.status();
  ASSERT_EQ(by_node->rows_size(), 2);
  for (const auto& row : by_node->rows()) {
    const auto& p = row.usage().energy_provenance();
    ASSERT_EQ(p.sources_size(), 1);
    if (row.key().node_name() == "n1") {
      EXPECT_EQ(p.basis(), wattlens::v1::ENERGY_BASIS_MODELLED);
      EXPECT_EQ(p.sources(0), "model:ccf");
      ASSERT_EQ(p.rejected_size(), 1);  // the absent RAPL is not listed
      EXPECT_EQ(p.rejected(0).source(), "perf-power");
      EXPECT_EQ(p.rejected(0).reason(), "stuck");
      EXPECT_EQ(p.rejected(0).node_name(), "n1");
    } else {
      EXPECT_EQ(p.basis(), wattlens::v1::ENERGY_BASIS_MEASURED);
      EXPECT_EQ(p.sources(0), "rapl-powercap");
      EXPECT_EQ(p.rejected_size(), 0);
    }
  }
  // One workload on both nodes: one row, mixed.
  req.set_group_by(wattlens::v1::GROUP_BY_WORKLOAD);
  auto by_workload = state_.GetUsage(req);
  ASSERT_TRUE(by_workload.ok());
  ASSERT_EQ(by_workload->rows_size(), 1);
  const auto& mixed = by_workload->rows(0).usage().energy_provenance();
  EXPECT_EQ(by_workload->rows(0).usage().energy_microjoules(), 10'000'000u);
  EXPECT_EQ(mixed.basis(), wattlens::v1::ENERGY_BASIS_MIXED);
  ASSERT_EQ(mixed.sources_size(), 2);
  EXPECT_EQ(mixed.sources(0), "model:ccf");
  EXPECT_EQ(mixed.sources(1), "rapl-powercap");
  EXPECT_EQ(by_workload->total().energy_provenance().basis(),
            wattlens::v1::ENERGY_BASIS_MIXED);
  // And each node's own, in ListNodes.
  const wattlens::v1::ListNodesResponse nodes = state_.ListNodes();
  for (const auto& n : nodes.nodes()) {
    EXPECT_EQ(n.energy_provenance().basis(),
              n.node_name() == "n1" ? wattlens::v1::ENERGY_BASIS_MODELLED
                                    : wattlens::v1::ENERGY_BASIS_MEASURED);
  }
}

// A node that lists rejected sources on many nodes' worth: one entry per
// (source, reason), saying how many nodes.
TEST_F(ClusterStateTest, RejectedSourcesOfManyNodesAreOneEntry) {
  for (const char* node : {"a", "b", "c"}) {
    NodeReport r = Report(1, 1, 1000);
    r.set_node_name(node);
    auto* p = r.mutable_energy_provenance();
    p->set_basis(wattlens::v1::ENERGY_BASIS_MODELLED);
    p->add_sources("model:ccf");
    auto* stuck = p->add_rejected();
    stuck->set_source("perf-power");
    stuck->set_reason("stuck");
    Apply(r);
  }
  wattlens::v1::GetUsageRequest req;
  req.mutable_window()->set_seconds(3600);
  auto u = state_.GetUsage(req);
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->rows_size(), 1);
  const auto& p = u->rows(0).usage().energy_provenance();
  EXPECT_EQ(p.basis(), wattlens::v1::ENERGY_BASIS_MODELLED);
  ASSERT_EQ(p.rejected_size(), 1);
  EXPECT_EQ(p.rejected(0).node_name(), "");
  EXPECT_EQ(p.rejected(0).detail(), "on 3 nodes");
}

// A window that a node has not reported up to says so, per node: a node
// that went quiet (not reporting), one sending its backlog after an outage
// (catching up), and neither for a window that ends before either fell
// behind. The threshold is three of the node's upload intervals, as its
// reports state or, from older agents, as their spacing shows.
class PartialTest : public ::testing::Test {
 protected:
  void Report(const std::string& node, uint64_t seq, int64_t time_ns,
              int64_t upload_interval_ns) {
    NodeReport r;
    r.set_node_name(node);
    r.set_epoch(7);
    r.set_sequence(seq);
    *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(time_ns);
    if (upload_interval_ns > 0) {
      *r.mutable_upload_interval() =
          TimeUtil::NanosecondsToDuration(upload_interval_ns);
    }
    auto* w = r.add_workloads();
    w->mutable_identity()->set_cgroup_path("/system.slice/a.service");
    w->mutable_identity()->set_cgroup_id(1);
    w->set_cpu_nanoseconds(seq * 1000);
    ASSERT_TRUE(ValidateReport(r, ReportLimits{}).ok());
    state_.Apply(r, nullptr);
  }
  wattlens::v1::GetUsageResponse Query(int64_t until_ns = 0) {
    wattlens::v1::GetUsageRequest req;
    req.mutable_window()->set_seconds(300);
    if (until_ns)
      *req.mutable_until() = TimeUtil::NanosecondsToTimestamp(until_ns);
    auto r = state_.GetUsage(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : wattlens::v1::GetUsageResponse();
  }
  int64_t Now() const { return clock_.RealtimeNs(); }

  static constexpr int64_t kSec = 1'000'000'000;
  FakeClock clock_{2'000'000 * kSec};
  ClusterState state_{clock_, ClusterOptions{}};
};

TEST_F(PartialTest, UpToDateNodesAreNotPartial) {
  for (uint64_t i = 1; i <= 5; ++i) {
    Report("a", i, Now(), 10 * kSec);
    Report("b", i, Now(), 10 * kSec);
    clock_.AdvanceNs(10 * kSec);
  }
  // The last reports are 10 s old: within three 10 s intervals.
  auto r = Query();
  EXPECT_FALSE(r.partial());
  EXPECT_EQ(r.partial_nodes_size(), 0);
}

TEST_F(PartialTest, QuietNodeThenCatchingUpThenCaughtUp) {
  const int64_t t0 = Now();
  for (uint64_t i = 1; i <= 3; ++i) {
    Report("a", i, Now(), 10 * kSec);
    Report("b", i, Now(), 10 * kSec);
    clock_.AdvanceNs(10 * kSec);
  }
  const int64_t b_last = t0 + 20 * kSec;
  // b's collector connection is gone for 60 s while a keeps reporting.
  for (uint64_t i = 4; i <= 9; ++i) {
    Report("a", i, Now(), 10 * kSec);
    clock_.AdvanceNs(10 * kSec);
  }
  state_.Tick();  // b: silent for 70 s, STALE
  auto r = Query();
  EXPECT_TRUE(r.partial());
  ASSERT_EQ(r.partial_nodes_size(), 1);
  const auto& p = r.partial_nodes(0);
  EXPECT_EQ(p.node_name(), "b");
  EXPECT_EQ(p.reason(), wattlens::v1::PARTIAL_REASON_NOT_REPORTING);
  EXPECT_EQ(TimeUtil::TimestampToNanoseconds(p.reported_until()), b_last);
  EXPECT_EQ(TimeUtil::DurationToNanoseconds(p.behind()), Now() - b_last);
  EXPECT_EQ(TimeUtil::DurationToSeconds(p.upload_interval()), 10);

  // b is back and sends its outbox oldest first: connected, but behind.
  Report("b", 4, b_last + 10 * kSec, 10 * kSec);
  Report("b", 5, b_last + 20 * kSec, 10 * kSec);
  r = Query();
  EXPECT_TRUE(r.partial());
  ASSERT_EQ(r.partial_nodes_size(), 1);
  EXPECT_EQ(r.partial_nodes(0).node_name(), "b");
  EXPECT_EQ(r.partial_nodes(0).reason(),
            wattlens::v1::PARTIAL_REASON_CATCHING_UP);
  EXPECT_EQ(TimeUtil::DurationToNanoseconds(r.partial_nodes(0).behind()),
            Now() - (b_last + 20 * kSec));

  // A window that ended before b fell behind is complete for b.
  r = Query(b_last + 10 * kSec);
  EXPECT_EQ(r.partial_nodes_size(), 0);
  EXPECT_FALSE(r.partial());

  // The rest of the backlog: caught up.
  for (uint64_t i = 6; i <= 9; ++i) {
    Report("b", i, b_last + (static_cast<int64_t>(i) - 3) * 10 * kSec,
           10 * kSec);
  }
  r = Query();
  EXPECT_EQ(r.partial_nodes_size(), 0) << r.partial_nodes(0).DebugString();
  EXPECT_FALSE(r.partial());
}

TEST_F(PartialTest, IntervalFromTheSpacingOfReportsWithoutTheField) {
  // An agent that does not state its interval, reporting every 60 s.
  Report("old", 1, Now(), 0);
  clock_.AdvanceNs(60 * kSec);
  Report("old", 2, Now(), 0);
  clock_.AdvanceNs(150 * kSec);  // 150 s < 3 x 60 s: not yet behind
  EXPECT_EQ(Query().partial_nodes_size(), 0);
  clock_.AdvanceNs(40 * kSec);  // 190 s
  auto r = Query();
  ASSERT_EQ(r.partial_nodes_size(), 1);
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.partial_nodes(0).upload_interval()),
            60);
  // One report only, no field: the collector's default (10 s).
  Report("new", 1, Now(), 0);
  clock_.AdvanceNs(31 * kSec);
  r = Query();
  ASSERT_EQ(r.partial_nodes_size(), 2);
  EXPECT_EQ(r.partial_nodes(0).node_name(), "new");  // sorted by name
  EXPECT_EQ(TimeUtil::DurationToSeconds(r.partial_nodes(0).upload_interval()),
            10);
}

TEST_F(PartialTest, NodeGoneBeforeTheWindowIsNotPartial) {
  Report("gone", 1, Now(), 10 * kSec);
  clock_.AdvanceNs(1000 * kSec);  // past the GONE TTL and the 300 s window
  state_.Tick();
  auto r = Query();
  EXPECT_EQ(r.gone_nodes(), 1u);
  EXPECT_EQ(r.partial_nodes_size(), 0);
  EXPECT_FALSE(r.partial());
}

TEST(ValidateTest, HostileFieldsRefused) {
  NodeReport ok;
  ok.set_node_name("node-1");
  ok.set_epoch(1);
  ok.set_sequence(1);
  ok.mutable_time()->set_seconds(1'700'000'000);
  ok.add_workloads()->mutable_identity()->set_cgroup_path("/");
  ASSERT_TRUE(ValidateReport(ok, {}).ok());
  auto expect_bad = [&](auto mutate, const char* what) {
    NodeReport r = ok;
    mutate(r);
    absl::Status st = ValidateReport(r, {});
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << what;
  };
  expect_bad([](NodeReport& r) { r.set_node_name(""); }, "empty node");
  expect_bad([](NodeReport& r) { r.set_node_name("a/b"); }, "slash");
  expect_bad([](NodeReport& r) { r.set_node_name(std::string(300, 'a')); },
             "long node");
  expect_bad([](NodeReport& r) { r.set_epoch(0); }, "epoch");
  expect_bad([](NodeReport& r) { r.set_sequence(0); }, "sequence");
  expect_bad([](NodeReport& r) { r.clear_time(); }, "time");
  expect_bad([](NodeReport& r) { r.mutable_interval()->set_seconds(-1); },
             "interval");
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->mutable_identity()->set_cgroup_path("x");
      },
      "relative path");
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->mutable_identity()->set_cgroup_path("__x__");
      },
      "unknown bucket name");
  expect_bad(
      [](NodeReport& r) {
        r.add_workloads()->mutable_identity()->set_cgroup_path("/");
      },
      "repeated path");
  {
    // The node's energy buckets and the kernel threads are the only paths
    // not starting with '/'.
    NodeReport r = ok;
    r.add_workloads()->mutable_identity()->set_cgroup_path("__idle__");
    r.add_workloads()->mutable_identity()->set_cgroup_path("__unattributed__");
    r.add_workloads()->mutable_identity()->set_cgroup_path("kernel");
    EXPECT_TRUE(ValidateReport(r, {}).ok());
  }
  {
    NodeReport r = ok;
    r.add_energy_buckets()->set_bucket(wattlens::v1::ENERGY_BUCKET_IDLE);
    r.add_energy_buckets()->set_bucket(
        wattlens::v1::ENERGY_BUCKET_UNATTRIBUTED);
    EXPECT_TRUE(ValidateReport(r, {}).ok());
  }
  expect_bad(
      [](NodeReport& r) {
        r.add_energy_buckets()->set_bucket(
            wattlens::v1::ENERGY_BUCKET_UNSPECIFIED);
      },
      "unspecified bucket");
  expect_bad(
      [](NodeReport& r) {
        r.add_energy_buckets()->set_bucket(wattlens::v1::ENERGY_BUCKET_IDLE);
        r.add_energy_buckets()->set_bucket(wattlens::v1::ENERGY_BUCKET_IDLE);
      },
      "repeated bucket");
  expect_bad(
      [](NodeReport& r) {
        r.add_energy_buckets()->set_bucket(wattlens::v1::ENERGY_BUCKET_IDLE);
        r.add_workloads()->mutable_identity()->set_cgroup_path("__idle__");
      },
      "bucket also sent as a workload");
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->mutable_identity()->set_pod("a\nb");
      },
      "control char");
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->set_cpu_nanoseconds(~uint64_t{0});
      },
      "wrapped negative");
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->add_network()->set_network_class(
            static_cast<wattlens::v1::NetworkClass>(99));
      },
      "enum");
  expect_bad([](NodeReport& r) { r.mutable_power()->set_watts(-1); }, "watts");
  expect_bad([](NodeReport& r) { r.mutable_power()->set_watts(std::nan("")); },
             "nan");
  // Cost inputs (issue #7).
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->set_cpu_request_cores(std::nan(""));
      },
      "nan request");
  expect_bad(
      [](NodeReport& r) { r.mutable_workloads(0)->set_cpu_request_cores(-1); },
      "negative request");
  expect_bad(
      [](NodeReport& r) {
        r.mutable_workloads(0)->set_cpu_allocated_core_nanoseconds(
            ~uint64_t{0});
      },
      "wrapped allocation");
  expect_bad([](NodeReport& r) { r.set_elapsed_nanoseconds(~uint64_t{0}); },
             "wrapped elapsed");
  expect_bad([](NodeReport& r) { r.mutable_node()->set_cpus(~0u); }, "cpus");
  expect_bad(
      [](NodeReport& r) {
        (*r.mutable_node()->mutable_labels())["region"] = "a\x01b";
      },
      "label control char");
  expect_bad(
      [](NodeReport& r) {
        (*r.mutable_node()->mutable_labels())[""] = "x";
      },
      "empty label key");
  expect_bad(
      [](NodeReport& r) {
        for (int i = 0; i < 300; ++i) {
          (*r.mutable_node()->mutable_labels())[absl::StrCat("k", i)] = "v";
        }
      },
      "too many labels");
  ReportLimits small;
  small.max_workloads = 0;
  EXPECT_FALSE(ValidateReport(ok, small).ok());
}

TEST(StoreTest, RestoresStateSoResendsAreDuplicates) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            absl::StrCat("wattlens-store-", getpid(), ".db"))
                               .string();
  std::filesystem::remove(path);
  FakeClock clock(1'000'000'000'000);
  NodeReport r;
  r.set_node_name("n1");
  r.set_epoch(7);
  r.set_sequence(3);
  *r.mutable_time() = TimeUtil::NanosecondsToTimestamp(clock.RealtimeNs());
  auto* w = r.add_workloads();
  w->mutable_identity()->set_cgroup_path("/kubepods/pod1");
  w->mutable_identity()->set_namespace_("shop");
  w->set_cpu_nanoseconds(12345);
  {
    ClusterState state(clock, {});
    auto store = Store::Open({path}, clock);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->LoadInto(state).ok());
    (*store)->Start();
    int acked = 0;
    state.Apply(r, [&](NodeWrite&& nw) {
      (*store)->Submit(std::move(nw), [&](const absl::Status& st) {
        EXPECT_TRUE(st.ok());
        ++acked;
      });
    });
    (*store)->Flush();
    EXPECT_EQ(acked, 1);
  }
  ClusterState state(clock, {});
  auto store = Store::Open({path}, clock);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->LoadInto(state).ok());
  EXPECT_TRUE(state.Apply(r, nullptr).duplicate);
  w->set_cpu_nanoseconds(20000);
  r.set_sequence(4);
  auto res4 = state.Apply(r, nullptr);
  EXPECT_FALSE(res4.duplicate);
  EXPECT_EQ(res4.series_changed, 1u);
  wattlens::v1::GetUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_NAMESPACE);
  auto u = state.GetUsage(req);
  ASSERT_TRUE(u.ok());
  ASSERT_EQ(u->rows_size(), 1);
  EXPECT_EQ(u->rows(0).key().namespace_(), "shop");
  EXPECT_EQ(u->rows(0).usage().cpu_nanoseconds(), 20000u);
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
}

}  // namespace
}  // namespace wattlens::collector
