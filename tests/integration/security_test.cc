// SPDX-License-Identifier: Apache-2.0
// Hostile peers against an mTLS collector: a report for another node's
// identity, no client certificate, malformed and oversized reports are each
// refused with a clear status and counted, while an honest agent keeps being
// served; agent and reader roles are kept apart. Certificates are made with
// the openssl CLI in a temp dir.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "cluster_harness.h"
#include "collector/validate.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "proto/transport/tls.h"

namespace wattlens::testing {
namespace {

using collector::RejectReason;
using collector::WorkloadRefusal;

constexpr absl::Duration kWait = absl::Seconds(20);

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     absl::StrCat("wattlens-tls-", getpid()));
    std::filesystem::create_directories(*dir_);
    ASSERT_TRUE(MakeTestCertificates(
        dir_->string(), "wattlens-test-ca",
        {"collector:none", "node-a", "cli:reader", "norole:none"}));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string F(const std::string& name) {
    return (*dir_ / name).string();
  }

  void SetUp() override {
    collector::CollectorOptions o;
    o.listen_address = "127.0.0.1:0";
    o.metrics_address = "";
    o.tls = {F("collector.crt"), F("collector.key"), F("ca.crt")};
    o.ingest.limits.max_report_bytes = 64 << 10;
    o.tick_period = absl::ZeroDuration();
    auto c = collector::Collector::Start(o, clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    collector_ = std::move(c).value();
    target_ = absl::StrCat("127.0.0.1:", collector_->port());
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& identity) {
    transport::TlsFiles f;
    f.ca = F("ca.crt");
    if (!identity.empty()) {
      f.cert = F(identity + ".crt");
      f.key = F(identity + ".key");
    }
    auto creds = transport::ClientCredentials(f);
    EXPECT_TRUE(creds.ok()) << creds.status();
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("collector");
    // A distinct connection per test channel (no subchannel sharing).
    args.SetString("wattlens.test.identity", identity);
    return grpc::CreateCustomChannel(target_, *creds, args);
  }

  // Sends one report on a fresh stream; returns how the stream ended.
  grpc::Status SendOnce(const std::string& identity,
                        const wattlens::v1::NodeReport& report) {
    auto stub = wattlens::v1::IngestService::NewStub(Channel(identity));
    grpc::ClientContext ctx;
    auto stream = stub->Upload(&ctx);
    wattlens::v1::UploadRequest req;
    *req.mutable_report() = report;
    stream->Write(req);
    stream->WritesDone();
    wattlens::v1::UploadResponse ack;
    while (stream->Read(&ack)) {
    }
    return stream->Finish();
  }

  uint64_t Rejected(RejectReason r) {
    return collector_->ingest_counters().rejected.Get(r);
  }

  static std::filesystem::path* dir_;
  FakeClock clock_{1'000'000'000'000};
  std::unique_ptr<collector::Collector> collector_;
  std::string target_;
};
std::filesystem::path* SecurityTest::dir_ = nullptr;

TEST_F(SecurityTest, HostilePeersRefusedAndCountedHonestAgentServed) {
  FakeAgent a("node-a", clock_, 1);
  UploaderOptions uo;
  uo.collector = target_;
  uo.tls = {F("node-a.crt"), F("node-a.key"), F("ca.crt")};
  uo.tls_server_name = "collector";
  uo.interval = absl::ZeroDuration();
  uo.backoff_min = absl::Milliseconds(20);
  auto up = Uploader::Create(uo, [&a] { return a.Build(); });
  ASSERT_TRUE(up.ok()) << up.status();
  (*up)->Start();
  auto round = [&] {
    clock_.AdvanceNs(10'000'000'000);
    a.Step();
    (*up)->CollectNow();
    ASSERT_TRUE((*up)->WaitForAcked(a.epoch(), a.sequence(), kWait))
        << (*up)->stats().last_error;
  };
  round();

  // node-a's certificate reporting for node-b.
  FakeAgent b("node-b", clock_, 2);
  b.Step();
  grpc::Status st = SendOnce("node-a", *b.Build());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("node-b"), std::string::npos);
  EXPECT_EQ(Rejected(RejectReason::kIdentityMismatch), 1u);

  // No client certificate at all: the TLS layer refuses it, so no stream
  // (and no handler) ever exists for it.
  st = SendOnce("", *a.Build());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Rejected(RejectReason::kNoClientCertificate), 0u);

  // Malformed workloads (one without a cgroup path; a negative-looking,
  // wrapped counter where errors exceed calls) are left out and counted; the
  // rest of the report is taken.
  auto bad = *a.Build();
  bad.mutable_workloads(0)->mutable_identity()->clear_cgroup_path();
  bad.mutable_workloads(1)->set_syscall_errors(bad.workloads(1).syscalls() + 1);
  st = SendOnce("node-a", bad);
  EXPECT_TRUE(st.ok()) << st.error_message();
  const auto& refused = collector_->ingest_counters().refused_workloads;
  EXPECT_EQ(refused.Get(WorkloadRefusal::kPath), 1u);
  EXPECT_EQ(refused.Get(WorkloadRefusal::kInconsistent), 1u);
  // A malformed report field still refuses the report.
  bad = *a.Build();
  bad.set_epoch(0);
  st = SendOnce("node-a", bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("epoch"), std::string::npos);
  EXPECT_EQ(Rejected(RejectReason::kMalformed), 1u);

