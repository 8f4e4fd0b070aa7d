// SPDX-License-Identifier: Apache-2.0
//
// Remote write without a real receiver: the series built from a query
// answer (labels, cap, __other__, rebase), flag validation, and the send
// queue against a scripted HTTP receiver on 127.0.0.1:0 (protocol headers
// and body, retries on 5xx/429/no response, no retry on 4xx, the bounded
// queue and its drop counters).
#include <snappy.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/remote_write/http.h"
#include "collector/remote_write/queue.h"
#include "collector/remote_write/series.h"
#include "collector/remote_write/writer.h"
#include "gtest/gtest.h"
#include "remote_write_receiver.h"

namespace wattlens::collector::remote_write {
namespace {

using testing::ScriptedReceiver;
using wattlens::remotewrite::v1::TimeSeries;
using wattlens::remotewrite::v1::WriteRequest;
using wattlens::v1::GetUsageResponse;

constexpr absl::Duration kWait = absl::Seconds(20);

void AddRow(GetUsageResponse* r, const std::string& ns, const std::string& kind,
            const std::string& workload, uint64_t syscalls, double cost_cpu) {
  auto* row = r->add_rows();
  row->mutable_key()->set_namespace_(ns);
  row->mutable_key()->set_workload_kind(kind);
  row->mutable_key()->set_workload(workload);
  auto* u = row->mutable_usage();
  u->set_syscalls(syscalls);
  u->set_cpu_seconds(static_cast<double>(syscalls) / 1000);
  u->mutable_cost()->set_cpu(cost_cpu);
  u->mutable_carbon()->set_operational_grams(cost_cpu * 3);
}

std::map<std::string, std::string> LabelsOf(const TimeSeries& ts) {
  std::map<std::string, std::string> m;
  for (const auto& l : ts.labels()) m[l.name()] = l.value();
  return m;
}

// The sample of the series with exactly these labels (NaN: none).
double ValueOf(const std::vector<TimeSeries>& all,
               const std::map<std::string, std::string>& labels) {
  for (const auto& ts : all) {
    if (LabelsOf(ts) == labels) return ts.samples(0).value();
  }
  return std::nan("");
}

TEST(RemoteWriteSeries, WritesTheAnswerWithSortedNonEmptyLabels) {
  SeriesOptions o;
  o.cluster = "prod-eu";
  o.max_workloads = 10;
  SeriesBuilder b(o);
  GetUsageResponse r;
  r.set_currency("EUR");
  AddRow(&r, "shop", "Deployment", "web", 1234, 0.125);
  AddRow(&r, "", "", "sshd.service", 77, 0.5);
  const std::vector<TimeSeries> out = b.Build(r, 1'700'000'000'000);
  ASSERT_EQ(out.size(), 2 * kMetricCount);
  for (const TimeSeries& ts : out) {
    ASSERT_EQ(ts.samples_size(), 1);
    EXPECT_EQ(ts.samples(0).timestamp(), 1'700'000'000'000);
    for (int i = 0; i < ts.labels_size(); ++i) {
      EXPECT_FALSE(ts.labels(i).value().empty());
      if (i > 0) {
        EXPECT_LT(ts.labels(i - 1).name(), ts.labels(i).name());
      }
    }
    EXPECT_EQ(ts.labels(0).name(), "__name__");
  }
  EXPECT_EQ(
      ValueOf(out, {{"__name__", "wattlens_cluster_workload_syscalls_total"},
                    {"cluster", "prod-eu"},
                    {"namespace", "shop"},
                    {"workload_kind", "Deployment"},
                    {"workload", "web"}}),
      1234);
  // A host workload has no namespace or kind label at all.
  EXPECT_EQ(ValueOf(out, {{"__name__", "wattlens_cluster_workload_cost_total"},
                          {"cluster", "prod-eu"},
                          {"currency", "EUR"},
                          {"resource", "cpu"},
                          {"workload", "sshd.service"}}),
            0.5);
  EXPECT_EQ(ValueOf(out, {{"__name__",
                           "wattlens_cluster_workload_carbon_grams_total"},
                          {"cluster", "prod-eu"},
                          {"namespace", "shop"},
                          {"scope", "operational"},
                          {"workload_kind", "Deployment"},
                          {"workload", "web"}}),
            0.375);
}

TEST(RemoteWriteSeries, NoCostSeriesWithoutACostModel) {
  SeriesBuilder b({});
  GetUsageResponse r;  // no currency: the collector runs without prices
  AddRow(&r, "shop", "Deployment", "web", 1, 0);
  const std::vector<TimeSeries> out = b.Build(r, 1);
  EXPECT_EQ(out.size(), 5u);
  for (const TimeSeries& ts : out) {
    const std::string name = LabelsOf(ts)["__name__"];
    EXPECT_EQ(name.find("cost"), std::string::npos) << name;
    EXPECT_EQ(name.find("carbon"), std::string::npos) << name;
  }
}

TEST(RemoteWriteSeries, CapFoldsLaterWorkloadsIntoOtherForGood) {
  SeriesOptions o;
  o.max_workloads = 1;
  SeriesBuilder b(o);
  GetUsageResponse r1;
  AddRow(&r1, "a", "Deployment", "big", 100, 0);
  AddRow(&r1, "b", "Deployment", "small", 10, 0);
  AddRow(&r1, "c", "Job", "tiny", 1, 0);
  auto out = b.Build(r1, 1);
  EXPECT_EQ(b.admitted(), 1u);
  EXPECT_EQ(b.folded(), 2u);
  const std::map<std::string, std::string> big = {
      {"__name__", "wattlens_cluster_workload_syscalls_total"},
      {"namespace", "a"},
      {"workload_kind", "Deployment"},
      {"workload", "big"}};
  const std::map<std::string, std::string> other = {
      {"__name__", "wattlens_cluster_workload_syscalls_total"},
      {"workload", "__other__"}};
  EXPECT_EQ(ValueOf(out, big), 100);
  EXPECT_EQ(ValueOf(out, other), 11);
  EXPECT_EQ(out.size(), 2 * 5u);  // big + __other__, five unpriced metrics

  // "small" outgrows "big": admission does not change, so neither series
  // ever goes down.
  GetUsageResponse r2;
  AddRow(&r2, "b", "Deployment", "small", 1000, 0);
  AddRow(&r2, "a", "Deployment", "big", 150, 0);
  AddRow(&r2, "c", "Job", "tiny", 1, 0);
  out = b.Build(r2, 2);
  EXPECT_EQ(ValueOf(out, big), 150);
  EXPECT_EQ(ValueOf(out, other), 1001);
}

TEST(RemoteWriteSeries, RebaseContinuesEverySeries) {
  SeriesBuilder b({});
  GetUsageResponse r1;
  AddRow(&r1, "a", "Deployment", "web", 5, 0);
  AddRow(&r1, "a", "Deployment", "db", 7, 0);
  b.Build(r1, 1);
  b.Rebase();
  // The next window: only web grew; db has no row but keeps its total.
  GetUsageResponse r2;
  AddRow(&r2, "a", "Deployment", "web", 2, 0);
  const auto out = b.Build(r2, 2);
  auto key = [](const std::string& w) {
    return std::map<std::string, std::string>{
        {"__name__", "wattlens_cluster_workload_syscalls_total"},
        {"namespace", "a"},
        {"workload_kind", "Deployment"},
        {"workload", w}};
  };
  EXPECT_EQ(ValueOf(out, key("web")), 7);
  EXPECT_EQ(ValueOf(out, key("db")), 7);
}

TEST(RemoteWriteSeries, SanitizeUtf8ReplacesOnlyInvalidSequences) {
  EXPECT_EQ(SanitizeUtf8("plain/ascii.service"), "plain/ascii.service");
  EXPECT_EQ(SanitizeUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x8b");
  EXPECT_EQ(SanitizeUtf8("a\xffz"), "a\xef\xbf\xbdz");
  EXPECT_EQ(SanitizeUtf8("\xc3"), "\xef\xbf\xbd");                  // truncated
  EXPECT_EQ(SanitizeUtf8("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");  // overlong
  EXPECT_EQ(SanitizeUtf8("\xed\xa0\x80"),  // a surrogate
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

class TempDir {
 public:
  TempDir() {
    path_ =
        std::filesystem::temp_directory_path() /
        absl::StrCat(
            "wattlens-rw-", getpid(), "-",
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name, const std::string& content) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p) << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

TEST(RemoteWriteValidate, RefusesWhatCannotWork) {
  TempDir dir;
  RemoteWriteOptions o;
  EXPECT_TRUE(ValidateRemoteWriteOptions(o).ok());  // off
  o.url = "http://127.0.0.1:9090/api/v1/write";
  EXPECT_TRUE(ValidateRemoteWriteOptions(o).ok());
  for (const char* bad :
       {"127.0.0.1:9090/api/v1/write", "ftp://host/x", "http://",
        "http:///api/v1/write", "http://host/a b"}) {
    RemoteWriteOptions b = o;
    b.url = bad;
    EXPECT_FALSE(ValidateRemoteWriteOptions(b).ok()) << bad;
  }
  auto refused = [&](auto mutate) {
    RemoteWriteOptions b = o;
    mutate(b);
    return !ValidateRemoteWriteOptions(b).ok();
  };
  EXPECT_TRUE(refused([](auto& b) { b.interval = absl::Milliseconds(10); }));
  EXPECT_TRUE(refused([](auto& b) { b.delay = absl::Seconds(-1); }));
  EXPECT_TRUE(refused([](auto& b) { b.timeout = absl::ZeroDuration(); }));
  EXPECT_TRUE(refused([](auto& b) { b.queue.capacity_samples = 0; }));
  EXPECT_TRUE(refused([](auto& b) { b.queue.max_samples_per_send = 0; }));
  EXPECT_TRUE(refused([](auto& b) { b.series.max_workloads = 0; }));
  EXPECT_TRUE(refused([](auto& b) { b.series.cluster = "a\nb"; }));
  EXPECT_TRUE(refused([](auto& b) { b.bearer_token_file = "/nonexistent"; }));
  // A CA only means something for https.
  const std::string ca = dir.File("ca.pem", "not checked here");
  EXPECT_TRUE(refused([&](auto& b) { b.ca_file = ca; }));
  EXPECT_FALSE(refused([&](auto& b) {
    b.url = "https://mimir.example/api/v1/push";
    b.ca_file = ca;
  }));
}

// `n` series of one sample each at `timestamp_ms`.
std::vector<TimeSeries> Snapshot(int n, int64_t timestamp_ms) {
  std::vector<TimeSeries> out;
  for (int i = 0; i < n; ++i) {
    TimeSeries ts;
    auto* l = ts.add_labels();
    l->set_name("__name__");
    l->set_value(absl::StrCat("m", i));
    auto* s = ts.add_samples();
    s->set_value(i);
    s->set_timestamp(timestamp_ms);
    out.push_back(std::move(ts));
  }
  return out;
}

WriteRequest Decode(const std::string& body) {
  std::string raw;
  WriteRequest wr;
  EXPECT_TRUE(snappy::Uncompress(body.data(), body.size(), &raw));
  EXPECT_TRUE(wr.ParseFromString(raw));
  return wr;
}

class RemoteWriteQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<SendQueue> MakeQueue(QueueOptions q = {},
                                       std::string token_file = "") {
    q.min_backoff = absl::Milliseconds(5);
    q.max_backoff = absl::Milliseconds(40);
    HttpOptions h;
    h.url = receiver_.url();
    h.bearer_token_file = std::move(token_file);
    h.timeout = absl::Seconds(5);
    auto poster = NewCurlPoster(h);
    EXPECT_TRUE(poster.ok()) << poster.status();
    auto queue = std::make_unique<SendQueue>(q, std::move(poster).value());
    queue->Start();
    return queue;
  }
  static uint64_t Dropped(const SendQueue& q, DropReason r) {
    return q.stats().dropped_samples[static_cast<size_t>(r)].load();
  }
  static uint64_t Retries(const SendQueue& q, RetryReason r) {
    return q.stats().retries[static_cast<size_t>(r)].load();
  }

  ScriptedReceiver receiver_;
};

TEST_F(RemoteWriteQueueTest, SendsTheProtocolsHeadersAndASnappyWriteRequest) {
  TempDir dir;
  const std::string token = dir.File("token", "s3cret\n");
  QueueOptions q;
  q.max_samples_per_send = 4;
  auto queue = MakeQueue(q, token);
  queue->Enqueue(Snapshot(10, 1'700'000'000'123));
  ASSERT_TRUE(queue->WaitIdleForTest(kWait)) << queue->last_error();
  const auto reqs = receiver_.requests();
  ASSERT_EQ(reqs.size(), 3u);  // 4 + 4 + 2 samples
  int next = 0;
  for (const auto& r : reqs) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/api/v1/write");
    EXPECT_EQ(r.headers.at("content-encoding"), "snappy");
    EXPECT_EQ(r.headers.at("content-type"), "application/x-protobuf");
    EXPECT_EQ(r.headers.at("x-prometheus-remote-write-version"), "0.1.0");
    EXPECT_EQ(r.headers.at("user-agent"), "wattlens-collector");
    EXPECT_EQ(r.headers.at("authorization"), "Bearer s3cret");
    const WriteRequest wr = Decode(r.body);
    for (const auto& ts : wr.timeseries()) {
      EXPECT_EQ(ts.labels(0).value(), absl::StrCat("m", next));
      EXPECT_EQ(ts.samples(0).value(), next);
      EXPECT_EQ(ts.samples(0).timestamp(), 1'700'000'000'123);
      ++next;
    }
  }
  EXPECT_EQ(next, 10);
  EXPECT_EQ(queue->stats().sent_samples.load(), 10u);
  EXPECT_EQ(queue->stats().sent_requests.load(), 3u);
  EXPECT_EQ(queue->stats().last_sent_timestamp_ms.load(), 1'700'000'000'123);
}

TEST_F(RemoteWriteQueueTest, RetriesServerErrorsAndTooManyRequests) {
  receiver_.Script({503, 500, 429});
  auto queue = MakeQueue();
  queue->Enqueue(Snapshot(3, 1000));
  ASSERT_TRUE(queue->WaitIdleForTest(kWait)) << queue->last_error();
  const auto reqs = receiver_.requests();
  ASSERT_EQ(reqs.size(), 4u);
  for (const auto& r : reqs) EXPECT_EQ(r.body, reqs[0].body);
  EXPECT_EQ(Retries(*queue, RetryReason::kServerError), 2u);
  EXPECT_EQ(Retries(*queue, RetryReason::kTooManyRequests), 1u);
  EXPECT_EQ(queue->stats().sent_samples.load(), 3u);
  EXPECT_EQ(Dropped(*queue, DropReason::kRejected), 0u);
}

TEST_F(RemoteWriteQueueTest, ClientErrorIsDroppedAndNotRetried) {
  receiver_.Script({400});
  auto queue = MakeQueue();
  queue->Enqueue(Snapshot(3, 1000));
  ASSERT_TRUE(queue->WaitIdleForTest(kWait));
  EXPECT_EQ(Dropped(*queue, DropReason::kRejected), 3u);
  EXPECT_EQ(queue->stats().last_status.load(), 400);
  // The next snapshot goes out once; the refused one never again.
  queue->Enqueue(Snapshot(2, 2000));
  ASSERT_TRUE(queue->WaitIdleForTest(kWait));
  const auto reqs = receiver_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  const WriteRequest second = Decode(reqs[1].body);
  ASSERT_GT(second.timeseries_size(), 0);
  EXPECT_EQ(second.timeseries(0).samples(0).timestamp(), 2000);
  EXPECT_EQ(queue->stats().sent_samples.load(), 2u);
  for (int r = 0; r < static_cast<int>(RetryReason::kCount); ++r) {
    EXPECT_EQ(queue->stats().retries[r].load(), 0u);
  }
}

TEST_F(RemoteWriteQueueTest, ReceiverDownBoundsTheQueueAndCountsDrops) {
  // Down: every connection is closed without an answer.
  receiver_.SetDefault(ScriptedReceiver::kClose);
  QueueOptions q;
  q.capacity_samples = 10;  // two snapshots of five
  auto queue = MakeQueue(q);
  queue->Enqueue(Snapshot(5, 1000));
  ASSERT_TRUE(receiver_.WaitForRequests(2, kWait));  // in flight, retrying
  for (int64_t t = 2000; t <= 5000; t += 1000) {
    queue->Enqueue(Snapshot(5, t));
  }
  // 1000 is in flight, 5000 is the newest: 2000..4000 were evicted.
  EXPECT_EQ(Dropped(*queue, DropReason::kQueueFull), 15u);
  EXPECT_EQ(queue->stats().queued_samples.load(), 10u);
  EXPECT_GE(Retries(*queue, RetryReason::kNetwork), 1u);
  EXPECT_EQ(queue->stats().sent_samples.load(), 0u);

  // Back up: the two kept snapshots arrive, oldest first.
  const size_t before = receiver_.requests().size();
  receiver_.SetDefault(204);
  ASSERT_TRUE(queue->WaitIdleForTest(kWait)) << queue->last_error();
  const auto reqs = receiver_.requests();
  std::vector<int64_t> delivered;
  for (size_t i = before; i < reqs.size(); ++i) {
    const WriteRequest wr = Decode(reqs[i].body);
    ASSERT_GT(wr.timeseries_size(), 0);
    delivered.push_back(wr.timeseries(0).samples(0).timestamp());
  }
  // The request in flight when the receiver came back may have been
  // answered "closed" once more before the switch; the last two are
  // what was delivered.
  ASSERT_GE(delivered.size(), 2u);
  EXPECT_EQ(delivered[delivered.size() - 2], 1000);
  EXPECT_EQ(delivered.back(), 5000);
  EXPECT_EQ(queue->stats().sent_samples.load(), 10u);
  EXPECT_EQ(queue->stats().queued_samples.load(), 0u);
  EXPECT_EQ(Dropped(*queue, DropReason::kQueueFull), 15u);
}

TEST_F(RemoteWriteQueueTest, NoListenerIsANetworkRetryAndStopCountsShutdown) {
  // A port nobody listens on: connection refused.
  int port;
  {
    ScriptedReceiver gone;
    port = gone.port();
  }
  HttpOptions h;
  h.url = absl::StrCat("http://127.0.0.1:", port, "/api/v1/write");
  auto poster = NewCurlPoster(h);
  ASSERT_TRUE(poster.ok());
  QueueOptions q;
  q.min_backoff = absl::Milliseconds(5);
  q.max_backoff = absl::Milliseconds(20);
  SendQueue queue(q, std::move(poster).value());
  queue.Start();
  queue.Enqueue(Snapshot(4, 1000));
  queue.Enqueue(Snapshot(4, 2000));
  const absl::Time deadline = absl::Now() + kWait;
  while (Retries(queue, RetryReason::kNetwork) < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(Retries(queue, RetryReason::kNetwork), 2u);
  EXPECT_FALSE(queue.last_error().empty());
  queue.Stop();
  EXPECT_EQ(Dropped(queue, DropReason::kShutdown), 8u);
  EXPECT_EQ(queue.stats().sent_samples.load(), 0u);
}

// The writer's windows: [anchor, t) with t the newest boundary at least
// `delay` old; nothing new, no snapshot; the anchor moves on after half the
// retention, and the totals continue across the move.
TEST(RemoteWriter, WindowsFollowBucketBoundariesAndRebase) {
  FakeClock clock(1'000'003'000'000 - 1'700'000'000'000'000'000);
  std::vector<wattlens::v1::GetUsageRequest> asked;
  uint64_t per_window = 10;
  UsageFn usage = [&](const wattlens::v1::GetUsageRequest& req)
      -> absl::StatusOr<GetUsageResponse> {
    asked.push_back(req);
    GetUsageResponse r;
    AddRow(&r, "a", "Deployment", "web", per_window, 0);
    return r;
  };
  ScriptedReceiver receiver;
  RemoteWriteOptions o;
  o.url = receiver.url();
  o.interval = absl::ZeroDuration();
  o.delay = absl::Seconds(10);
  o.queue.min_backoff = absl::Milliseconds(5);
  o.rebase_after = absl::Seconds(30);
  // 10 s buckets, an hour's retention: the anchor moves every 30 s.
  auto w =
      RemoteWriter::Create(o, usage, 10'000'000'000, 3600'000'000'000, clock);
  ASSERT_TRUE(w.ok()) << w.status();
  (*w)->Start();
  // Realtime 1000.003 s: minus the delay, the boundary is 990 s.
  const int64_t s = 1'000'000'000;
  EXPECT_EQ((*w)->anchor_ns(), 990 * s);
  ASSERT_TRUE((*w)->CollectNow().ok());
  EXPECT_TRUE(asked.empty());  // no boundary since the anchor
  clock.AdvanceNs(9 * s);
  ASSERT_TRUE((*w)->CollectNow().ok());
  EXPECT_TRUE(asked.empty());
  clock.AdvanceNs(1 * s);  // 1010.003: boundary 1000
  ASSERT_TRUE((*w)->CollectNow().ok());
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].group_by(), wattlens::v1::GROUP_BY_WORKLOAD);
  EXPECT_EQ(asked[0].since().seconds(), 990);
  EXPECT_EQ(asked[0].until().seconds(), 1000);
  EXPECT_EQ((*w)->last_snapshot_ns(), 1000 * s);
  clock.AdvanceNs(20 * s);  // boundary 1020: 30 s after the anchor
  ASSERT_TRUE((*w)->CollectNow().ok());
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[1].since().seconds(), 990);
  EXPECT_EQ(asked[1].until().seconds(), 1020);
  EXPECT_EQ((*w)->anchor_ns(), 1020 * s);  // moved on after this snapshot
  per_window = 3;                          // what [1020, 1030) adds
  clock.AdvanceNs(10 * s);
  ASSERT_TRUE((*w)->CollectNow().ok());
  ASSERT_EQ(asked.size(), 3u);
  EXPECT_EQ(asked[2].since().seconds(), 1020);
  EXPECT_EQ(asked[2].until().seconds(), 1030);
  ASSERT_TRUE((*w)->WaitIdleForTest(kWait)) << (*w)->last_error();
  // The syscalls series: 10, 10, then 10 + 3.
  std::vector<double> values;
  for (const auto& r : receiver.requests()) {
    const WriteRequest wr = Decode(r.body);
    for (const auto& ts : wr.timeseries()) {
      if (LabelsOf(ts)["__name__"] ==
          "wattlens_cluster_workload_syscalls_total") {
        values.push_back(ts.samples(0).value());
      }
    }
  }
  EXPECT_EQ(values, (std::vector<double>{10, 10, 13}));
  EXPECT_EQ((*w)->stats().last_sent_timestamp_ms.load(), 1'030'000);
}

// However long rebase_after is, the anchor moves within half the retention,
// so the window it starts never reaches data the collector has dropped.
TEST(RemoteWriter, AnchorStaysWithinHalfTheRetention) {
  FakeClock clock(1'000'003'000'000 - 1'700'000'000'000'000'000);
  UsageFn usage = [](const wattlens::v1::GetUsageRequest&)
      -> absl::StatusOr<GetUsageResponse> { return GetUsageResponse(); };
  RemoteWriteOptions o;
  o.url = "http://127.0.0.1:9/api/v1/write";
  o.interval = absl::ZeroDuration();
  o.delay = absl::ZeroDuration();
  ASSERT_EQ(o.rebase_after, absl::Hours(1));
  // 10 s buckets, 40 s retention.
  auto w =
      RemoteWriter::Create(o, usage, 10'000'000'000, 40'000'000'000, clock);
  ASSERT_TRUE(w.ok());
  const int64_t s = 1'000'000'000;
  EXPECT_EQ((*w)->anchor_ns(), 1000 * s);
  clock.AdvanceNs(10 * s);
  ASSERT_TRUE((*w)->CollectNow().ok());
  EXPECT_EQ((*w)->anchor_ns(), 1000 * s);
  clock.AdvanceNs(10 * s);
  ASSERT_TRUE((*w)->CollectNow().ok());
  EXPECT_EQ((*w)->anchor_ns(), 1020 * s);
}

}  // namespace
}  // namespace wattlens::collector::remote_write
