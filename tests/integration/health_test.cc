// SPDX-License-Identifier: Apache-2.0
// /healthz and /readyz of the agent and the collector: each answers 200
// while its components are healthy and 503, naming the component, when one
// is not. Checks are driven with a FakeClock and real components; the HTTP
// side is the real server on 127.0.0.1:0.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/common/flag_checks.h"
#include "agent/common/health_http.h"
#include "agent/export/agent_health.h"
#include "agent/export/upload_health.h"
#include "collector/collector.h"
#include "collector/health_http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/exposer.h"
#include "tests/http_get.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/h2_attacker.h"

namespace wattlens {
namespace {

using ::testing::HasSubstr;
using testing::HttpGet;

constexpr int64_t kSecond = 1'000'000'000;

std::shared_ptr<Snapshot> SnapshotAt(
    int64_t mono, SourceState network = SourceState::kUp,
    bool sched_up = true) {
  auto s = std::make_shared<Snapshot>();
  s->sequence = 1;
  s->monotonic_ns = mono;
  SourceHealth net = SourceHealth::Up("network");
  if (network != SourceState::kUp) {
    net = {"network", network,
           network == SourceState::kDegraded ? HealthReason::kNetworkBytesOff
                                             : HealthReason::kLoadFailed,
           "sock_send_length tracepoint missing"};
  }
  s->self.sources = {
      SourceHealth::Up("syscalls"),
      sched_up ? SourceHealth::Up("sched")
               : SourceHealth{"sched", SourceState::kDown,
                              HealthReason::kNoVariant,
                              "no on-CPU time design loads"},
      net,
      // Not a readiness component.
      {"power", SourceState::kDown, HealthReason::kNoMeter, "no meter"},
  };
  return s;
}

TEST(AgentHealthTest, ReadyOnlyWithAFreshSnapshotAndTheCoreSourcesUp) {
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

  // Network is optional: degraded (a kernel that cannot count its bytes)
  // or down, the node stays ready. A core source (syscalls, CPU time) down
  // does not.
  store.Publish(SnapshotAt(clock.MonotonicNs(), SourceState::kDegraded));
  r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_TRUE(r.healthy) << r.body;
  store.Publish(SnapshotAt(clock.MonotonicNs(), SourceState::kDown));
  r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_TRUE(r.healthy) << r.body;
  store.Publish(SnapshotAt(clock.MonotonicNs(), SourceState::kUp,
                           /*sched_up=*/false));
  r = checks.Evaluate(HealthProbe::kReadiness);
  EXPECT_FALSE(r.healthy);
  EXPECT_THAT(r.body, HasSubstr("[-]sources failed: sched: down (no_variant)"));

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

// GET `path` with a deadline on the whole exchange; 0 when it is missed.
int TimedGet(int port, const std::string& path, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  const int fd = testing::DialLoopback(port);
  if (fd < 0) return 0;
  const std::string req = absl::StrCat(
      "GET ", path, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(req.size())) {
    close(fd);
    return 0;
  }
  std::string raw;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    const int ms =
        static_cast<int>(absl::ToInt64Milliseconds(end - absl::Now()));
    if (ms <= 0 || poll(&p, 1, ms) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) return 0;
  return std::stoi(raw.substr(9, 3));
}

TEST(HealthHttpTest, SlowClientsDoNotStarveTheProbes) {
  // WATTLENS_SLOWLORIS_CONNECTIONS (default 200) connections that send a
  // request line and then one header byte at a time, reconnecting when cut.
  const char* env = std::getenv("WATTLENS_SLOWLORIS_CONNECTIONS");
  const int n = env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 200;
  ASSERT_TRUE(RaiseFileLimit().ok());  // both ends live in this process
  HealthChecks checks;
  checks.Add(HealthProbe::kLiveness, "always", [] { return absl::OkStatus(); });
  auto exposer = StartExposerWithHealth("127.0.0.1:0", &checks);
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  const int port = (*exposer)->GetListeningPorts().front();

  std::atomic<bool> stop{false};
  std::atomic<int> reopened{0};
  std::thread slow([&] {
    std::vector<int> fds(n, -1);
    const std::string line = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    while (!stop) {
      for (int& fd : fds) {
        if (fd >= 0 && send(fd, "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
          continue;
        }
        if (fd >= 0) {
          close(fd);
          ++reopened;
        }
        fd = testing::DialLoopback(port);
        if (fd >= 0) {
          send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
      absl::SleepFor(absl::Milliseconds(300));  // the trickle's pace
    }
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  });
  absl::SleepFor(absl::Seconds(1));  // let every slow connection open
  int probes = 0, answered = 0;
  absl::Duration worst;
  for (absl::Time end = absl::Now() + absl::Seconds(6); absl::Now() < end;) {
    const absl::Time t0 = absl::Now();
    const int code = TimedGet(port, "/healthz", absl::Seconds(1));
    const absl::Duration took = absl::Now() - t0;
    worst = std::max(worst, took);
    ++probes;
    if (code == 200) ++answered;
    absl::SleepFor(absl::Milliseconds(100));  // probe period
  }
  stop = true;
  slow.join();
  std::printf(
      "slowloris: %d slow connections (%d cut by the request timeout "
      "and reopened); /healthz answered within 1 s %d/%d, worst %s\n",
      n, reopened.load(), answered, probes,
      absl::FormatDuration(worst).c_str());
  EXPECT_EQ(answered, probes);
  // The request timeout cuts slow clients (their workers are freed).
  EXPECT_GT(reopened.load(), 0);
}

}  // namespace
}  // namespace wattlens
