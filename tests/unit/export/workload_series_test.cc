// SPDX-License-Identifier: Apache-2.0
// The wattlens_workload_* rows: identity labels on every series, the
// documented bound (at most 2,000 series per node at 200 pods), the levels
// and their hysteresis, the __other__ fold, and counters that never go
// backwards when containers restart or rows change.
#include "agent/export/workload_series.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/export/prometheus_collectable.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

// A node with `pods` pods in `namespaces` namespaces, `per_owner` replicas
// per Deployment, each pod with a pod cgroup, a sandbox and `containers`
// containers, with traffic in `classes` traffic classes and TCP (24 series
// per cgroup), plus `units` host services (CPU and energy: 8 series each),
// and energy in two zones for everything.
struct NodeShape {
  int pods = 200;
  int namespaces = 20;
  int per_owner = 4;
  int containers = 2;
  int classes = 3;
  int units = 40;
};

Snapshot MakeNode(const NodeShape& n, uint64_t scale = 1) {
  Snapshot s;
  s.energy.enabled = true;
  uint64_t id = 1;
  auto add = [&](CgroupStats c, bool traffic) {
    c.id = id++;
    c.cpu_ns = (1000 + c.id) * scale;
    c.syscalls = 10 * c.id * scale;
    c.live_processes = 1;
    for (int k = 0; traffic && k < n.classes; ++k) {
      c.net[k].tx_bytes = c.id * scale;
      c.net[k].rx_bytes = 2 * c.id * scale;
    }
    if (traffic) c.tcp.accepts = scale;
    for (const char* zone : {"package", "dram"}) {
      s.energy.workloads.push_back(
          {c.id, c.path, zone, 5 * c.id * scale, c.id * scale, 0, 0});
    }
    s.cgroups.push_back(std::move(c));
  };
  for (int p = 0; p < n.pods; ++p) {
    const std::string uid = absl::StrCat("pod-uid-", p);
    const std::string pod_path = absl::StrCat("/kubepods.slice/pod", p);
    WorkloadLabels base;
    base.pod_known = true;
    const int owner = p / n.per_owner;
    base.namespace_name = absl::StrCat("ns", owner % n.namespaces);
    base.pod = absl::StrCat("app", p / n.per_owner, "-", p);
    base.pod_uid = uid;
    base.workload_kind = "Deployment";
    base.workload = absl::StrCat("app", p / n.per_owner);
    base.pod_project = absl::StrCat("proj", owner % 7);
    CgroupStats pod;
    pod.path = pod_path;
    pod.identity = base;
    pod.identity.kind = "pod";
    add(pod, true);
    for (int k = 0; k <= n.containers; ++k) {  // k == 0: the sandbox
      CgroupStats c;
      c.path = absl::StrCat(pod_path, "/cri-containerd-", k);
      c.identity = base;
      c.identity.kind = "pod_container";
      c.identity.container = k == 0 ? "" : absl::StrCat("c", k);
      c.identity.project = k == 0 ? "" : base.pod_project;
      add(c, true);
    }
  }
  for (int u = 0; u < n.units; ++u) {
    CgroupStats c;
    c.path = absl::StrCat("/system.slice/svc", u, ".service");
    c.identity.kind = "systemd_unit";
    c.identity.systemd_unit = absl::StrCat("svc", u, ".service");
    add(c, false);  // host services: CPU and energy, no traffic
  }
  for (const char* b : {"__idle__", "__unattributed__"}) {
    for (const char* zone : {"package", "dram"}) {
      s.energy.workloads.push_back({0, b, zone, 7 * scale, 3 * scale, 0, 0});
    }
  }
  return s;
}

// Every wattlens_workload_* sample in the text exposition: name{labels} ->
// value.
std::map<std::string, double> WorkloadSamples(const std::string& text) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "wattlens_workload_")) continue;
    size_t sp = line.rfind(' ');
    out[std::string(line.substr(0, sp))] =
        std::stod(std::string(line.substr(sp + 1)));
  }
  return out;
}

