// SPDX-License-Identifier: Apache-2.0
// --node_identity=token end to end in process: an mTLS collector whose
// agents share one certificate (CN wattlens-agent, as the Kubernetes Secret
// gives them) and prove their node with a service-account token, reviewed by
// a fake TokenReview. An agent reports as its own node only: a report for
// another node, a missing, forged or non-agent token are each refused and
// counted, and a certificate that happens to name another node grants
// nothing in this mode.
#include "collector/node_token.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "cluster_harness.h"
#include "collector/validate.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "proto/transport/tls.h"

namespace wattlens::testing {
namespace {

using collector::RejectReason;
using collector::TokenReviewResult;

constexpr absl::Duration kWait = absl::Seconds(20);
constexpr char kAgentSa[] = "system:serviceaccount:wattlens:wattlens-agent";

class TableReviewer : public collector::TokenReviewer {
 public:
  absl::StatusOr<TokenReviewResult> Review(const std::string& token) override {
    if (token == "tok-node-a")
      return TokenReviewResult{true, kAgentSa, "node-a", ""};
    if (token == "tok-node-b")
      return TokenReviewResult{true, kAgentSa, "node-b", ""};
    if (token == "tok-web-on-b")
      return TokenReviewResult{true, "system:serviceaccount:shop:web", "node-b",
                               ""};
    return TokenReviewResult{false, "", "", "invalid bearer token"};
  }
};

class NodeTokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     absl::StrCat("wattlens-sat-", getpid()));
    std::filesystem::create_directories(*dir_);
    ASSERT_TRUE(
        MakeTestCertificates(dir_->string(), "wattlens-test-ca",
                             {"collector", "wattlens-agent", "node-b"}));
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
    o.tick_period = absl::ZeroDuration();
    collector::NodeTokenOptions no;
    no.service_accounts = {kAgentSa};
    o.ingest.node_tokens = std::make_shared<collector::NodeTokenVerifier>(
        std::make_unique<TableReviewer>(), no, clock_);
    auto c = collector::Collector::Start(o, clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    collector_ = std::move(c).value();
    target_ = absl::StrCat("127.0.0.1:", collector_->port());
  }

  // Writes `token` to a file named after it, for the uploader.
  std::string TokenFile(const std::string& token) {
    std::string path =
        F(absl::StrCat("token-", token.empty() ? "none" : token));
    std::ofstream(path) << token << "\n";
    return path;
  }

  std::unique_ptr<Uploader> MakeUploader(FakeAgent& a, const std::string& cert,
                                         const std::string& token) {
    UploaderOptions uo;
    uo.collector = target_;
    uo.tls = {F(cert + ".crt"), F(cert + ".key"), F("ca.crt")};
    uo.tls_server_name = "collector";
    if (!token.empty()) uo.token_file = TokenFile(token);
    uo.interval = absl::ZeroDuration();
    uo.backoff_min = absl::Milliseconds(20);
    uo.backoff_max = absl::Milliseconds(100);
    auto up = Uploader::Create(uo, [&a] { return a.Build(); });
    EXPECT_TRUE(up.ok()) << up.status();
    (*up)->Start();
    return std::move(up).value();
  }

