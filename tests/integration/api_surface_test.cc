// SPDX-License-Identifier: Apache-2.0
// The rest of the API surface, in process on 127.0.0.1:0: grpc.health.v1 on
// the collector and on the agent's node API, the node API's RPCs over a real
// channel, and the CLI's table output and `watch -f`.
#include <algorithm>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "agent/export/node_report.h"
#include "cli/cli.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster_harness.h"
#include "wattlens/v1/node.grpc.pb.h"

namespace wattlens::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

// grpc.health.v1.Health/Check for the whole server, as raw protobuf bytes
// (the health protos' generated code is not installed): an empty request;
// SERVING is field 1 = 1, i.e. the two bytes 08 01.
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                         std::string* response_bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::Slice empty{std::string()};  // an empty HealthCheckRequest
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status result;
  absl::Notification done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   result = s;
                   done.Notify();
                 });
  done.WaitForNotification();
  std::vector<grpc::Slice> slices;
  if (result.ok() && response.Dump(&slices).ok()) {
    for (const auto& s : slices) {
      response_bytes->append(reinterpret_cast<const char*>(s.begin()),
                             s.size());
    }
  }
  return result;
}

// grpc.reflection.v1alpha ServerReflectionInfo with one list_services
// request (field 7, empty string: bytes 3a 00); collects the reply bytes.
class ReflectionCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit ReflectionCall(const std::shared_ptr<grpc::Channel>& channel) {
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::Slice req(std::string("\x3a\x00", 2));
    request_ = grpc::ByteBuffer(&req, 1);
    grpc::GenericStub stub(channel);
    stub.PrepareBidiStreamingCall(
        &ctx_, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        grpc::StubOptions(), this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool) override { StartWritesDone(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    if (response_.Dump(&slices).ok()) {
      for (const auto& sl : slices) {
        bytes_.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
      }
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& s) override {
    status_ = s;
    done_.Notify();
  }
  grpc::Status Wait() {
    done_.WaitForNotification();
    return status_;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_, response_;
  std::string bytes_;
  grpc::Status status_;
  absl::Notification done_;
};

// Reflection is served only with the flag. The plugin registers for the
// whole process, so "off" is checked first.
TEST(ReflectionTest, OnlyBehindTheFlag) {
  FakeClock clock(1'700'000'000'000'000'000);
  for (bool on : {false, true}) {
    collector::CollectorOptions o;
    o.listen_address = "127.0.0.1:0";
    o.metrics_address = "";
    o.insecure = true;
    o.reflection = on;
    o.tick_period = absl::ZeroDuration();
    auto c = collector::Collector::Start(o, clock);
    ASSERT_TRUE(c.ok()) << c.status();
    ReflectionCall call(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*c)->port()),
                            grpc::InsecureChannelCredentials()));
    grpc::Status st = call.Wait();
    if (!on) {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    } else {
      EXPECT_TRUE(st.ok()) << st.error_message();
      EXPECT_NE(call.bytes().find("wattlens.v1.QueryService"),
                std::string::npos);
      EXPECT_NE(call.bytes().find("wattlens.v1.IngestService"),
                std::string::npos);
    }
  }
}

class ApiSurfaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    collector::CollectorOptions o;
    o.listen_address = "127.0.0.1:0";
    o.metrics_address = "";
    o.insecure = true;
    o.tick_period = absl::ZeroDuration();
    auto c = collector::Collector::Start(o, clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    collector_ = std::move(c).value();
    server_ = absl::StrCat("127.0.0.1:", collector_->port());
  }
  FakeClock clock_{1'700'000'000'000'000'000};
  std::unique_ptr<collector::Collector> collector_;
  std::string server_;
};

TEST_F(ApiSurfaceTest, CollectorAnswersHealthChecksServing) {
  std::string bytes;
  grpc::Status st = HealthCheck(
      grpc::CreateChannel(server_, grpc::InsecureChannelCredentials()), &bytes);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // SERVING
}

