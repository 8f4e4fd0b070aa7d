// SPDX-License-Identifier: Apache-2.0
// Requests, working set and allocation per cgroup: exact integer
// accumulation over explicit (fake) times, and the working set read from a
// fake cgroup tree, with odd contents counted as drops.
#include "agent/state/resources.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "gtest/gtest.h"

namespace wattlens {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

class FakeTree {
 public:
  void Set(const std::string& path, std::string content) {
    files_[path] = std::move(content);
  }
  void Remove(const std::string& path) { files_.erase(path); }
  ResourceAccounting::ReadFile Reader() {
    return [this](const std::string& p) -> std::optional<std::string> {
      auto it = files_.find(p);
      if (it == files_.end()) return std::nullopt;
      return it->second;
    };
  }
  void WorkingSet(const std::string& cg, uint64_t current, uint64_t inactive) {
    Set("/cg" + cg + "/memory.current", std::to_string(current) + "\n");
    Set("/cg" + cg + "/memory.stat",
        "anon 1\nfile 2\nactive_file 3\ninactive_file " +
            std::to_string(inactive) + "\nslab 9\n");
  }

 private:
  std::map<std::string, std::string> files_;
};

CgroupStats Cg(uint64_t id, std::string path, uint64_t cpu_ns,
               uint64_t req_millis, uint64_t req_bytes) {
  CgroupStats c;
  c.id = id;
  c.path = std::move(path);
  c.cpu_ns = cpu_ns;
  c.resources.cpu_request_millicores = req_millis;
  c.resources.memory_request_bytes = req_bytes;
  return c;
}

TEST(WorkingSetTest, CurrentMinusInactiveFile) {
  EXPECT_EQ(ResourceAccounting::WorkingSet("1000\n", "inactive_file 300\n"),
            700u);
  EXPECT_EQ(ResourceAccounting::WorkingSet("5000",
                                           "active_file 9\ninactive_file 0\n"),
            5000u);
  // Odd: missing key, inactive above current, garbage, empty, negative.
  EXPECT_FALSE(ResourceAccounting::WorkingSet("1000", "active_file 3\n"));
  EXPECT_FALSE(ResourceAccounting::WorkingSet("100", "inactive_file 300\n"));
  EXPECT_FALSE(ResourceAccounting::WorkingSet("max", "inactive_file 3\n"));
  EXPECT_FALSE(ResourceAccounting::WorkingSet("", "inactive_file 3\n"));
  EXPECT_FALSE(ResourceAccounting::WorkingSet("-5", "inactive_file 3\n"));
  EXPECT_FALSE(ResourceAccounting::WorkingSet("1000", "inactive_file 3x\n"));
  EXPECT_FALSE(ResourceAccounting::WorkingSet("99999999999999999999999",
                                              "inactive_file 3\n"));
}

// cpu += max(request x dt, CPU used in dt); mem += max(request, ws) x dt:
// exact integers, remainders carried, over uneven intervals.
TEST(ResourceAccountingTest, AllocationIsExactWithCarriedRemainders) {
  FakeTree tree;
  tree.WorkingSet("/pod/a", 300 << 20, 100 << 20);  // ws 200 MiB
  const int64_t start = 50 * kSecond;
  ResourceAccounting acc("/cg", start, tree.Reader());
  // 333 millicores, 128 MiB request: the working set (200 MiB) is larger.
  Snapshot s;
  s.cgroups = {Cg(1, "/pod/a", 0, 333, 128 << 20)};
  // Three intervals of 1 s + 1 ns, 0.7 s and 1.3 s - 1 ns: 3 s in total.
  const int64_t dts[] = {kSecond + 1, 700'000'000, 1'300'000'000 - 1};
  const uint64_t cpu[] = {100'000'000, 600'000'000, 700'000'000};  // cum
  int64_t now = start;
  uint64_t want_cpu = 0;
  unsigned __int128 req_exact = 0;  // millicore-ns
  for (int i = 0; i < 3; ++i) {
    now += dts[i];
    s.cgroups[0].cpu_ns = cpu[i];
    acc.Update(now, &s);
    // The request part, exactly: floor(sum(333 x dt) / 1000) grows by the
    // carried floor each interval.
    const uint64_t before = static_cast<uint64_t>(req_exact / 1000);
    req_exact += static_cast<unsigned __int128>(333) * dts[i];
    const uint64_t req_ns = static_cast<uint64_t>(req_exact / 1000) - before;
    const uint64_t used = cpu[i] - (i ? cpu[i - 1] : 0);
    want_cpu += std::max(req_ns, used);
    EXPECT_EQ(s.cgroups[0].resources.cpu_allocated_core_ns, want_cpu) << i;
  }
  // Interval 1: 0.333 s requested vs 0.5 s used -> 0.5 s counts.
  EXPECT_EQ(s.elapsed_ns, 3u * kSecond);
  EXPECT_EQ(acc.elapsed_ns(), 3u * kSecond);
  // 200 MiB over exactly 3 s, with the carries: no rounding lost.
  EXPECT_EQ(s.cgroups[0].resources.memory_allocated_byte_seconds,
            3u * (200u << 20));
  EXPECT_EQ(s.cgroups[0].resources.memory_working_set_bytes, 200u << 20);
  EXPECT_EQ(acc.working_set_drops(), 0u);
}

TEST(ResourceAccountingTest, RequestWinsWhenAboveUseAndWorkingSet) {
  FakeTree tree;
  tree.WorkingSet("/a", 10 << 20, 0);
  ResourceAccounting acc("/cg", 0, tree.Reader());
  Snapshot s;
  // 1.5 cores and 1 GiB requested; idle, 10 MiB working set.
  s.cgroups = {Cg(1, "/a", 0, 1500, 1 << 30)};
  for (int i = 1; i <= 10; ++i) acc.Update(i * 100'000'000LL, &s);  // 1 s
  EXPECT_EQ(s.cgroups[0].resources.cpu_allocated_core_ns, 1'500'000'000u);
  EXPECT_EQ(s.cgroups[0].resources.memory_allocated_byte_seconds, 1u << 30);
  // 1 ms steps of 1 millicore: 1 µs of request each, never rounded away.
  ResourceAccounting tiny("/cg", 0, tree.Reader());
  s.cgroups = {Cg(2, "/a", 0, 1, 0)};
  for (int i = 1; i <= 1000; ++i) tiny.Update(i * 1'000'000LL, &s);
  EXPECT_EQ(s.cgroups[0].resources.cpu_allocated_core_ns, 1'000'000u);
  // 10 MiB x 1 s = 10,485,760 byte-seconds, from 1000 steps of 1 ms.
  EXPECT_EQ(s.cgroups[0].resources.memory_allocated_byte_seconds, 10u << 20);
}

TEST(ResourceAccountingTest, OddOrMissingFilesAreCountedDropsAndZero) {
  FakeTree tree;
  tree.WorkingSet("/ok", 4096, 0);
  tree.Set("/cg/odd/memory.current", "garbage\n");
  tree.Set("/cg/odd/memory.stat", "inactive_file 1\n");
  ResourceAccounting acc("/cg", 0, tree.Reader());
  Snapshot s;
  s.cgroups = {Cg(1, "/ok", 0, 0, 0), Cg(2, "/odd", 0, 0, 0),
               Cg(3, "/missing", 0, 0, 0), Cg(4, "/", 0, 0, 0)};
  acc.Update(kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.memory_working_set_bytes, 4096u);
  EXPECT_EQ(s.cgroups[1].resources.memory_working_set_bytes, 0u);
  EXPECT_EQ(s.cgroups[2].resources.memory_working_set_bytes, 0u);
  // Odd contents are a drop; no accounting files at all (no memory
  // controller, or gone) are unavailable; the root has none by design.
  EXPECT_EQ(acc.working_set_drops(), 1u);
  EXPECT_EQ(acc.working_set_unavailable(), 1u);
  EXPECT_EQ(s.cgroups[0].resources.memory_allocated_byte_seconds, 4096u);
  // A removed cgroup keeps its last working set for its last interval.
  tree.Remove("/cg/ok/memory.current");
  s.cgroups[0].gone = true;
  acc.Update(2 * kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.memory_working_set_bytes, 4096u);
  EXPECT_EQ(s.cgroups[0].resources.memory_allocated_byte_seconds, 8192u);
  EXPECT_EQ(acc.working_set_drops(), 2u);
  EXPECT_EQ(acc.working_set_unavailable(), 2u);
  // memory.current without a usable memory.stat: a drop.
  tree.Set("/cg/ok/memory.current", "4096\n");
  tree.Set("/cg/ok/memory.stat", "anon 4096\n");
  s.cgroups[0].gone = false;
  acc.Update(3 * kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.memory_working_set_bytes, 0u);
  EXPECT_EQ(acc.working_set_drops(), 4u);
}

// Hybrid hosts: no memory controller on v2, the v1 memory hierarchy has the
// same path. usage_in_bytes - total_inactive_file, as cAdvisor reads v1.
TEST(ResourceAccountingTest, WorkingSetFromV1MemoryOnHybridHosts) {
  FakeTree tree;
  tree.Set("/v1mem/kubepods/pod1/c/memory.usage_in_bytes", "8192\n");
  tree.Set("/v1mem/kubepods/pod1/c/memory.stat",
           "cache 100\ninactive_file 5\ntotal_inactive_file 4096\n");
  ResourceAccounting acc("/cg", 0, tree.Reader(), "/v1mem");
  Snapshot s;
  s.cgroups = {Cg(1, "/kubepods/pod1/c", 0, 0, 0)};
  acc.Update(kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.memory_working_set_bytes, 4096u);
  EXPECT_EQ(acc.working_set_drops(), 0u);
  // Without the v1 root there is nothing to read for it.
  ResourceAccounting v2only("/cg", 0, tree.Reader());
  v2only.Update(kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.memory_working_set_bytes, 0u);
  EXPECT_EQ(v2only.working_set_drops(), 0u);
  EXPECT_EQ(v2only.working_set_unavailable(), 1u);
}

TEST(ResourceAccountingTest, FindsTheV1MemoryMount) {
  const std::string dir = ::testing::TempDir() + "/wl-mountinfo";
  std::filesystem::create_directories(dir + "/self");
  std::ofstream(dir + "/self/mountinfo")
      << "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
         "35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup "
         "rw,cpu,cpuacct\n"
         "36 30 0:32 / /sys/fs/cgroup/memory rw shared:10 - cgroup cgroup "
         "rw,memory\n"
         "37 30 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(FindCgroupV1Mount(dir, "memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(FindCgroupV1Mount(dir, "cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(FindCgroupV1Mount(dir, "hugetlb"), "");
  EXPECT_EQ(FindCgroupV1Mount(dir + "/nowhere", "memory"), "");
}

// A new cgroup's first interval charges what it already used; a counter
// reset (kernel key re-created) never subtracts.
TEST(ResourceAccountingTest, NewCgroupAndCounterReset) {
  FakeTree tree;
  ResourceAccounting acc("/cg", 0, tree.Reader());
  Snapshot s;
  s.cgroups = {Cg(1, "/", 700'000'000, 0, 0)};
  acc.Update(kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.cpu_allocated_core_ns, 700'000'000u);
  s.cgroups[0].cpu_ns = 100;  // went backwards
  acc.Update(2 * kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.cpu_allocated_core_ns, 700'000'000u);
  s.cgroups[0].cpu_ns = 300'000'100;
  acc.Update(3 * kSecond, &s);
  EXPECT_EQ(s.cgroups[0].resources.cpu_allocated_core_ns, 1'000'000'000u);
}

}  // namespace
}  // namespace wattlens
