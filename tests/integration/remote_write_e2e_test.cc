// SPDX-License-Identifier: Apache-2.0
//
// End to end: Debian's VictoriaMetrics and Prometheus (remote-write
// receiver) on 127.0.0.1, a collector fed by three fake agents over gRPC,
// and one remote writer per receiver. The values queried back through each
// receiver's /api/v1/query equal the collector's own gRPC answer for the
// same window: exactly for counts, to double precision for seconds,
// joules, money and grams; the syscall counts also equal what the agents
// produced.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cluster_harness.h"
#include "collector/remote_write/writer.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/http_get.h"
#include "wattlens/v1/query.grpc.pb.h"

namespace wattlens::testing {
namespace {

using collector::remote_write::Metrics;
using collector::remote_write::RemoteWriteOptions;
using collector::remote_write::RemoteWriter;

constexpr absl::Duration kWait = absl::Seconds(60);
constexpr char kVictoriaMetrics[] = "/usr/bin/victoria-metrics";
constexpr char kPrometheus[] = "/usr/bin/prometheus";

// A free loopback port: bound to 0, read back, released for the child.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A child process with its output in `log`, terminated on destruction (and
// by the kernel if this test dies first).
class Child {
 public:
  Child(std::vector<std::string> argv, std::string log) : log_(std::move(log)) {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool Running() const {
    return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0;
  }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// Waits until GET `path` answers 200.
bool WaitReady(int port, const std::string& path, const Child& child) {
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline && child.Running()) {
    if (HttpGet(port, path).code == 200) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

struct Series {
  std::map<std::string, std::string> labels;
  std::string value;  // as the receiver printed it
};

// An instant query at `time_s`; empty on any failure.
std::vector<Series> Query(int port, const std::string& promql, int64_t time_s) {
  const HttpResponse r =
      HttpGet(port, absl::StrCat("/api/v1/query?query=", UrlEncode(promql),
                                 "&time=", time_s));
  std::vector<Series> out;
  if (r.code != 200) return out;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") return out;
  for (const auto& res : j["data"]["result"]) {
    Series s;
    for (const auto& [k, v] : res["metric"].items()) {
      s.labels[k] = v.get<std::string>();
    }
    s.value = res["value"][1].get<std::string>();
    out.push_back(std::move(s));
  }
  return out;
}

std::string RowKey(const std::string& ns, const std::string& kind,
                   const std::string& workload) {
  return absl::StrCat(ns, "/", kind, "/", workload);
}

class RemoteWriteE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* bin : {kVictoriaMetrics, kPrometheus}) {
      if (access(bin, X_OK) != 0) {
        // scripts/install-deps.sh installs both; CI must not skip.
        if (const char* ci = std::getenv("CI");
            ci && std::string(ci) == "true") {
          FAIL() << bin << " is missing (scripts/install-deps.sh)";
        }
        GTEST_SKIP() << bin << " is missing (scripts/install-deps.sh)";
      }
    }
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("wattlens-rw-e2e-", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "prom");
  }
  void TearDown() override {
    for (auto& u : uploaders_) u->Stop(absl::ZeroDuration());
    uploaders_.clear();
    prom_writer_.reset();
    collector_.reset();
    vm_.reset();
    prom_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartReceivers() {
    vm_port_ = FreePort();
    vm_ = std::make_unique<Child>(
        std::vector<std::string>{
            kVictoriaMetrics,
            absl::StrCat("-httpListenAddr=127.0.0.1:", vm_port_),
            absl::StrCat("-storageDataPath=", (dir_ / "vm").string()),
            "-retentionPeriod=1", "-loggerLevel=ERROR"},
        (dir_ / "vm.log").string());
    prom_port_ = FreePort();
    std::ofstream(dir_ / "prometheus.yml")
        << "global:\n  scrape_interval: 1m\n";
    prom_ = std::make_unique<Child>(
        std::vector<std::string>{
            kPrometheus,
            absl::StrCat("--config.file=", (dir_ / "prometheus.yml").string()),
            absl::StrCat("--storage.tsdb.path=", (dir_ / "prom").string()),
            absl::StrCat("--web.listen-address=127.0.0.1:", prom_port_),
            "--web.enable-remote-write-receiver", "--log.level=warn"},
        (dir_ / "prometheus.log").string());
    ASSERT_TRUE(WaitReady(vm_port_, "/health", *vm_)) << vm_->Log();
    ASSERT_TRUE(WaitReady(prom_port_, "/-/ready", *prom_)) << prom_->Log();
  }

  RemoteWriteOptions WriterOptions(int port) const {
    RemoteWriteOptions o;
    o.url = absl::StrCat("http://127.0.0.1:", port, "/api/v1/write");
    o.interval = absl::ZeroDuration();  // snapshots by CollectNow()
    o.delay = absl::ZeroDuration();
    o.series.cluster = "e2e";
    o.series.max_workloads = kMaxWorkloads;
    o.queue.min_backoff = absl::Milliseconds(20);
    o.queue.max_backoff = absl::Milliseconds(500);
    return o;
  }

  std::unique_ptr<Uploader> MakeUploader(FakeAgent* agent) {
    UploaderOptions o;
    o.collector = absl::StrCat("127.0.0.1:", collector_->port());
    o.insecure = true;
    o.interval = absl::ZeroDuration();
    o.backoff_min = absl::Milliseconds(20);
    o.backoff_max = absl::Milliseconds(200);
    o.seed = 7;
    auto u = Uploader::Create(o, [agent] { return agent->Build(); });
    EXPECT_TRUE(u.ok()) << u.status();
    (*u)->Start();
    return std::move(u).value();
  }

  static constexpr size_t kMaxWorkloads = 3;
  std::filesystem::path dir_;
  std::unique_ptr<Child> vm_, prom_;
  int vm_port_ = 0, prom_port_ = 0;
  // Realistic wall time (receivers refuse samples far outside their
  // retention), half an hour back so every query time is in the past.
  FakeClock clock_{(absl::ToUnixSeconds(absl::Now()) / 10 * 10 - 1800) *
                       int64_t{1'000'000'000} -
                   1'700'000'000'000'000'000};
  std::unique_ptr<collector::Collector> collector_;
  std::unique_ptr<RemoteWriter> prom_writer_;
  std::vector<std::unique_ptr<Uploader>> uploaders_;
};

TEST_F(RemoteWriteE2ETest, ReceiversHoldExactlyWhatTheCollectorAnswers) {
  StartReceivers();
  collector::CollectorOptions co;
  co.listen_address = "127.0.0.1:0";
  co.metrics_address = "127.0.0.1:0";
  co.insecure = true;
  co.tick_period = absl::ZeroDuration();
  co.remote_write = WriterOptions(vm_port_);
  auto c = collector::Collector::Start(co, clock_);
  ASSERT_TRUE(c.ok()) << c.status();
  collector_ = std::move(c).value();
  RemoteWriter* vm_writer = collector_->remote_writer();
  ASSERT_NE(vm_writer, nullptr);
  // The second receiver gets its own writer on the same state.
  collector::ClusterState* state = &collector_->state();
  auto pw = RemoteWriter::Create(
      WriterOptions(prom_port_),
      [state](const wattlens::v1::GetUsageRequest& req) {
        return state->GetUsage(req);
      },
      co.cluster.resolution_ns, co.cluster.retention_ns, clock_);
  ASSERT_TRUE(pw.ok()) << pw.status();
  prom_writer_ = std::move(pw).value();
  prom_writer_->Start();
  ASSERT_EQ(vm_writer->anchor_ns(), prom_writer_->anchor_ns());

  std::vector<std::unique_ptr<FakeAgent>> agents;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(
        std::make_unique<FakeAgent>(absl::StrCat("node-", i), clock_, 40 + i));
    uploaders_.push_back(MakeUploader(agents.back().get()));
  }
  // Six 10 s rounds; each writer snapshots after every round.
  for (int round = 0; round < 6; ++round) {
    clock_.AdvanceNs(10'000'000'000);
    for (size_t i = 0; i < agents.size(); ++i) {
      agents[i]->Step();
      uploaders_[i]->CollectNow();
    }
    for (size_t i = 0; i < agents.size(); ++i) {
      ASSERT_TRUE(uploaders_[i]->WaitForAcked(agents[i]->epoch(),
                                              agents[i]->sequence(), kWait));
    }
    ASSERT_TRUE(vm_writer->CollectNow().ok());
    ASSERT_TRUE(prom_writer_->CollectNow().ok());
  }
  const int64_t until_ns = vm_writer->last_snapshot_ns();
  ASSERT_EQ(prom_writer_->last_snapshot_ns(), until_ns);
  ASSERT_EQ(until_ns - vm_writer->anchor_ns(), 60'000'000'000);
  for (RemoteWriter* w : {vm_writer, prom_writer_.get()}) {
    ASSERT_TRUE(w->WaitIdleForTest(kWait)) << w->last_error();
    EXPECT_EQ(w->stats().last_sent_timestamp_ms.load(), until_ns / 1'000'000)
        << w->last_error();
    for (const auto& d : w->stats().dropped_samples) EXPECT_EQ(d.load(), 0u);
  }

  // The collector's own answer over the same window, through gRPC.
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", collector_->port()),
                          grpc::InsecureChannelCredentials());
  auto query = wattlens::v1::QueryService::NewStub(channel);
  wattlens::v1::GetUsageRequest req;
  req.set_group_by(wattlens::v1::GROUP_BY_WORKLOAD);
  // The writer's order, so that __other__ is summed in the same order.
  req.set_sort_by(wattlens::v1::SORT_BY_COST);
  *req.mutable_since() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          vm_writer->anchor_ns());
  *req.mutable_until() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(until_ns);
  wattlens::v1::GetUsageResponse answer;
  grpc::ClientContext ctx;
  ASSERT_TRUE(query->GetUsage(&ctx, req, &answer).ok());
  ASSERT_FALSE(answer.currency().empty());
  ASSERT_GT(answer.rows_size(), static_cast<int>(kMaxWorkloads));
  std::map<std::string, const wattlens::v1::Usage*> rows;
  for (const auto& row : answer.rows()) {
    rows[RowKey(row.key().namespace_(), row.key().workload_kind(),
                row.key().workload())] = &row.usage();
  }
  uint64_t produced_syscalls = 0;
  for (const auto& a : agents)
    produced_syscalls += a->produced_total().syscalls;
  ASSERT_EQ(answer.total().syscalls(), produced_syscalls);

  const int64_t at_s = until_ns / 1'000'000'000;
  // Prometheus stores the float64 it was sent; VictoriaMetrics converts
  // it to a decimal of about 13 significant digits (lib/decimal), so its
  // floats are compared to 1e-11 relative.
  struct Receiver {
    std::string name;
    int port;
    double float_tolerance;
  };
  for (const auto& [name, port, tolerance] :
       std::vector<Receiver>{{"victoria-metrics", vm_port_, 1e-11},
                             {"prometheus", prom_port_, 0}}) {
    SCOPED_TRACE(name);
    // Wait until the receiver serves the last snapshot: every workload
    // series plus __other__, summing to what the agents produced.
    const std::string probe =
        "wattlens_cluster_workload_syscalls_total{cluster=\"e2e\"}";
    std::vector<Series> got;
    const absl::Time deadline = absl::Now() + kWait;
    for (;;) {
      got = Query(port, probe, at_s);
      double sum = 0;
      for (const Series& s : got) sum += std::stod(s.value);
      if (got.size() == kMaxWorkloads + 1 &&
          sum == static_cast<double>(produced_syscalls)) {
        break;
      }
      ASSERT_LT(absl::Now(), deadline)
          << "receiver holds " << got.size() << " series summing to " << sum
          << ", want " << kMaxWorkloads + 1 << " summing to "
          << produced_syscalls;
      absl::SleepFor(absl::Milliseconds(200));
    }
    size_t compared = 0, identical = 0;
    double max_rel = 0;
    for (const auto& spec : Metrics()) {
      std::string promql = absl::StrCat(spec.name, "{cluster=\"e2e\"");
      if (spec.label_name[0] != '\0') {
        absl::StrAppend(&promql, ",", spec.label_name, "=\"", spec.label_value,
                        "\"");
      }
      promql += "}";
      const std::vector<Series> series = Query(port, promql, at_s);
      ASSERT_EQ(series.size(), kMaxWorkloads + 1) << promql;
      std::set<std::string> own;
      for (const Series& s : series) {
        auto get = [&](const char* l) {
          auto it = s.labels.find(l);
          return it == s.labels.end() ? std::string() : it->second;
        };
        if (get("workload") == "__other__") continue;
        own.insert(
            RowKey(get("namespace"), get("workload_kind"), get("workload")));
      }
      ASSERT_EQ(own.size(), kMaxWorkloads);
      for (const Series& s : series) {
        auto get = [&](const char* l) {
          auto it = s.labels.find(l);
          return it == s.labels.end() ? std::string() : it->second;
        };
        if (spec.money) {
          EXPECT_EQ(get("currency"), answer.currency());
        }
        const double v = std::stod(s.value);
        double want = 0;
        if (get("workload") == "__other__") {
          // Folded in the answer's order, as the writer did.
          for (const auto& row : answer.rows()) {
            if (!own.count(RowKey(row.key().namespace_(),
                                  row.key().workload_kind(),
                                  row.key().workload()))) {
              want += spec.value(row.usage());
            }
          }
        } else {
          const std::string key =
              RowKey(get("namespace"), get("workload_kind"), get("workload"));
          ASSERT_TRUE(rows.count(key)) << key;
          want = spec.value(*rows[key]);
        }
        const bool count =
            std::string(spec.name).find("syscalls") != std::string::npos ||
            std::string(spec.name).find("bytes") != std::string::npos;
        if (count) {
          EXPECT_EQ(v, want) << promql << " " << s.value;
        } else {
          EXPECT_NEAR(v, want, std::abs(want) * tolerance)
              << promql << " " << s.value;
        }
        ++compared;
        if (v == want) ++identical;
        if (want != 0)
          max_rel = std::max(max_rel, std::abs(v - want) / std::abs(want));
      }
    }
    EXPECT_EQ(compared, Metrics().size() * (kMaxWorkloads + 1));
    std::printf(
        "%s: %zu series compared at t=%lld (window %lld s): %zu "
        "identical, max relative difference %.3g; syscalls %llu\n",
        name.c_str(), compared, static_cast<long long>(at_s),
        static_cast<long long>((until_ns - vm_writer->anchor_ns()) /
                               1'000'000'000),
        identical, max_rel, static_cast<unsigned long long>(produced_syscalls));
  }

  // The collector's /metrics reports the writer's counters.
  const HttpResponse m = HttpGet(collector_->metrics_port(), "/metrics");
  ASSERT_EQ(m.code, 200);
  EXPECT_NE(m.body.find(absl::StrCat(
                "wattlens_collector_remote_write_sent_samples_total ",
                vm_writer->stats().sent_samples.load())),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("wattlens_collector_remote_write_dropped_samples_total"
                        "{reason=\"queue_full\"} 0"),
            std::string::npos);
}

}  // namespace
}  // namespace wattlens::testing
