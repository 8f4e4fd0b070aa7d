#include <sys/syscall.h>

#include <string>

#include "agent/export/live_view.h"
#include "agent/export/prometheus_collectable.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Snapshot Sample() {
  Snapshot s;
  s.sequence = 3;
  s.monotonic_ns = 10'000'000'000;
  s.realtime_ns = 1'700'000'000'000'000'000;
  s.cgroups = {
      {1, "/", 1'500'000'000, 100, 4, 3, false},
      {9, "/system.slice/nginx.service", 250'000'000, 42, 0, 2, false}};
  s.processes = {{100, 1, 1, "nginx", 9, 200'000'000, 40, 0, false, 0, {}},
                 {101, 2, 1, "bash", 1, 900'000'000, 80, 4, false, 0, {}},
                 {102, 3, 1, "cron", 1, 1'000, 1, 0, true, 0, {}}};
  s.syscalls = {{static_cast<uint32_t>(SYS_read), 120, 4},
                {static_cast<uint32_t>(SYS_getppid), 22, 0}};
  s.self.lost_events = {{"ringbuf_full", 0}, {"event_queue_full", 2}};
  s.self.maps = {{"oncpu", 50, 200}};
  s.self.sources = {{"syscalls", true, ""}, {"sched", false, "verifier"}};
  return s;
}

TEST(ExpositionTest, WorkloadAndNodeSeries) {
  std::string text = RenderSnapshotText(Sample(), {});
  EXPECT_THAT(text, HasSubstr("# TYPE wattlens_workload_cpu_seconds_total "
                              "counter"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_cpu_seconds_total{cgroup="
                              "\"/system.slice/nginx.service\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_workload_syscalls_total{cgroup=\"/\"}"
                              " 100\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_syscalls_total{syscall=\"read\"}"
                              " 120\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_node_syscall_errors_total{syscall="
                              "\"read\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("wattlens_agent_lost_events_total{reason="
                              "\"event_queue_full\"} 2\n"));
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

}  // namespace
}  // namespace wattlens
