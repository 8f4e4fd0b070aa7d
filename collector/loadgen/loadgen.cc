// SPDX-License-Identifier: Apache-2.0
// wattlens-loadgen: simulates N agents (W workloads each, one report per
// interval, phases spread over the interval) streaming to one collector over
// plaintext gRPC, with one callback-API stream per agent. Reports ingest lag
// (report time -> acknowledgement), the collector's CPU and RSS (from
// /proc/<pid>) and the latency of `top` queries issued during the run.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/create_channel.h"
#include "wattlens/v1/ingest.grpc.pb.h"
#include "wattlens/v1/query.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:9811", "collector (plaintext)");
ABSL_FLAG(int, agents, 1000, "simulated agents");
ABSL_FLAG(int, workloads, 100, "workloads per agent");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(10), "report interval");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(60), "measured run time");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(20),
          "run before measuring (every agent connected and reported)");
ABSL_FLAG(int, channels, 64, "TCP connections the agents are spread over");
ABSL_FLAG(int, collector_pid, 0, "pid of the collector to sample");
ABSL_FLAG(absl::Duration, query_period, absl::Seconds(2),
          "one `top` query (GetUsage, group by workload, 5 m) per period");

namespace {

using google::protobuf::util::TimeUtil;
using wattlens::v1::UploadRequest;
using wattlens::v1::UploadResponse;

std::atomic<bool> g_measuring{false};

struct Latencies {
  std::mutex mu;
  std::vector<double> v;
  void Add(double x) {
    std::lock_guard<std::mutex> l(mu);
    v.push_back(x);
  }
  double Pct(double p) {
    std::lock_guard<std::mutex> l(mu);
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  }
  size_t Size() {
    std::lock_guard<std::mutex> l(mu);
    return v.size();
  }
};

Latencies g_lag, g_query;
std::atomic<uint64_t> g_sent{0}, g_acked{0}, g_skipped{0}, g_failed{0};

class SimAgent final
    : public grpc::ClientBidiReactor<UploadRequest, UploadResponse> {
 public:
  static constexpr const char* kRegions[] = {"us-east-1", "europe-west1",
                                             "eastus", "eu-central-1"};
  static constexpr const char* kProjects[] = {"postgresql", "nginx", "redis",
                                              "kafka", ""};
  SimAgent(int id, int workloads, wattlens::v1::IngestService::Stub* stub)
      : id_(id), stub_(stub) {
    auto* r = req_.mutable_report();
    r->set_node_name(absl::StrCat("sim-node-", id));
    r->set_epoch(1'700'000'000'000'000'000ull + id);
    r->mutable_interval()->set_seconds(10);
    r->set_agent_version("loadgen");
    // A node the cost engine prices: capacity, region, instance type.
    r->mutable_node()->set_cpus(16);
    r->mutable_node()->set_memory_bytes(64ull << 30);
    (*r->mutable_node()->mutable_labels())["topology.kubernetes.io/region"] =
        kRegions[id % 4];
    (*r->mutable_node()->mutable_labels())["node.kubernetes.io/instance-type"] =
        "m5.4xlarge";
    for (int w = 0; w < workloads; ++w) {
      auto* wc = r->add_workloads();
      auto* idn = wc->mutable_identity();
      idn->set_cgroup_path(absl::StrCat("/kubepods.slice/pod-", id, "-", w));
      idn->set_cgroup_id(w + 1);
      idn->set_namespace_(absl::StrCat("ns-", w % 20));
      idn->set_pod(absl::StrCat("pod-", id, "-", w));
      idn->set_container("app");
      idn->set_workload_kind("Deployment");
      idn->set_workload(absl::StrCat("deploy-", w));
      idn->set_project(kProjects[w % 5]);
      wc->add_network()->set_network_class(wattlens::v1::NETWORK_CLASS_CLUSTER);
      wc->add_energy()->set_zone(wattlens::v1::ENERGY_ZONE_PACKAGE);
      wc->set_cpu_request_cores(0.1);
      wc->set_memory_request_bytes(256ull << 20);
    }
  }

  void Begin() {
    stub_->async()->Upload(&ctx_, this);
    StartRead(&ack_);
    StartCall();
  }

  // Called by the scheduler thread.
  void Tick() {
    std::lock_guard<std::mutex> l(mu_);
    if (writing_ || done_) {
      g_skipped++;
      return;
    }
    auto* r = req_.mutable_report();
    r->set_sequence(r->sequence() + 1);
    const int64_t now = absl::ToUnixNanos(absl::Now());
    *r->mutable_time() = TimeUtil::NanosecondsToTimestamp(now);
    r->set_elapsed_nanoseconds(r->elapsed_nanoseconds() + 10'000'000'000);
    for (auto& w : *r->mutable_workloads()) {
      w.set_cpu_allocated_core_nanoseconds(w.cpu_allocated_core_nanoseconds() +
                                           1'000'000'000);
      w.set_memory_allocated_byte_seconds(w.memory_allocated_byte_seconds() +
                                          (256ull << 20) * 10);
      w.set_tcp_accepted(w.tcp_accepted() + 3);
      w.mutable_energy(0)->set_microjoules(w.energy(0).microjoules() + 5000);
      w.set_cpu_nanoseconds(w.cpu_nanoseconds() + 1'000'000 + (id_ % 7));
      w.set_syscalls(w.syscalls() + 1000);
      w.mutable_network(0)->set_transmit_bytes(w.network(0).transmit_bytes() +
                                               4096);
    }
    sent_ns_[r->sequence() % kSlots] = now;
    writing_ = true;
    g_sent++;
    StartWrite(&req_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    writing_ = false;
    if (!ok) done_ = true;
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
      return;
    }
    int64_t sent;
    {
      std::lock_guard<std::mutex> l(mu_);
      sent = sent_ns_[ack_.acked_sequence() % kSlots];
    }
    g_acked++;
    if (g_measuring) {
      g_lag.Add(static_cast<double>(absl::ToUnixNanos(absl::Now()) - sent) /
                1e9);
    }
    StartRead(&ack_);
  }
  void OnDone(const grpc::Status& s) override {
    if (!s.ok()) g_failed++;
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    finished_ = true;
  }
  void Cancel() { ctx_.TryCancel(); }
  bool finished() {
    std::lock_guard<std::mutex> l(mu_);
    return finished_;
  }

 private:
  static constexpr int kSlots = 64;
  const int id_;
  wattlens::v1::IngestService::Stub* stub_;
  grpc::ClientContext ctx_;
  UploadRequest req_;
  UploadResponse ack_;
  std::mutex mu_;
  bool writing_ = false, done_ = false, finished_ = false;
  int64_t sent_ns_[kSlots] = {};
};

struct ProcSample {
  double cpu_seconds = 0;
  long rss_kb = 0;
};
ProcSample Sample(int pid) {
  ProcSample s;
  if (pid <= 0) return s;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  auto rp = content.rfind(')');
  if (rp != std::string::npos) {
    std::istringstream in(content.substr(rp + 2));
    std::string f;
    std::vector<std::string> fields;
    while (in >> f) fields.push_back(f);
    if (fields.size() > 13) {
      s.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) /
                      static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stol(line.substr(6));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int n = absl::GetFlag(FLAGS_agents);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  const int pid = absl::GetFlag(FLAGS_collector_pid);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<wattlens::v1::IngestService::Stub>> stubs;
  for (int i = 0; i < absl::GetFlag(FLAGS_channels); ++i) {
    grpc::ChannelArguments args;
    args.SetInt("wattlens.loadgen.channel", i);  // one connection each
    channels.push_back(grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), args));
    stubs.push_back(wattlens::v1::IngestService::NewStub(channels.back()));
  }
  std::vector<std::unique_ptr<SimAgent>> agents;
  for (int i = 0; i < n; ++i) {
    agents.push_back(std::make_unique<SimAgent>(
        i, absl::GetFlag(FLAGS_workloads), stubs[i % stubs.size()].get()));
    agents.back()->Begin();
  }
  std::fprintf(stderr, "%d agents started\n", n);

  std::atomic<bool> stop{false};
  std::thread query([&] {
    auto stub = wattlens::v1::QueryService::NewStub(grpc::CreateChannel(
        absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials()));
    while (!stop) {
      absl::SleepFor(absl::GetFlag(FLAGS_query_period));
      wattlens::v1::GetUsageRequest req;
      req.set_group_by(wattlens::v1::GROUP_BY_WORKLOAD);
      req.mutable_window()->set_seconds(300);
      req.set_limit(20);
      grpc::ClientContext ctx;
      wattlens::v1::GetUsageResponse resp;
      const absl::Time t0 = absl::Now();
      grpc::Status st = stub->GetUsage(&ctx, req, &resp);
      if (st.ok() && g_measuring) {
        g_query.Add(absl::ToDoubleSeconds(absl::Now() - t0));
      }
    }
  });

  // Agent i reports at phase (i / n) * interval, then every interval.
  const absl::Time start = absl::Now();
  const absl::Time measure_at = start + absl::GetFlag(FLAGS_warmup);
  const absl::Time end = measure_at + absl::GetFlag(FLAGS_duration);
  ProcSample before;
  uint64_t sent_before = 0, acked_before = 0;
  const absl::Duration step = absl::Milliseconds(10);
  int64_t next_slot = 0;  // agents scheduled up to this many * step
  for (absl::Time t = start; absl::Now() < end; t += step) {
    absl::SleepFor(std::max(absl::ZeroDuration(), t - absl::Now()));
    if (!g_measuring && absl::Now() >= measure_at) {
      before = Sample(pid);
      sent_before = g_sent;
      acked_before = g_acked;
      g_measuring = true;
    }
    // Every agent whose phase falls in (t - step, t] sends.
    const double frac_now = absl::FDivDuration(t - start, interval);
    const int64_t target = static_cast<int64_t>(frac_now * n);
    for (; next_slot < target; ++next_slot) {
      agents[next_slot % n]->Tick();
    }
  }
  const ProcSample after = Sample(pid);
  const double secs = absl::ToDoubleSeconds(absl::GetFlag(FLAGS_duration));
  stop = true;
  query.join();
  const uint64_t sent = g_sent - sent_before, acked = g_acked - acked_before;
  std::printf(
      "agents=%d workloads=%d interval=%s measured=%.0fs\n"
      "reports sent=%lu acked=%lu (%.1f/s) skipped_busy=%lu "
      "failed_streams=%lu\n"
      "ingest lag (send->ack) p50=%.3fs p99=%.3fs max=%.3fs samples=%zu\n"
      "collector cpu=%.2f cores rss=%.0f MiB\n"
      "top query p50=%.3fs p99=%.3fs samples=%zu\n",
      n, absl::GetFlag(FLAGS_workloads), absl::FormatDuration(interval).c_str(),
      secs, sent, acked, acked / secs, g_skipped.load(), g_failed.load(),
      g_lag.Pct(0.5), g_lag.Pct(0.99), g_lag.Pct(1.0), g_lag.Size(),
      (after.cpu_seconds - before.cpu_seconds) / secs, after.rss_kb / 1024.0,
      g_query.Pct(0.5), g_query.Pct(0.99), g_query.Size());
  for (auto& a : agents) a->Cancel();
  for (auto& a : agents) {
    while (!a->finished()) absl::SleepFor(absl::Milliseconds(1));
  }
  return 0;
}