TEST(WorkloadSeriesTest, TwoHundredPodsStayWithinTwoThousandSeries) {
  NodeShape shape;  // 200 pods x 4 cgroups + 40 units = 840 cgroups
  Snapshot s = MakeNode(shape);
  WorkloadSeries series;  // auto, 2,000
  series.Update(&s);
  const std::string text = RenderSnapshotText(s, {});
  const auto samples = WorkloadSamples(text);
  std::printf("200 pods, 840 cgroups: level %s, %zu series (budget %lu)\n",
              s.rows.level.c_str(), samples.size(), s.rows.budget);
  EXPECT_LE(samples.size(), 2000u);
  EXPECT_EQ(samples.size(), s.rows.series);  // the count is the real one
  // 840 cgroups x 24 series would be ~20,000: the agent went coarser, but no
  // coarser than it had to.
  EXPECT_EQ(s.rows.level, "workload");
  EXPECT_EQ(s.rows.folded_rows, 0u);
  // Every series carries all identity labels.
  for (const auto& [name, v] : samples) {
    for (const char* l : {"cgroup=", "namespace=", "pod=", "container=",
                          "workload_kind=", "workload=", "project="}) {
      EXPECT_NE(name.find(l), std::string::npos) << name;
    }
  }
  // Nothing lost by grouping: CPU over the rows is the node's CPU.
  uint64_t want = 0;
  for (const CgroupStats& c : s.cgroups) want += c.cpu_ns;
  uint64_t got = 0;
  for (const WorkloadRow& r : s.rows.rows) got += r.cpu_ns;
  EXPECT_EQ(got, want);
  EXPECT_NE(text.find("wattlens_workload_cpu_seconds_total{cgroup=\"\","
                      "namespace=\"ns1\",pod=\"\",container=\"\","
                      "workload_kind=\"Deployment\",workload=\"app1\","
                      "project=\"proj1\"}"),
            std::string::npos);
}

TEST(WorkloadSeriesTest, SmallNodeKeepsEveryCgroup) {
  NodeShape shape;
  shape.pods = 10;
  shape.units = 5;
  Snapshot s = MakeNode(shape);
  WorkloadSeries series;
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "cgroup");
  EXPECT_EQ(s.rows.rows.size(), s.cgroups.size() + 2);  // + the buckets
  const std::string text = RenderSnapshotText(s, {});
  EXPECT_NE(text.find("wattlens_workload_cpu_seconds_total{cgroup=\"/"
                      "kubepods.slice/pod3/cri-containerd-1\",namespace="
                      "\"ns0\",pod=\"app0-3\",container=\"c1\","
                      "workload_kind=\"Deployment\",workload=\"app0\","
                      "project=\"proj0\"}"),
            std::string::npos);
  EXPECT_NE(text.find("wattlens_workload_energy_joules_total{cgroup="
                      "\"__idle__\",namespace=\"\""),
            std::string::npos);
  EXPECT_NE(text.find("cgroup=\"/system.slice/svc2.service\""),
            std::string::npos);
}

