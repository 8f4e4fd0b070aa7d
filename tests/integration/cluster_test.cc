// SPDX-License-Identifier: Apache-2.0
// Three fake agents and a collector in one process on 127.0.0.1:0: cluster
// totals equal exactly what the agents produced, across an agent restart
// (new epoch), a collector restart (store reopened) and duplicate reports; a
// silent node turns stale then gone and queries and the watch stream say so.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cluster_harness.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "wattlens/v1/query.grpc.pb.h"

namespace wattlens::testing {
namespace {

using collector::Collector;
using collector::CollectorOptions;
using collector::Counters;

constexpr absl::Duration kWait = absl::Seconds(20);

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat(
               "wattlens-cluster-", getpid(), "-",
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (auto& u : uploaders_) u->Stop(absl::ZeroDuration());
    uploaders_.clear();
    collector_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartCollector(int port = 0) {
    CollectorOptions o;
    o.listen_address = absl::StrCat("127.0.0.1:", port);
    o.metrics_address = "";
    o.insecure = true;
    o.db_path = (dir_ / "collector.db").string();
    o.tick_period = absl::ZeroDuration();
    auto c = Collector::Start(o, clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    collector_ = std::move(c).value();
    port_ = collector_->port();
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                   grpc::InsecureChannelCredentials());
    query_ = wattlens::v1::QueryService::NewStub(channel_);
  }

  std::unique_ptr<Uploader> MakeUploader(FakeAgent* agent) {
    UploaderOptions o;
    o.collector = absl::StrCat("127.0.0.1:", port_);
    o.insecure = true;
    o.interval = absl::ZeroDuration();  // reports only via CollectNow()
    o.backoff_min = absl::Milliseconds(20);
    o.backoff_max = absl::Milliseconds(200);
    o.seed = 7;
    auto u = Uploader::Create(o, [agent] { return agent->Build(); });
    EXPECT_TRUE(u.ok()) << u.status();
    (*u)->Start();
    return std::move(u).value();
  }

  // One interval on every agent; waits until each report is acknowledged.
  void Round(std::vector<FakeAgent*> agents) {
    clock_.AdvanceNs(10'000'000'000);
    for (size_t i = 0; i < agents.size(); ++i) {
      agents[i]->Step();
      uploaders_[i]->CollectNow();
    }
    for (size_t i = 0; i < agents.size(); ++i) {
      ASSERT_TRUE(uploaders_[i]->WaitForAcked(agents[i]->epoch(),
                                              agents[i]->sequence(), kWait))
          << agents[i]->node() << " seq " << agents[i]->sequence()
          << " last error: " << uploaders_[i]->stats().last_error;
    }
  }

  wattlens::v1::GetUsageResponse Usage(wattlens::v1::GroupBy group,
                                       const std::string& ns = "") {
    wattlens::v1::GetUsageRequest req;
    req.set_group_by(group);
    req.set_namespace_(ns);
    req.mutable_window()->set_seconds(24 * 3600 - 60);
    grpc::ClientContext ctx;
    wattlens::v1::GetUsageResponse resp;
    grpc::Status st = query_->GetUsage(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  static void ExpectUsage(const wattlens::v1::Usage& u, const Counters& c) {
    EXPECT_EQ(u.cpu_nanoseconds(), c.cpu_ns);
    EXPECT_EQ(u.syscalls(), c.syscalls);
    EXPECT_EQ(u.syscall_errors(), c.syscall_errors);
    EXPECT_EQ(u.network_transmit_bytes(), c.net_tx_bytes);
    EXPECT_EQ(u.network_receive_bytes(), c.net_rx_bytes);
    EXPECT_EQ(u.energy_microjoules(), c.energy_uj);
  }

  void ExpectExactTotals(const std::vector<FakeAgent*>& agents) {
    auto by_node = Usage(wattlens::v1::GROUP_BY_NODE);
    ASSERT_EQ(by_node.rows_size(), static_cast<int>(agents.size()));
    Counters all;
    for (const FakeAgent* a : agents) {
      all.Add(a->produced_total());
      bool found = false;
      for (const auto& row : by_node.rows()) {
        if (row.key().node_name() != a->node()) continue;
        found = true;
        SCOPED_TRACE(a->node());
        ExpectUsage(row.usage(), a->produced_total());
      }
      EXPECT_TRUE(found) << a->node();
    }
    ExpectUsage(by_node.total(), all);
    // Finest grain: every (node, cgroup) exactly.
    auto by_cgroup = Usage(wattlens::v1::GROUP_BY_CGROUP);
    for (const auto& row : by_cgroup.rows()) {
      for (const FakeAgent* a : agents) {
        if (row.key().node_name() != a->node()) continue;
        SCOPED_TRACE(row.key().cgroup_path());
        ExpectUsage(row.usage(), a->produced().at(row.key().cgroup_path()));
      }
    }
  }

  FakeClock clock_{1'000'000'000'000};
  std::filesystem::path dir_;
  std::unique_ptr<Collector> collector_;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<wattlens::v1::QueryService::Stub> query_;
  std::vector<std::unique_ptr<Uploader>> uploaders_;
};

TEST_F(ClusterTest, TotalsExactAcrossAgentAndCollectorRestarts) {
  StartCollector();
  FakeAgent a("node-a", clock_, 1), b("node-b", clock_, 2),
      c("node-c", clock_, 3);
  std::vector<FakeAgent*> agents = {&a, &b, &c};
  for (FakeAgent* x : agents) uploaders_.push_back(MakeUploader(x));
  for (int i = 0; i < 5; ++i) Round(agents);
  ExpectExactTotals(agents);

  // Agent b restarts: a new epoch whose counters start from zero.
  uploaders_[1]->Stop(absl::ZeroDuration());
  b.Restart();
  uploaders_[1] = MakeUploader(&b);
  for (int i = 0; i < 3; ++i) Round(agents);
  ExpectExactTotals(agents);

  // The collector restarts on the same port and store; agents keep
  // producing while it is away and resend what was not acknowledged.
  const int port = port_;
  collector_->Shutdown();
  collector_.reset();
  clock_.AdvanceNs(10'000'000'000);
  for (size_t i = 0; i < agents.size(); ++i) {
    agents[i]->Step();
    uploaders_[i]->CollectNow();
  }
  StartCollector(port);
  ASSERT_EQ(port_, port);
  for (size_t i = 0; i < agents.size(); ++i) {
    ASSERT_TRUE(uploaders_[i]->WaitForAcked(agents[i]->epoch(),
                                            agents[i]->sequence(), kWait));
  }
  for (int i = 0; i < 3; ++i) Round(agents);
  ExpectExactTotals(agents);

  // Every report again, as a flaky network might deliver it: nothing added.
  auto stub = wattlens::v1::IngestService::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = stub->Upload(&ctx);
  wattlens::v1::UploadRequest req;
  *req.mutable_report() = *a.Build();
  ASSERT_TRUE(stream->Write(req));
  wattlens::v1::UploadResponse ack;
  ASSERT_TRUE(stream->Read(&ack));
  EXPECT_TRUE(ack.duplicate());
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  ExpectExactTotals(agents);

  // Grouping by namespace: host workloads have none, "shop" has the pods.
  auto by_ns = Usage(wattlens::v1::GROUP_BY_NAMESPACE);
  ASSERT_EQ(by_ns.rows_size(), 2);
  auto by_workload = Usage(wattlens::v1::GROUP_BY_WORKLOAD, "shop");
  ASSERT_EQ(by_workload.rows_size(), 2);  // Deployment/web, StatefulSet/db
  EXPECT_EQ(by_workload.rows(0).series(), 3u);  // one pod per node
  auto host = Usage(wattlens::v1::GROUP_BY_WORKLOAD, "-");
  ASSERT_EQ(host.rows_size(), 3);  // sshd, containerd, session-1.scope
  for (const auto& row : host.rows()) {
    EXPECT_TRUE(row.key().workload() == "sshd.service" ||
                row.key().workload() == "containerd.service" ||
                row.key().workload() == "session-1.scope")
        << row.key().workload();
  }
  const wattlens::v1::ListNodesResponse nodes =
      collector_->state().ListNodes();
  for (const auto& n : nodes.nodes()) {
    EXPECT_EQ(n.state(), wattlens::v1::NODE_STATE_CONNECTED);
  }
  EXPECT_EQ(nodes.nodes(1).epochs_seen(), 2u);  // node-b restarted once
}

TEST_F(ClusterTest, SilentNodeTurnsStaleThenGone) {
  StartCollector();
  FakeAgent a("node-a", clock_, 1), b("node-b", clock_, 2);
  uploaders_.push_back(MakeUploader(&a));
  uploaders_.push_back(MakeUploader(&b));
  Round({&a, &b});

  // Watch from here on.
  grpc::ClientContext watch_ctx;
  wattlens::v1::WatchRequest wreq;
  auto watch = query_->Watch(&watch_ctx, wreq);
  wattlens::v1::WatchResponse ev;
  for (int i = 0; i < 2; ++i) {  // current state of both nodes
    ASSERT_TRUE(watch->Read(&ev));
    EXPECT_EQ(ev.node_status().state(), wattlens::v1::NODE_STATE_CONNECTED);
  }

  // b goes silent; a keeps reporting.
  uploaders_[1]->Stop(absl::ZeroDuration());
  uploaders_.pop_back();
  for (int i = 0; i < 4; ++i) Round({&a});  // 40 s
  collector_->Tick();
  ASSERT_TRUE(watch->Read(&ev));
  EXPECT_EQ(ev.node_status().node_name(), "node-b");
  EXPECT_EQ(ev.node_status().state(), wattlens::v1::NODE_STATE_STALE);
  EXPECT_EQ(ev.node_status().previous_state(),
            wattlens::v1::NODE_STATE_CONNECTED);
  auto usage = Usage(wattlens::v1::GROUP_BY_NODE);
  EXPECT_TRUE(usage.partial());
  ASSERT_EQ(usage.missing_nodes_size(), 1);
  EXPECT_EQ(usage.missing_nodes(0), "node-b");
  EXPECT_EQ(usage.connected_nodes(), 1u);
  EXPECT_EQ(usage.stale_nodes(), 1u);

  clock_.AdvanceNs(300'000'000'000);
  collector_->Tick();
  std::map<std::string, wattlens::v1::NodeState> states;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(watch->Read(&ev));
    states[ev.node_status().node_name()] = ev.node_status().state();
  }
  EXPECT_EQ(states["node-a"], wattlens::v1::NODE_STATE_STALE);  // silent too
  EXPECT_EQ(states["node-b"], wattlens::v1::NODE_STATE_GONE);
  usage = Usage(wattlens::v1::GROUP_BY_NODE);
  EXPECT_EQ(usage.gone_nodes(), 1u);
  EXPECT_EQ(usage.stale_nodes(), 1u);
  EXPECT_EQ(usage.missing_nodes_size(), 2);
  // Their history is still there, and exact.
  ExpectUsage(usage.total(), [&] {
    Counters c = a.produced_total();
    c.Add(b.produced_total());
    return c;
  }());

  // node-a reports again: CONNECTED event.
  Round({&a});
  ASSERT_TRUE(watch->Read(&ev));
  EXPECT_EQ(ev.node_status().node_name(), "node-a");
  EXPECT_EQ(ev.node_status().state(), wattlens::v1::NODE_STATE_CONNECTED);
  watch_ctx.TryCancel();
}

}  // namespace
}  // namespace wattlens::testing
