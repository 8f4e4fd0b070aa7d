// SPDX-License-Identifier: Apache-2.0
#include "agent/common/health_http.h"

#include <atomic>
#include <memory>

#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "tests/http_get.h"

namespace wattlens {
namespace {

using testing::HttpGet;
using testing::HttpRequest;

TEST(HealthChecksTest, AllPassIsHealthyAndEveryCheckIsListed) {
  HealthChecks checks;
  checks.Add(HealthProbe::kReadiness, "a", [] { return absl::OkStatus(); });
  checks.Add(HealthProbe::kReadiness, "b", [] { return absl::OkStatus(); });
  checks.Add(HealthProbe::kLiveness, "live",
             [] { return absl::UnavailableError("not for readiness"); });
  HealthChecks::Result r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_TRUE(r.healthy);
  EXPECT_EQ(r.body, "[+]a ok\n[+]b ok\nreadyz check passed\n");
}

TEST(HealthChecksTest, OneFailureFailsTheProbeWithItsReason) {
  HealthChecks checks;
  checks.Add(HealthProbe::kLiveness, "a", [] { return absl::OkStatus(); });
  checks.Add(HealthProbe::kLiveness, "b",
             [] { return absl::UnavailableError("wedged"); });
  HealthChecks::Result r = checks.Evaluate(HealthProbe::kLiveness);
  EXPECT_FALSE(r.healthy);
  EXPECT_EQ(r.body, "[+]a ok\n[-]b failed: wedged\nhealthz check failed\n");
}

TEST(HealthChecksTest, NoChecksIsHealthy) {
  HealthChecks checks;
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);
}

TEST(ProgressCheckTest, FailsOnlyAfterTheWindowWithoutChange) {
  FakeClock clock;
  ProgressCheck p(clock, 10'000'000'000, "ticks");
  EXPECT_TRUE(p.Observe(0).ok());  // grace from construction
  clock.AdvanceNs(10'000'000'000);
  EXPECT_TRUE(p.Observe(0).ok());  // exactly the window
  clock.AdvanceNs(1);
  absl::Status st = p.Observe(0);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "ticks: no progress for 10 s (limit 10 s)");
  EXPECT_TRUE(p.Observe(1).ok());  // progress heals at once
  clock.AdvanceNs(9'000'000'000);
  EXPECT_TRUE(p.Observe(1).ok());
  clock.AdvanceNs(2'000'000'000);
  EXPECT_FALSE(p.Observe(1).ok());
}

class HealthHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    checks_.Add(HealthProbe::kLiveness, "live", [this] {
      return live_ ? absl::OkStatus() : absl::UnavailableError("stuck");
    });
    checks_.Add(HealthProbe::kReadiness, "ready", [this] {
      return ready_ ? absl::OkStatus() : absl::UnavailableError("source down");
    });
    auto e = StartExposerWithHealth("127.0.0.1:0", &checks_);
    ASSERT_TRUE(e.ok()) << e.status();
    exposer_ = std::move(e).value();
    registry_ = std::make_shared<prometheus::Registry>();
    exposer_->RegisterCollectable(registry_);
    port_ = exposer_->GetListeningPorts().front();
  }
  void TearDown() override { exposer_.reset(); }

  std::atomic<bool> live_{true};
  std::atomic<bool> ready_{true};
  HealthChecks checks_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

TEST_F(HealthHttpTest, HealthyAnswers200OnBothPaths) {
  auto h = HttpGet(port_, "/healthz");
  EXPECT_EQ(h.code, 200);
  EXPECT_EQ(h.body, "[+]live ok\nhealthz check passed\n");
  auto r = HttpGet(port_, "/readyz");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "[+]ready ok\nreadyz check passed\n");
}

TEST_F(HealthHttpTest, AnUnhealthyCheckAnswers503WithTheReason) {
  ready_ = false;
  auto r = HttpGet(port_, "/readyz");
  EXPECT_EQ(r.code, 503);
  EXPECT_EQ(r.body, "[-]ready failed: source down\nreadyz check failed\n");
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 200);  // probes are separate
  live_ = false;
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 503);
  ready_ = true;
  live_ = true;
  EXPECT_EQ(HttpGet(port_, "/readyz").code, 200);
  EXPECT_EQ(HttpGet(port_, "/healthz").code, 200);
}

TEST_F(HealthHttpTest, MetricsStillServedOnTheSamePort) {
  prometheus::BuildCounter()
      .Name("wl_health_test_total")
      .Help("test")
      .Register(*registry_)
      .Add({})
      .Increment();
  auto m = HttpGet(port_, "/metrics");
  EXPECT_EQ(m.code, 200);
  EXPECT_NE(m.body.find("wl_health_test_total 1"), std::string::npos) << m.body;
}

TEST_F(HealthHttpTest, HeadHasNoBodyOtherMethodsAndPathsRefused) {
  auto head = HttpRequest(port_, "HEAD", "/readyz");
  EXPECT_EQ(head.code, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(HttpRequest(port_, "POST", "/readyz").code, 405);
  EXPECT_EQ(HttpGet(port_, "/healthzx").code, 404);
  EXPECT_EQ(HttpGet(port_, "/readyz/extra").code, 404);
}

TEST(HealthHttpStartTest, BindFailureIsAStatusNotAnException) {
  HealthChecks checks;
  auto first = StartExposerWithHealth("127.0.0.1:0", &checks);
  ASSERT_TRUE(first.ok());
  const int port = (*first)->GetListeningPorts().front();
  auto second =
      StartExposerWithHealth("127.0.0.1:" + std::to_string(port), &checks);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  // The failed attempt left nothing behind: the first server still answers.
  EXPECT_EQ(HttpGet(port, "/healthz").code, 200);
}

}  // namespace
}  // namespace wattlens
