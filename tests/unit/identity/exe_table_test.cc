// SPDX-License-Identifier: Apache-2.0
// The executable table over fake exec, fork and exit events and a fake
// /proc: what a process runs survives until it execs again or exits, a fork
// inherits it, a full table counts what it cannot keep, and a /proc scan
// never overwrites what the kernel reported.
#include "agent/identity/exe_table.h"

#include <unistd.h>

#include <filesystem>

#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

TEST(ExeTableTest, ExecForkExit) {
  ExeTable t(16);
  t.Exec(100, 1000, "/usr/bin/stress-ng");
  t.Fork(101, 2000, 100);
  EXPECT_EQ(t.Lookup(101), "/usr/bin/stress-ng");
  EXPECT_TRUE(t.Inherited(101));
  EXPECT_FALSE(t.Inherited(100));
  t.Exec(100, 1000, "/usr/bin/bash");
  EXPECT_EQ(t.Lookup(100), "/usr/bin/bash");
  EXPECT_EQ(t.Lookup(101), "/usr/bin/stress-ng");  // its own copy
  t.Exit(101, 2000);
  EXPECT_EQ(t.Lookup(101), std::nullopt);
  EXPECT_EQ(t.stats().entries, 1u);
}

TEST(ExeTableTest, AReusedPidIsNotTheOldProcess) {
  ExeTable t(16);
  t.Exec(100, 1000, "/usr/bin/old");
  // A late exit of an earlier process under the same pid keeps the entry.
  t.Exit(100, 500);
  EXPECT_EQ(t.Lookup(100), "/usr/bin/old");
  // A fork from an unknown parent into a pid that held something else.
  t.Fork(100, 3000, 7);
  EXPECT_EQ(t.Lookup(100), std::nullopt);
}

TEST(ExeTableTest, FullTableCountsWhatItDrops) {
  ExeTable t(2);
  t.Exec(1, 1, "/a");
  t.Exec(2, 2, "/b");
  t.Exec(3, 3, "/c");
  t.Fork(4, 4, 1);
  EXPECT_EQ(t.Lookup(3), std::nullopt);
  EXPECT_EQ(t.Lookup(4), std::nullopt);
  EXPECT_EQ(t.stats().dropped_full, 2u);
  t.Exec(2, 2, "/b2");  // a known process still updates in place
  EXPECT_EQ(t.Lookup(2), "/b2");
  t.Exit(1, 1);
  t.Exec(3, 3, "/c");
  EXPECT_EQ(t.Lookup(3), "/c");
  EXPECT_EQ(t.stats().entries, 2u);
}

TEST(ExeTableTest, SeedNeverOverwritesAnExec) {
  ExeTable t(16);
  t.Exec(10, 100, "/usr/bin/new");
  t.Seed(10, 0, "/usr/bin/stale");
  t.Seed(11, 0, "/usr/bin/other");
  EXPECT_EQ(t.Lookup(10), "/usr/bin/new");
  EXPECT_EQ(t.Lookup(11), "/usr/bin/other");
  // A seeded entry's start time is unknown: any exit of the pid ends it.
  t.Exit(11, 12345);
  EXPECT_EQ(t.Lookup(11), std::nullopt);
}

TEST(ExeTableTest, SeedFromAFakeProc) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) /
                        ("exe_table_proc_" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "42");
  fs::create_directories(root / "43");
  fs::create_directories(root / "2");  // a kernel thread: no exe
  fs::create_directories(root / "self");
  fs::create_symlink("/usr/bin/stress-ng", root / "42" / "exe");
  fs::create_symlink("relative/not/a/path", root / "43" / "exe");
  ExeTable t(16);
  t.Exec(43, 1, "/usr/bin/from-the-kernel");
  ProcScanResult r = SeedFromProc(root.string(), &t);
  EXPECT_EQ(r.read, 1);
  EXPECT_EQ(r.unreadable, 2);
  EXPECT_EQ(t.Lookup(42), "/usr/bin/stress-ng");
  EXPECT_EQ(t.Lookup(43), "/usr/bin/from-the-kernel");
  EXPECT_EQ(t.Lookup(2), std::nullopt);
  fs::remove_all(root);
}

}  // namespace
}  // namespace wattlens::identity
