// SPDX-License-Identifier: Apache-2.0
#include <sys/syscall.h>

#include <string>
#include <utility>

#include "agent/bpf/abi.h"
#include "agent/export/live_view.h"
#include "agent/export/prometheus_collectable.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CgroupStats Cgroup(uint64_t id, std::string path, uint64_t cpu_ns,
                   uint64_t syscalls, uint64_t errors, uint32_t procs) {
  CgroupStats c;
  c.id = id;
  c.path = std::move(path);
  c.cpu_ns = cpu_ns;
  c.syscalls = syscalls;
  c.syscall_errors = errors;
  c.live_processes = procs;
  return c;
}

ProcessStats Process(uint32_t pid, std::string comm, uint64_t cgroup,
                     uint64_t cpu_ns, uint64_t syscalls, bool exited) {
  ProcessStats p;
  p.pid = pid;
  p.start_ns = pid;
  p.ppid = 1;
  p.comm = std::move(comm);
  p.cgroup_id = cgroup;
  p.cpu_ns = cpu_ns;
  p.syscalls = syscalls;
  p.exited = exited;
  return p;
}

Snapshot Sample() {
  Snapshot s;
  s.sequence = 3;
  s.monotonic_ns = 10'000'000'000;
  s.realtime_ns = 1'700'000'000'000'000'000;
  s.cgroups = {Cgroup(1, "/", 1'500'000'000, 100, 4, 3),
               Cgroup(9, "/system.slice/nginx.service", 250'000'000, 42, 0, 2)};
  s.cgroups[1].net[WL_NET_NODE] = {1000, 200, 10, 5};
  s.cgroups[1].net[WL_NET_INTERNET] = {70, 0, 1, 0};
  s.cgroups[1].tcp = {3, 4, 5, 1};
  s.processes = {Process(100, "nginx", 9, 200'000'000, 40, false),
                 Process(101, "bash", 1, 900'000'000, 80, false),
                 Process(102, "cron", 1, 1'000, 1, true)};
  s.syscalls = {{static_cast<uint32_t>(SYS_read), 120, 4},
                {static_cast<uint32_t>(SYS_getppid), 22, 0}};
  s.self.drops[DropReason::kEventQueueFull] = 2;
  s.self.drops[DropReason::kCasRetryDeferred] = 3;
  s.self.maps = {{"oncpu", 50, 200}};
  s.self.sources = {SourceHealth::Up("syscalls"),
                    {"sched", SourceState::kDown, HealthReason::kLoadFailed,
                     "verifier"},
                    {"network", SourceState::kDegraded,
                     HealthReason::kNetworkBytesOff, "connection counts only"}};
  return s;
}

TEST(ExpositionTest, NetworkSeriesByClassOnlyWhereThereIsTraffic) {
  std::string text = RenderSnapshotText(Sample(), {});
  // Every workload series carries the identity labels (empty for a host
  // service with no project).
  const std::string nginx =
      "cgroup=\"/system.slice/nginx.service\",namespace=\"\",pod=\"\","
      "container=\"\",workload_kind=\"\",workload=\"\",project=\"\"";
  EXPECT_THAT(text,
              HasSubstr("wattlens_workload_network_transmit_bytes_total{" +
                        nginx + ",class=\"node\"} 1000\n"));
  EXPECT_THAT(text,
              HasSubstr("wattlens_workload_network_receive_packets_total{" +
                        nginx + ",class=\"node\"} 5\n"));
  EXPECT_THAT(text,
              HasSubstr("wattlens_workload_network_transmit_bytes_total{" +
                        nginx + ",class=\"internet\"} 70\n"));
  EXPECT_THAT(text, Not(HasSubstr(nginx + ",class=\"cluster\"")));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_tcp_connections_total{" +
                              nginx + ",event=\"accept\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_tcp_retransmits_total{" +
                              nginx + "} 1\n"));
  // The root cgroup had no traffic: no network series for it.
  EXPECT_THAT(text, Not(HasSubstr("tcp_retransmits_total{cgroup=\"/\",")));
}

TEST(ExpositionTest, WorkloadAndNodeSeries) {
  std::string text = RenderSnapshotText(Sample(), {});
  EXPECT_THAT(text, HasSubstr("# TYPE wattlens_workload_cpu_seconds_total "
                              "counter"));
  const std::string empty =
      ",namespace=\"\",pod=\"\",container=\"\",workload_kind=\"\","
      "workload=\"\",project=\"\"}";
  EXPECT_THAT(text, HasSubstr("wattlens_workload_cpu_seconds_total{cgroup="
                              "\"/system.slice/nginx.service\"" +
                              empty + " 0.25\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_syscalls_total{cgroup=\"/\"" +
                              empty + " 100\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_syscalls_total{syscall=\"read\"}"
                              " 120\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_syscall_errors_total{syscall="
                              "\"read\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_lost_events_total{reason="
                              "\"event_queue_full\"} 2\n"));
  // Every loss reason has its series from the start, at 0; the kernel's
  // last drop slot is a named reason, not "unknown".
  EXPECT_THAT(text, HasSubstr("wattlens_agent_lost_events_total{reason="
                              "\"ringbuf_full\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("reason=\"unknown\"")));
  // A deferred slice lost nothing: it is an anomaly, not a lost event.
  EXPECT_THAT(text, HasSubstr("wattlens_agent_anomalies_total{reason="
                              "\"cas_retry_deferred\"} 3\n"));
  EXPECT_THAT(text, Not(HasSubstr("wattlens_agent_lost_events_total{reason="
                                  "\"cas_retry_deferred\"")));
  EXPECT_THAT(text, Not(HasSubstr("wattlens_agent_lost_events_total{reason="
                                  "\"pods_evicted_live\"")));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_source_state{source=\"network\","
                              "state=\"degraded\",reason=\"network_bytes_off\"}"
                              " 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_source_state{source=\"sched\","
                              "state=\"down\",reason=\"load_failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_bpf_map_fill_ratio{map="
                              "\"oncpu\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_source_up{source=\"sched\"} "
                              "0\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_build_info{component=\"agent\""));
  // Every family has HELP text.
  size_t types = 0, helps = 0;
  for (size_t p = 0; (p = text.find("# TYPE ", p)) != std::string::npos; ++p)
    ++types;
  for (size_t p = 0; (p = text.find("# HELP ", p)) != std::string::npos; ++p)
    ++helps;
  EXPECT_EQ(types, helps);
}

