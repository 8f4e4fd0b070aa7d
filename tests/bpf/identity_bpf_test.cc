// Workload identity from real cgroups: directories named exactly as
// containerd (systemd driver) and CRI-O (cgroupfs driver) name them for two
// pods, busy children moved in, and the agent's report attributes CPU
// seconds and syscalls to the right pod UID and container id.
#include <sys/stat.h>
#include <sys/syscall.h>

#include <string>

#include "agent/export/node_report.h"
#include "tests/bpf/bpf_test_util.h"

namespace wattlens {
namespace {

using testing::DrainUntil;
using testing::FindCgroup;
using testing::FindExited;
using testing::GatedChild;
using testing::TestAgentConfig;

constexpr char kUidA[] = "3f2b6d1e-8a4c-4e8f-9b7d-2c1a0e9f8d7c";
constexpr char kUidB[] = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const std::string kIdA(64, 'a');
const std::string kIdB = std::string(32, 'b') + std::string(32, 'c');

// Creates every directory of `rel` under the cgroup v2 mount; removes them
// (deepest first) on scope exit.
class CgroupTree {
 public:
  explicit CgroupTree(const std::string& rel) {
    auto mount = FindCgroup2Mount("/proc");
    if (!mount.ok()) return;
    std::string path = *mount;
    size_t pos = 1;
    while (pos <= rel.size()) {
      size_t next = rel.find('/', pos);
      if (next == std::string::npos) next = rel.size();
      path += "/" + rel.substr(pos, next - pos);
      if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return;
      made_.push_back(path);
      pos = next + 1;
    }
    leaf_ = path;
  }
  ~CgroupTree() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) rmdir(it->c_str());
  }
  bool Add(pid_t pid) const {
    std::ofstream f(leaf_ + "/cgroup.procs");
    f << pid << std::flush;
    return f.good();
  }
  uint64_t id() const {
    struct stat st;
    return stat(leaf_.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  bool ok() const { return !leaf_.empty(); }

 private:
  std::vector<std::string> made_;
  std::string leaf_;
};

std::string Underscored(std::string uid) {
  for (char& c : uid) c = c == '-' ? '_' : c;
  return uid;
}

int Busy(int syscalls) {
  for (int i = 0; i < syscalls; ++i) syscall(SYS_getppid);
  timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  do {
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1'000'000'000L + t.tv_nsec - t0.tv_nsec <
           300'000'000L);
  return 0;
}

TEST(IdentityBpfTest, PodUidAndContainerIdFromContainerdAndCrioCgroups) {
  WATTLENS_REQUIRE_BPF_OR_SKIP();
  const std::string tag = std::to_string(getpid());
  // containerd, systemd driver; CRI-O, cgroupfs driver. Under a per-run
  // parent so a host's real kubepods hierarchy is never touched.
  CgroupTree a("/wl-id-" + tag +
               "/kubepods.slice/kubepods-burstable.slice/"
               "kubepods-burstable-pod" +
               Underscored(kUidA) + ".slice/cri-containerd-" + kIdA + ".scope");
  CgroupTree b("/wl-id-" + tag + "/kubepods/besteffort/pod" +
               std::string(kUidB) + "/crio-" + kIdB);
  ASSERT_TRUE(a.ok() && b.ok());
  auto agent = Agent::Create(TestAgentConfig());
  ASSERT_TRUE(agent.ok()) << agent.status();
  GatedChild ca([] { return Busy(1000); });
  GatedChild cb([] { return Busy(2000); });
  ASSERT_TRUE(a.Add(ca.pid()) && b.Add(cb.pid()));
  ca.Release();
  cb.Release();
  ASSERT_EQ(ca.Wait(), 0);
  ASSERT_EQ(cb.Wait(), 0);
  bool seen_a = false, seen_b = false;
  ASSERT_TRUE(DrainUntil(
      **agent, [&](const Snapshot&) { return seen_a && seen_b; },
      [&](const Snapshot& s) {
        seen_a |= FindExited(s, ca.pid()) != nullptr;
        seen_b |= FindExited(s, cb.pid()) != nullptr;
      }));
  ASSERT_TRUE((*agent)->DrainOnce().ok());
  auto snap = (*agent)->store().Latest();
  auto report = BuildNodeReport(*snap, {"node", 1, "test"});
  int found = 0;
  for (const auto& w : report.workloads()) {
    const auto& id = w.identity();
    if (id.cgroup_id() == a.id()) {
      ++found;
      EXPECT_EQ(id.pod_uid(), kUidA);
      EXPECT_EQ(id.container_id(), kIdA);
      EXPECT_GE(w.cpu_nanoseconds(), 300'000'000u);
      EXPECT_GE(w.syscalls(), 1000u);
    } else if (id.cgroup_id() == b.id()) {
      ++found;
      EXPECT_EQ(id.pod_uid(), kUidB);
      EXPECT_EQ(id.container_id(), kIdB);
      EXPECT_GE(w.cpu_nanoseconds(), 300'000'000u);
      EXPECT_GE(w.syscalls(), 2000u);
    } else {
      // Nothing else carries these pods' identities.
      EXPECT_NE(id.pod_uid(), kUidA) << id.cgroup_path();
      EXPECT_NE(id.pod_uid(), kUidB) << id.cgroup_path();
    }
  }
  EXPECT_EQ(found, 2);
  // The exact numbers: each pod's cgroup carries its child's CPU and calls.
  const CgroupStats* sa = FindCgroup(*snap, a.id());
  const CgroupStats* sb = FindCgroup(*snap, b.id());
  ASSERT_TRUE(sa && sb);
  std::printf("pod %s: %.3f s CPU, %lu syscalls; pod %s: %.3f s, %lu\n", kUidA,
              sa->cpu_ns / 1e9, sa->syscalls, kUidB, sb->cpu_ns / 1e9,
              sb->syscalls);
}

}  // namespace
}  // namespace wattlens