  void Queue(FakeAgent& a, Uploader& u) {
    clock_.AdvanceNs(10'000'000'000);
    a.Step();
    u.CollectNow();
  }
  // One report, acknowledged.
  bool Send(FakeAgent& a, Uploader& u) {
    Queue(a, u);
    return u.WaitForAcked(a.epoch(), a.sequence(), kWait);
  }
  // One report; the stream fails and nothing is acknowledged.
  void SendRefused(FakeAgent& a, Uploader& u) {
    Queue(a, u);
    ASSERT_TRUE(u.WaitForStreamFailures(1, kWait));
    EXPECT_EQ(u.stats().acked, 0u);
  }

  uint64_t Rejected(RejectReason r) {
    return collector_->ingest_counters().rejected.Get(r);
  }

  static std::filesystem::path* dir_;
  FakeClock clock_{1'000'000'000'000};
  std::unique_ptr<collector::Collector> collector_;
  std::string target_;
};
std::filesystem::path* NodeTokenTest::dir_ = nullptr;

TEST_F(NodeTokenTest, SharedCertificatePlusOwnNodeTokenIsAccepted) {
  FakeAgent a("node-a", clock_, 1);
  auto u = MakeUploader(a, "wattlens-agent", "tok-node-a");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Send(a, *u)) << u->stats().last_error;
  }
  EXPECT_EQ(collector_->ingest_counters().rejected.Get(
                RejectReason::kIdentityMismatch),
            0u);
  u->Stop(absl::ZeroDuration());
}

TEST_F(NodeTokenTest, ATokenForNodeACannotReportForNodeB) {
  FakeAgent b("node-b", clock_, 2);
  auto u = MakeUploader(b, "wattlens-agent", "tok-node-a");
  SendRefused(b, *u);
  EXPECT_NE(u->stats().last_error.find("PERMISSION_DENIED"), std::string::npos)
      << u->stats().last_error;
  EXPECT_NE(u->stats().last_error.find("node-a"), std::string::npos);
  EXPECT_GE(Rejected(RejectReason::kIdentityMismatch), 1u);
  u->Stop(absl::ZeroDuration());
}

TEST_F(NodeTokenTest, ACertificateNamingTheNodeIsNotEnough) {
  // Certificate CN=node-b, token for node-a: in token mode the certificate
  // names no node, so node-b is still refused.
  FakeAgent b("node-b", clock_, 3);
  auto u = MakeUploader(b, "node-b", "tok-node-a");
  SendRefused(b, *u);
  EXPECT_GE(Rejected(RejectReason::kIdentityMismatch), 1u);
  u->Stop(absl::ZeroDuration());
}

TEST_F(NodeTokenTest, MissingForgedAndNonAgentTokensAreRefused) {
  FakeAgent b("node-b", clock_, 4);
  for (const std::string token : {"", "forged", "tok-web-on-b"}) {
    SCOPED_TRACE(token);
    const uint64_t before = Rejected(RejectReason::kNoNodeToken);
    auto u = MakeUploader(b, "wattlens-agent", token);
    SendRefused(b, *u);
    EXPECT_NE(u->stats().last_error.find("UNAUTHENTICATED"), std::string::npos)
        << u->stats().last_error;
    EXPECT_GE(Rejected(RejectReason::kNoNodeToken), before + 1);
    u->Stop(absl::ZeroDuration());
  }
  // An honest node-b agent is served all along.
  auto honest = MakeUploader(b, "wattlens-agent", "tok-node-b");
  ASSERT_TRUE(Send(b, *honest)) << honest->stats().last_error;
  honest->Stop(absl::ZeroDuration());
}

TEST_F(NodeTokenTest, StillNeedsAClientCertificate) {
  transport::TlsFiles f;
  f.ca = F("ca.crt");  // no client certificate
  auto creds = transport::ClientCredentials(f);
  ASSERT_TRUE(creds.ok());
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("collector");
  auto channel = grpc::CreateCustomChannel(target_, *creds, args);
  auto stub = wattlens::v1::IngestService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tok-node-a");
  auto stream = stub->Upload(&ctx);
  FakeAgent a("node-a", clock_, 5);
  a.Step();
  wattlens::v1::UploadRequest req;
  *req.mutable_report() = *a.Build();
  stream->Write(req);
  stream->WritesDone();
  wattlens::v1::UploadResponse ack;
  while (stream->Read(&ack)) {
  }
  // Refused by the TLS layer: the stream never reaches the service.
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Rejected(RejectReason::kNoClientCertificate), 0u);
}

}  // namespace
}  // namespace wattlens::testing