TEST(ExpositionTest, PerProcessSeriesOnlyBehindTheFlagAndBounded) {
  EXPECT_THAT(RenderSnapshotText(Sample(), {}),
              Not(HasSubstr("wattlens_process_")));
  ExpositionOptions o;
  o.process_top_n = 2;
  std::string text = RenderSnapshotText(Sample(), o);
  EXPECT_THAT(text, HasSubstr("wattlens_process_cpu_seconds_total{pid=\"101\","
                              "comm=\"bash\",cgroup=\"/\"} 0.9\n"));
  EXPECT_THAT(text, HasSubstr("pid=\"100\""));
  EXPECT_THAT(text, Not(HasSubstr("pid=\"102\"")));  // not in the top 2
}

TEST(ExpositionTest, BpfProgramStatsOnlyWhenEnabled) {
  Snapshot s = Sample();
  s.self.programs = {{"wl_sys_exit", 10, 2000}};
  EXPECT_THAT(RenderSnapshotText(s, {}), Not(HasSubstr("program_runs")));
  s.self.bpf_stats_enabled = true;
  std::string text = RenderSnapshotText(s, {});
  EXPECT_THAT(text, HasSubstr("wattlens_agent_bpf_program_runs_total{program="
                              "\"wl_sys_exit\"} 10\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_bpf_program_run_seconds_total{"
                              "program=\"wl_sys_exit\"} 2e-06\n"));
}

TEST(ExpositionTest, ClusterCidrsSayTheirSourceOrNone) {
  Snapshot s = Sample();
  EXPECT_THAT(RenderSnapshotText(s, {}),
              HasSubstr("wattlens_agent_cluster_cidrs_info{source=\"none\","
                        "cidr=\"\",observed=\"\"} 1\n"));
  s.cluster_cidrs = {{"10.244.0.0/16", "node_spec", "10.244.1.0/24"},
                     {"10.96.0.0/12", "kubernetes_service", "10.96.0.1"}};
  std::string text = RenderSnapshotText(s, {});
  EXPECT_THAT(text, HasSubstr("wattlens_agent_cluster_cidrs_info{source="
                              "\"node_spec\",cidr=\"10.244.0.0/16\","
                              "observed=\"10.244.1.0/24\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_cluster_cidrs_info{source="
                              "\"kubernetes_service\",cidr=\"10.96.0.0/12\","
                              "observed=\"10.96.0.1\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("{source=\"none\"")));
}

TEST(ExpositionTest, CollectableServesNothingBeforeTheFirstSnapshot) {
  SnapshotStore store;
  SnapshotCollectable c(&store, {});
  EXPECT_TRUE(c.Collect().empty());
  store.Publish(std::make_shared<Snapshot>(Sample()));
  EXPECT_FALSE(c.Collect().empty());
}

TEST(LiveViewTest, RatesBetweenSnapshots) {
  Snapshot prev = Sample();
  Snapshot cur = Sample();
  cur.monotonic_ns = prev.monotonic_ns + 2'000'000'000;
  cur.cgroups[1].cpu_ns += 1'000'000'000;  // half a CPU over 2 s
  cur.cgroups[1].syscalls += 400;
  std::string view = RenderLiveView(&prev, cur, 10);
  EXPECT_THAT(view, HasSubstr("/system.slice/nginx.service"));
  EXPECT_THAT(view, HasSubstr("50.0"));
  EXPECT_THAT(view, HasSubstr("200"));
  // Busiest first.
  EXPECT_LT(view.find("nginx.service"), view.find("\n/ "));
  EXPECT_THAT(RenderLiveView(nullptr, cur, 1), Not(HasSubstr("nginx")));
}

TEST(LiveViewTest, KernelThreadsAreNamedKernel) {
  Snapshot prev = Sample();
  CgroupStats k = Cgroup(kKernelCgroupId, kKernelCgroupPath, 0, 0, 0, 60);
  k.identity.kind = "kernel";
  k.identity.workload_kind = k.identity.workload = "kernel";
  k.identity.project = "linux";
  prev.cgroups.push_back(k);
  Snapshot cur = prev;
  cur.monotonic_ns = prev.monotonic_ns + 1'000'000'000;
  cur.cgroups.back().cpu_ns = 3'000'000'000;  // 3 CPUs' worth
  std::string view = RenderLiveView(&prev, cur, 1);
  EXPECT_THAT(view, HasSubstr("kernel [linux]"));
  EXPECT_THAT(view, HasSubstr("300.0"));
}

}  // namespace
}  // namespace wattlens
