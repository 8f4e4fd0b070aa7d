// SPDX-License-Identifier: Apache-2.0
// Snapshot -> NodeReport conversion and the uploader's bounded outbox.
#include "agent/export/uploader.h"

#include <atomic>
#include <set>
#include <string>
#include <tuple>

#include "agent/common/report_limits.h"
#include "agent/export/node_report.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

TEST(NodeReportTest, SnapshotBecomesCumulativeReport) {
  Snapshot s;
  s.sequence = 9;
  s.realtime_ns = 1'700'000'000'123'000'000;
  s.interval_ns = 1'000'000'000;
  CgroupStats c;
  c.id = 42;
  c.path = "/system.slice/sshd.service";
  c.cpu_ns = 2'000'764'000;
  c.syscalls = 100;
  c.syscall_errors = 3;
  c.net[3].tx_bytes = 10;  // internet
  c.net[3].rx_bytes = 20;
  s.cgroups.push_back(c);
  s.self.drops[DropReason::kRingbufFull] = 5;
  auto r = BuildNodeReport(s, {"node-1", 77, "0.1.0"});
  EXPECT_EQ(r.node_name(), "node-1");
  EXPECT_EQ(r.epoch(), 77u);
  EXPECT_EQ(r.sequence(), 9u);
  ASSERT_EQ(r.workloads_size(), 1);
  const auto& w = r.workloads(0);
  EXPECT_EQ(w.identity().cgroup_path(), "/system.slice/sshd.service");
  EXPECT_EQ(w.identity().systemd_unit(), "sshd.service");
  EXPECT_EQ(w.identity().cgroup_id(), 42u);
  EXPECT_EQ(w.cpu_nanoseconds(), 2'000'764'000u);
  ASSERT_EQ(w.network_size(), 1);
  EXPECT_EQ(w.network(0).network_class(), wattlens::v1::NETWORK_CLASS_INTERNET);
  EXPECT_EQ(w.network(0).receive_bytes(), 20u);
  // Every reason travels, in enum order, zero or not.
  ASSERT_EQ(r.health().drops_size(), static_cast<int>(kDropReasons));
  const auto& ringbuf =
      r.health().drops(static_cast<int>(DropReason::kRingbufFull));
  EXPECT_EQ(ringbuf.reason(), "ringbuf_full");
  EXPECT_EQ(ringbuf.count(), 5u);
}

// Energy travels as cumulative µJ per zone and mode; the idle and
// unattributed buckets become pseudo-workloads so that workload sums equal
// the node's energy; power comes from the top-level zones only.
TEST(NodeReportTest, EnergyConservedAcrossWorkloadsAndBuckets) {
  Snapshot s;
  s.sequence = 3;
  CgroupStats c;
  c.id = 42;
  c.path = "/burner";
  s.cgroups.push_back(c);
  EnergyStats& e = s.energy;
  e.enabled = true;
  e.zones = {{"core", "model:ccf", "model", 400, 0, 0, 0, 1'000'000'000},
             {"package", "model:ccf", "model", 10'000'000, 3'000'000, 2'000'000,
              500'000, 1'000'000'000}};
  e.workloads = {{42, "/burner", "package", 6'500'000, 0, 0, 0},
                 {0, "__idle__", "package", 0, 3'000'000, 0, 0},
                 {0, "__unattributed__", "package", 500'000, 0, 0, 0},
                 {42, "/burner", "mystery-zone", 9, 9, 0, 0}};
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  EXPECT_EQ(r.power().source(), wattlens::v1::POWER_SOURCE_MODEL);
  EXPECT_DOUBLE_EQ(r.power().watts(), 2.0);  // package only: core nests in it
  uint64_t workload_sum = 0, node_sum = 0;
  auto add_package = [&](const auto& energy) {
    for (const auto& en : energy) {
      ASSERT_NE(en.zone(), wattlens::v1::ENERGY_ZONE_UNSPECIFIED);
      if (en.zone() == wattlens::v1::ENERGY_ZONE_PACKAGE)
        workload_sum += en.microjoules();
    }
  };
  for (const auto& w : r.workloads()) {
    const std::string& path = w.identity().cgroup_path();
    EXPECT_NE(path, "__idle__");
    EXPECT_NE(path, "__unattributed__");
    add_package(w.energy());
  }
  ASSERT_EQ(r.energy_buckets_size(), 2);
  EXPECT_EQ(r.energy_buckets(0).bucket(), wattlens::v1::ENERGY_BUCKET_IDLE);
  EXPECT_EQ(r.energy_buckets(1).bucket(),
            wattlens::v1::ENERGY_BUCKET_UNATTRIBUTED);
  for (const auto& b : r.energy_buckets()) add_package(b.energy());
  for (const auto& en : r.power().energy()) {
    if (en.zone() == wattlens::v1::ENERGY_ZONE_PACKAGE) {
      node_sum += en.microjoules();
      if (en.mode() == wattlens::v1::ENERGY_MODE_IDLE) {
        EXPECT_EQ(en.microjoules(), 3'000'000u);
      }
    }
  }
  EXPECT_EQ(node_sum, 10'000'000u);
  EXPECT_EQ(workload_sum, node_sum);
}

// Zones nest: with a whole-platform zone (psys) a workload's energy travels
// in that zone alone, since the collector sums a workload's zones; without
// one, in the parts that do not nest (the model's platform term is such a
// part). Node power follows the same rule.
TEST(NodeReportTest, WorkloadsCarryOnlyZonesThatSumToTheNodeTotal) {
  Snapshot s;
  CgroupStats c;
  c.id = 42;
  c.path = "/burner";
  s.cgroups.push_back(c);
  EnergyStats& e = s.energy;
  e.enabled = true;
  constexpr int64_t kSec = 1'000'000'000;
  e.zones = {{"core", "rapl-powercap", "none", 0, 0, 4'000'000, 0, kSec},
             {"dram", "rapl-powercap", "none", 0, 0, 2'000'000, 0, kSec},
             {"package", "rapl-powercap", "none", 0, 0, 10'000'000, 0, kSec},
             {"psys", "rapl-powercap", "none", 0, 0, 30'000'000, 0, kSec}};
  for (const char* zone : {"core", "dram", "package", "psys"}) {
    e.workloads.push_back({42, "/burner", zone, 1'000, 0, 0, 0});
  }
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  EXPECT_DOUBLE_EQ(r.power().watts(), 30.0);  // psys alone
  uint64_t burner_uj = 0;
  for (const auto& w : r.workloads()) {
    for (const auto& en : w.energy()) {
      EXPECT_EQ(en.zone(), wattlens::v1::ENERGY_ZONE_PLATFORM);
      burner_uj += en.microjoules();
    }
  }
  EXPECT_EQ(burner_uj, 1'000u);           // not 4'000: no part beside its whole
  EXPECT_EQ(r.power().energy_size(), 8);  // the node keeps every zone

  // The tdp-curve model: package, dram and its static platform term are
  // parts, all counted.
  for (auto& z : e.zones) z.source = "model:tdp-curve";
  e.zones = {e.zones[1], e.zones[2]};
  e.zones.push_back(
      {"platform", "model:tdp-curve", "model", 0, 0, 2'000'000, 0, kSec});
  e.workloads = {{42, "/burner", "package", 700, 0, 0, 0},
                 {42, "/burner", "platform", 200, 0, 0, 0},
                 {42, "/burner", "dram", 100, 0, 0, 0}};
  r = BuildNodeReport(s, {"n", 1, "v"});
  EXPECT_DOUBLE_EQ(r.power().watts(), 14.0);  // 2 + 10 + 2
  burner_uj = 0;
  for (const auto& w : r.workloads()) {
    for (const auto& en : w.energy()) burner_uj += en.microjoules();
  }
  EXPECT_EQ(burner_uj, 1'000u);
}

TEST(NodeReportTest, EnergyProvenanceTravels) {
  Snapshot s;
  s.energy.enabled = true;
  s.energy.power_source = "model:ccf";
  s.energy.power_measured = false;
  s.energy.power_rejected = {
      {"perf-power", "stuck", "energy-psys (psys) did not advance"},
      {"rapl-powercap", "absent", "no powercap class"}};
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  const auto& p = r.energy_provenance();
  EXPECT_EQ(p.basis(), wattlens::v1::ENERGY_BASIS_MODELLED);
  ASSERT_EQ(p.sources_size(), 1);
  EXPECT_EQ(p.sources(0), "model:ccf");
  ASSERT_EQ(p.rejected_size(), 2);
  EXPECT_EQ(p.rejected(0).source(), "perf-power");
  EXPECT_EQ(p.rejected(0).reason(), "stuck");
  s.energy.power_source = "rapl-powercap";
  s.energy.power_measured = true;
  EXPECT_EQ(BuildNodeReport(s, {"n", 1, "v"}).energy_provenance().basis(),
            wattlens::v1::ENERGY_BASIS_MEASURED);
}

TEST(NodeReportTest, NoEnergySectionMeansNoPowerSource) {
  Snapshot s;
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  EXPECT_EQ(r.power().source(), wattlens::v1::POWER_SOURCE_NONE);
  EXPECT_EQ(r.power().energy_size(), 0);
}

// Without the identity stage, a report still says what the path says (one
// parser: ParseCgroupPath's systemd_unit).
TEST(NodeReportTest, UnitAndPodIdsFromThePathAlone) {
  auto unit = [](const char* path) {
    CgroupStats c;
    c.path = path;
    return LabelsOf(c).systemd_unit;
  };
  EXPECT_EQ(unit("/"), "");
  EXPECT_EQ(unit("/system.slice/cron.service"), "cron.service");
  EXPECT_EQ(unit("/user.slice/user-0.slice/session-3.scope"),
            "session-3.scope");
  EXPECT_EQ(unit("/user.slice/user-0.slice"), "user-0.slice");
  EXPECT_EQ(unit("/wattlens-test/burner"), "");
  CgroupStats pod;
  pod.path =
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
      "0f4c7a2e_93d1_4b6a_8e25_1c7d9b3f6a08.slice/cri-containerd-" +
      std::string(64, 'a') + ".scope";
  const WorkloadLabels l = LabelsOf(pod);
  EXPECT_EQ(l.pod_uid, "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08");
  EXPECT_EQ(l.container_id, std::string(64, 'a'));
  EXPECT_EQ(l.systemd_unit, "");
  EXPECT_EQ(l.kind, "pod_container");
}

// The fields the collector's cost engine reads (#7): identity, accepts,
// requests, working set, allocations, the node's size and labels, and the
// wall time the epoch covers.
TEST(NodeReportTest, IdentityResourcesAndNodeSpec) {
  Snapshot s;
  s.sequence = 4;
  s.elapsed_ns = 4'000'000'123;
  s.node.cpus = 8;
  s.node.memory_bytes = 32ull << 30;
  s.node.gpus = 1;
  s.node.labels = {{"topology.kubernetes.io/region", "eu-west-1"},
                   {"node.kubernetes.io/instance-type", "m6i.2xlarge"}};
  s.node.provider_id = "aws:///eu-west-1a/i-0123";
  CgroupStats c;
  c.id = 7;
  c.path =
      "/kubepods.slice/x/cri-containerd-" + std::string(64, 'b') + ".scope";
  c.tcp.accepts = 321;
  c.identity.kind = "pod_container";
  c.identity.namespace_name = "shop";
  c.identity.pod = "web-7c9f6d5b8-x2x4q";
  c.identity.pod_uid = "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08";
  c.identity.container = "nginx";
  c.identity.container_id = std::string(64, 'b');
  c.identity.workload_kind = "Deployment";
  c.identity.workload = "web";
  c.identity.project = "nginx";
  c.resources.cpu_request_millicores = 250;
  c.resources.memory_request_bytes = 128 << 20;
  c.resources.memory_working_set_bytes = 200 << 20;
  c.resources.cpu_allocated_core_ns = 1'000'000'000;
  c.resources.memory_allocated_byte_seconds = 838'860'800;
  s.cgroups.push_back(c);
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  ASSERT_EQ(r.workloads_size(), 1);
  const auto& w = r.workloads(0);
  EXPECT_EQ(w.identity().namespace_(), "shop");
  EXPECT_EQ(w.identity().pod(), "web-7c9f6d5b8-x2x4q");
  EXPECT_EQ(w.identity().container(), "nginx");
  EXPECT_EQ(w.identity().workload_kind(), "Deployment");
  EXPECT_EQ(w.identity().workload(), "web");
  EXPECT_EQ(w.identity().project(), "nginx");
  EXPECT_EQ(w.identity().pod_uid(), "0f4c7a2e-93d1-4b6a-8e25-1c7d9b3f6a08");
  EXPECT_EQ(w.tcp_accepted(), 321u);
  EXPECT_DOUBLE_EQ(w.cpu_request_cores(), 0.25);
  EXPECT_EQ(w.memory_request_bytes(), 128u << 20);
  EXPECT_EQ(w.memory_working_set_bytes(), 200u << 20);
  EXPECT_EQ(w.cpu_allocated_core_nanoseconds(), 1'000'000'000u);
  EXPECT_EQ(w.memory_allocated_byte_seconds(), 838'860'800u);
  EXPECT_EQ(r.node().cpus(), 8u);
  EXPECT_EQ(r.node().memory_bytes(), 32ull << 30);
  EXPECT_EQ(r.node().gpus(), 1u);
  EXPECT_EQ(r.node().labels().at("topology.kubernetes.io/region"), "eu-west-1");
  EXPECT_EQ(r.node().labels().at("node.kubernetes.io/instance-type"),
            "m6i.2xlarge");
  EXPECT_EQ(r.node().provider_id(), "aws:///eu-west-1a/i-0123");
  EXPECT_EQ(r.elapsed_nanoseconds(), 4'000'000'123u);
}

// The kernel threads travel as the workload `kernel` (their own cgroup id
// and path, labels from the id even when the identity stage did not run),
// with their energy, and the node API groups them like any workload.
TEST(NodeReportTest, KernelThreadsAreTheKernelWorkload) {
  Snapshot s;
  s.sequence = 2;
  s.monotonic_ns = 1'000'000'000;
  CgroupStats root, k;
  root.id = 1;
  root.path = "/";
  root.cpu_ns = 5'000;
  k.id = kKernelCgroupId;
  k.path = kKernelCgroupPath;
  k.cpu_ns = 7'000;
  s.cgroups = {root, k};
  s.energy.enabled = true;
  s.energy.zones = {{"package", "model:ccf", "model", 100, 0, 0, 0, 1}};
  s.energy.workloads = {{1, "/", "package", 40, 0, 0, 0},
                        {kKernelCgroupId, "kernel", "package", 60, 0, 0, 0}};
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  const wattlens::v1::WorkloadCounters* kernel = nullptr;
  for (const auto& w : r.workloads()) {
    if (w.identity().cgroup_id() == kKernelCgroupId) kernel = &w;
  }
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->identity().cgroup_path(), "kernel");
  EXPECT_EQ(kernel->identity().workload_kind(), "kernel");
  EXPECT_EQ(kernel->identity().workload(), "kernel");
  EXPECT_EQ(kernel->identity().project(), "linux");
  EXPECT_EQ(kernel->identity().namespace_(), "");
  EXPECT_EQ(kernel->identity().pod(), "");
  EXPECT_EQ(kernel->identity().container(), "");
  EXPECT_EQ(kernel->identity().systemd_unit(), "");
  EXPECT_EQ(kernel->cpu_nanoseconds(), 7'000u);
  ASSERT_EQ(kernel->energy_size(), 2);  // dynamic and idle
  EXPECT_EQ(kernel->energy(0).microjoules(), 60u);

  NodeApiService api({"n", 1, "v"});
  api.Update(s);
  for (auto [group, kind, name] :
       {std::tuple{wattlens::v1::GROUP_BY_WORKLOAD, "kernel", "kernel"},
        std::tuple{wattlens::v1::GROUP_BY_CGROUP, "kernel", "kernel"}}) {
    wattlens::v1::GetNodeUsageRequest req;
    req.set_group_by(group);
    wattlens::v1::GetNodeUsageResponse resp;
    ASSERT_TRUE(api.GetNodeUsage(nullptr, &req, &resp).ok());
    int rows = 0;
    for (const auto& row : resp.rows()) {
      if (row.key().workload() != name) continue;
      ++rows;
      EXPECT_EQ(row.key().workload_kind(), kind);
      EXPECT_EQ(row.key().project(), "linux");
      EXPECT_EQ(row.usage().cpu_nanoseconds(), 7'000u);
    }
    EXPECT_EQ(rows, 1) << group;
  }
  wattlens::v1::GetNodeUsageRequest by_project;
  by_project.set_group_by(wattlens::v1::GROUP_BY_PROJECT);
  wattlens::v1::GetNodeUsageResponse resp;
  ASSERT_TRUE(api.GetNodeUsage(nullptr, &by_project, &resp).ok());
  bool linux_row = false;
  for (const auto& row : resp.rows()) {
    if (row.key().project() == "linux") {
      linux_row = true;
      EXPECT_EQ(row.usage().cpu_nanoseconds(), 7'000u);
    }
  }
  EXPECT_TRUE(linux_row);
}

// Names the kernel and the API server hand the agent, shaped as the
// collector would refuse them: they travel sanitised, bounded and unique.
TEST(NodeReportTest, NamesAreSanitisedAndBoundedToTheCollectorsLimits) {
  namespace rl = report_limits;
  Snapshot s;
  s.sequence = 4;
  const std::string unit = std::string(246, 'u') + ".service";  // 254 bytes
  ASSERT_EQ(unit.size(), 254u);
  CgroupStats ctl, longunit, badutf8, twin, deep;
  ctl.id = 10;
  ctl.path = "/user.slice/evil\x01name\nx";
  ctl.cpu_ns = 1;
  longunit.id = 11;
  longunit.path = "/system.slice/" + unit;
  longunit.cpu_ns = 2;
  badutf8.id = 12;
  badutf8.path = "/user.slice/caf\xc3";  // truncated UTF-8 sequence
  badutf8.cpu_ns = 3;
  // Sanitised, this one would read like the first: it keeps its own name.
  twin.id = 13;
  twin.path = "/user.slice/evil\\x01name\\x0ax";
  twin.cpu_ns = 4;
  deep.id = 14;
  for (int i = 0; i < 500; ++i) deep.path += "/level-xyz";
  deep.cpu_ns = 5;
  s.cgroups = {ctl, longunit, badutf8, twin, deep};
  SourceHealth src;
  src.source = "sched";
  src.detail = "line one\nline two";
  s.self.sources.push_back(src);
  auto r = BuildNodeReport(s, {"n", 1, "v\t1"});
  ASSERT_EQ(r.workloads_size(), 5);
  std::set<std::string> paths;
  for (const auto& w : r.workloads()) {
    const auto& id = w.identity();
    EXPECT_FALSE(rl::HasControlBytes(id.cgroup_path())) << id.cgroup_path();
    EXPECT_LE(id.cgroup_path().size(), rl::kMaxCgroupPathBytes);
    EXPECT_EQ(id.cgroup_path()[0], '/');
    EXPECT_LE(id.systemd_unit().size(), rl::kMaxLabelBytes);
    EXPECT_TRUE(paths.insert(id.cgroup_path()).second) << id.cgroup_path();
    // proto3 strings must be UTF-8: the serialised report parses back.
    std::string bytes;
    ASSERT_TRUE(w.SerializeToString(&bytes));
    wattlens::v1::WorkloadCounters back;
    EXPECT_TRUE(back.ParseFromString(bytes)) << id.cgroup_id();
  }
  EXPECT_EQ(r.workloads(0).identity().cgroup_path(),
            "/user.slice/evil\\x01name\\x0ax");
  EXPECT_EQ(r.workloads(1).identity().systemd_unit(),
            unit.substr(0, rl::kMaxLabelBytes));
  EXPECT_EQ(r.workloads(2).identity().cgroup_path(), "/user.slice/caf\\xc3");
  EXPECT_EQ(r.workloads(3).identity().cgroup_path(),
            "/user.slice/evil\\x01name\\x0ax#13");
  EXPECT_EQ(r.workloads(4).cpu_nanoseconds(), 5u);
  EXPECT_FALSE(rl::HasControlBytes(r.agent_version()));
  ASSERT_EQ(r.health().sources_size(), 1);
  EXPECT_EQ(r.health().sources(0).last_error(), "line one\\x0aline two");
}

// The full table's row is cgroup id 0, like the energy buckets: its energy
// joins its row instead of making a second /overflow workload (which the
// collector refuses as a repeated path).
TEST(NodeReportTest, OverflowRowKeepsItsEnergyInOneWorkload) {
  Snapshot s;
  s.sequence = 2;
  CgroupStats overflow;
  overflow.id = 0;
  overflow.path = report_limits::kOverflowCgroupPath;
  overflow.cpu_ns = 70;
  s.cgroups = {overflow};
  s.energy.enabled = true;
  s.energy.zones = {{"package", "model:ccf", "model", 100, 0, 0, 0, 1}};
  s.energy.workloads = {{0, "/overflow", "package", 30, 0, 0, 0},
                        {0, "__idle__", "package", 0, 70, 0, 0}};
  auto r = BuildNodeReport(s, {"n", 1, "v"});
  int overflow_rows = 0;
  for (const auto& w : r.workloads()) {
    if (w.identity().cgroup_path() != "/overflow") continue;
    ++overflow_rows;
    EXPECT_EQ(w.cpu_nanoseconds(), 70u);
    ASSERT_EQ(w.energy_size(), 2);
    EXPECT_EQ(w.energy(0).microjoules(), 30u);
  }
  EXPECT_EQ(overflow_rows, 1);
  ASSERT_EQ(r.workloads_size(), 1);  // the row; __idle__ is a bucket
  ASSERT_EQ(r.energy_buckets_size(), 1);
  EXPECT_EQ(r.energy_buckets(0).bucket(), wattlens::v1::ENERGY_BUCKET_IDLE);
  ASSERT_EQ(r.energy_buckets(0).energy_size(), 2);
  EXPECT_EQ(r.energy_buckets(0).energy(1).microjoules(), 70u);
}

TEST(ReportLimitsTest, SanitizeKeepsValidUtf8AndNeverSplitsACharacter) {
  namespace rl = report_limits;
  EXPECT_EQ(rl::Sanitize("/caf\xc3\xa9", 100), "/caf\xc3\xa9");
  EXPECT_EQ(rl::Sanitize("/caf\xc3\xa9", 5), "/caf");  // é needs 2 bytes
  EXPECT_EQ(rl::Sanitize("a\x7f", 5), "a\\x7f");
  EXPECT_EQ(rl::Sanitize("a\x7f", 4), "a");  // no half escape
  EXPECT_EQ(rl::Sanitize("\xed\xa0\x80", 100), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(rl::Sanitize("\xf0\x9f\x98\x80", 100), "\xf0\x9f\x98\x80");
}

// A fake collector that refuses one sequence as invalid and acknowledges
// the rest.
class RefusingIngest final : public wattlens::v1::IngestService::Service {
 public:
  explicit RefusingIngest(uint64_t bad) : bad_(bad) {}
  grpc::Status Upload(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<wattlens::v1::UploadResponse,
                               wattlens::v1::UploadRequest>* stream) override {
    wattlens::v1::UploadRequest req;
    while (stream->Read(&req)) {
      if (req.report().sequence() == bad_) {
        refusals_.fetch_add(1);
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad report");
      }
      wattlens::v1::UploadResponse ack;
      ack.set_epoch(req.report().epoch());
      ack.set_acked_sequence(req.report().sequence());
      stream->Write(ack);
    }
    return grpc::Status::OK;
  }
  int refusals() const { return refusals_.load(); }

 private:
  const uint64_t bad_;
  std::atomic<int> refusals_{0};
};

TEST(UploaderTest, ReportRefusedMaxRefusalsTimesLeavesTheOutboxCounted) {
  RefusingIngest service(/*bad=*/2);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  UploaderOptions o;
  o.collector = "127.0.0.1:" + std::to_string(port);
  o.insecure = true;
  o.interval = absl::ZeroDuration();
  o.backoff_min = absl::Milliseconds(10);
  o.backoff_max = absl::Milliseconds(20);
  o.max_refusals = 3;
  auto u = Uploader::Create(o, nullptr);
  ASSERT_TRUE(u.ok()) << u.status();
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    wattlens::v1::NodeReport r;
    r.set_epoch(7);
    r.set_sequence(seq);
    (*u)->Enqueue(r);
  }
  (*u)->Start();
  // Before: the refused head was resent for ever and 3 never acknowledged.
  ASSERT_TRUE((*u)->WaitForAcked(7, 3, absl::Seconds(20)));
  const UploaderStats s = (*u)->stats();
  EXPECT_EQ(service.refusals(), 3);
  EXPECT_EQ(s.refused_dropped, 1u);
  EXPECT_EQ(s.outbox_size, 0u);
  (*u)->Stop(absl::ZeroDuration());
  server->Shutdown();
}

TEST(UploaderTest, FullOutboxDropsOldestAndCounts) {
  UploaderOptions o;
  o.collector = "127.0.0.1:1";
  o.insecure = true;
  o.interval = absl::ZeroDuration();
  o.outbox_capacity = 3;
  auto channel =
      grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  auto u = Uploader::CreateWithChannel(o, nullptr, channel);  // not started
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    wattlens::v1::NodeReport r;
    r.set_epoch(1);
    r.set_sequence(seq);
    u->Enqueue(r);
  }
  wattlens::v1::NodeReport same;
  same.set_epoch(1);
  same.set_sequence(5);
  u->Enqueue(same);
  const UploaderStats s = u->stats();
  EXPECT_EQ(s.queued, 5u);
  EXPECT_EQ(s.outbox_size, 3u);
  EXPECT_EQ(s.outbox_dropped, 2u);
  EXPECT_EQ(s.skipped_unchanged, 1u);
}

}  // namespace
}  // namespace wattlens