TEST_F(ApiSurfaceTest, CliTableAndWatchFollow) {
  const std::vector<std::string> global = {"--server=" + server_, "--insecure"};
  // watch -f follows the stream until cancelled.
  std::atomic<bool> cancel{false};
  std::ostringstream watch_out, watch_err;
  int watch_rc = -1;
  std::vector<std::string> watch_args = global;
  watch_args.insert(watch_args.end(), {"watch", "-f"});
  std::thread watcher([&] {
    watch_rc = cli::RunCli(watch_args, watch_out, watch_err, &cancel);
  });

  FakeAgent agent("node-w", clock_, 3);
  UploaderOptions uo;
  uo.collector = server_;
  uo.insecure = true;
  uo.interval = absl::ZeroDuration();
  auto up = Uploader::Create(uo, [&agent] { return agent.Build(); });
  ASSERT_TRUE(up.ok()) << up.status();
  (*up)->Start();
  clock_.AdvanceNs(10'000'000'000);
  agent.Step();
  (*up)->CollectNow();
  ASSERT_TRUE((*up)->WaitForAcked(agent.epoch(), agent.sequence(), kWait));

  // The table: a header and the node's workloads, sorted by CPU.
  std::ostringstream top_out, top_err;
  std::vector<std::string> top_args = global;
  top_args.insert(top_args.end(), {"top", "--group-by=cgroup", "--window=1h"});
  ASSERT_EQ(cli::RunCli(top_args, top_out, top_err), 0) << top_err.str();
  EXPECT_NE(top_out.str().find("NODE"), std::string::npos) << top_out.str();
  EXPECT_NE(top_out.str().find("/system.slice/sshd.service"), std::string::npos)
      << top_out.str();

  // The node's connection reached the follower as an event.
  for (absl::Time deadline = absl::Now() + kWait;
       watch_out.str().find("node-w") == std::string::npos &&
       absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(20));  // polling a condition
  }
  cancel = true;
  watcher.join();
  (*up)->Stop(absl::ZeroDuration());
  EXPECT_EQ(watch_rc, 0) << watch_err.str();
  EXPECT_NE(watch_out.str().find("node-w"), std::string::npos)
      << "watch -f printed: " << watch_out.str();
}

