// /healthz and /readyz of the agent and the collector: each answers 200
// while its components are healthy and 503, naming the component, when one
// is not. Checks are driven with a FakeClock and real components; the HTTP
// side is the real server on 127.0.0.1:0.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "agent/common/health_http.h"
#include "agent/export/agent_health.h"
#include "agent/export/upload_health.h"
#include "collector/collector.h"
#include "collector/health_http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http_get.h"
#include "tests/integration/cluster_harness.h"

namespace wattlens {
namespace {

using ::testing::HasSubstr;
using testing::HttpGet;

constexpr int64_t kSecond = 1'000'000'000;

std::shared_ptr<Snapshot> SnapshotAt(int64_t mono, bool network_up = true) {
  auto s = std::make_shared<Snapshot>();
  s->sequence = 1;
  s->monotonic_ns = mono;
  s->self.sources = {
      {"syscalls", true, ""},
      {"sched", true, ""},
      {"network", network_up,
       network_up ? "" : "sock_send_length tracepoint missing"},
      {"power", false, "no meter"},  // not a readiness component
  };
  return s;
}

TEST(AgentHealthTest, ReadyOnlyWithAFreshSnapshotAndTheBpfSourcesUp) {
  FakeClock clock;
  SnapshotStore store;
  HealthChecks checks;
  AddAgentHealthChecks(checks, store, clock, absl::Seconds(1));

  auto r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]snapshot failed: no snapshot published"));
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);

  store.Publish(SnapshotAt(clock.MonotonicNs()));
  r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_TRUE(r.healthy) << r.body;  // power down does not matter

  store.Publish(SnapshotAt(clock.MonotonicNs(), /*network_up=*/false));
  r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]sources failed: network: sock_send_length "
                                "tracepoint missing"));

  store.Publish(SnapshotAt(clock.MonotonicNs()));
  clock.AdvanceNs(5 * kSecond + 1);  // fresh limit: max(3 x 1 s, 5 s)
  r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]snapshot failed: newest snapshot is"));
}

TEST(AgentHealthTest, LivenessFailsWhenTheDrainLoopStopsPublishing) {
  FakeClock clock;
  SnapshotStore store;
  HealthChecks checks;
  AddAgentHealthChecks(checks, store, clock, absl::Seconds(1));
  store.Publish(SnapshotAt(clock.MonotonicNs()));
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);
  clock.AdvanceNs(30 * kSecond);
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);
  clock.AdvanceNs(1);
  auto r = checks.Evaluate(HealthProbe::kLiveness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body,
              HasSubstr("[-]drain failed: no snapshot published for 30 s"));
  store.Publish(SnapshotAt(clock.MonotonicNs()));
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);
}

TEST(UploaderHealthTest, NotReadyWithoutAcknowledgementsAndSaysWhy) {
  FakeClock clock;
  UploaderOptions o;
  o.collector = "127.0.0.1:1";  // nothing listens on port 1
  o.insecure = true;
  o.interval = absl::ZeroDuration();
  o.backoff_min = absl::Milliseconds(20);
  o.backoff_max = absl::Milliseconds(50);
  auto u = Uploader::Create(o, [] {
    wattlens::v1::NodeReport r;
    r.set_node_name("node-a");
    r.set_epoch(1);
    r.set_sequence(1);
    return std::optional<wattlens::v1::NodeReport>(r);
  });
  ASSERT_TRUE(u.ok()) << u.status();
  (*u)->Start();
  (*u)->CollectNow();
  HealthChecks checks;
  AddUploaderHealthCheck(checks, **u, clock, absl::Seconds(60));
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kReadiness).healthy);  // grace
  ASSERT_TRUE((*u)->WaitForStreamFailures(1, absl::Seconds(20)));
  clock.AdvanceNs(61 * kSecond);
  auto r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]collector failed: collector "
                                "acknowledgements: no progress for 61 s"));
  EXPECT_THAT(r.body, HasSubstr("last error: "));
  (*u)->Stop(absl::ZeroDuration());
}

TEST(UploaderHealthTest, ReadyWhileTheCollectorAcknowledges) {
  FakeClock clock;
  collector::CollectorOptions co;
  co.listen_address = "127.0.0.1:0";
  co.metrics_address = "";
  co.insecure = true;
  co.tick_period = absl::ZeroDuration();
  auto c = collector::Collector::Start(co, clock);
  ASSERT_TRUE(c.ok()) << c.status();
  testing::FakeAgent agent("node-a", clock, 1);
  UploaderOptions o;
  o.collector = absl::StrCat("127.0.0.1:", (*c)->port());
  o.insecure = true;
  o.interval = absl::ZeroDuration();
  auto u = Uploader::Create(o, [&agent] { return agent.Build(); });
  ASSERT_TRUE(u.ok()) << u.status();
  (*u)->Start();
  HealthChecks checks;
  AddUploaderHealthCheck(checks, **u, clock, absl::Seconds(60));
  for (int i = 0; i < 3; ++i) {
    clock.AdvanceNs(40 * kSecond);
    agent.Step();
    (*u)->CollectNow();
    ASSERT_TRUE(
        (*u)->WaitForAcked(agent.epoch(), agent.sequence(), absl::Seconds(20)));
    auto r = checks.Evaluate(HealthProbe::kReadiness);
    EXPECT_TRUE(r.healthy) << r.body;  // 120 s in all, acks every 40 s
  }
  (*u)->Stop(absl::ZeroDuration());
}

TEST(CollectorHealthTest, ChecksFollowTheirComponents) {
  FakeClock clock;
  std::atomic<uint64_t> ticks{0};
  std::atomic<bool> serving{true};
  HealthChecks checks;
  collector::AddCollectorHealthChecks(
      checks, {&ticks, absl::Seconds(1), &serving, nullptr}, clock);
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kReadiness).healthy);
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);

  serving = false;
  auto r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]grpc failed: gRPC server not serving"));

  clock.AdvanceNs(31 * kSecond);  // limit max(10 x 1 s, 30 s)
  r = checks.Evaluate(HealthProbe::kLiveness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]ticker failed: node-state ticker"));
  ticks = 1;
  EXPECT_TRUE(checks.Evaluate(HealthProbe::kLiveness).healthy);
}

TEST(CollectorHealthTest, RealCollectorServesBothProbesOnItsMetricsPort) {
  const auto dir = std::filesystem::temp_directory_path() /
                   absl::StrCat("wattlens-health-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  collector::CollectorOptions o;
  o.listen_address = "127.0.0.1:0";
  o.metrics_address = "127.0.0.1:0";
  o.insecure = true;
  o.db_path = (dir / "collector.db").string();
  o.tick_period = absl::Milliseconds(100);
  auto c = collector::Collector::Start(o, RealClock::Get());
  ASSERT_TRUE(c.ok()) << c.status();
  const int port = (*c)->metrics_port();
  ASSERT_GT(port, 0);
  auto live = HttpGet(port, "/healthz");
  EXPECT_EQ(live.code, 200);
  EXPECT_EQ(live.body, "[+]ticker ok\nhealthz check passed\n");
  auto ready = HttpGet(port, "/readyz");
  EXPECT_EQ(ready.code, 200);
  EXPECT_EQ(ready.body,
            "[+]grpc ok\n[+]store ok\n[+]grpc-listener ok\nreadyz check "
            "passed\n");
  EXPECT_EQ(HttpGet(port, "/metrics").code, 200);
  (*c)->Shutdown();
  EXPECT_EQ(HttpGet(port, "/readyz").code, 0);  // nothing listens any more
  c->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace wattlens
