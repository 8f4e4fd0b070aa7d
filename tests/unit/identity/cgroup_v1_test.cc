// SPDX-License-Identifier: Apache-2.0
// The cgroup v1 fallback over fixture /proc trees
// (tests/testdata/identity/proc-v1): /proc/<pid>/cgroup parsing, which v1
// path names the workload, and the root cgroup's processes moved into
// synthetic cgroups with their growth, totals unchanged.
#include "agent/identity/cgroup_v1.h"

#include "agent/identity/workload_identity.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

const std::string kProc =
    std::string(WATTLENS_TESTDATA_DIR) + "/identity/proc-v1";
const std::string kPodPath =
    "/kubepods/burstable/pod3f2b6d1e-8a4c-4e8f-9b7d-2c1a0e9f8d7c/" +
    std::string(64, 'a');

TEST(ProcCgroupTest, ParsesAndPicksTheCpuHierarchy) {
  auto lines = ParseProcCgroup(
      "4:cpu,cpuacct:/kubepods/x\n11:memory:/m\n1:name=systemd:/s\n0::/\n");
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 4u);
  EXPECT_EQ((*lines)[0].controllers,
            (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*lines)[3].hierarchy, 0);
  EXPECT_EQ(V1WorkloadPath(*lines), "/kubepods/x");
  // Only memory on v1 (a hybrid host): that path.
  lines = ParseProcCgroup("4:memory:/process_api/f8\n1:cpu:/\n0::/\n");
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(V1WorkloadPath(*lines), "/process_api/f8");
  // All roots, or v2 only: nothing.
  EXPECT_EQ(V1WorkloadPath(*ParseProcCgroup("4:cpu:/\n0::/a\n")), "");
  EXPECT_EQ(V1WorkloadPath(*ParseProcCgroup("0::/system.slice/x\n")), "");
  // A path with ':' in it is kept whole.
  EXPECT_EQ((*ParseProcCgroup("3:pids:/a:b\n"))[0].path, "/a:b");
  for (const char* bad : {"x:cpu:/a\n", "4:cpu\n", "4:cpu:relative\n",
                          "-1:cpu:/a\n", "4:cpu:\n"}) {
    EXPECT_FALSE(ParseProcCgroup(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseProcCgroup(std::string(70000, 'x')).ok());
}

ProcessStats Proc(uint32_t pid, uint64_t cgroup, uint64_t cpu, bool exited,
                  uint64_t syscalls = 0) {
  ProcessStats p;
  p.pid = pid;
  p.start_ns = pid * 1000;
  p.cgroup_id = cgroup;
  p.cpu_ns = cpu;
  p.syscalls = syscalls;
  p.exited = exited;
  return p;
}

const CgroupStats* Find(const Snapshot& s, const std::string& path) {
  for (const CgroupStats& c : s.cgroups) {
    if (c.path == path) return &c;
  }
  return nullptr;
}

TEST(V1AttributionTest, RootProcessesMoveToTheirV1Paths) {
  V1Attribution v1(kProc);
  Snapshot s;
  CgroupStats root;
  root.id = 1;
  root.path = "/";
  root.cpu_ns = 10'000;
  root.syscalls = 100;
  root.live_processes = 5;
  s.cgroups = {root};
  s.processes = {Proc(100, 1, 3'000, false, 30), Proc(101, 1, 2'000, false),
                 Proc(200, 1, 1'000, false), Proc(300, 1, 500, false),
                 Proc(500, 1, 100, false)};
  v1.Apply(&s);
  const CgroupStats* pod = Find(s, kPodPath);
  const CgroupStats* nginx = Find(s, "/system.slice/nginx.service");
  const CgroupStats* r = Find(s, "/");
  ASSERT_TRUE(pod && nginx && r);
  EXPECT_EQ(pod->cpu_ns, 5'000u);  // both processes of the container
  EXPECT_EQ(pod->syscalls, 30u);
  EXPECT_EQ(pod->live_processes, 2u);
  EXPECT_EQ(nginx->cpu_ns, 1'000u);
  EXPECT_EQ(r->cpu_ns, 4'000u);  // 300 (all roots), 500 (unreadable), rest
  EXPECT_EQ(r->syscalls, 70u);
  EXPECT_EQ(r->live_processes, 2u);
  EXPECT_NE(pod->id & kSyntheticCgroupBit, 0u);
  EXPECT_EQ(s.processes[0].cgroup_id, pod->id);
  EXPECT_EQ(s.processes[3].cgroup_id, 1u);
  EXPECT_EQ(v1.lookups(), 5u);
  uint64_t total = 0;
  for (const CgroupStats& c : s.cgroups) total += c.cpu_ns;
  EXPECT_EQ(total, 10'000u);

  // Next interval: growth only; 101 exits (exported once), 100 keeps going;
  // /proc is not read again for known processes.
  s.cgroups = {root};
  s.cgroups[0].cpu_ns = 16'000;
  s.cgroups[0].live_processes = 4;
  s.processes = {Proc(100, 1, 6'000, false, 40), Proc(101, 1, 2'500, true),
                 Proc(200, 1, 1'000, false), Proc(300, 1, 2'000, false)};
  v1.Apply(&s);
  pod = Find(s, kPodPath);
  r = Find(s, "/");
  ASSERT_TRUE(pod && r);
  EXPECT_EQ(pod->cpu_ns, 8'500u);
  EXPECT_EQ(pod->live_processes, 1u);
  EXPECT_EQ(r->cpu_ns, 16'000u - 8'500 - 1'000);
  EXPECT_EQ(v1.lookups(), 5u);

  // The identity stage reads the synthetic cgroup's v1 path like a v2 one.
  WorkloadIdentityOptions o;
  o.read_exe = [](uint32_t) { return std::optional<std::string>(); };
  WorkloadIdentifier id(nullptr, &ProjectMap::Shipped(), o);
  id.Label(&s);
  pod = Find(s, kPodPath);
  EXPECT_EQ(pod->identity.kind, "pod_container");
  EXPECT_EQ(pod->identity.pod_uid, "3f2b6d1e-8a4c-4e8f-9b7d-2c1a0e9f8d7c");
  EXPECT_EQ(pod->identity.container_id, std::string(64, 'a'));
  EXPECT_EQ(Find(s, "/system.slice/nginx.service")->identity.systemd_unit,
            "nginx.service");

  // The container's processes are gone: its cgroup stays, unchanged, so a
  // later process on the same path continues its counters.
  s.cgroups = {root};
  s.cgroups[0].cpu_ns = 16'000;
  s.processes = {Proc(200, 1, 1'000, false)};
  v1.Apply(&s);
  pod = Find(s, kPodPath);
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->cpu_ns, 8'500u);
  EXPECT_EQ(pod->live_processes, 0u);
  EXPECT_FALSE(pod->gone);
}

TEST(V1AttributionTest, HybridHostMemoryOnlyPath) {
  V1Attribution v1(kProc);
  Snapshot s;
  CgroupStats root;
  root.id = 1;
  root.path = "/";
  root.cpu_ns = 1'000;
  s.cgroups = {root};
  s.processes = {Proc(400, 1, 1'000, false)};
  v1.Apply(&s);
  const CgroupStats* c =
      Find(s, "/process_api/f81d7129257bbf3c7ea0ad1883d30cd6");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cpu_ns, 1'000u);
  EXPECT_EQ(Find(s, "/")->cpu_ns, 0u);
}

TEST(V1AttributionTest, ProcessesOutsideTheRootAreLeftAlone) {
  int reads = 0;
  V1Attribution v1(kProc, [&](const std::string&) {
    ++reads;
    return std::optional<std::string>("4:cpu:/x\n");
  });
  Snapshot s;
  CgroupStats root, other;
  root.id = 1;
  root.path = "/";
  other.id = 7;
  other.path = "/system.slice/a.service";
  other.cpu_ns = 50;
  s.cgroups = {root, other};
  s.processes = {Proc(9, 7, 50, false)};
  v1.Apply(&s);
  EXPECT_EQ(reads, 0);
  EXPECT_EQ(s.cgroups.size(), 2u);
  EXPECT_EQ(s.processes[0].cgroup_id, 7u);
}

// Kernel threads are keyed under kKernelCgroupId, not the root: the
// fallback never looks them up or moves them, and the kernel row keeps its
// time.
TEST(V1AttributionTest, KernelThreadsStayTheKernelWorkload) {
  int reads = 0;
  V1Attribution v1(kProc, [&](const std::string&) {
    ++reads;
    return std::optional<std::string>("4:cpu:/x\n");
  });
  Snapshot s;
  CgroupStats root, kernel;
  root.id = 1;
  root.path = "/";
  kernel.id = kKernelCgroupId;
  kernel.path = kKernelCgroupPath;
  kernel.cpu_ns = 300;
  kernel.live_processes = 2;
  s.cgroups = {root, kernel};
  s.processes = {Proc(2, kKernelCgroupId, 100, false),
                 Proc(40, kKernelCgroupId, 200, false)};
  for (int i = 0; i < 2; ++i) v1.Apply(&s);
  EXPECT_EQ(reads, 0);
  EXPECT_EQ(v1.synthetic_cgroups(), 0u);
  ASSERT_EQ(s.cgroups.size(), 2u);
  EXPECT_EQ(s.cgroups[1].id, kKernelCgroupId);
  EXPECT_EQ(s.cgroups[1].cpu_ns, 300u);
  EXPECT_EQ(s.cgroups[1].live_processes, 2u);
  for (const ProcessStats& p : s.processes) {
    EXPECT_EQ(p.cgroup_id, kKernelCgroupId);
  }
}

}  // namespace
}  // namespace wattlens::identity