// A cgroup whose project is still being decided has no row; once decided,
// its first row holds everything it used, not only what came after.
TEST(WorkloadSeriesTest, PendingProjectRowStartsWithAllItUsed) {
  auto node = [](uint64_t cpu_ns, bool pending, const std::string& project) {
    Snapshot s;
    CgroupStats c;
    c.id = 7;
    c.path = "/libpod_parent/libpod-abc";
    c.identity.kind = "container";
    c.identity.project = project;
    c.identity.project_pending = pending;
    c.cpu_ns = cpu_ns;
    c.syscalls = cpu_ns / 1000;
    c.live_processes = 1;
    s.cgroups.push_back(std::move(c));
    return s;
  };
  WorkloadSeries series;
  Snapshot first = node(60'000'000, /*pending=*/true, "");
  series.Update(&first);
  for (const WorkloadRow& r : first.rows.rows) {
    EXPECT_NE(r.cgroup, "/libpod_parent/libpod-abc") << "row while pending";
  }
  Snapshot second = node(2'100'000'000, /*pending=*/false, "nginx");
  series.Update(&second);
  const WorkloadRow* row = nullptr;
  for (const WorkloadRow& r : second.rows.rows) {
    if (r.cgroup == "/libpod_parent/libpod-abc") row = &r;
  }
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->project, "nginx");
  EXPECT_EQ(row->cpu_ns, 2'100'000'000u);
  EXPECT_EQ(row->syscalls, 2'100'000u);
}

// Each level's shape at 200 pods, pinned by configuration.
TEST(WorkloadSeriesTest, FixedLevelsGroupAsDocumented) {
  NodeShape shape;
  for (SeriesLevel level : {SeriesLevel::kCgroup, SeriesLevel::kPod,
                            SeriesLevel::kWorkload, SeriesLevel::kNamespace}) {
    Snapshot s = MakeNode(shape);
    WorkloadSeries series({level, UINT64_MAX});
    series.Update(&s);
    std::set<std::string> pods, containers;
    size_t host = 0;
    for (const WorkloadRow& r : s.rows.rows) {
      if (r.bucket) continue;
      pods.insert(r.pod);
      containers.insert(r.container);
      host += r.namespace_name.empty();
    }
    std::printf("%-9s rows %4zu series %5lu\n", s.rows.level.c_str(),
                s.rows.rows.size(), s.rows.series);
    switch (level) {
      case SeriesLevel::kCgroup:
        EXPECT_EQ(s.rows.rows.size(), 842u);
        break;
      case SeriesLevel::kPod:
        EXPECT_EQ(s.rows.rows.size(), 200u + 40 + 2);
        EXPECT_EQ(containers.size(), 1u);  // ""
        break;
      case SeriesLevel::kWorkload:
        EXPECT_EQ(s.rows.rows.size(), 50u + 40 + 2);
        EXPECT_EQ(pods.size(), 1u);
        break;
      case SeriesLevel::kNamespace:
        // (namespace, project) pairs (one per owner here), /system.slice,
        // and the buckets.
        EXPECT_EQ(s.rows.rows.size(), 50u + 1 + 2);
        EXPECT_EQ(host, 1u);
        break;
    }
  }
}

// The kernel threads are one row, `kernel`, with the same labels at every
// level (never folded into a host slice or dropped as unlabelled), with
// their CPU time and energy.
TEST(WorkloadSeriesTest, KernelThreadsAreOneRowAtEveryLevel) {
  NodeShape shape;
  shape.pods = 8;
  shape.units = 3;
  for (SeriesLevel level : {SeriesLevel::kCgroup, SeriesLevel::kPod,
                            SeriesLevel::kWorkload, SeriesLevel::kNamespace}) {
    Snapshot s = MakeNode(shape);
    CgroupStats k;
    k.id = kKernelCgroupId;
    k.path = kKernelCgroupPath;
    k.cpu_ns = 123'000'000;
    k.live_processes = 60;
    k.identity.kind = "kernel";
    k.identity.workload_kind = k.identity.workload = "kernel";
    k.identity.project = k.identity.pod_project = kKernelProject;
    s.cgroups.push_back(k);
    s.energy.workloads.push_back(
        {kKernelCgroupId, kKernelCgroupPath, "package", 4'000'000, 0, 0, 0});
    WorkloadSeries series({level, UINT64_MAX});
    series.Update(&s);
    int kernel_rows = 0;
    for (const WorkloadRow& r : s.rows.rows) {
      if (r.cgroup != "kernel" && r.workload != "kernel") continue;
      ++kernel_rows;
      EXPECT_FALSE(r.bucket);
      EXPECT_EQ(r.cgroup, "kernel");
      EXPECT_EQ(r.namespace_name, "");
      EXPECT_EQ(r.pod, "");
      EXPECT_EQ(r.container, "");
      EXPECT_EQ(r.workload_kind, "kernel");
      EXPECT_EQ(r.workload, "kernel");
      EXPECT_EQ(r.project, "linux");
      EXPECT_EQ(r.cpu_ns, 123'000'000u);
      EXPECT_EQ(r.processes, 60u);
      ASSERT_EQ(r.energy.size(), 1u);
      EXPECT_EQ(r.energy[0].dynamic_uj, 4'000'000u);
    }
    EXPECT_EQ(kernel_rows, 1) << SeriesLevelName(level);
    const std::string text = RenderSnapshotText(s, {});
    EXPECT_NE(text.find("wattlens_workload_cpu_seconds_total{cgroup=\"kernel\","
                        "namespace=\"\",pod=\"\",container=\"\","
                        "workload_kind=\"kernel\",workload=\"kernel\","
                        "project=\"linux\"} 0.123\n"),
              std::string::npos)
        << SeriesLevelName(level);
    EXPECT_NE(text.find("wattlens_workload_energy_joules_total{cgroup="
                        "\"kernel\",namespace=\"\",pod=\"\",container="
                        "\"\",workload_kind=\"kernel\",workload=\"kernel\","
                        "project=\"linux\",zone=\"package\",mode="
                        "\"dynamic\"} 4\n"),
              std::string::npos)
        << SeriesLevelName(level);
  }
}

TEST(WorkloadSeriesTest, OverBudgetFoldsTheLeastBusyIntoOther) {
  NodeShape shape;
  shape.pods = 200;
  shape.namespaces = 200;  // namespace level cannot help
  shape.per_owner = 1;
  Snapshot s = MakeNode(shape);
  WorkloadSeries series({std::nullopt, 500});
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "namespace");
  EXPECT_GT(s.rows.folded_rows, 0u);
  EXPECT_LE(s.rows.series, 500u);
  EXPECT_LE(WorkloadSamples(RenderSnapshotText(s, {})).size(), 500u);
  bool other = false;
  uint64_t got = 0, want = 0;
  for (const WorkloadRow& r : s.rows.rows) {
    other |= r.cgroup == "__other__";
    got += r.cpu_ns;
  }
  for (const CgroupStats& c : s.cgroups) want += c.cpu_ns;
  EXPECT_TRUE(other);
  EXPECT_EQ(got, want);
}

