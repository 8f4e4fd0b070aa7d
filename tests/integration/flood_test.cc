// SPDX-License-Identifier: Apache-2.0
// The collector under HTTP/2 abuse from a raw-frame client on loopback
// (tests/integration/h2_attacker.h): a peer without a client certificate
// resetting query streams as fast as it can (HEADERS + RST_STREAM). During
// the flood an honest agent keeps reporting and every report must be
// acknowledged, /readyz must say 200, the process may not grow by 100 MB or
// spawn threads without bound. The flood lasts WATTLENS_FLOOD_SECONDS
// (default 5); the figures are printed.
//
// Not here: rapid reset, streams left open and endless CONTINUATION from an
// authenticated peer. With Debian's gRPC 1.51 as it is, no channel argument
// bounds them (reset streams do not count against max_concurrent_streams, a
// client that never acknowledges SETTINGS is never held to it), so a test of
// them could only pass by being short.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/transport/tls.h"
#include "tests/http_get.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/h2_attacker.h"

namespace wattlens::testing {
namespace {

constexpr int64_t kMiB = 1 << 20;
constexpr char kListNodes[] = "/wattlens.v1.QueryService/ListNodes";

absl::Duration FloodDuration() {
  const char* s = std::getenv("WATTLENS_FLOOD_SECONDS");
  const int n = s != nullptr ? std::atoi(s) : 0;
  return absl::Seconds(n > 0 ? n : 5);
}

struct Figures {
  int64_t rss_before = 0, rss_max = 0, rss_after = 0;
  int64_t threads_before = 0, threads_max = 0;
  int rounds = 0, acked = 0;
  int readyz = 0, readyz_ok = 0;
  uint64_t attack_ops = 0;
};

using Attack =
    std::function<void(const std::atomic<bool>& stop, std::atomic<uint64_t>&)>;

class FloodTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     absl::StrCat("wattlens-flood-", getpid()));
    std::filesystem::create_directories(*dir_);
    ASSERT_TRUE(MakeTestCertificates(dir_->string(), "wattlens-test-ca",
                                     {"collector:none", "node-a"}));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string F(const std::string& name) {
    return (*dir_ / name).string();
  }

