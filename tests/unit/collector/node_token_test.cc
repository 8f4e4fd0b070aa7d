// SPDX-License-Identifier: Apache-2.0
// Node identity from service-account tokens: the verifier's policy and cache
// with a fake reviewer, and the TokenReview client against a fake API server
// (civetweb on 127.0.0.1:0) that checks what the collector sends.
#include "collector/node_token.h"

#include <civetweb.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace wattlens::collector {
namespace {

constexpr char kAgentSa[] = "system:serviceaccount:wattlens:wattlens-agent";

class FakeReviewer : public TokenReviewer {
 public:
  explicit FakeReviewer(std::map<std::string, TokenReviewResult> answers,
                        std::atomic<int>* calls)
      : answers_(std::move(answers)), calls_(calls) {}
  absl::StatusOr<TokenReviewResult> Review(const std::string& token) override {
    ++*calls_;
    if (token == "api-down")
      return absl::UnavailableError("connection refused");
    auto it = answers_.find(token);
    if (it == answers_.end())
      return TokenReviewResult{false, "", "", "invalid"};
    return it->second;
  }

 private:
  std::map<std::string, TokenReviewResult> answers_;
  std::atomic<int>* calls_;
};

absl::StatusOr<std::string> VerifySync(NodeTokenVerifier& v,
                                       const std::string& token) {
  absl::Notification done;
  absl::StatusOr<std::string> out;
  v.Verify(token, [&](absl::StatusOr<std::string> node) {
    out = std::move(node);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

class NodeTokenVerifierTest : public ::testing::Test {
 protected:
  NodeTokenVerifierTest() {
    NodeTokenOptions o;
    o.service_accounts = {kAgentSa};
    verifier_ = std::make_unique<NodeTokenVerifier>(
        std::make_unique<FakeReviewer>(
            std::map<std::string, TokenReviewResult>{
                {"tok-a", {true, kAgentSa, "node-a", ""}},
                {"tok-other-sa",
                 {true, "system:serviceaccount:default:web", "node-a", ""}},
                {"tok-no-node", {true, kAgentSa, "", ""}},
            },
            &calls_),
        o, clock_);
  }
  FakeClock clock_;
  std::atomic<int> calls_{0};
  std::unique_ptr<NodeTokenVerifier> verifier_;
};

TEST_F(NodeTokenVerifierTest, AnAgentTokenNamesItsNode) {
  auto node = VerifySync(*verifier_, "tok-a");
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(*node, "node-a");
}

TEST_F(NodeTokenVerifierTest, RefusesOtherUsersTokensWithoutNodeAndInvalid) {
  auto other = VerifySync(*verifier_, "tok-other-sa");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(other.status().message(),
            "token of system:serviceaccount:default:web, which is not an "
            "agent service account");
  auto no_node = VerifySync(*verifier_, "tok-no-node");
  EXPECT_EQ(no_node.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(no_node.status().message().find("names no node"),
            std::string::npos);
  auto bad = VerifySync(*verifier_, "forged");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(bad.status().message(),
            "service-account token refused by the API server: invalid");
}

TEST_F(NodeTokenVerifierTest, AnswersAreCachedForTheirTtlOnly) {
  ASSERT_TRUE(VerifySync(*verifier_, "tok-a").ok());
  ASSERT_TRUE(VerifySync(*verifier_, "tok-a").ok());
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_EQ(verifier_->cache_hits(), 1u);
  clock_.AdvanceNs(61'000'000'000);  // accept_ttl 60 s
  ASSERT_TRUE(VerifySync(*verifier_, "tok-a").ok());
  EXPECT_EQ(calls_.load(), 2);
  // Refusals are remembered for 5 s.
  EXPECT_FALSE(VerifySync(*verifier_, "forged").ok());
  EXPECT_FALSE(VerifySync(*verifier_, "forged").ok());
  EXPECT_EQ(calls_.load(), 3);
  clock_.AdvanceNs(6'000'000'000);
  EXPECT_FALSE(VerifySync(*verifier_, "forged").ok());
  EXPECT_EQ(calls_.load(), 4);
}

TEST_F(NodeTokenVerifierTest, ApiServerTroubleIsUnavailableAndNotCached) {
  auto r = VerifySync(*verifier_, "api-down");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  VerifySync(*verifier_, "api-down").IgnoreError();
  EXPECT_EQ(calls_.load(), 2);
}

TEST(BearerTokenTest, OnlyBearerCredentials) {
  EXPECT_EQ(BearerToken("Bearer abc.def"), "abc.def");
  EXPECT_EQ(BearerToken("bearer  abc "), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken(""), "");
}

// A fake kube-apiserver: POST /apis/authentication.k8s.io/v1/tokenreviews.
struct FakeApi {
  std::atomic<int> requests{0};
  std::string last_auth, last_body;
  int code = 201;
  std::string answer;
  mg_context* ctx = nullptr;
  int port = 0;

  static int Handle(mg_connection* conn, void* data) {
    auto* api = static_cast<FakeApi*>(data);
    const mg_request_info* ri = mg_get_request_info(conn);
    ++api->requests;
    const char* auth = mg_get_header(conn, "Authorization");
    api->last_auth = auth ? auth : "";
    api->last_body.clear();
    char buf[4096];
    for (int n; (n = mg_read(conn, buf, sizeof(buf))) > 0;) {
      api->last_body.append(buf, n);
    }
    if (std::strcmp(ri->request_method, "POST") != 0) {
      mg_printf(conn, "HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n");
      return 405;
    }
    mg_printf(conn,
              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
              "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
              api->code, api->answer.size(), api->answer.c_str());
    return api->code;
  }
  void Start() {
    const char* opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2",
                          nullptr};
    ctx = mg_start(nullptr, nullptr, opts);
    ASSERT_NE(ctx, nullptr);
    mg_set_request_handler(ctx, "/apis/authentication.k8s.io/v1/tokenreviews$",
                           &Handle, this);
    mg_server_port ports[1];
    ASSERT_EQ(mg_get_server_ports(ctx, 1, ports), 1);
    port = ports[0].port;
  }
  ~FakeApi() {
    if (ctx) mg_stop(ctx);
  }
};

std::string Review(bool authenticated, const std::string& user,
                   const std::string& node, const std::string& audience) {
  nlohmann::json status = {{"authenticated", authenticated}};
  if (authenticated) {
    status["audiences"] = {audience};
    status["user"] = {{"username", user},
                      {"extra",
                       {{"authentication.kubernetes.io/pod-name", {"agent-x"}},
                        {"authentication.kubernetes.io/node-name", {node}}}}};
  } else {
    status["error"] = "token has expired";
  }
  return nlohmann::json({{"apiVersion", "authentication.k8s.io/v1"},
                         {"kind", "TokenReview"},
                         {"status", status}})
      .dump();
}

class KubeTokenReviewerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.Start();
    own_ = std::filesystem::temp_directory_path() /
           absl::StrCat("wl-collector-token-", getpid());
    std::ofstream(own_) << "collector-own-token\n";
    KubeTokenReviewerOptions o;
    o.server = absl::StrCat("http://127.0.0.1:", api_.port);
    o.token_file = own_.string();
    o.audience = "wattlens-collector";
    auto r = NewKubeTokenReviewer(o, clock_);
    ASSERT_TRUE(r.ok()) << r.status();
    reviewer_ = std::move(r).value();
  }
  void TearDown() override { std::filesystem::remove(own_); }
  FakeClock clock_;
  FakeApi api_;
  std::filesystem::path own_;
  std::unique_ptr<TokenReviewer> reviewer_;
};

TEST_F(KubeTokenReviewerTest, SendsTheTokenAndAudienceAndReadsTheNode) {
  api_.answer = Review(true, kAgentSa, "node-a", "wattlens-collector");
  auto r = reviewer_->Review("agent-token");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->authenticated);
  EXPECT_EQ(r->username, kAgentSa);
  EXPECT_EQ(r->node_name, "node-a");
  EXPECT_EQ(api_.last_auth, "Bearer collector-own-token");
  auto body = nlohmann::json::parse(api_.last_body);
  EXPECT_EQ(body["kind"], "TokenReview");
  EXPECT_EQ(body["apiVersion"], "authentication.k8s.io/v1");
  EXPECT_EQ(body["spec"]["token"], "agent-token");
  EXPECT_EQ(body["spec"]["audiences"],
            nlohmann::json::array({"wattlens-collector"}));
}

TEST_F(KubeTokenReviewerTest, WrongAudienceIsNotAuthenticated) {
  api_.answer = Review(true, kAgentSa, "node-a", "https://kubernetes.default");
  auto r = reviewer_->Review("agent-token");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->authenticated);
  EXPECT_EQ(r->error, "token not valid for audience wattlens-collector");
}

TEST_F(KubeTokenReviewerTest, RefusedTokenCarriesTheServersError) {
  api_.answer = Review(false, "", "", "");
  auto r = reviewer_->Review("old-token");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->authenticated);
  EXPECT_EQ(r->error, "token has expired");
}

TEST_F(KubeTokenReviewerTest, ForbiddenAndGarbageAreUnavailable) {
  api_.code = 403;
  api_.answer = R"({"kind":"Status","reason":"Forbidden"})";
  auto r = reviewer_->Review("agent-token");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("HTTP 403"), std::string::npos);
  api_.code = 201;
  api_.answer = "<html>";
  EXPECT_EQ(reviewer_->Review("agent-token").status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(KubeTokenReviewerNoServerTest, UnreachableApiIsUnavailable) {
  FakeClock clock;
  const auto own = std::filesystem::temp_directory_path() /
                   absl::StrCat("wl-collector-token2-", getpid());
  std::ofstream(own) << "t";
  auto r = NewKubeTokenReviewer(
      {"http://127.0.0.1:1", "", own.string(), "wattlens-collector"}, clock);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->Review("x").status().code(), absl::StatusCode::kUnavailable);
  std::filesystem::remove(own);
}

}  // namespace
}  // namespace wattlens::collector