// A container restarts: its old cgroup is exported once more as gone, then
// disappears; the pod row keeps its CPU and keeps growing.
TEST(WorkloadSeriesTest, PodRowNeverGoesBackwardsWhenAContainerRestarts) {
  auto cg = [](uint64_t id, const std::string& path, uint64_t cpu) {
    CgroupStats c;
    c.id = id;
    c.path = path;
    c.cpu_ns = cpu;
    c.identity.kind = "pod_container";
    c.identity.pod_known = true;
    c.identity.namespace_name = "shop";
    c.identity.pod = "web-1";
    c.identity.workload_kind = "Deployment";
    c.identity.workload = "web";
    return c;
  };
  WorkloadSeries series({SeriesLevel::kPod, 2000});
  Snapshot s;
  s.cgroups = {cg(1, "/kp/pod1/a", 500)};
  series.Update(&s);
  ASSERT_EQ(s.rows.rows.size(), 1u);
  EXPECT_EQ(s.rows.rows[0].cpu_ns, 500u);
  EXPECT_EQ(s.rows.rows[0].cgroup, "/kp/pod1");
  s.cgroups = {cg(1, "/kp/pod1/a", 700), cg(2, "/kp/pod1/b", 40)};
  s.cgroups[0].gone = true;
  series.Update(&s);
  EXPECT_EQ(s.rows.rows[0].cpu_ns, 740u);
  s.cgroups = {cg(2, "/kp/pod1/b", 100)};
  series.Update(&s);
  EXPECT_EQ(s.rows.rows[0].cpu_ns, 800u);  // not 100
  // The pod is deleted: its row is dropped once it has no cgroups.
  s.cgroups.clear();
  series.Update(&s);
  EXPECT_TRUE(s.rows.rows.empty());
}

// Auto level: goes coarser at once, finer only below 80% of the budget.
// Without traffic classes a pod's 4 cgroups make 12 series each.
TEST(WorkloadSeriesTest, AutoLevelHysteresis) {
  auto node = [](int pods) {
    NodeShape n;
    n.pods = pods;
    n.units = 0;
    n.classes = 0;
    return MakeNode(n);
  };
  WorkloadSeries series({std::nullopt, 600});
  Snapshot s = node(10);  // 40 cgroups x 12 + 8 = 488
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "cgroup");
  EXPECT_EQ(s.rows.series, 488u);
  s = node(40);  // 1,928 at cgroup level: too many
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "pod");
  // New rows start from the growth after the change: the first 10 pods did
  // not grow, so their TCP series are not there yet.
  // And the old series' energy now sits in __removed__ (2 zones).
  EXPECT_EQ(s.rows.series, 40u * 12 + 8 - 10 * 4 + 4);
  EXPECT_EQ(s.rows.level_changes, 1u);
  s = node(12);  // 584 would fit, but not within 80% (480): stay
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "pod");
  s = node(10);  // 488: still above 480
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "pod");
  s = node(8);  // 392: finer again
  series.Update(&s);
  EXPECT_EQ(s.rows.level, "cgroup");
  EXPECT_EQ(s.rows.level_changes, 2u);
}

TEST(WorkloadSeriesTest, ParseLevel) {
  EXPECT_FALSE(ParseSeriesLevel("auto")->has_value());
  EXPECT_EQ(**ParseSeriesLevel("pod"), SeriesLevel::kPod);
  EXPECT_FALSE(ParseSeriesLevel("pods").ok());
  EXPECT_EQ(UnitCgroupPath("/system.slice/a.service/sub/x", "a.service"),
            "/system.slice/a.service");
  EXPECT_EQ(UnitCgroupPath("/x/y", ""), "/x/y");
}

}  // namespace
}  // namespace wattlens