  // Oversized: ~100 KiB against a 64 KiB limit.
  auto big = *a.Build();
  for (int i = 0; i < 400; ++i) {
    big.add_workloads()->mutable_identity()->set_cgroup_path(
        absl::StrCat("/", std::string(250, 'x'), i));
  }
  st = SendOnce("node-a", big);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("exceeds"), std::string::npos);
  EXPECT_EQ(Rejected(RejectReason::kOversized), 1u);

  // The honest agent was never disturbed and its totals are exact.
  round();
  round();
  wattlens::v1::GetUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_NODE);
  req.mutable_window()->set_seconds(3600);
  auto usage = collector_->state().GetUsage(req);
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->rows_size(), 1);
  EXPECT_EQ(usage->rows(0).key().node_name(), "node-a");
  EXPECT_EQ(usage->total().cpu_nanoseconds(), a.produced_total().cpu_ns);
  EXPECT_EQ((*up)->stats().stream_failures, 0u);
  (*up)->Stop(absl::ZeroDuration());

  // Queries need a client certificate too; the CLI with one works.
  auto qstub = wattlens::v1::QueryService::NewStub(Channel(""));
  grpc::ClientContext qctx;
  wattlens::v1::ListNodesResponse nodes;
  EXPECT_EQ(qstub->ListNodes(&qctx, {}, &nodes).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  std::ostringstream out, err;
  const int rc = cli::RunCli(
      {"--server", target_, "--tls-ca-file", F("ca.crt"), "--tls-cert-file",
       F("cli.crt"), "--tls-key-file", F("cli.key"), "--tls-server-name",
       "collector", "top", "--group-by=node", "-o", "json", "--window=1h"},
      out, err);
  EXPECT_EQ(rc, 0) << err.str();
  EXPECT_NE(out.str().find("\"node_name\":\"node-a\""), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find(absl::StrCat("\"cpu_nanoseconds\":\"",
                                        a.produced_total().cpu_ns, "\"")),
            std::string::npos);
}

TEST_F(SecurityTest, AgentsOnlyUploadReadersOnlyQuery) {
  // The CLI's (reader) certificate cannot report, not even as the node its
  // certificate names.
  FakeAgent cli("cli", clock_, 3);
  cli.Step();
  grpc::Status st = SendOnce("cli", *cli.Build());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A certificate without a role cannot either.
  FakeAgent norole("norole", clock_, 4);
  norole.Step();
  st = SendOnce("norole", *norole.Build());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Rejected(RejectReason::kNoClientCertificate), 2u);
  EXPECT_EQ(collector_->state().ListNodes().nodes_size(), 0);

  // An agent's certificate cannot read the cluster; nor can a role-less one;
  // the reader can.
  auto list = [&](const std::string& identity) {
    auto stub = wattlens::v1::QueryService::NewStub(Channel(identity));
    grpc::ClientContext ctx;
    wattlens::v1::ListNodesResponse nodes;
    return stub->ListNodes(&ctx, {}, &nodes);
  };
  st = list("node-a");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("reader"), std::string::npos);
  EXPECT_EQ(list("norole").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(list("cli").ok());
  wattlens::v1::GetUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_NODE);
  auto stub = wattlens::v1::QueryService::NewStub(Channel("node-a"));
  grpc::ClientContext ctx;
  wattlens::v1::GetUsageResponse usage;
  EXPECT_EQ(stub->GetUsage(&ctx, req, &usage).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SecurityTest, CliNamesTheTlsFailure) {
  // A CLI certificate from another CA: the collector refuses the handshake;
  // the user is told why instead of "Socket closed".
  const auto other = *dir_ / "other";
  std::filesystem::create_directories(other);
  ASSERT_TRUE(MakeTestCertificates(other.string(), "other-ca", {"cli:reader"}));
  std::ostringstream out, err;
  const int rc =
      cli::RunCli({"--server", target_, "--tls-ca-file", F("ca.crt"),
                   "--tls-cert-file", (other / "cli.crt").string(),
                   "--tls-key-file", (other / "cli.key").string(),
                   "--tls-server-name", "collector", "status", "--timeout=5s"},
                  out, err);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.str().find("TLS"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("certificate"), std::string::npos) << err.str();
}

TEST_F(SecurityTest, PlaintextClientCannotTalkToTlsCollector) {
  auto stub = wattlens::v1::QueryService::NewStub(
      grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  wattlens::v1::ListNodesResponse nodes;
  EXPECT_EQ(stub->ListNodes(&ctx, {}, &nodes).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST(ListenerTest, SecondCollectorOnTheSamePortFailsToStart) {
  collector::CollectorOptions o;
  o.listen_address = "127.0.0.1:0";
  o.metrics_address = "";
  o.insecure = true;
  o.tick_period = absl::ZeroDuration();
  FakeClock clock(1'000'000'000'000);
  auto first = collector::Collector::Start(o, clock);
  ASSERT_TRUE(first.ok()) << first.status();
  o.listen_address = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = collector::Collector::Start(o, clock);
  EXPECT_FALSE(second.ok()) << "two collectors share port " << (*first)->port();
}

}  // namespace
}  // namespace wattlens::testing
