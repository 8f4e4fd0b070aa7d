// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/cgroup_resolver.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/bpf/kernel_features.h"
#include "gtest/gtest.h"

namespace wattlens {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/wl-cgroup-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

uint64_t Inode(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

CgroupResolver::Options WalkOnly() {
  CgroupResolver::Options o;
  o.use_file_handles = false;  // a plain directory tree, not kernfs
  o.min_rescan_interval_ns = 0;
  return o;
}

TEST(CgroupResolverTest, ResolvesByWalkingTheTree) {
  TempDir root;
  fs::create_directories(root.path() + "/kubepods.slice/pod1.slice/c.scope");
  FakeClock clock;
  CgroupResolver r(root.path(), clock, WalkOnly());
  EXPECT_EQ(r.PathOf(Inode(root.path())), "/");
  const std::string leaf = "/kubepods.slice/pod1.slice/c.scope";
  EXPECT_EQ(r.PathOf(Inode(root.path() + leaf)), leaf);
  EXPECT_EQ(r.IdOf(leaf), Inode(root.path() + leaf));
  EXPECT_FALSE(r.IdOf("/nope").has_value());
}

TEST(CgroupResolverTest, NewCgroupResolvesAfterRescanAndGoneOneDoesNot) {
  TempDir root;
  FakeClock clock;
  CgroupResolver::Options o = WalkOnly();
  o.min_rescan_interval_ns = 1'000'000'000;
  CgroupResolver r(root.path(), clock, o);
  EXPECT_EQ(r.PathOf(Inode(root.path())), "/");
  fs::create_directories(root.path() + "/late");
  const uint64_t late = Inode(root.path() + "/late");
  // Rescans are rate limited: within the interval an unknown id stays
  // unknown, after it the new cgroup is found.
  EXPECT_FALSE(r.PathOf(late).has_value());
  clock.AdvanceNs(1'000'000'000);
  EXPECT_EQ(r.PathOf(late), "/late");
  fs::remove(root.path() + "/late");
  EXPECT_FALSE(r.PathOf(late).has_value());
}

TEST(CgroupResolverTest, FindsTheCgroup2MountInMountinfo) {
  TempDir proc;
  fs::create_directories(proc.path() + "/self");
  std::ofstream(proc.path() + "/self/mountinfo")
      << "25 30 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
      << "26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
      << "27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
  EXPECT_EQ(*FindCgroup2Mount(proc.path()), "/sys/fs/cgroup/unified");
  std::ofstream(proc.path() + "/self/mountinfo")
      << "26 25 0:23 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(*FindCgroup2Mount(proc.path()), "/sys/fs/cgroup");
  std::ofstream(proc.path() + "/self/mountinfo")
      << "garbage\n\n27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup cpu\n";
  EXPECT_EQ(FindCgroup2Mount(proc.path()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(FindCgroup2Mount(proc.path() + "/missing").ok());
}

TEST(KernelFeaturesTest, MissingBtfOrPrivilegesGiveOneLineReasons) {
  KernelFeatures f;
  f.btf = false;
  auto s = CheckBpfPrerequisites(f, "/nonexistent/vmlinux");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("/nonexistent/vmlinux"), std::string::npos);
  f.btf = true;
  f.possible_cpus = 2;
  s = CheckBpfPrerequisites(f, "x");
  EXPECT_NE(s.message().find("CAP_BPF"), std::string::npos);
  f.bpf_privileged = true;
  // The kernel's baseline (tp_btf, ring buffer, bpf_get_current_task_btf) is
  // required too; kernel_features_test covers its messages.
  f.tp_btf = f.ringbuf = f.current_task_btf = true;
  EXPECT_TRUE(CheckBpfPrerequisites(f, "x").ok());
  for (auto* msg : {"/nonexistent/vmlinux"}) {
    KernelFeatures g;
    EXPECT_EQ(std::string(CheckBpfPrerequisites(g, msg).message()).find('\n'),
              std::string::npos);
  }
}

}  // namespace
}  // namespace wattlens