  void StartCollector(bool tls) {
    tls_ = tls;
    collector::CollectorOptions o;
    o.listen_address = "127.0.0.1:0";
    o.metrics_address = "127.0.0.1:0";
    o.insecure = !tls;
    o.tls = {F("collector.crt"), F("collector.key"), F("ca.crt")};
    o.tick_period = absl::ZeroDuration();
    auto c = collector::Collector::Start(o, clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    collector_ = std::move(c).value();
  }

  Figures Run(const Attack& attack) {
    Figures f;
    FakeAgent a("node-a", clock_, 1);
    UploaderOptions uo;
    uo.collector = absl::StrCat("127.0.0.1:", collector_->port());
    uo.insecure = !tls_;
    uo.tls = {F("node-a.crt"), F("node-a.key"), F("ca.crt")};
    uo.tls_server_name = "collector";
    uo.interval = absl::ZeroDuration();
    uo.backoff_min = absl::Milliseconds(20);
    auto up = Uploader::Create(uo, [&a] { return a.Build(); });
    EXPECT_TRUE(up.ok()) << up.status();
    if (!up.ok()) return f;
    (*up)->Start();
    auto round = [&] {
      clock_.AdvanceNs(10'000'000'000);
      a.Step();
      (*up)->CollectNow();
      ++f.rounds;
      if ((*up)->WaitForAcked(a.epoch(), a.sequence(), absl::Seconds(5))) {
        ++f.acked;
      }
    };
    round();  // warm: connections, threads and arenas exist before measuring
    round();
    f.rss_before = RssBytes();
    f.threads_before = Threads();
    f.rss_max = f.rss_before;
    f.threads_max = f.threads_before;
    f.rounds = f.acked = 0;

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> ops{0};
    std::thread attacker([&] { attack(stop, ops); });
    const absl::Time end = absl::Now() + FloodDuration();
    while (absl::Now() < end) {
      round();
      const HttpResponse r = HttpGet(collector_->metrics_port(), "/readyz");
      ++f.readyz;
      if (r.code == 200) ++f.readyz_ok;
      f.rss_max = std::max(f.rss_max, RssBytes());
      f.threads_max = std::max(f.threads_max, Threads());
      absl::SleepFor(absl::Milliseconds(200));  // sampling period
    }
    stop = true;
    attacker.join();
    round();
    f.rss_after = RssBytes();
    f.rss_max = std::max(f.rss_max, f.rss_after);
    f.attack_ops = ops.load();
    (*up)->Stop(absl::ZeroDuration());
    std::printf(
        "flood %s: %llu attack operations in %s; memory %lld -> max %lld MiB "
        "(after %lld); threads %lld -> max %lld; honest reports acked %d/%d; "
        "/readyz 200 %d/%d\n",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        static_cast<unsigned long long>(f.attack_ops),
        absl::FormatDuration(FloodDuration()).c_str(),
        static_cast<long long>(f.rss_before / kMiB),
        static_cast<long long>(f.rss_max / kMiB),
        static_cast<long long>(f.rss_after / kMiB),
        static_cast<long long>(f.threads_before),
        static_cast<long long>(f.threads_max), f.acked, f.rounds, f.readyz_ok,
        f.readyz);
    return f;
  }

  void ExpectHeld(const Figures& f) {
    EXPECT_GT(f.attack_ops, 0u) << "the attack never got going";
    EXPECT_LT(f.rss_max - f.rss_before, 100 * kMiB);
    EXPECT_EQ(f.acked, f.rounds) << "honest reports not acknowledged";
    EXPECT_EQ(f.readyz_ok, f.readyz);
  }

  static std::filesystem::path* dir_;
  FakeClock clock_{1'000'000'000'000};
  bool tls_ = false;
  std::unique_ptr<collector::Collector> collector_;
};
std::filesystem::path* FloodTest::dir_ = nullptr;

// HEADERS then RST_STREAM, over and over, on one connection at a time.
Attack RapidReset(int port, const std::string& path,
                  const H2Attacker::Tls* tls) {
  return [=](const std::atomic<bool>& stop, std::atomic<uint64_t>& ops) {
    while (!stop) {
      auto c = H2Attacker::Dial(port, tls);
      if (!c) {
        ops.fetch_add(1);  // a refused connection is a spent attempt too
        continue;
      }
      for (uint32_t s = 1; s < 2'000'000'000 && !stop; s += 2) {
        if (!c->Headers(s, path) || !c->Reset(s)) break;
        ops.fetch_add(1);
        if ((s & 127) == 1 && !c->Pump()) break;
      }
    }
  };
}

TEST_F(FloodTest, PeerWithoutCertificateNeverReachesHttp2) {
  StartCollector(/*tls=*/true);
  const uint64_t before = [] {
    uint64_t n = 0;
    for (const auto& [r, c] : transport::GetTlsStats().handshake_errors) {
      n += c;
    }
    return n;
  }();
  static const H2Attacker::Tls kNoCert;
  const Figures f = Run(RapidReset(collector_->port(), kListNodes, &kNoCert));
  ExpectHeld(f);
  // No handler ran for the attacker: no thread per reset stream.
  EXPECT_LT(f.threads_max - f.threads_before, 20);
  uint64_t after = 0;
  const transport::TlsStats stats = transport::GetTlsStats();
  for (const auto& [r, c] : stats.handshake_errors) after += c;
  EXPECT_GT(after, before) << "refused handshakes are not counted";
  EXPECT_GT(stats.handshake_errors.count("no_client_certificate"), 0u);
  const HttpResponse metrics = HttpGet(collector_->metrics_port(), "/metrics");
  EXPECT_NE(metrics.body.find("wattlens_collector_tls_handshake_errors_total{"
                              "reason=\"no_client_certificate\"}"),
            std::string::npos)
      << metrics.body;
  EXPECT_EQ(collector_->state().ListNodes().nodes_size(), 1);
}

}  // namespace
}  // namespace wattlens::testing
