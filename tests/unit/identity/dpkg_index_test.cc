// SPDX-License-Identifier: Apache-2.0
#include "agent/identity/dpkg_index.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/common/clock.h"
#include "gtest/gtest.h"

namespace wattlens::identity {
namespace {

const std::string kRoot =
    std::string(WATTLENS_TESTDATA_DIR) + "/identity/dpkg-root";

TEST(DpkgIndexTest, FindsOwningPackageAndSource) {
  FakeClock clock;
  DpkgIndex index(kRoot, clock);
  EXPECT_EQ(index.stats().builds, 0u);  // lazy

  auto p = index.PackageFor("/usr/sbin/nginx");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->package, "nginx-core");
  EXPECT_EQ(p->source, "nginx");

  p = index.PackageFor("/usr/lib/postgresql/15/bin/postgres");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->package, "postgresql-15");
  EXPECT_EQ(p->source, "postgresql-15");

  // "Source: openssh (1:9.2p1-2+deb12u3)": the version is dropped.
  p = index.PackageFor("/usr/sbin/sshd");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->source, "openssh");

  // Multi-arch list file name "libc6:amd64.list".
  p = index.PackageFor("/lib/x86_64-linux-gnu/libc.so.6");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->package, "libc6");
  EXPECT_EQ(p->source, "glibc");

  // usr-merge: dpkg says /bin/cat, the kernel says /usr/bin/cat.
  p = index.PackageFor("/usr/bin/cat");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->package, "coreutils");
  p = index.PackageFor("/bin/env");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->package, "coreutils");

  p = index.PackageFor("/usr/bin/containerd (deleted)");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->source, "containerd");

  EXPECT_EQ(index.PackageFor("/usr/local/bin/k3s").status().code(),
            absl::StatusCode::kNotFound);
  // Skipped prefixes are never indexed.
  EXPECT_EQ(
      index.PackageFor("/usr/share/doc/coreutils/copyright").status().code(),
      absl::StatusCode::kNotFound);

  DpkgIndex::Stats s = index.stats();
  EXPECT_EQ(s.builds, 1u);
  EXPECT_EQ(s.lists_read, 6u);
  EXPECT_GT(s.paths_indexed, 10u);
  EXPECT_EQ(s.misses, 2u);
}

TEST(DpkgIndexTest, NoDatabaseIsFailedPrecondition) {
  FakeClock clock;
  DpkgIndex index("/nonexistent-root", clock);
  EXPECT_EQ(index.PackageFor("/usr/bin/ls").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DpkgIndexTest, BoundedAndCounted) {
  FakeClock clock;
  DpkgIndex index(kRoot, clock, /*max_paths=*/3);
  (void)index.PackageFor("/usr/sbin/nginx");
  DpkgIndex::Stats s = index.stats();
  EXPECT_EQ(s.paths_indexed, 3u);
  EXPECT_GT(s.paths_dropped_over_limit, 0u);
}

TEST(DpkgIndexTest, RebuildsWhenStatusChanges) {
  namespace fs = std::filesystem;
  fs::path root = fs::path(::testing::TempDir()) / "dpkg-rebuild-root";
  fs::remove_all(root);
  fs::create_directories(root / "var/lib/dpkg/info");
  auto write = [&](const fs::path& p, const std::string& text) {
    std::ofstream f(p);
    f << text;
  };
  write(root / "var/lib/dpkg/status", "Package: a\nVersion: 1\n\n");
  write(root / "var/lib/dpkg/info/a.list", "/usr/bin/a\n");

  FakeClock clock;
  DpkgIndex index(root.string(), clock);
  ASSERT_TRUE(index.PackageFor("/usr/bin/a").ok());
  EXPECT_FALSE(index.PackageFor("/usr/bin/b").ok());

  write(root / "var/lib/dpkg/info/b.list", "/usr/bin/b\n");
  write(root / "var/lib/dpkg/status",
        "Package: a\nVersion: 1\n\nPackage: b\nSource: bee\nVersion: 1\n\n");
  // Not re-checked before the interval has passed.
  EXPECT_FALSE(index.PackageFor("/usr/bin/b").ok());
  clock.AdvanceNs(DpkgIndex::kRecheckIntervalNs);
  auto p = index.PackageFor("/usr/bin/b");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->source, "bee");
  EXPECT_EQ(index.stats().builds, 2u);
  fs::remove_all(root);
}

TEST(HostProjectTest, ResolutionChain) {
  FakeClock clock;
  DpkgIndex index(kRoot, clock);
  const ProjectMap& m = ProjectMap::Shipped();

  HostProject h = ResolveHostProject(m, &index, "/usr/sbin/nginx");
  EXPECT_EQ(h.project, "nginx");
  EXPECT_EQ(h.package, "nginx-core");
  EXPECT_EQ(h.via, "package-rule");

  h = ResolveHostProject(m, &index, "/usr/lib/postgresql/15/bin/postgres");
  EXPECT_EQ(h.project, "postgres");

  h = ResolveHostProject(m, &index, "/usr/bin/ls");
  EXPECT_EQ(h.project, "coreutils");
  EXPECT_EQ(h.via, "source-package");

  h = ResolveHostProject(m, &index, "/usr/local/bin/k3s");
  EXPECT_EQ(h.project, "k3s");
  EXPECT_EQ(h.via, "exe-rule");

  h = ResolveHostProject(m, &index, "/opt/custom/bin/my-daemon");
  EXPECT_EQ(h.project, "my-daemon");
  EXPECT_EQ(h.via, "file-name");

  h = ResolveHostProject(m, nullptr, "/usr/sbin/nginx");
  EXPECT_EQ(h.project, "nginx");
  EXPECT_EQ(h.via, "file-name");
}

}  // namespace
}  // namespace wattlens::identity
