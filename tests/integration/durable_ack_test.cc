// SPDX-License-Identifier: Apache-2.0
// An acknowledgement means durable: the collector's store on a small tmpfs
// that the test fills. While the disk is full nothing is acknowledged (not
// even a resent report already applied in memory), /readyz says 503 and the
// agent keeps its reports; once space returns every report is acknowledged
// and a collector restarted from the store has every count. Needs root (it
// mounts the tmpfs): label bpf, skipped elsewhere unless
// WATTLENS_REQUIRE_BPF=1.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/collector.h"
#include "gtest/gtest.h"
#include "tests/http_get.h"
#include "tests/integration/cluster_harness.h"

namespace wattlens {
namespace {

using testing::FakeAgent;
using testing::HttpGet;

// Polls `cond` until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F cond, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return cond();
}

class DurableAckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      const char* req = std::getenv("WATTLENS_REQUIRE_BPF");
      if (req != nullptr && std::string(req) == "1") {
        FAIL() << "needs root to mount a tmpfs";
      }
      GTEST_SKIP() << "needs root to mount a tmpfs";
    }
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("wattlens-fulldisk-", getpid());
    std::filesystem::create_directories(dir_);
    ASSERT_EQ(mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                    "size=4m,mode=0700"),
              0)
        << std::strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  absl::StatusOr<std::unique_ptr<collector::Collector>> StartCollector() {
    collector::CollectorOptions o;
    o.listen_address = "127.0.0.1:0";
    o.metrics_address = "127.0.0.1:0";
    o.insecure = true;
    o.db_path = (dir_ / "collector.db").string();
    o.tick_period = absl::Milliseconds(100);
    return collector::Collector::Start(o, RealClock::Get());
  }

  std::unique_ptr<Uploader> MakeUploader(int port, FakeAgent* agent) {
    UploaderOptions o;
    o.collector = absl::StrCat("127.0.0.1:", port);
    o.insecure = true;
    o.interval = absl::ZeroDuration();
    o.backoff_min = absl::Milliseconds(50);
    o.backoff_max = absl::Milliseconds(200);
    auto u = Uploader::Create(o, [agent] { return agent->Build(); });
    EXPECT_TRUE(u.ok()) << u.status();
    return std::move(u).value();
  }

  // Writes zeros until the tmpfs is full; returns the filler's path.
  std::string FillDisk() {
    const std::string path = (dir_ / "filler").string();
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT_GE(fd, 0);
    static const char kZeros[4096] = {};
    while (write(fd, kZeros, sizeof(kZeros)) > 0) {
    }
    EXPECT_EQ(errno, ENOSPC);
    close(fd);
    return path;
  }

  static uint64_t TotalCpu(collector::ClusterState& state) {
    wattlens::v1::GetUsageRequest req;
    req.mutable_window()->set_seconds(3600);
    auto r = state.GetUsage(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->total().cpu_nanoseconds() : 0;
  }

  std::filesystem::path dir_;
  bool mounted_ = false;
};

TEST_F(DurableAckTest, FullDiskDelaysAcksKeepsReportsAndLosesNothing) {
  auto c = StartCollector();
  ASSERT_TRUE(c.ok()) << c.status();
  const int metrics = (*c)->metrics_port();
  FakeClock clock(1'000'000'000'000);
  FakeAgent agent("node-a", clock, 7);
  auto up = MakeUploader((*c)->port(), &agent);
  up->Start();
  for (int i = 0; i < 3; ++i) {
    agent.Step();
    up->CollectNow();
  }
  ASSERT_TRUE(up->WaitForAcked(agent.epoch(), 3, absl::Seconds(20)));
  ASSERT_EQ(HttpGet(metrics, "/readyz").code, 200);

  const std::string filler = FillDisk();
  for (int i = 0; i < 3; ++i) {
    agent.Step();
    up->CollectNow();
  }
  const uint64_t last = agent.sequence();
  // Applied in memory, but its commit fails: no acknowledgement, and the
  // collector says it is not ready.
  EXPECT_TRUE(WaitFor([&] { return HttpGet(metrics, "/readyz").code == 503; },
                      absl::Seconds(20)));
  EXPECT_FALSE(up->WaitForAcked(agent.epoch(), last, absl::Seconds(1)));
  EXPECT_GT(up->stats().outbox_size, 0u);
  // The same reports resent on another stream are duplicates in memory:
  // still not durable, so still not acknowledged.
  auto resend = MakeUploader((*c)->port(), &agent);
  resend->Start();
  resend->CollectNow();
  EXPECT_FALSE(resend->WaitForAcked(agent.epoch(), last, absl::Seconds(2)));
  EXPECT_EQ(resend->stats().acked, 0u);

  std::filesystem::remove(filler);
  ASSERT_TRUE(up->WaitForAcked(agent.epoch(), last, absl::Seconds(30)));
  ASSERT_TRUE(resend->WaitForAcked(agent.epoch(), last, absl::Seconds(30)));
  EXPECT_TRUE(resend->stats().duplicates >= 1u);
  EXPECT_TRUE(WaitFor([&] { return HttpGet(metrics, "/readyz").code == 200; },
                      absl::Seconds(20)));
  EXPECT_EQ(TotalCpu((*c)->state()), agent.produced_total().cpu_ns);
  resend->Stop(absl::ZeroDuration());
  up->Stop(absl::ZeroDuration());
  (*c)->Shutdown();
  c->reset();

  // Everything acknowledged is in the store.
  auto again = StartCollector();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(TotalCpu((*again)->state()), agent.produced_total().cpu_ns);
  (*again)->Shutdown();
}

}  // namespace
}  // namespace wattlens