// `wattlens projects`: the open-source project bill over the real API.
TEST_F(ApiSurfaceTest, CliProjectsBillsEachProjectWithShares) {
  wattlens::v1::NodeReport r;
  r.set_node_name("node-p");
  r.set_epoch(1);
  r.set_sequence(1);
  *r.mutable_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
          clock_.RealtimeNs());
  r.set_elapsed_nanoseconds(3600ull * 1'000'000'000);
  r.mutable_node()->set_cpus(4);
  r.mutable_node()->set_memory_bytes(16ull << 30);
  const std::pair<const char*, uint64_t> projects[] = {{"postgresql", 3},
                                                       {"nginx", 1}};
  for (const auto& [project, cores] : projects) {
    auto* w = r.add_workloads();
    auto* id = w->mutable_identity();
    id->set_cgroup_path(absl::StrCat("/kubepods/", project));
    id->set_namespace_("shop");
    id->set_pod(absl::StrCat(project, "-0"));
    id->set_project(project);
    // The whole node's CPU is allocated: no idle CPU cost.
    w->set_cpu_allocated_core_nanoseconds(cores * 3600ull * 1'000'000'000);
    w->set_memory_allocated_byte_seconds((8ull << 30) * 3600);
  }
  collector_->state().Apply(r, nullptr);

  const std::vector<std::string> global = {"--server=" + server_, "--insecure"};
  std::ostringstream out, err;
  std::vector<std::string> args = global;
  args.insert(args.end(), {"projects", "--window=1h"});
  ASSERT_EQ(cli::RunCli(args, out, err), 0) << err.str();
  // OpenCost default prices: postgresql 3 x 0.031611 + 8 x 0.004237 =
  // 0.128729 of 0.194220 (66.3 %), nginx 0.065507 (33.7 %).
  EXPECT_NE(out.str().find("PROJECT"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("COST(USD)"), std::string::npos) << out.str();
  const size_t pg = out.str().find("postgresql");
  const size_t ng = out.str().find("nginx");
  ASSERT_NE(pg, std::string::npos) << out.str();
  ASSERT_NE(ng, std::string::npos) << out.str();
  EXPECT_LT(pg, ng) << "sorted by cost: " << out.str();
  EXPECT_NE(out.str().find("0.128729"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("66.3%"), std::string::npos) << out.str();

  // The same bill as JSON through `top --group-by=project -o json`.
  std::ostringstream jout, jerr;
  args = global;
  args.insert(args.end(), {"top", "--group-by=project", "--sort-by=cost",
                           "--window=1h", "-o", "json"});
  ASSERT_EQ(cli::RunCli(args, jout, jerr), 0) << jerr.str();
  wattlens::v1::GetUsageResponse resp;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(jout.str(), &resp)
                  .ok())
      << jout.str();
  ASSERT_EQ(resp.rows_size(), 2);
  EXPECT_EQ(resp.rows(0).key().project(), "postgresql");
  EXPECT_NEAR(resp.rows(0).usage().cost().total(),
              3 * 0.031611 + 8 * 0.004237, 1e-12);
  EXPECT_NEAR(resp.total().cost().total(), 4 * 0.031611 + 16 * 0.004237,
              1e-12);
  EXPECT_EQ(resp.currency(), "USD");
}

// Every view in every output format against the real API: the CSV's
// BilledCost is the price of what the test allocated, to the last digit.
TEST_F(ApiSurfaceTest, CliPrintsEveryViewInEveryFormat) {
  wattlens::v1::NodeReport r;
  r.set_node_name("node-o");
  r.set_epoch(1);
  r.set_sequence(1);
  *r.mutable_time() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      clock_.RealtimeNs());
  r.set_elapsed_nanoseconds(3600ull * 1'000'000'000);
  r.mutable_node()->set_cpus(4);
  r.mutable_node()->set_memory_bytes(16ull << 30);
  for (const auto& [pod, cores] :
       {std::pair<const char*, uint64_t>{"pg-0", 3}, {"web-0", 1}}) {
    auto* id = r.add_workloads()->mutable_identity();
    id->set_cgroup_path(absl::StrCat("/kubepods/", pod));
    id->set_namespace_("shop");
    id->set_pod(pod);
    auto* w = r.mutable_workloads(r.workloads_size() - 1);
    w->set_cpu_allocated_core_nanoseconds(cores * 3600ull * 1'000'000'000);
    w->set_memory_allocated_byte_seconds((8ull << 30) * 3600);
  }
  collector_->state().Apply(r, nullptr);
  const double pg_cost = 3 * 0.031611 + 8 * 0.004237;  // OpenCost defaults
  const double web_cost = 1 * 0.031611 + 8 * 0.004237;

  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> all = {"--server=" + server_, "--insecure"};
    all.insert(all.end(), args.begin(), args.end());
    std::ostringstream out, err;
    EXPECT_EQ(cli::RunCli(all, out, err), 0) << err.str();
    return out.str();
  };
  const std::vector<std::string> top = {"top", "--group-by=pod", "--window=1h"};
  auto top_as = [&](const char* format) {
    std::vector<std::string> args = top;
    args.insert(args.end(), {"-o", format});
    return run(args);
  };

  const std::string table = top_as("table");
  EXPECT_NE(table.find("POD"), std::string::npos) << table;
  EXPECT_NE(table.find("pg-0"), std::string::npos) << table;
  const std::string wide = top_as("wide");
  for (const char* h : {"COST(USD)", "CO2e(g)", "SERIES"}) {
    EXPECT_NE(wide.find(h), std::string::npos) << wide;
  }
  wattlens::v1::GetUsageResponse resp;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(top_as("json"), &resp).ok());
  ASSERT_EQ(resp.rows_size(), 2);
  const std::string yaml = top_as("yaml");
  EXPECT_NE(yaml.find("currency: USD\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("    pod: pg-0\n"), std::string::npos) << yaml;

  // CSV: one line per pod under the FOCUS header.
  const std::string csv = top_as("csv");
  std::vector<std::vector<std::string>> cells;
  for (absl::string_view line :
       absl::StrSplit(csv, "\r\n", absl::SkipEmpty())) {
    cells.push_back(absl::StrSplit(line, ','));
  }
  ASSERT_EQ(cells.size(), 3u) << csv;
  auto column = [&](const std::string& name) {
    const auto it = std::find(cells[0].begin(), cells[0].end(), name);
    EXPECT_NE(it, cells[0].end()) << name;
    return static_cast<size_t>(it - cells[0].begin());
  };
  double billed = 0;
  for (size_t i = 1; i < cells.size(); ++i) {
    const std::string& pod = cells[i][column("x_Pod")];
    const double cost = std::stod(cells[i][column("BilledCost")]);
    EXPECT_NEAR(cost, pod == "pg-0" ? pg_cost : web_cost, 1e-12) << pod;
    EXPECT_EQ(cells[i][column("ResourceId")], "shop/" + pod);
    EXPECT_EQ(cells[i][column("BillingCurrency")], "USD");
    billed += cost;
  }
  EXPECT_NEAR(billed, resp.total().cost().total(), 1e-12);

  for (const char* format : {"table", "wide", "json", "yaml", "csv"}) {
    EXPECT_NE(run({"status", "-o", format}).find("node-o"), std::string::npos)
        << format;
    const std::string events = run({"watch", "-o", format});
    EXPECT_NE(events.find("node-o"), std::string::npos) << format << events;
  }
  EXPECT_EQ(run({"watch", "-o", "csv"}).rfind("Time,NodeName,Event,", 0), 0u);
}

// The agent's local node API: health and both RPCs over a real channel.
TEST(NodeApiTest, ServesUsageAndProcessesOfTheLatestSnapshot) {
  NodeApiService service({"node-x", 42, "test"});
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  std::string bytes;
  ASSERT_TRUE(HealthCheck(channel, &bytes).ok());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));

  Snapshot prev, cur;
  prev.sequence = 1;
  prev.monotonic_ns = 1'000'000'000;
  cur.sequence = 2;
  cur.monotonic_ns = 2'000'000'000;
  cur.interval_ns = 1'000'000'000;
  CgroupStats web;
  web.id = 7;
  web.path = "/system.slice/nginx.service";
  web.cpu_ns = 1'500'000'000;
  web.syscalls = 900;
  CgroupStats prev_web = web;
  prev_web.cpu_ns = 1'000'000'000;
  prev.cgroups = {prev_web};
  cur.cgroups = {web};
  ProcessStats p;
  p.pid = 1234;
  p.start_ns = 5;
  p.comm = "nginx";
  p.cgroup_id = 7;
  p.cpu_ns = 1'500'000'000;
  p.syscalls = 900;
  cur.processes = {p};
  // Two intervals, as the agent feeds it: rates are between its own copies.
  service.Update(prev);
  service.Update(cur);

  auto stub = wattlens::v1::NodeService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    wattlens::v1::GetNodeUsageRequest req;
    wattlens::v1::GetNodeUsageResponse resp;
    ASSERT_TRUE(stub->GetNodeUsage(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.node_name(), "node-x");
    EXPECT_EQ(resp.sequence(), 2u);
    ASSERT_GE(resp.rows_size(), 1);
    bool found = false;
    for (const auto& row : resp.rows()) {
      if (row.key().cgroup_path() != "/system.slice/nginx.service") continue;
      found = true;
      EXPECT_EQ(row.usage().cpu_nanoseconds(), 1'500'000'000u);
      EXPECT_NEAR(row.usage().cpu_cores(), 0.5, 1e-9);  // 0.5 s in 1 s
    }
    EXPECT_TRUE(found);
  }
  {
    grpc::ClientContext ctx;
    wattlens::v1::ListProcessesRequest req;
    req.set_cgroup_path("/system.slice/nginx.service");
    wattlens::v1::ListProcessesResponse resp;
    ASSERT_TRUE(stub->ListProcesses(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.processes_size(), 1);
    EXPECT_EQ(resp.processes(0).pid(), 1234u);
    EXPECT_EQ(resp.processes(0).comm(), "nginx");
    EXPECT_EQ(resp.processes(0).syscalls(), 900u);
  }
  server->Shutdown();
}

}  // namespace
}  // namespace wattlens::testing
