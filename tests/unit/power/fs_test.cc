// SPDX-License-Identifier: Apache-2.0
#include "agent/power/fs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/power/fake_tree.h"

namespace wattlens::power {
namespace {

using ::testing::ElementsAre;
using testing::TempTree;

// The DaemonSet's layout: the host's sysfs under /host, the host's procfs at
// the pod's own /proc. Each tree holds a different cpuinfo, so the test sees
// which one was read.
TEST(RootedFileSystemTest, ProcPathsComeFromProcRootWhenSet) {
  TempTree host, proc;
  host.Write("/sys/class/powercap/intel-rapl:0/name", "package-0\n");
  host.Write("/proc/cpuinfo", "under the sysfs root\n");
  proc.Write("/cpuinfo", "from the proc root\n");
  proc.Write("/stat", "cpu 1 2 3 4\n");

  RootedFileSystem fs(host.root(), proc.root());
  EXPECT_EQ(*fs.ReadFile("/proc/cpuinfo"), "from the proc root\n");
  EXPECT_EQ(*fs.ReadFile("/sys/class/powercap/intel-rapl:0/name"),
            "package-0\n");
  EXPECT_THAT(*fs.ListDir("/proc"), ElementsAre("cpuinfo", "stat"));
  // Only the /proc directory itself is redirected, not names that start
  // with the same letters.
  host.Write("/procfs-like/x", "host\n");
  EXPECT_EQ(*fs.ReadFile("/procfs-like/x"), "host\n");
}

TEST(RootedFileSystemTest, ProcPathsStayUnderTheRootWithoutProcRoot) {
  TempTree host;
  host.Write("/proc/cpuinfo", "under the sysfs root\n");
  EXPECT_EQ(*RootedFileSystem(host.root()).ReadFile("/proc/cpuinfo"),
            "under the sysfs root\n");
  EXPECT_EQ(*RootedFileSystem(host.root(), "").ReadFile("/proc/cpuinfo"),
            "under the sysfs root\n");
}

TEST(RootedFileSystemTest, TrailingSlashOnProcRootIsIgnored) {
  TempTree host, proc;
  proc.Write("/meminfo", "MemTotal: 1 kB\n");
  RootedFileSystem fs(host.root(), proc.root() + "/");
  EXPECT_EQ(*fs.ReadFile("/proc/meminfo"), "MemTotal: 1 kB\n");
}

}  // namespace
}  // namespace wattlens::power
